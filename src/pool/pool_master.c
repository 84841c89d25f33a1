/* pool_master.c: the change stream, shipped commits and member liveness. */
#include "pool_master.h"

#include <string.h>

#include "bootstrap.h"
#include "db.h"
#include "ha_fence.h"
#include "pool_role.h"
#include "pool_voters.h"
#include "pool_wire.h"

static struct {
    GMutex lock;
    GHashTable *last_heard; /* host ref -> gint64 monotonic us of its last poll */
} seen;

static char *to_text(json_object *o)
{
    char *text = g_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return text;
}

static void set_live(const char *host, bool live)
{
    g_autoptr(XapiError) err = NULL;
    if (db_write_begin(&err) < 0)
        return;
    DbRow *h = db_lookup(dm_class_by_name("host"), host);
    DbRow *m = h ? db_lookup(dm_class_by_name("host_metrics"), xv_str(db_get(h, "metrics")))
                 : NULL;
    if (!m || db_get(m, "live")->b == live) {
        db_write_abort();
        return;
    }
    if (db_set_by_name(m, "live", xv_new_bool(live), &err) < 0) {
        db_write_abort();
        return;
    }
    if (db_write_commit(&err) < 0)
        return;
    g_message("pool: host %s is %s", host, live ? "live" : "not live (silent)");
    if (!live)
        pool_voters_host_dead(host);
}

static void heard_from(const char *host)
{
    if (!host || !*host)
        return;
    g_mutex_lock(&seen.lock);
    if (!seen.last_heard)
        seen.last_heard = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    gint64 *t = g_hash_table_lookup(seen.last_heard, host);
    bool first = !t;
    if (!t) {
        t = g_new(gint64, 1);
        g_hash_table_insert(seen.last_heard, g_strdup(host), t);
    }
    *t = g_get_monotonic_time();
    g_mutex_unlock(&seen.lock);
    db_read_begin();
    DbRow *h = db_lookup(dm_class_by_name("host"), host);
    DbRow *m = h ? db_lookup(dm_class_by_name("host_metrics"), xv_str(db_get(h, "metrics")))
                 : NULL;
    bool live = m && db_get(m, "live")->b;
    db_read_end();
    if ((first || !live) && m)
        set_live(host, true);
}

char *pool_master_changes(uint64_t since, const char *host, unsigned wait_s)
{
    /* A poll held longer than half the timeout would make a healthy, idle
     * member look silent. */
    wait_s = MIN(wait_s, MAX(1u, pool_member_timeout() / 2));
    gint64 hold = (gint64)wait_s * G_USEC_PER_SEC;
    /* Under HA the poll is the member's heartbeat both ways (ha_fence.h). */
    if (ha_fence_poll_hold_us() > 0)
        hold = MIN(hold, ha_fence_poll_hold_us());
    heard_from(host);
    if (since)
        db_wait_for_change(since, g_get_monotonic_time() + hold);
    db_read_begin();
    json_object *batch = pool_wire_changes(since);
    db_read_end();
    /* Under HA a poll counts from its start only: a member killed while
     * its poll is held must not look alive until the hold ends. */
    if (ha_fence_poll_hold_us() == 0)
        heard_from(host);
    return to_text(batch);
}

char *pool_master_commit(const char *body, size_t len)
{
    g_autoptr(XapiError) err = NULL;
    json_object *ws = pool_wire_parse(body, len, &err);
    if (!ws)
        return to_text(pool_wire_error(err));
    if (db_write_begin(&err) < 0) {
        json_object_put(ws);
        return to_text(pool_wire_error(err));
    }
    int rc = pool_wire_apply_write_set(ws, &err);
    json_object_put(ws);
    uint64_t generation = db_generation();
    if (db_write_finish(&err, rc) < 0)
        return to_text(pool_wire_error(err));
    json_object *reply = json_object_new_object();
    json_object_object_add(reply, "generation", json_object_new_int64((int64_t)generation));
    return to_text(reply);
}

typedef struct {
    const char *master;
    GPtrArray *silent;
    gint64 now, limit;
} LiveScan;

static bool check_host(DbRow *h, void *ctx)
{
    LiveScan *scan = ctx;
    if (strcmp(h->ref, scan->master) == 0)
        return true;
    DbRow *m = db_lookup(dm_class_by_name("host_metrics"), xv_str(db_get(h, "metrics")));
    if (!m || !db_get(m, "live")->b)
        return true;
    g_mutex_lock(&seen.lock);
    gint64 *t = seen.last_heard ? g_hash_table_lookup(seen.last_heard, h->ref) : NULL;
    /* A member not heard from since this master started gets a full
     * timeout from the start. */
    if (!t) {
        if (!seen.last_heard)
            seen.last_heard = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        t = g_new(gint64, 1);
        *t = scan->now;
        g_hash_table_insert(seen.last_heard, g_strdup(h->ref), t);
    }
    bool silent = scan->now - *t > scan->limit;
    g_mutex_unlock(&seen.lock);
    if (silent)
        g_ptr_array_add(scan->silent, g_strdup(h->ref));
    return true;
}

static gboolean on_liveness_tick(gpointer unused)
{
    g_autoptr(GPtrArray) silent = g_ptr_array_new_with_free_func(g_free);
    db_read_begin();
    g_autofree char *master = bootstrap_this_host();
    LiveScan scan = {master, silent, g_get_monotonic_time(),
                     (gint64)pool_member_timeout() * G_USEC_PER_SEC};
    db_foreach(dm_class_by_name("host"), check_host, &scan);
    db_read_end();
    for (guint i = 0; i < silent->len; i++)
        set_live(silent->pdata[i], false);
    return G_SOURCE_CONTINUE;
}

void pool_master_start(void)
{
    static gint started;
    if (g_atomic_int_compare_and_exchange(&started, 0, 1)) /* once: a failover calls it too */
        g_timeout_add_seconds(1, on_liveness_tick, NULL);
}

bool pool_master_host_live(const char *host)
{
    db_read_begin();
    g_autofree char *master = bootstrap_this_host();
    DbRow *h = db_lookup(dm_class_by_name("host"), host);
    DbRow *m = h ? db_lookup(dm_class_by_name("host_metrics"), xv_str(db_get(h, "metrics")))
                 : NULL;
    bool live = strcmp(host, master) == 0 || (m && db_get(m, "live")->b);
    db_read_end();
    return live;
}

int64_t pool_master_last_heard(const char *host)
{
    g_mutex_lock(&seen.lock);
    if (!seen.last_heard)
        seen.last_heard = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    gint64 *t = g_hash_table_lookup(seen.last_heard, host);
    if (!t) { /* not heard from since this master started: from now */
        t = g_new(gint64, 1);
        *t = g_get_monotonic_time();
        g_hash_table_insert(seen.last_heard, g_strdup(host), t);
    }
    int64_t at = *t;
    g_mutex_unlock(&seen.lock);
    return at;
}
