/* ha_restart.c: the master declares silent hosts dead and restarts their
 * VMs (ha_restart.h). */
#include "ha_restart.h"

#include <string.h>

#include "bootstrap.h"
#include "db.h"
#include "dispatch.h"
#include "ha.h"
#include "ha_fence.h"
#include "message_store.h"
#include "pool_master.h"
#include "pool_role.h"
#include "xenops.h"

#define TICK_US (G_USEC_PER_SEC / 4)
#define RETRY_US (120 * G_USEC_PER_SEC) /* XAPI's restart attempts: every 120 s */
#define STATUS_EVERY_US (2 * G_USEC_PER_SEC)
#define MAX_START_DELAY_S 600
#define MAX_PARALLEL 16 /* restarts under way at once */

typedef struct {
    gint64 last_attempt; /* 0: never tried */
    bool reported;       /* HA_PROTECTED_VM_RESTART_FAILED raised */
    unsigned attempts;
} Pending;

static struct {
    GThread *thread;
    gint stop;            /* atomic */
    gint64 prevent_until; /* atomic */
    GHashTable *dead;     /* host ref -> (unused): declared dead, not heard from since */
    GHashTable *pending;  /* VM ref -> Pending *: reset from a dead host, to restart */
    char *session;
} ha;

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

void ha_restart_prevent_for(int64_t seconds)
{
    gint64 until = seconds > 0 ? g_get_monotonic_time() + seconds * G_USEC_PER_SEC : 0;
    __atomic_store_n(&ha.prevent_until, until, __ATOMIC_RELEASE);
    g_message("ha: restarts %s", seconds > 0 ? "held back by pool.ha_prevent_restarts_for"
                                              : "allowed again");
}

/* The master's own session for its restart calls (root, made once per
 * tenure, remade when gone). */
static const char *session(void)
{
    db_read_begin();
    bool valid = ha.session && db_lookup(cls("session"), ha.session);
    db_read_end();
    if (valid)
        return ha.session;
    g_clear_pointer(&ha.session, g_free);
    g_autoptr(XapiError) err = NULL;
    if (db_write_begin(&err) < 0)
        return NULL;
    g_autofree char *host = bootstrap_this_host();
    DbRow *row = db_row_new(cls("session"));
    int64_t now = g_get_real_time() / G_USEC_PER_SEC;
    db_row_put(row, "this_host", xv_new_string(host));
    db_row_put(row, "last_active", xv_new_datetime(now));
    db_row_put(row, "validation_time", xv_new_datetime(now));
    db_row_put(row, "is_local_superuser", xv_new_bool(true));
    db_row_put(row, "auth_user_name", xv_new_string("root"));
    db_row_put(row, "originator", xv_new_string("xapid-ha"));
    ha.session = db_insert_and_commit(row, &err);
    if (!ha.session)
        g_warning("ha: no session for the restarts: %s", err ? err->code : "?");
    return ha.session;
}

/* One internal call (params after the session s); 0 or -1 with *err.
 * Any thread. */
static int call(const char *s, const char *method, Xv *params, XapiError **err)
{
    g_autoptr(Xv) args = params;
    g_autoptr(Xv) all = xv_new_array();
    xv_array_append_string(all, s);
    for (guint i = 0; i < xv_len(args); i++)
        xv_array_append(all, xv_dup(xv_at(args, i)));
    DispatchOrigin origin = {.trusted = false};
    bool bare = false;
    Xv *result = dispatch_call(method, all, &origin, &bare, err);
    if (!result)
        return -1;
    xv_free(result);
    return 0;
}

/* ---- declaring a host dead ---------------------------------------------------- */

typedef struct {
    const char *host;
    GPtrArray *vms;
} OnHost;

static bool vm_on_host(DbRow *vm, void *ctx)
{
    OnHost *o = ctx;
    const char *state = xv_str(db_get(vm, "power_state"));
    bool live = strcmp(state, "Running") == 0 || strcmp(state, "Paused") == 0;
    if (!db_get(vm, "is_control_domain")->b &&
        ((live && strcmp(xv_str(db_get(vm, "resident_on")), o->host) == 0) ||
         strcmp(xv_str(db_get(vm, "scheduled_to_be_resident_on")), o->host) == 0))
        g_ptr_array_add(o->vms, g_strdup(vm->ref));
    return true;
}

static void declare_dead(const char *host, gint64 silent_us)
{
    g_autoptr(GPtrArray) vms = g_ptr_array_new_with_free_func(g_free);
    OnHost o = {host, vms};
    db_read_begin();
    DbRow *h = db_lookup(cls("host"), host);
    g_autofree char *name = g_strdup(h ? xv_str(db_get(h, "name_label")) : host);
    g_autofree char *uuid = g_strdup(h ? xv_str(db_get(h, "uuid")) : "");
    g_autofree char *metrics = g_strdup(h ? xv_str(db_get(h, "metrics")) : "");
    db_foreach(cls("VM"), vm_on_host, &o);
    db_read_end();
    g_warning("ha: host %s (%s) silent for %.1f s: declared dead (it has fenced itself); "
              "%u VM(s) to reset", host, name, (double)silent_us / G_USEC_PER_SEC, vms->len);
    g_hash_table_add(ha.dead, g_strdup(host));
    g_autoptr(XapiError) err = NULL;
    if (db_update("host_metrics", metrics, "live", xv_new_bool(false), &err) < 0)
        g_clear_pointer(&err, xapi_error_free);
    message_raise("HA_HOST_FAILED", 3, "Host", uuid, "Server '%s' has failed", name);
    for (guint i = 0; i < vms->len; i++) {
        const char *vm = vms->pdata[i];
        /* XAPI's force_state_reset: the operations the dead host had under
         * way on it end with it */
        if (xenops_mark_halted(vm, &err) < 0 ||
            db_update("VM", vm, "scheduled_to_be_resident_on", xv_new_string("OpaqueRef:NULL"),
                      &err) < 0 ||
            db_update("VM", vm, "current_operations", xv_new_struct(), &err) < 0) {
            g_warning("ha: VM %s could not be reset: %s", vm, err ? err->code : "?");
            g_clear_pointer(&err, xapi_error_free);
            continue;
        }
        g_message("ha: VM %s of the dead host reset to Halted", vm);
        if (!g_hash_table_contains(ha.pending, vm))
            g_hash_table_insert(ha.pending, g_strdup(vm), g_new0(Pending, 1));
    }
}

static bool add_host(DbRow *h, void *ctx)
{
    g_ptr_array_add(ctx, g_strdup(h->ref));
    return true;
}

static void watch_hosts(unsigned timeout)
{
    g_autoptr(GPtrArray) hosts = g_ptr_array_new_with_free_func(g_free);
    db_read_begin();
    db_foreach(cls("host"), add_host, hosts);
    g_autofree char *me = bootstrap_this_host();
    db_read_end();
    gint64 now = g_get_monotonic_time();
    gint64 limit = (gint64)timeout * G_USEC_PER_SEC + ha_margin_us(timeout);
    for (guint i = 0; i < hosts->len; i++) {
        const char *host = hosts->pdata[i];
        if (strcmp(host, me) == 0)
            continue;
        gint64 silent = now - pool_master_last_heard(host);
        bool dead = g_hash_table_contains(ha.dead, host);
        if (silent > limit && !dead)
            declare_dead(host, silent);
        else if (silent <= limit && dead) {
            g_message("ha: host %s is heard from again: it rejoins the pool", host);
            g_hash_table_remove(ha.dead, host);
        }
    }
}

/* ---- restarts ------------------------------------------------------------------ */

typedef struct {
    char *ref, *uuid;
    int64_t order, start_delay;
    bool best_effort;
} Restart;

static void restart_free(gpointer p)
{
    Restart *r = p;
    g_free(r->ref);
    g_free(r->uuid);
    g_free(r);
}

/* xapi_ha_vm_failover.ml order_f: by order, negative last; then uuid. */
static gint by_priority(gconstpointer a, gconstpointer b)
{
    const Restart *x = *(Restart *const *)a, *y = *(Restart *const *)b;
    if (x->best_effort != y->best_effort)
        return x->best_effort ? 1 : -1;
    int64_t ox = x->order < 0 ? G_MAXINT64 : x->order, oy = y->order < 0 ? G_MAXINT64 : y->order;
    if (ox != oy)
        return ox < oy ? -1 : 1;
    return strcmp(x->uuid, y->uuid);
}

/* The pending VMs still to restart, in order; the rest are forgotten
 * (started by someone, destroyed, no longer protected). Read lock held. */
static GPtrArray *due_restarts(gint64 now)
{
    GPtrArray *due = g_ptr_array_new_with_free_func(restart_free);
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, ha.pending);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        Pending *p = value;
        DbRow *vm = db_lookup(cls("VM"), key);
        const char *priority = vm ? xv_str(db_get(vm, "ha_restart_priority")) : "";
        bool halted = vm && strcmp(xv_str(db_get(vm, "power_state")), "Halted") == 0;
        bool best_effort = strcmp(priority, "best-effort") == 0;
        if (!halted || (!best_effort && strcmp(priority, "restart") != 0) ||
            (best_effort && p->attempts >= 3)) {
            g_hash_table_iter_remove(&it);
            continue;
        }
        if (p->last_attempt && now - p->last_attempt < RETRY_US)
            continue;
        Restart *r = g_new0(Restart, 1);
        r->ref = g_strdup(key);
        r->uuid = g_strdup(xv_str(db_get(vm, "uuid")));
        r->order = db_get(vm, "order")->i;
        r->start_delay = db_get(vm, "start_delay")->i;
        r->best_effort = best_effort;
        g_ptr_array_add(due, r);
    }
    g_ptr_array_sort(due, by_priority);
    return due;
}

/* One VM's restart, on a thread of its own: the VMs of an order group
 * start at once, as XAPI's (TaskChains.parallel). It touches nothing of
 * ha's: the watch records the outcome once all have ended. */
typedef struct {
    const Restart *r;
    const char *host;    /* the plan's, NULL: wherever placement finds room */
    const char *session;
    GThread *thread;
    bool started;
} Attempt;

/* VM.start_on(host) or VM.start, not paused, forced (as XAPI's). */
static int start_vm(const Attempt *a, const char *host, XapiError **err)
{
    Xv *params = xv_new_array();
    xv_array_append_string(params, a->r->ref);
    if (host)
        xv_array_append_string(params, host);
    xv_array_append(params, xv_new_bool(false)); /* start_paused */
    xv_array_append(params, xv_new_bool(true));  /* force, as XAPI's restarts */
    return call(a->session, host ? "VM.start_on" : "VM.start", params, err);
}

static gpointer attempt_restart(gpointer data)
{
    Attempt *a = data;
    const Restart *r = a->r;
    g_autoptr(XapiError) err = NULL;
    const char *on = a->host;
    int rc = start_vm(a, on, &err);
    if (rc < 0 && on) { /* the plan's host refused: anywhere placement finds room */
        g_message("ha: VM %s could not restart on %s (%s): trying elsewhere", r->ref, on,
                  err ? err->code : "?");
        g_clear_pointer(&err, xapi_error_free);
        on = NULL;
        rc = start_vm(a, NULL, &err);
    }
    a->started = rc == 0;
    if (a->started)
        g_message("ha: VM %s (%s) restarted %s%s", r->ref,
                  r->best_effort ? "best-effort" : "protected",
                  on ? "on " : "where placement found room", on ? on : "");
    else
        g_warning("ha: VM %s could not be restarted: %s %s", r->ref, err ? err->code : "?",
                  err && err->params->len ? (char *)err->params->pdata[0] : "");
    return NULL;
}

/* The outcome of one attempt, on the watch's thread. */
static void record_outcome(const Attempt *a)
{
    const Restart *r = a->r;
    Pending *p = g_hash_table_lookup(ha.pending, r->ref);
    if (!p)
        return;
    if (a->started) {
        g_hash_table_remove(ha.pending, r->ref);
        return;
    }
    if (!r->best_effort && !p->reported) {
        p->reported = true;
        message_raise("HA_PROTECTED_VM_RESTART_FAILED", 2, "VM", r->uuid, "%s", "");
    }
}

/* The restarts of due[from, to) (one order group), all at once (in waves
 * of MAX_PARALLEL); returns once every one has ended. */
static void restart_group(GPtrArray *due, guint from, guint to, GHashTable *plan,
                          const char *session_ref)
{
    for (; to - from > MAX_PARALLEL; from += MAX_PARALLEL)
        restart_group(due, from, from + MAX_PARALLEL, plan, session_ref);
    g_autofree Attempt *attempts = g_new0(Attempt, to - from + 1);
    if (to - from > 1)
        g_message("ha: %u VMs of order %" G_GINT64_FORMAT " restarting at once", to - from,
                  ((Restart *)due->pdata[from])->order);
    for (guint i = from; i < to; i++) {
        Attempt *a = &attempts[i - from];
        a->r = due->pdata[i];
        a->host = g_hash_table_lookup(plan, a->r->ref);
        a->session = session_ref;
        Pending *p = g_hash_table_lookup(ha.pending, a->r->ref);
        p->last_attempt = g_get_monotonic_time();
        p->attempts++;
        a->thread = g_thread_new("ha-start", attempt_restart, a);
    }
    for (guint i = 0; i < to - from; i++) {
        g_thread_join(attempts[i].thread);
        record_outcome(&attempts[i]);
    }
}

/* XAPI's offline protected VMs: halted with ha_always_run (a shutdown
 * through the API clears it), wherever they ran: a host that fenced
 * itself without being declared dead marks them so once back. */
static bool add_offline_protected(DbRow *vm, void *ctx)
{
    if (db_get(vm, "ha_always_run")->b && !db_get(vm, "is_control_domain")->b &&
        strcmp(xv_str(db_get(vm, "ha_restart_priority")), "restart") == 0 &&
        strcmp(xv_str(db_get(vm, "power_state")), "Halted") == 0 &&
        !g_hash_table_contains(ha.pending, vm->ref))
        g_ptr_array_add(ctx, g_strdup(vm->ref));
    return true;
}

static void run_restarts(void)
{
    g_autoptr(GPtrArray) offline = g_ptr_array_new_with_free_func(g_free);
    db_read_begin();
    db_foreach(cls("VM"), add_offline_protected, offline);
    db_read_end();
    for (guint i = 0; i < offline->len; i++) {
        g_message("ha: protected VM %s is halted: to restart", (char *)offline->pdata[i]);
        g_hash_table_insert(ha.pending, g_strdup(offline->pdata[i]), g_new0(Pending, 1));
    }
    gint64 now = g_get_monotonic_time();
    if (now < __atomic_load_n(&ha.prevent_until, __ATOMIC_ACQUIRE) ||
        g_hash_table_size(ha.pending) == 0)
        return;
    db_read_begin();
    g_autoptr(GPtrArray) due = due_restarts(now);
    db_read_end();
    if (due->len == 0)
        return;
    g_autoptr(GHashTable) plan = ha_offline_restart_plan();
    const char *session_ref = session();
    if (!session_ref)
        return;
    for (guint i = 0; i < due->len;) {
        /* one order group at a time, its VMs at once, then its start_delay */
        const Restart *first = due->pdata[i];
        int64_t delay = 0;
        guint j = i;
        for (; j < due->len; j++) {
            const Restart *r = due->pdata[j];
            if (r->order != first->order || r->best_effort != first->best_effort)
                break;
            delay = MAX(delay, r->start_delay);
        }
        if (g_atomic_int_get(&ha.stop))
            return;
        restart_group(due, i, j, plan, session_ref);
        i = j;
        gint64 until = g_get_monotonic_time() + MIN(delay, MAX_START_DELAY_S) * G_USEC_PER_SEC;
        while (i < due->len && delay > 0 && g_get_monotonic_time() < until &&
               !g_atomic_int_get(&ha.stop))
            g_usleep(TICK_US / 5);
        if (g_atomic_int_get(&ha.stop))
            return;
    }
    ha_update_pool_status();
}

static gpointer watch(gpointer unused)
{
    gint64 last_status = 0;
    while (!g_atomic_int_get(&ha.stop)) {
        g_usleep(TICK_US);
        if (pool_is_member() || pool_role_booting() || pool_role_changed() || ha_fenced())
            continue;
        unsigned timeout = ha_timeout_s();
        if (timeout == 0) {
            g_hash_table_remove_all(ha.pending);
            g_hash_table_remove_all(ha.dead);
            continue;
        }
        watch_hosts(timeout);
        run_restarts();
        gint64 now = g_get_monotonic_time();
        if (now - last_status > STATUS_EVERY_US) {
            ha_update_pool_status();
            last_status = now;
        }
    }
    return NULL;
}

void ha_restart_start(void)
{
    static gint started;
    if (!g_atomic_int_compare_and_exchange(&started, 0, 1))
        return;
    ha.dead = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    ha.pending = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    ha.thread = g_thread_new("ha-restart", watch, NULL);
}

void ha_restart_stop(void)
{
    g_atomic_int_set(&ha.stop, 1);
    if (ha.thread)
        g_thread_join(ha.thread);
    ha.thread = NULL;
}
