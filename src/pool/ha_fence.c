/* ha_fence.c: a host fences itself without a Raft majority (ha_fence.h). */
#include "ha_fence.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bootstrap.h"
#include "db.h"
#include "ha.h"
#include "message_store.h"
#include "pool_db.h"
#include "pool_failover.h"
#include "pool_master.h"
#include "pool_replica.h"
#include "pool_role.h"
#include "xenops.h"

#define TICK_US (G_USEC_PER_SEC / 10)
#define REFRESH_US G_USEC_PER_SEC
/* STATE_DIR/ha-fenced: the fence's wall-clock time (seconds), from the
 * fence until HA_HOST_WAS_FENCED is raised: a restart of xapid in between
 * (a cut-off master turning member) does not lose the message. */
#define FENCED_FILE "ha-fenced"

static struct {
    GThread *thread, *refresher;
    gint stop;           /* atomic */
    gint timeout_s;      /* atomic: the pool's HA timeout as last read (0: off) */
    gint fenced;         /* atomic */
    gint disarmed;       /* atomic: host.emergency_ha_disable */
    GMutex lock;
    GPtrArray *uuids;    /* the VMs whose domains a fence destroys (lock) */
    GPtrArray *others;   /* the other hosts' refs (lock) */
    GHashTable *tracked; /* uuids of domains made here since the last refresh (lock) */
    char *host_ref, *host_uuid, *host_name;
    gint64 fenced_real; /* the fence to report (wall clock, s); 0: none (watch's) */
} fence;

bool ha_fenced(void) { return g_atomic_int_get(&fence.fenced) != 0; }

int64_t ha_fence_after_us(unsigned timeout_s)
{
    int64_t t = (int64_t)timeout_s * G_USEC_PER_SEC;
    return MIN(t * 3 / 4, t - G_USEC_PER_SEC);
}

int64_t ha_fence_poll_hold_us(void)
{
    int t = g_atomic_int_get(&fence.timeout_s);
    /* an eighth of the timeout: several polls fit before a fence */
    return t > 0 ? (int64_t)t * G_USEC_PER_SEC / 8 : 0;
}

/* In contact with the majority at now: the master's node leads; a
 * member's last poll that reached the master began at *at. */
static gint gint64_cmp_desc(gconstpointer a, gconstpointer b)
{
    gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The master's contact: when it last heard enough of the pool's hosts
 * poll it that no other side can hold a Raft quorum. Raft's leader does
 * not always step down without one (dqlite 1.11 did not in the tests).
 * Of n >= 3 hosts, three vote; which ones is not known here, so enough
 * means at least one other voter even if every standby is among them:
 * n - 2 others (never fewer than half of the pool). A pool of two has
 * one voter, the master (dqlite_node.c keeps voters odd): it is the
 * quorum alone, and the member, which cannot write without it, fences
 * itself. */
static gint64 majority_heard(gint64 now)
{
    g_mutex_lock(&fence.lock);
    g_autoptr(GPtrArray) others = fence.others ? g_ptr_array_ref(fence.others) : NULL;
    g_mutex_unlock(&fence.lock);
    guint n = others ? others->len : 0, total = n + 1;
    guint need = total <= 2 ? 0 : total - 2;
    if (need == 0)
        return now;
    g_autofree gint64 *heard = g_new0(gint64, n);
    for (guint i = 0; i < n; i++)
        heard[i] = pool_master_last_heard(others->pdata[i]);
    qsort(heard, n, sizeof(gint64), gint64_cmp_desc);
    return heard[need - 1];
}

static bool in_contact(gint64 now, gint64 *at)
{
    if (pool_is_member()) {
        *at = pool_replica_last_contact();
        return *at > 0;
    }
    /* the failover watch asks the node ten times a second */
    if (now - pool_failover_last_led() > 3 * TICK_US)
        return false;
    *at = majority_heard(now);
    return true;
}

static bool add_other(DbRow *host, void *ctx)
{
    g_autofree char *me = bootstrap_this_host();
    if (strcmp(host->ref, me) != 0)
        g_ptr_array_add(ctx, g_strdup(host->ref));
    return true;
}

static bool add_uuid(DbRow *vm, void *ctx)
{
    if (!db_get(vm, "is_control_domain")->b)
        g_ptr_array_add(ctx, g_strdup(xv_str(db_get(vm, "uuid"))));
    return true;
}

/* While in contact (the database's lock is not held up by a master that
 * cannot be reached): the HA timeout, the VMs, this host's names. */
static void refresh(void)
{
    unsigned timeout = ha_timeout_s();
    g_atomic_int_set(&fence.timeout_s, (gint)timeout);
    GPtrArray *uuids = g_ptr_array_new_with_free_func(g_free);
    GPtrArray *others = g_ptr_array_new_with_free_func(g_free);
    db_read_begin();
    db_foreach(dm_class_by_name("VM"), add_uuid, uuids);
    db_foreach(dm_class_by_name("host"), add_other, others);
    g_autofree char *me = bootstrap_this_host();
    DbRow *host = db_lookup(dm_class_by_name("host"), me);
    g_mutex_lock(&fence.lock);
    if (host && !fence.host_uuid) {
        fence.host_ref = g_strdup(me);
        fence.host_uuid = g_strdup(xv_str(db_get(host, "uuid")));
        fence.host_name = g_strdup(xv_str(db_get(host, "name_label")));
    }
    if (fence.uuids)
        g_ptr_array_unref(fence.uuids);
    fence.uuids = uuids;
    if (fence.others)
        g_ptr_array_unref(fence.others);
    fence.others = others;
    g_mutex_unlock(&fence.lock);
    db_read_end();
}

void ha_fence_track(const char *uuid)
{
    g_mutex_lock(&fence.lock);
    if (!fence.tracked)
        fence.tracked = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_hash_table_add(fence.tracked, g_strdup(uuid));
    g_mutex_unlock(&fence.lock);
}

static guint destroy_domains(void)
{
    g_autoptr(GPtrArray) all = g_ptr_array_new_with_free_func(g_free);
    g_mutex_lock(&fence.lock);
    for (guint i = 0; fence.uuids && i < fence.uuids->len; i++)
        g_ptr_array_add(all, g_strdup(fence.uuids->pdata[i]));
    GHashTableIter it;
    gpointer key;
    if (fence.tracked) {
        g_hash_table_iter_init(&it, fence.tracked);
        while (g_hash_table_iter_next(&it, &key, NULL))
            g_ptr_array_add(all, g_strdup(key));
    }
    g_mutex_unlock(&fence.lock);
    return xenops_fence_domains((const char *const *)all->pdata, all->len);
}

static char *fenced_file(void)
{
    return pool_state_dir() ? g_build_filename(pool_state_dir(), FENCED_FILE, NULL) : NULL;
}

/* The fence is noted before its domains go (a crash after them keeps it). */
static void note_fence(void)
{
    fence.fenced_real = g_get_real_time() / G_USEC_PER_SEC;
    g_autofree char *path = fenced_file();
    g_autofree char *text = g_strdup_printf("%" G_GINT64_FORMAT "\n", fence.fenced_real);
    g_autoptr(GError) error = NULL;
    if (path && !g_file_set_contents(path, text, -1, &error))
        g_warning("ha: %s not written: %s", path, error->message);
}

/* A fence of an earlier run of xapid not reported yet. */
static void load_fence(void)
{
    g_autofree char *path = fenced_file();
    g_autofree char *text = NULL;
    if (path && g_file_get_contents(path, &text, NULL, NULL)) {
        fence.fenced_real = MAX(g_ascii_strtoll(text, NULL, 10), 1);
        g_message("ha: this host fenced itself before xapid restarted: HA_HOST_WAS_FENCED "
                  "once in contact");
    }
}

/* HA_HOST_WAS_FENCED (raised at the master), then the note removed. */
static void report_fence(void)
{
    g_mutex_lock(&fence.lock);
    g_autofree char *uuid = g_strdup(fence.host_uuid);
    g_autofree char *name = g_strdup(fence.host_name);
    g_mutex_unlock(&fence.lock);
    if (!uuid)
        return; /* not known yet: the refresher has not run */
    gint64 ago = g_get_real_time() / G_USEC_PER_SEC - fence.fenced_real;
    message_raise("HA_HOST_WAS_FENCED", 4, "Host", uuid,
                  "Server '%s' lost contact with the pool's majority for longer than the "
                  "HA timeout and fenced itself %" G_GINT64_FORMAT " s ago: its VMs were "
                  "stopped here",
                  name, MAX(ago, 0));
    fence.fenced_real = 0;
    g_autofree char *path = fenced_file();
    if (path && unlink(path) < 0 && errno != ENOENT)
        g_warning("ha: %s not removed: %s", path, g_strerror(errno));
}

static void fence_now(gint64 silent_us, unsigned timeout)
{
    g_atomic_int_set(&fence.fenced, 1); /* first: no call, no reconciliation writes */
    note_fence();
    g_warning("ha: no contact with the pool's Raft majority for %.1f s (HA timeout %u s): "
              "fencing: every domain of this host is stopped and calls are refused",
              (double)silent_us / G_USEC_PER_SEC, timeout);
    guint n = destroy_domains();
    g_warning("ha: fenced: %u domain(s) stopped %.1f s after the last contact", n,
              (double)silent_us / G_USEC_PER_SEC);
}

static void unfence(void)
{
    g_message("ha: back in contact with the pool's majority after the fence: serving again");
    g_atomic_int_set(&fence.fenced, 0);
    /* Its VMs that were not restarted elsewhere (the master did not
     * declare it dead) are marked halted: HA restarts the protected ones. */
    g_mutex_lock(&fence.lock);
    g_autoptr(GPtrArray) uuids = fence.uuids ? g_ptr_array_ref(fence.uuids) : NULL;
    g_mutex_unlock(&fence.lock);
    for (guint i = 0; uuids && i < uuids->len; i++)
        xenops_queue_reconcile(uuids->pdata[i]);
}

/* The cache's own thread: a read of the database can wait for a write
 * in flight (a member's until the master answers, the master's until
 * Raft has its quorum), and the watch must never wait. */
static gpointer refresher(gpointer unused)
{
    while (!g_atomic_int_get(&fence.stop)) {
        g_usleep(REFRESH_US);
        gint64 now = g_get_monotonic_time(), at = 0;
        unsigned timeout = (unsigned)g_atomic_int_get(&fence.timeout_s);
        if (pool_role_booting() || pool_role_changed() || ha_fenced() || !in_contact(now, &at))
            continue;
        if (timeout > 0 && now - at > ha_fence_after_us(timeout) / 2)
            continue;
        refresh();
    }
    return NULL;
}

static gpointer watch(gpointer unused)
{
    gint64 last_contact = g_get_monotonic_time(), fenced_at = 0;
    bool was_armed = false;
    load_fence();
    while (!g_atomic_int_get(&fence.stop)) {
        g_usleep(TICK_US);
        gint64 now = g_get_monotonic_time();
        if (pool_role_booting() || pool_role_changed()) {
            last_contact = now; /* a role changing in-process, or a restart coming */
            continue;
        }
        gint64 at = 0;
        bool contact = in_contact(now, &at);
        if (contact && at > last_contact)
            last_contact = at;
        unsigned timeout = (unsigned)g_atomic_int_get(&fence.timeout_s);
        bool armed = timeout > 0 && !g_atomic_int_get(&fence.disarmed);
        if (armed != was_armed) {
            if (armed)
                g_message("ha: armed: this host fences itself after %.1f s without contact with "
                          "the pool's majority (HA timeout %u s)",
                          (double)ha_fence_after_us(timeout) / G_USEC_PER_SEC, timeout);
            else
                g_message("ha: disarmed: this host no longer fences itself");
            was_armed = armed;
            last_contact = MAX(last_contact, now - TICK_US); /* a fresh start */
        }
        if (ha_fenced()) {
            destroy_domains(); /* a start that was under way ends here too */
            if (!armed || (contact && at > fenced_at))
                unfence();
            continue;
        }
        if (fence.fenced_real && contact)
            report_fence();
        if (armed && now - last_contact > ha_fence_after_us(timeout)) {
            fence_now(now - last_contact, timeout);
            fenced_at = now;
        }
    }
    return NULL;
}

void ha_fence_start(void)
{
    static gint started;
    if (!g_atomic_int_compare_and_exchange(&started, 0, 1))
        return;
    fence.thread = g_thread_new("ha-fence", watch, NULL);
    fence.refresher = g_thread_new("ha-refresh", refresher, NULL);
}

void ha_fence_stop(void)
{
    g_atomic_int_set(&fence.stop, 1);
    if (fence.thread)
        g_thread_join(fence.thread);
    if (fence.refresher)
        g_thread_join(fence.refresher);
    fence.thread = fence.refresher = NULL;
}

int ha_fence_emergency_disable(bool soft, XapiError **err)
{
    if (g_atomic_int_get(&fence.timeout_s) == 0 || g_atomic_int_get(&fence.disarmed)) {
        if (soft)
            return 0;
        return xapi_error_set(err, "HA_NOT_ENABLED", NULL);
    }
    g_warning("ha: host.emergency_ha_disable: this host no longer fences itself");
    g_atomic_int_set(&fence.disarmed, 1);
    return 0;
}
