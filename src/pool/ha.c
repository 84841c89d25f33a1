/* ha.c: the pool's HA settings and the failover planning over the
 * database (see ha.h). */
#include "ha.h"

#include <stdlib.h>
#include <string.h>

#include "bootstrap.h"
#include "db.h"
#include "ha_agility.h"
#include "ha_plan.h"
#include "message_store.h"
#include "pool_db.h"
#include "vm_migrate.h"
#include "xenops.h"

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

static bool first_row(DbRow *row, void *ctx)
{
    *(DbRow **)ctx = row;
    return false;
}

static DbRow *the_pool(void)
{
    DbRow *pool = NULL;
    db_foreach(cls("pool"), first_row, &pool);
    return pool;
}

bool ha_enabled(void)
{
    db_read_begin();
    DbRow *pool = the_pool();
    bool on = pool && db_get(pool, "ha_enabled")->b;
    db_read_end();
    return on;
}

static unsigned timeout_of(const Xv *configuration)
{
    const Xv *t = configuration ? xv_struct_get(configuration, "timeout") : NULL;
    long v = t ? strtol(xv_str(t), NULL, 10) : 0;
    return v > 0 ? (unsigned)v : HA_DEFAULT_TIMEOUT_S;
}

unsigned ha_timeout_s(void)
{
    db_read_begin();
    DbRow *pool = the_pool();
    unsigned t = pool && db_get(pool, "ha_enabled")->b ? timeout_of(db_get(pool, "ha_configuration"))
                                                      : 0;
    db_read_end();
    return t;
}

int64_t ha_margin_us(unsigned timeout_s)
{
    /* A quarter of the timeout, at least 2 s: the fenced host finished
     * killing its domains a quarter before the timeout ended. */
    int64_t q = (int64_t)timeout_s * G_USEC_PER_SEC / 4;
    return MAX(q, 2 * G_USEC_PER_SEC);
}

/* ---- the plan over the database ------------------------------------------------ */

static bool is_live_state(const DbRow *vm)
{
    const char *state = xv_str(db_get(vm, "power_state"));
    return strcmp(state, "Running") == 0 || strcmp(state, "Paused") == 0;
}

/* helpers.ml vm_should_always_run */
static bool is_protected(const DbRow *vm)
{
    return db_get(vm, "ha_always_run")->b &&
           strcmp(xv_str(db_get(vm, "ha_restart_priority")), "restart") == 0;
}

/* A counterfactual (xapi_ha_vm_failover.ml configuration_change). */
typedef struct {
    const char *new_vm;                     /* to protect as well (new_vms_to_protect) */
    const char *arriving_vm, *arriving_host;/* old_vms_arriving */
    const Xv *failed_hosts;                 /* refs to leave out of the live set */
    GHashTable *protected_only;             /* the VMs protected instead (hypothetical) */
    int num_failures;                       /* -1: the pool's */
} Change;

typedef struct {
    GPtrArray *rows;
} Rows;

static bool collect(DbRow *row, void *ctx)
{
    g_ptr_array_add(((Rows *)ctx)->rows, row);
    return true;
}

static gint by_uuid(gconstpointer a, gconstpointer b)
{
    const DbRow *x = *(DbRow *const *)a, *y = *(DbRow *const *)b;
    return strcmp(xv_str(db_get(x, "uuid")), xv_str(db_get(y, "uuid")));
}

static GPtrArray *sorted_rows(const char *class_name)
{
    Rows r = {g_ptr_array_new()};
    db_foreach(cls(class_name), collect, &r);
    g_ptr_array_sort(r.rows, by_uuid);
    return r.rows;
}

static bool in_set(const Xv *set, const char *ref)
{
    for (guint i = 0; set && i < xv_len(set); i++)
        if (strcmp(xv_str(xv_at(set, i)), ref) == 0)
            return true;
    return false;
}

static bool host_is_live(const DbRow *host, const Change *c)
{
    if (!db_get(host, "enabled")->b || (c && in_set(c->failed_hosts, host->ref)))
        return false;
    DbRow *m = db_lookup(cls("host_metrics"), xv_str(db_get(host, "metrics")));
    return m && db_get(m, "live")->b;
}

/* host_of_non_agile_vm: the first host by uuid, live or not in the
 * change, where the VM could boot but for memory (NULL: none). */
static const char *pinned_host(const DbRow *vm, const GPtrArray *hosts)
{
    for (guint i = 0; i < hosts->len; i++) {
        const DbRow *h = hosts->pdata[i];
        if (vm_host_can_run_ignoring_memory(vm, h->ref, NULL) == 0)
            return h->ref;
    }
    g_debug("ha: no host could run protected VM %s", vm->ref);
    return NULL;
}

/* compute_restart_plan's inputs, read lock held. */
static HaPlanPool *pool_from_db(const Change *c)
{
    g_autoptr(GPtrArray) hosts = sorted_rows("host");
    HaPlanPool *p = ha_plan_pool_new((int)hosts->len);
    for (guint i = 0; i < hosts->len; i++) {
        const DbRow *h = hosts->pdata[i];
        if (!host_is_live(h, c))
            continue;
        int64_t free = xenops_host_free_memory_of(h->ref);
        if (c && c->arriving_host && strcmp(c->arriving_host, h->ref) == 0) {
            DbRow *vm = db_lookup(cls("VM"), c->arriving_vm);
            if (vm && !(is_live_state(vm) &&
                        strcmp(xv_str(db_get(vm, "resident_on")), h->ref) == 0))
                free -= xenops_vm_memory_need(vm);
        }
        ha_plan_add_host(p, h->ref, free);
    }
    g_autoptr(GPtrArray) vms = sorted_rows("VM");
    for (guint i = 0; i < vms->len; i++) {
        const DbRow *vm = vms->pdata[i];
        if (db_get(vm, "is_control_domain")->b || db_get(vm, "is_a_template")->b)
            continue;
        bool wanted = c && c->protected_only ? g_hash_table_contains(c->protected_only, vm->ref)
                                             : is_protected(vm);
        bool arriving = c && c->arriving_vm && strcmp(c->arriving_vm, vm->ref) == 0;
        if (c && c->new_vm && strcmp(c->new_vm, vm->ref) == 0)
            wanted = true;
        if (!wanted && !(arriving && is_protected(vm)))
            continue;
        const char *host = NULL;
        const char *resident = xv_str(db_get(vm, "resident_on"));
        const char *scheduled = xv_str(db_get(vm, "scheduled_to_be_resident_on"));
        if (arriving)
            host = c->arriving_host;
        else if (is_live_state(vm) && ha_plan_has_host(p, resident))
            host = resident;
        else if (ha_plan_has_host(p, scheduled))
            host = scheduled;
        if (ha_vm_check_agile(vm, NULL) == 0)
            ha_plan_add_vm(p, vm->ref, xenops_vm_memory_need(vm), host);
        else
            ha_plan_add_non_agile_vm(p, vm->ref, xenops_vm_memory_need(vm), host,
                                     pinned_host(vm, hosts));
    }
    return p;
}

/* Raft's voters: one up to two hosts, three from three on (dqlite_node.c). */
static int quorum_cap(const HaPlanPool *p)
{
    return ha_plan_quorum_cap(p->total_hosts >= 3 ? 3 : 1);
}

/* plan_for_n_failures, bounded by what the quorum survives. */
static bool plan_for(const HaPlanPool *p, int n)
{
    return n <= MAX(quorum_cap(p), 0) && ha_plan_for_n_failures(p, n) == HA_PLAN_EXISTS;
}

static int64_t max_failures(const HaPlanPool *p)
{
    return ha_plan_max_failures(p, quorum_cap(p));
}

int64_t ha_compute_max_failures(void)
{
    db_read_begin();
    g_autoptr(HaPlanPool) p = pool_from_db(NULL);
    int64_t n = max_failures(p);
    db_read_end();
    return n;
}

bool ha_failover_plan_exists(int64_t n)
{
    db_read_begin();
    g_autoptr(HaPlanPool) p = pool_from_db(NULL);
    bool ok = n >= 0 && n <= G_MAXINT && plan_for(p, (int)n);
    db_read_end();
    return ok;
}

static bool valid_priority(const char *p)
{
    return strcmp(p, "restart") == 0 || strcmp(p, "best-effort") == 0 || strcmp(p, "") == 0;
}

int ha_compute_hypothetical_max(const Xv *configuration, int64_t *out, XapiError **err)
{
    for (guint i = 0; i < xv_len(configuration); i++) {
        const XvMember *m = xv_member_at(configuration, i);
        if (!valid_priority(xv_str(&m->value)))
            return xapi_error_set(err, "INVALID_VALUE", "ha_restart_priority",
                                  xv_str(&m->value), NULL);
    }
    g_autoptr(GHashTable) protected = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < xv_len(configuration); i++) {
        const XvMember *m = xv_member_at(configuration, i);
        if (strcmp(xv_str(&m->value), "restart") == 0)
            g_hash_table_add(protected, (gpointer)m->key);
    }
    Change c = {.protected_only = protected, .num_failures = -1};
    db_read_begin();
    for (guint i = 0; i < xv_len(configuration); i++) {
        const char *vm = xv_member_at(configuration, i)->key;
        if (!db_lookup(cls("VM"), vm)) {
            db_read_end();
            return xapi_error_set(err, "HANDLE_INVALID", "VM", vm, NULL);
        }
    }
    g_autoptr(HaPlanPool) p = pool_from_db(&c);
    *out = max_failures(p);
    db_read_end();
    return 0;
}

Xv *ha_compute_vm_failover_plan(const Xv *failed_hosts, const Xv *failed_vms, XapiError **err)
{
    Change c = {.failed_hosts = failed_hosts, .num_failures = -1};
    db_read_begin();
    for (guint i = 0; i < xv_len(failed_hosts); i++)
        if (!db_lookup(cls("host"), xv_str(xv_at(failed_hosts, i)))) {
            db_read_end();
            xapi_error_set(err, "HANDLE_INVALID", "host", xv_str(xv_at(failed_hosts, i)), NULL);
            return NULL;
        }
    for (guint i = 0; i < xv_len(failed_vms); i++)
        if (!db_lookup(cls("VM"), xv_str(xv_at(failed_vms, i)))) {
            db_read_end();
            xapi_error_set(err, "HANDLE_INVALID", "VM", xv_str(xv_at(failed_vms, i)), NULL);
            return NULL;
        }
    Xv *result = xv_new_struct();
    g_autoptr(HaPlanPool) p = pool_from_db(&c);
    /* the failed VMs, as the planner sizes them */
    g_autoptr(HaPlanPool) q = ha_plan_pool_new(p->total_hosts);
    g_autoptr(GPtrArray) refs = g_ptr_array_new();
    /* what a VM left out of the plan is told: why it is not agile, if
     * it is not (xapi_pool.ml), else the memory */
    g_autoptr(GPtrArray) codes = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < xv_len(failed_vms); i++) {
        DbRow *vm = db_lookup(cls("VM"), xv_str(xv_at(failed_vms, i)));
        if (!vm)
            continue;
        ha_plan_add_vm(q, vm->ref, xenops_vm_memory_need(vm), NULL);
        g_ptr_array_add(refs, vm->ref);
        g_autoptr(XapiError) why = NULL;
        ha_vm_check_agile(vm, &why);
        g_ptr_array_add(codes, g_strdup(why ? why->code : "HOST_NOT_ENOUGH_FREE_MEMORY"));
    }
    db_read_end();
    g_autoptr(GPtrArray) moves = ha_plan_pack(q, p->hosts, refs);
    for (guint i = 0; i < moves->len; i++) {
        const HaPlanMove *m = moves->pdata[i];
        Xv *entry = xv_new_struct();
        xv_struct_set_string(entry, "host", m->host);
        xv_struct_set(result, m->vm, entry);
    }
    for (guint i = 0; i < refs->len; i++) {
        if (xv_struct_get(result, refs->pdata[i]))
            continue;
        Xv *entry = xv_new_struct();
        xv_struct_set_string(entry, "error_code", g_ptr_array_index(codes, i));
        xv_struct_set(result, refs->pdata[i], entry);
    }
    return result;
}

GHashTable *ha_offline_restart_plan(void)
{
    GHashTable *plan = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    db_read_begin();
    g_autoptr(HaPlanPool) p = pool_from_db(NULL);
    db_read_end();
    g_autoptr(GPtrArray) moves = ha_plan_restart(p, NULL);
    for (guint i = 0; i < moves->len; i++) {
        const HaPlanMove *m = moves->pdata[i];
        g_hash_table_insert(plan, g_strdup(m->vm), g_strdup(m->host));
    }
    return plan;
}

/* ---- the checks that keep the plan -------------------------------------------- */

bool ha_plan_guarded(void)
{
    DbRow *pool = the_pool();
    return pool && db_get(pool, "ha_enabled")->b && !db_get(pool, "ha_allow_overcommit")->b;
}

/* assert_configuration_change_preserves_ha_plan; read lock held. */
static int preserves_plan(const Change *c, XapiError **err)
{
    if (!ha_plan_guarded())
        return 0;
    DbRow *pool = the_pool();
    int to_tolerate = (int)db_get(pool, "ha_plan_exists_for")->i;
    g_autoptr(HaPlanPool) now = pool_from_db(NULL);
    if (!plan_for(now, to_tolerate))
        return 0; /* no plan now: it cannot get worse */
    g_autoptr(HaPlanPool) after = pool_from_db(c);
    int n = c->num_failures >= 0 ? c->num_failures : to_tolerate;
    if (!plan_for(after, n))
        return xapi_error_set(err, "HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN", NULL);
    return 0;
}

int ha_check_new_protected_vm(const char *vm_ref, XapiError **err)
{
    Change c = {.new_vm = vm_ref, .num_failures = -1};
    db_read_begin();
    int rc = preserves_plan(&c, err);
    db_read_end();
    return rc;
}

int ha_check_vm_arriving(const char *vm_ref, const char *host_ref, XapiError **err)
{
    db_read_begin();
    DbRow *vm = db_lookup(cls("VM"), vm_ref);
    /* message_forwarding.ml check_vm_preserves_ha_plan: a VM to protect
     * that does not run yet is a new one; any other arrives on host. */
    bool new_protected = vm && !db_get(vm, "ha_always_run")->b &&
                         strcmp(xv_str(db_get(vm, "ha_restart_priority")), "restart") == 0;
    Change c = {.num_failures = -1};
    if (new_protected)
        c.new_vm = vm_ref;
    c.arriving_vm = vm_ref;
    c.arriving_host = host_ref;
    int rc = vm ? preserves_plan(&c, err) : 0;
    db_read_end();
    return rc;
}

int ha_check_host_disable(const char *host_ref, XapiError **err)
{
    g_autoptr(Xv) gone = xv_new_array();
    xv_array_append_string(gone, host_ref);
    Change c = {.failed_hosts = gone, .num_failures = -1};
    db_read_begin();
    int rc = preserves_plan(&c, err);
    db_read_end();
    return rc;
}

/* ---- the pool's fields ---------------------------------------------------------- */

static char *pool_uuid_and_name(char **name)
{
    db_read_begin();
    DbRow *pool = the_pool();
    char *uuid = g_strdup(pool ? xv_str(db_get(pool, "uuid")) : "");
    *name = g_strdup(pool ? xv_str(db_get(pool, "name_label")) : "");
    db_read_end();
    return uuid;
}

/* Whether the plan fields would change (read lock held): most ticks
 * write nothing, and need not take the write lock. */
static bool status_stale(void)
{
    DbRow *pool = the_pool();
    if (!pool || !db_get(pool, "ha_enabled")->b)
        return false;
    int64_t to_tolerate = db_get(pool, "ha_host_failures_to_tolerate")->i;
    int64_t planned_for = db_get(pool, "ha_plan_exists_for")->i;
    bool overcommitted = db_get(pool, "ha_overcommitted")->b;
    g_autoptr(HaPlanPool) p = pool_from_db(NULL);
    if (plan_for(p, (int)to_tolerate))
        return overcommitted || planned_for != to_tolerate;
    return !overcommitted || planned_for != max_failures(p);
}

void ha_update_pool_status(void)
{
    db_read_begin();
    bool stale = status_stale();
    db_read_end();
    if (!stale)
        return;
    g_autoptr(XapiError) err = NULL;
    if (db_write_begin(&err) < 0)
        return;
    DbRow *pool = the_pool();
    if (!pool || !db_get(pool, "ha_enabled")->b) {
        db_write_abort();
        return;
    }
    int64_t to_tolerate = db_get(pool, "ha_host_failures_to_tolerate")->i;
    int64_t planned_for = db_get(pool, "ha_plan_exists_for")->i;
    bool overcommitted = db_get(pool, "ha_overcommitted")->b;
    g_autoptr(HaPlanPool) p = pool_from_db(NULL);
    bool dropped = false, became_overcommitted = false;
    int64_t max = 0;
    int rc = 0;
    if (plan_for(p, (int)to_tolerate)) {
        if (overcommitted)
            rc = db_set_by_name(pool, "ha_overcommitted", xv_new_bool(false), &err);
        if (rc == 0 && planned_for != to_tolerate)
            rc = db_set_by_name(pool, "ha_plan_exists_for", xv_new_int(to_tolerate), &err);
    } else {
        max = max_failures(p);
        if (planned_for != max) {
            rc = db_set_by_name(pool, "ha_plan_exists_for", xv_new_int(MIN(to_tolerate, max)),
                                &err);
            dropped = max < planned_for;
        }
        if (rc == 0 && !overcommitted) {
            rc = db_set_by_name(pool, "ha_overcommitted", xv_new_bool(true), &err);
            became_overcommitted = true;
        }
    }
    if (db_write_finish(&err, rc) < 0) {
        g_warning("ha: the pool's plan fields not written: %s", err ? err->code : "?");
        return;
    }
    g_autofree char *name = NULL;
    g_autofree char *uuid = pool_uuid_and_name(&name);
    if (dropped)
        message_raise("HA_POOL_DROP_IN_PLAN_EXISTS_FOR", 3, "Pool", uuid, "%" G_GINT64_FORMAT,
                      max);
    if (became_overcommitted) {
        g_message("ha: the pool is overcommitted: no plan for %" G_GINT64_FORMAT
                  " host failures (at most %" G_GINT64_FORMAT ")", to_tolerate, max);
        message_raise("HA_POOL_OVERCOMMITTED", 3, "Pool", uuid,
                      "The failover tolerance for pool '%s' has dropped and the initially "
                      "specified number of host failures to tolerate can no longer be "
                      "guaranteed", name);
    }
}

static bool offline_host(DbRow *h, void *ctx)
{
    DbRow *m = db_lookup(cls("host_metrics"), xv_str(db_get(h, "metrics")));
    if (!m || !db_get(m, "live")->b) {
        *(char **)ctx = g_strdup(h->ref);
        return false;
    }
    return true;
}

int ha_enable(const Xv *heartbeat_srs, const Xv *configuration, XapiError **err)
{
    g_autofree char *me = bootstrap_this_host();
    if (ha_enabled())
        return xapi_error_set(err, "HA_IS_ENABLED", NULL);
    if (!pool_db_running())
        return xapi_error_set(err, "HA_NOT_INSTALLED", me, NULL);
    for (guint i = 0; i < xv_len(configuration); i++) {
        const XvMember *m = xv_member_at(configuration, i);
        if (strcmp(m->key, "timeout") != 0)
            return xapi_error_set(err, "VALUE_NOT_SUPPORTED", m->key, xv_str(&m->value),
                                  "xapid's HA has one setting: timeout", NULL);
        char *end = NULL;
        long v = strtol(xv_str(&m->value), &end, 10);
        if (!*xv_str(&m->value) || *end || v < 1 || v > 3600)
            return xapi_error_set(err, "INVALID_VALUE", "timeout", xv_str(&m->value), NULL);
    }
    if (db_write_begin(err) < 0)
        return -1;
    for (guint i = 0; i < xv_len(heartbeat_srs); i++) {
        const char *ref = xv_str(xv_at(heartbeat_srs, i));
        DbRow *sr = db_lookup(cls("SR"), ref);
        if (!sr) {
            db_write_abort();
            return xapi_error_set(err, "HANDLE_INVALID", "SR", ref, NULL);
        }
        if (!db_get(sr, "shared")->b) {
            db_write_abort();
            return xapi_error_set(err, "HA_CONSTRAINT_VIOLATION_SR_NOT_SHARED", ref, NULL);
        }
    }
    char *offline = NULL;
    db_foreach(cls("host"), offline_host, &offline);
    if (offline) {
        db_write_abort();
        int rc = xapi_error_set(err, "HOST_OFFLINE", offline, NULL);
        g_free(offline);
        return rc;
    }
    DbRow *pool = the_pool();
    g_autoptr(Xv) config = xv_new_struct();
    g_autofree char *timeout = g_strdup_printf("%u", timeout_of(configuration));
    xv_struct_set_string(config, "timeout", timeout);
    if (!pool || db_set_by_name(pool, "ha_configuration", g_steal_pointer(&config), err) < 0 ||
        db_set_by_name(pool, "ha_statefiles", xv_new_array(), err) < 0 ||
        db_set_by_name(pool, "ha_cluster_stack", xv_new_string("raft"), err) < 0 ||
        db_set_by_name(pool, "ha_plan_exists_for", xv_new_int(0), err) < 0 ||
        db_set_by_name(pool, "ha_overcommitted", xv_new_bool(false), err) < 0 ||
        db_set_by_name(pool, "ha_enabled", xv_new_bool(true), err) < 0) {
        db_write_abort();
        return pool ? -1 : xapi_error_internal(err, "the database holds no pool");
    }
    if (db_write_commit(err) < 0)
        return -1;
    g_message("ha: enabled (timeout %s s): hosts without a Raft majority fence themselves",
              timeout);
    ha_update_pool_status();
    return 0;
}

int ha_disable(XapiError **err)
{
    if (db_write_begin(err) < 0)
        return -1;
    DbRow *pool = the_pool();
    if (!pool || !db_get(pool, "ha_enabled")->b) {
        db_write_abort();
        return xapi_error_set(err, "HA_NOT_ENABLED", NULL);
    }
    if (db_set_by_name(pool, "ha_enabled", xv_new_bool(false), err) < 0 ||
        db_set_by_name(pool, "ha_configuration", xv_new_struct(), err) < 0 ||
        db_set_by_name(pool, "ha_cluster_stack", xv_new_string(""), err) < 0 ||
        db_set_by_name(pool, "ha_plan_exists_for", xv_new_int(0), err) < 0 ||
        db_set_by_name(pool, "ha_overcommitted", xv_new_bool(false), err) < 0) {
        db_write_abort();
        return -1;
    }
    if (db_write_commit(err) < 0)
        return -1;
    g_message("ha: disabled");
    return 0;
}

int ha_set_failures_to_tolerate(int64_t value, XapiError **err)
{
    if (value < 0) {
        g_autofree char *text = g_strdup_printf("%" G_GINT64_FORMAT, value);
        return xapi_error_set(err, "INVALID_VALUE", "ha_host_failures_to_tolerate", text, NULL);
    }
    db_read_begin();
    DbRow *pool = the_pool();
    int rc = 0;
    /* Don't block changes if we have no plan at all (xapi_pool.ml) */
    if (pool && db_get(pool, "ha_plan_exists_for")->i > 0) {
        Change c = {.num_failures = value > G_MAXINT ? G_MAXINT : (int)value};
        rc = preserves_plan(&c, err);
    }
    db_read_end();
    if (rc < 0)
        return -1;
    if (db_write_begin(err) < 0)
        return -1;
    pool = the_pool();
    if (!pool || db_set_by_name(pool, "ha_host_failures_to_tolerate", xv_new_int(value), err) < 0) {
        db_write_abort();
        return pool ? -1 : xapi_error_internal(err, "the database holds no pool");
    }
    if (db_write_commit(err) < 0)
        return -1;
    ha_update_pool_status();
    return 0;
}

int ha_set_restart_priority(const char *vm_ref, const char *value, XapiError **err)
{
    if (!valid_priority(value))
        return xapi_error_set(err, "INVALID_VALUE", "ha_restart_priority", value, NULL);
    db_read_begin();
    DbRow *vm = db_lookup(cls("VM"), vm_ref);
    g_autofree char *current = vm ? g_strdup(xv_str(db_get(vm, "ha_restart_priority"))) : NULL;
    bool halted = vm && strcmp(xv_str(db_get(vm, "power_state")), "Halted") == 0;
    db_read_end();
    if (!vm)
        return xapi_error_set(err, "HANDLE_INVALID", "VM", vm_ref, NULL);
    bool protecting = strcmp(current, "restart") != 0 && strcmp(value, "restart") == 0;
    if (protecting && !halted && ha_check_new_protected_vm(vm_ref, err) < 0)
        return -1;
    if (strcmp(current, value) != 0) {
        if (db_write_begin(err) < 0)
            return -1;
        vm = db_lookup(cls("VM"), vm_ref);
        int rc = vm ? db_set_by_name(vm, "ha_restart_priority", xv_new_string(value), err) : -1;
        /* a running VM is protected, or not, at once (xapi_vm.ml) */
        if (rc == 0 && strcmp(xv_str(db_get(vm, "power_state")), "Running") == 0)
            rc = db_set_by_name(vm, "ha_always_run", xv_new_bool(strcmp(value, "restart") == 0),
                                err);
        if (db_write_finish(err, rc) < 0)
            return -1;
    }
    if (protecting || strcmp(current, value) != 0)
        ha_update_pool_status();
    return 0;
}

int ha_vm_before_start(const char *vm_ref, XapiError **err)
{
    if (!ha_enabled())
        return 0;
    g_autofree char *me = bootstrap_this_host();
    return ha_check_vm_arriving(vm_ref, me, err);
}

static void set_always_run(const char *vm_ref, bool on)
{
    db_read_begin();
    DbRow *vm = db_lookup(cls("VM"), vm_ref);
    bool now = vm && db_get(vm, "ha_always_run")->b;
    bool wanted = on && vm && strcmp(xv_str(db_get(vm, "ha_restart_priority")), "restart") == 0;
    db_read_end();
    if (!vm || now == wanted)
        return;
    g_autoptr(XapiError) err = NULL;
    if (db_update("VM", vm_ref, "ha_always_run", xv_new_bool(wanted), &err) < 0)
        g_warning("ha: VM %s: ha_always_run not written: %s", vm_ref, err ? err->code : "?");
}

void ha_vm_started(const char *vm_ref) { set_always_run(vm_ref, true); }
void ha_vm_stopping(const char *vm_ref) { set_always_run(vm_ref, false); }

void ha_markdown(GString *out)
{
    g_string_append(
        out,
        "## High availability (docs/ha.md)\n\n"
        "| Call, field | Status |\n|---|---|\n"
        "| `pool.enable_ha(heartbeat_srs, configuration)` | with `--pool-dqlite` on every host "
        "(else `HA_NOT_INSTALLED [host]`): no statefile, the Raft database is the heartbeat; "
        "XAPI's `HA_IS_ENABLED`, `HOST_OFFLINE [host]`; `heartbeat_srs` may be empty, an SR "
        "given must be shared (`HA_CONSTRAINT_VIOLATION_SR_NOT_SHARED`) and gets no VDI "
        "(`ha_statefiles` stays empty); `configuration` holds only `timeout` (seconds, "
        "default 60 as XAPI; other keys `VALUE_NOT_SUPPORTED`); `ha_cluster_stack` is "
        "`raft` |\n"
        "| `pool.disable_ha`, `host.emergency_ha_disable(soft)` | `HA_NOT_ENABLED` as XAPI; "
        "the emergency call stops only this host's fencing, until it restarts |\n"
        "| `pool.set_ha_host_failures_to_tolerate`, `ha_compute_max_host_failures_to_tolerate`, "
        "`ha_compute_hypothetical_max_host_failures_to_tolerate`, `ha_failover_plan_exists`, "
        "`ha_compute_vm_failover_plan` | XAPI's binpacker (exhaustive under 3,500 failure "
        "orders, its approximation above), bounded by the Raft quorum ((voters - 1) / 2, as "
        "XAPI's corosync bound); a protected VM that is not agile (as `VM.assert_agile`) is "
        "pinned to the first host by uuid that could run it, as its overhead, and its "
        "presence makes the plan XAPI's `Plan_exists_excluding_non_agile_VMs` (the pool "
        "overcommitted, a change to it refused as breaking the plan); anti-affinity groups "
        "not considered (the datamodel has no `VM_group`) |\n"
        "| `VM.assert_agile` | XAPI's checks: `VM_HAS_VGPU`, `VM_HAS_VUSBS`, "
        "`HA_CONSTRAINT_VIOLATION_SR_NOT_SHARED [sr]` (an SR not shared or not attached on "
        "every enabled host), `HA_CONSTRAINT_VIOLATION_NETWORK_NOT_SHARED [network]` (no PIF, "
        "bond slaves aside, on some enabled host: internal networks included), "
        "`VM_HAS_SRIOV_VIF`; `VBD.create`, `VBD.insert` and `VIF.create` of a protected VM "
        "refuse the SR "
        "or network errors while HA guards the plan, as XAPI |\n"
        "| `ha_plan_exists_for`, `ha_overcommitted` | kept by the master (every 2 s and after "
        "each change), with `HA_POOL_OVERCOMMITTED`, `HA_POOL_DROP_IN_PLAN_EXISTS_FOR` |\n"
        "| `HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN` | on `VM.set_ha_restart_priority` "
        "(`set_ha_always_run`) of a running VM and on `VM.start`/`start_on` unless "
        "`force` (HA's own restarts), while `ha_allow_overcommit` is false and a plan exists "
        "and `host.disable`, `host.evacuate` as XAPI (not on memory changes yet) |\n"
        "| `VM.ha_restart_priority`, `ha_always_run`, `order`, `start_delay` | `restart`, "
        "`best-effort`, `` (else `INVALID_VALUE`); `ha_always_run` set by a start, cleared by "
        "shutdown and suspend, as XAPI |\n"
        "| `pool.ha_prevent_restarts_for` | the master holds its restarts back (in memory) |\n"
        "| fencing, restarts | a host out of Raft contact for 3/4 of the timeout destroys its "
        "domains and answers `HA_SHOULD_BE_FENCED [host]`; the master, after timeout + "
        "max(2 s, timeout / 4), declares it dead (`HA_HOST_FAILED`) and restarts its VMs by "
        "priority and order, an order group's VMs at once (`HA_PROTECTED_VM_RESTART_FAILED`); "
        "`HA_HOST_WAS_FENCED` once the host is back, also after a restart of its xapid |\n\n");
}
