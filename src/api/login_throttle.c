/* login_throttle.c: per-address counts of failed logins and the growing,
 * capped delay before each failure is answered. */
#include "login_throttle.h"

#include <glib.h>

typedef struct {
    unsigned failures; /* in a row */
    unsigned waiting;  /* failures being answered now */
    int64_t last_ms;   /* last failure */
} Penalty;

struct LoginThrottle {
    GMutex lock;
    GHashTable *by_addr; /* char* -> Penalty* */
    int64_t base_ms;
};

LoginThrottle *login_throttle_new(int64_t base_delay_ms)
{
    LoginThrottle *t = g_new0(LoginThrottle, 1);
    g_mutex_init(&t->lock);
    t->by_addr = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    t->base_ms = base_delay_ms;
    return t;
}

void login_throttle_free(LoginThrottle *t)
{
    if (!t)
        return;
    g_hash_table_unref(t->by_addr);
    g_mutex_clear(&t->lock);
    g_free(t);
}

static int64_t configured_base_ms = 250;

static gpointer make_default(gpointer unused)
{
    return login_throttle_new(configured_base_ms);
}

LoginThrottle *login_throttle_default(void)
{
    static GOnce once = G_ONCE_INIT;
    return g_once(&once, make_default, NULL);
}

void login_throttle_configure(int64_t base_delay_ms)
{
    configured_base_ms = base_delay_ms;
}

/* Drops counts not renewed for LOGIN_THROTTLE_FORGET_MS; if the table is
 * still full, the stalest count too (lock held). */
static void make_room(LoginThrottle *t, int64_t now_ms)
{
    if (g_hash_table_size(t->by_addr) < LOGIN_THROTTLE_MAX_ADDRESSES)
        return;
    GHashTableIter it;
    gpointer key, value;
    const char *stalest = NULL;
    int64_t stalest_ms = INT64_MAX;
    g_hash_table_iter_init(&it, t->by_addr);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        Penalty *p = value;
        if (p->waiting)
            continue;
        if (now_ms - p->last_ms > LOGIN_THROTTLE_FORGET_MS) {
            g_hash_table_iter_remove(&it);
        } else if (p->last_ms < stalest_ms) {
            stalest_ms = p->last_ms;
            stalest = key;
        }
    }
    if (g_hash_table_size(t->by_addr) >= LOGIN_THROTTLE_MAX_ADDRESSES && stalest)
        g_hash_table_remove(t->by_addr, stalest);
}

bool login_throttle_admit(LoginThrottle *t, const char *addr)
{
    g_mutex_lock(&t->lock);
    Penalty *p = g_hash_table_lookup(t->by_addr, addr);
    bool admitted = !p || p->waiting < LOGIN_THROTTLE_WAITING;
    g_mutex_unlock(&t->lock);
    return admitted;
}

int64_t login_throttle_failure(LoginThrottle *t, const char *addr, int64_t now_ms,
                               unsigned *in_a_row)
{
    g_mutex_lock(&t->lock);
    Penalty *p = g_hash_table_lookup(t->by_addr, addr);
    if (p && !p->waiting && now_ms - p->last_ms > LOGIN_THROTTLE_FORGET_MS)
        p->failures = 0;
    if (!p) {
        make_room(t, now_ms);
        p = g_new0(Penalty, 1);
        g_hash_table_insert(t->by_addr, g_strdup(addr), p);
    }
    p->failures++;
    p->waiting++;
    p->last_ms = now_ms;
    unsigned shift = MIN(p->failures - 1, 16u);
    int64_t delay = MIN(t->base_ms << shift, t->base_ms * 20);
    *in_a_row = p->failures;
    g_mutex_unlock(&t->lock);
    return delay;
}

void login_throttle_answered(LoginThrottle *t, const char *addr)
{
    g_mutex_lock(&t->lock);
    Penalty *p = g_hash_table_lookup(t->by_addr, addr);
    if (p && p->waiting)
        p->waiting--;
    g_mutex_unlock(&t->lock);
}

void login_throttle_success(LoginThrottle *t, const char *addr)
{
    g_mutex_lock(&t->lock);
    Penalty *p = g_hash_table_lookup(t->by_addr, addr);
    if (p && !p->waiting)
        g_hash_table_remove(t->by_addr, addr);
    else if (p)
        p->failures = 0; /* its waiting answers still hold their places */
    g_mutex_unlock(&t->lock);
}

unsigned login_throttle_size(LoginThrottle *t)
{
    g_mutex_lock(&t->lock);
    unsigned n = g_hash_table_size(t->by_addr);
    g_mutex_unlock(&t->lock);
    return n;
}
