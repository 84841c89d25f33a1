/* pool_forward.c: which host runs a call, and sending it there. */
#include "pool_forward.h"

#include <string.h>

#include "bootstrap.h"
#include "db.h"
#include "pool_client.h"
#include "pool_master.h"
#include "pool_role.h"
#include "pool_secret.h"
#include "typed_value.h"
#include "vm_migrate.h"

/* A forwarded call may run as long as the operation takes (a clean
 * shutdown waits on the guest): the socket's silence limit. */
#define FORWARD_TIMEOUT_S 3600
#define LOGIN_TIMEOUT_S 60
/* A call to the master's data (messages) answers at once: a member's
 * VM operation that raises a message waits no longer than this for it. */
#define TO_MASTER_TIMEOUT_S 30

static struct {
    GMutex lock;
    GHashTable *sessions; /* host ref -> pool session ref on that host */
} cache;

/* ---- where a call runs ------------------------------------------------------ */

static bool first_row(DbRow *row, void *ctx)
{
    *(DbRow **)ctx = row;
    return false;
}

/* Messages that read or reset the database only, whatever host their
 * object lives on. */
static const char *const run_here[] = {
    "VM.power_state_reset",     /* the master's, for a VM whose host died */
    "VM.get_possible_hosts",   "VM.assert_can_boot_here", "VM.assert_operation_valid",
    "VM.get_allowed_VBD_devices", "VM.get_allowed_VIF_devices", "VM.get_boot_record",
    "VM.compute_memory_overhead", "VM.update_allowed_operations", "SR.get_supported_types",
    "SR.set_name_label",        "SR.set_name_description", "SR.introduce", "SR.forget",
    "VDI.set_name_label",       "VDI.set_name_description", "VDI.forget", "PBD.create",
    "PBD.destroy",              "VBD.create",  "VBD.destroy", "VIF.create", "VIF.destroy",
    "host.get_vms_which_prevent_evacuation", "host.compute_memory_overhead",
};

static bool runs_here(const char *wire_name)
{
    for (unsigned i = 0; i < G_N_ELEMENTS(run_here); i++)
        if (strcmp(run_here[i], wire_name) == 0)
            return true;
    return false;
}

static const char *ref_field(const DbRow *row, const char *field)
{
    const Xv *v = row ? db_get(row, field) : NULL;
    return v && xv_str(v) && strcmp(xv_str(v), "OpaqueRef:NULL") != 0 ? xv_str(v) : NULL;
}

/* Whether host has sr plugged. */
static bool sees_sr(const char *host, const char *sr_ref)
{
    DbRow *sr = db_lookup(dm_class_by_name("SR"), sr_ref);
    const Xv *pbds = sr ? db_get(sr, "PBDs") : NULL;
    for (guint i = 0; pbds && i < xv_len(pbds); i++) {
        DbRow *pbd = db_lookup_any(xv_str(xv_at(pbds, i)));
        if (pbd && db_get(pbd, "currently_attached")->b &&
            g_strcmp0(ref_field(pbd, "host"), host) == 0)
            return true;
    }
    return false;
}

/* The host an SR's work goes to: this one if it has it plugged, else a
 * live host that has, else any that has (HOST_OFFLINE then), else this. */
static const char *sr_host(const char *sr_ref, const char *here)
{
    if (!sr_ref || sees_sr(here, sr_ref))
        return here;
    DbRow *sr = db_lookup(dm_class_by_name("SR"), sr_ref);
    const Xv *pbds = sr ? db_get(sr, "PBDs") : NULL;
    const char *dead = NULL;
    for (guint i = 0; pbds && i < xv_len(pbds); i++) {
        DbRow *pbd = db_lookup_any(xv_str(xv_at(pbds, i)));
        const char *h = pbd && db_get(pbd, "currently_attached")->b ? ref_field(pbd, "host")
                                                                    : NULL;
        if (!h)
            continue;
        DbRow *host = db_lookup(dm_class_by_name("host"), h);
        DbRow *m = host ? db_lookup(dm_class_by_name("host_metrics"), ref_field(host, "metrics"))
                        : NULL;
        if (m && db_get(m, "live")->b)
            return h;
        dead = dead ? dead : h;
    }
    return dead ? dead : here;
}

/* The SRs of a VM's disks. */
static GPtrArray *vm_srs(const DbRow *vm)
{
    GPtrArray *srs = g_ptr_array_new();
    const Xv *vbds = db_get(vm, "VBDs");
    for (guint i = 0; i < xv_len(vbds); i++) {
        DbRow *vbd = db_lookup_any(xv_str(xv_at(vbds, i)));
        DbRow *vdi = vbd ? db_lookup(dm_class_by_name("VDI"), ref_field(vbd, "VDI")) : NULL;
        const char *sr = ref_field(vdi, "SR");
        if (sr && !g_ptr_array_find_with_equal_func(srs, sr, g_str_equal, NULL))
            g_ptr_array_add(srs, (gpointer)sr);
    }
    return srs;
}

static bool sees_all(const char *host, GPtrArray *srs)
{
    for (guint i = 0; i < srs->len; i++)
        if (!sees_sr(host, srs->pdata[i]))
            return false;
    return true;
}

typedef struct {
    GPtrArray *srs;
    const char *found;
} HostScan;

/* Whether a VM may start on host: live and enabled. */
static bool can_run(const DbRow *host)
{
    DbRow *m = host ? db_lookup(dm_class_by_name("host_metrics"), ref_field(host, "metrics")) : NULL;
    return m && db_get(m, "live")->b && db_get(host, "enabled")->b;
}

static bool find_seeing_host(DbRow *host, void *ctx)
{
    HostScan *scan = ctx;
    if (can_run(host) && sees_all(host->ref, scan->srs)) {
        scan->found = host->ref;
        return false;
    }
    return true;
}

typedef struct {
    const DbRow *vm;
    const char *found;
} PlaceScan;

static bool find_placing_host(DbRow *host, void *ctx)
{
    PlaceScan *scan = ctx;
    if (vm_host_can_run(scan->vm, host->ref, NULL) == 0) {
        scan->found = host->ref;
        return false;
    }
    return true;
}

/* Placement of a start or resume: its affinity, else this host, else the
 * first host that can run it (live, enabled, its SRs and networks, memory
 * free for it); NULL when none can. */
static const char *place(const DbRow *vm, const char *here)
{
    const char *affinity = ref_field(vm, "affinity");
    if (affinity && vm_host_can_run(vm, affinity, NULL) == 0)
        return affinity;
    if (vm_host_can_run(vm, here, NULL) == 0)
        return here;
    PlaceScan scan = {vm, NULL};
    db_foreach(dm_class_by_name("host"), find_placing_host, &scan);
    return scan.found;
}

/* A VM's work: its resident host while it has one; for a halted VM's
 * start, the host placement picks; else a host that sees its disks. */
static const char *vm_host(const DbRow *vm, const char *here, bool starting)
{
    if (!vm)
        return here;
    const char *resident = ref_field(vm, "resident_on");
    if (resident && strcmp(xv_str(db_get(vm, "power_state")), "Halted") != 0)
        return resident;
    const char *placed = starting ? place(vm, here) : NULL;
    if (placed)
        return placed;
    g_autoptr(GPtrArray) srs = vm_srs(vm);
    const char *affinity = starting ? ref_field(vm, "affinity") : NULL;
    if (affinity && can_run(db_lookup(dm_class_by_name("host"), affinity)) &&
        sees_all(affinity, srs))
        return affinity;
    if (sees_all(here, srs))
        return here;
    HostScan scan = {srs, NULL};
    db_foreach(dm_class_by_name("host"), find_seeing_host, &scan);
    return scan.found ? scan.found : here;
}

const char *pool_forward_sr_host(const char *sr_ref, const char *here)
{
    return sr_host(sr_ref, here);
}

const char *pool_forward_vm_host(const DbRow *vm, const char *here)
{
    return vm_host(vm, here, false);
}

static const char *arg_ref(const Call *call, unsigned i)
{
    const Xv *v = i < xv_len(call->args) ? call_arg(call, i) : NULL;
    return v && v->kind == XV_STRING ? xv_str(v) : NULL;
}

/* The host that runs call (read lock held); here when none other. */
static const char *route(const Call *call, const char *here)
{
    const DmMessage *msg = call->msg;
    const char *cls = msg->cls->name;
    static const char *const host_bound[] = {"VM", "host", "SR", "VDI", "PBD", "PIF",
                                             "VBD", "VIF", "console"};
    bool bound = false;
    for (unsigned i = 0; i < G_N_ELEMENTS(host_bound) && !bound; i++)
        bound = strcmp(cls, host_bound[i]) == 0;
    if (!bound || !msg->impl || !msg->n_params || runs_here(msg->wire_name))
        return here; /* pool.*, network.*, ...: the pool's, run by the master */
    const DmType *t0 = msg->params[0].type;
    const char *a0 = arg_ref(call, 0);
    if (strcmp(msg->wire_name, "VM.start_on") == 0 || strcmp(msg->wire_name, "VM.resume_on") == 0)
        return arg_ref(call, 1) ? arg_ref(call, 1) : here;
    if (t0->kind == DM_RECORD && strcmp(cls, "VDI") == 0) { /* VDI.create, VDI.introduce */
        const Xv *sr = xv_struct_get(call_arg(call, 0), "SR");
        return sr_host(sr ? xv_str(sr) : NULL, here);
    }
    if (t0->kind != DM_REF || !a0)
        return here;
    const char *target = t0->class_name;
    if (strcmp(target, "host") == 0)
        return a0;
    if (strcmp(target, "VM") == 0)
        return vm_host(db_lookup(dm_class_by_name("VM"), a0), here,
                       strcmp(msg->name, "start") == 0 || strcmp(msg->name, "resume") == 0);
    if (strcmp(target, "SR") == 0)
        return sr_host(a0, here);
    DbRow *row = db_lookup(dm_class_by_name(target), a0);
    if (!row)
        return here;
    if (strcmp(target, "VDI") == 0)
        return sr_host(ref_field(row, "SR"), here);
    if (strcmp(target, "PBD") == 0 || strcmp(target, "PIF") == 0)
        return ref_field(row, "host") ? ref_field(row, "host") : here;
    if (strcmp(target, "VBD") == 0 || strcmp(target, "VIF") == 0 || strcmp(target, "console") == 0) {
        DbRow *vm = db_lookup(dm_class_by_name("VM"), ref_field(row, "VM"));
        const char *resident = vm ? ref_field(vm, "resident_on") : NULL;
        return resident && strcmp(xv_str(db_get(vm, "power_state")), "Halted") != 0 ? resident
                                                                                     : here;
    }
    return here;
}

/* ---- sending it ---------------------------------------------------------------- */

/* The host's endpoint ("ADDRESS:PORT"), NULL if there is no such host. */
static char *endpoint_of(const char *host)
{
    db_read_begin();
    DbRow *row = db_lookup(dm_class_by_name("host"), host);
    g_autofree char *master = bootstrap_pool_master();
    /* A member reaches the master where it joined it (the master's record
     * may name an address it does not listen on, as 127.0.0.1's does). */
    char *endpoint = !row ? NULL
                     : pool_is_member() && g_strcmp0(host, master) == 0
                         ? pool_master_endpoint()
                         : pool_endpoint_of(xv_str(db_get(row, "address")));
    db_read_end();
    return endpoint;
}

static int unreachable(const char *host, XapiError *why, XapiError **err)
{
    g_warning("pool: host %s cannot be reached: %s", host,
              why && why->params->len ? (char *)why->params->pdata[0] : "");
    return xapi_error_set(err, "CANNOT_CONTACT_HOST", host, NULL);
}

/* A pool session on host (kept until it fails or the host leaves). */
static char *pool_session(const char *host, const char *endpoint, XapiError **err)
{
    g_mutex_lock(&cache.lock);
    if (!cache.sessions)
        cache.sessions = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    char *session = g_strdup(g_hash_table_lookup(cache.sessions, host));
    g_mutex_unlock(&cache.lock);
    if (session)
        return session;
    g_autofree char *secret = pool_secret_get(pool_state_dir(), err);
    if (!secret)
        return NULL;
    db_read_begin();
    g_autofree char *me = bootstrap_this_host();
    db_read_end();
    g_autoptr(Xv) params = xv_new_array();
    xv_array_append_string(params, me);
    xv_array_append_string(params, secret);
    g_autoptr(Xv) value = NULL;
    g_autoptr(XapiError) e = NULL;
    int rc = pool_rpc(endpoint, "session.slave_login", params, LOGIN_TIMEOUT_S, &value, &e);
    if (rc == -2) {
        unreachable(host, e, err);
        return NULL;
    }
    if (rc < 0) {
        *err = g_steal_pointer(&e);
        return NULL;
    }
    g_mutex_lock(&cache.lock);
    g_hash_table_replace(cache.sessions, g_strdup(host), g_strdup(xv_str(value)));
    g_mutex_unlock(&cache.lock);
    return g_strdup(xv_str(value));
}

static void drop_session(const char *host)
{
    g_mutex_lock(&cache.lock);
    if (cache.sessions)
        g_hash_table_remove(cache.sessions, host);
    g_mutex_unlock(&cache.lock);
}

void pool_forget_host(const char *host)
{
    drop_session(host);
}

/* method(args...) on host in its pool session; a stale session (the
 * member restarted from a newer replica) is replaced once. */
static int send_to(const char *host, const char *method, const Xv *args, const char *task,
                   Xv **value, XapiError **err)
{
    if (!pool_master_host_live(host))
        return xapi_error_set(err, "HOST_OFFLINE", host, NULL);
    g_autofree char *endpoint = endpoint_of(host);
    if (!endpoint)
        return xapi_error_set(err, "HANDLE_INVALID", "host", host, NULL);
    for (int attempt = 0;; attempt++) {
        g_autofree char *session = pool_session(host, endpoint, err);
        if (!session)
            return -1;
        g_autoptr(Xv) params = xv_new_array();
        xv_array_append_string(params, session);
        for (guint i = 0; args && i < xv_len(args); i++)
            xv_array_append(params, xv_dup(xv_at(args, i)));
        g_autofree char *generation =
            g_strdup_printf(POOL_GENERATION_HEADER ": %" G_GUINT64_FORMAT, (guint64)db_generation());
        g_autofree char *task_header = task ? g_strconcat(POOL_TASK_HEADER ": ", task, NULL) : NULL;
        const char *headers[] = {generation, task_header, NULL};
        g_autoptr(XapiError) e = NULL;
        int rc = pool_rpc_with_headers(endpoint, method, params, headers, FORWARD_TIMEOUT_S, value,
                                       &e);
        if (rc == -2)
            return unreachable(host, e, err);
        if (rc < 0 && attempt == 0 && strcmp(e->code, "SESSION_INVALID") == 0) {
            drop_session(host);
            continue;
        }
        if (rc < 0)
            *err = g_steal_pointer(&e);
        return rc;
    }
}

int pool_forward_call(Call *call, Xv **result)
{
    if (pool_is_member())
        return 1; /* the master chose this host already */
    db_read_begin();
    g_autofree char *here = bootstrap_this_host();
    const char *to = db_count(dm_class_by_name("host")) > 1 ? route(call, here) : NULL;
    /* No such host: the handler here answers HANDLE_INVALID as it would. */
    g_autofree char *target = to && db_lookup(dm_class_by_name("host"), to) ? g_strdup(to) : NULL;
    db_read_end();
    if (!target || strcmp(target, here) == 0)
        return 1;
    g_debug("pool: %s goes to %s", call->msg->wire_name, target);
    g_autoptr(Xv) wire = NULL;
    if (send_to(target, call->msg->wire_name, call->args, call->task_ref, &wire, &call->error) < 0)
        return -1;
    if (call->msg->result->kind == DM_VOID)
        return 0;
    *result = typed_value_from_wire(call->msg->result, wire, "result", &call->error);
    return *result ? 0 : -1;
}

int pool_forward_to_master(const char *method, const Xv *args, Xv **value, XapiError **err)
{
    db_read_begin();
    DbRow *pool = NULL;
    const DmClass *pool_class = dm_class_by_name("pool");
    db_foreach(pool_class, first_row, &pool);
    g_autofree char *master = g_strdup(pool ? ref_field(pool, "master") : NULL);
    db_read_end();
    if (!master)
        return xapi_error_internal(err, "pool: no master in the replica yet");
    g_autofree char *endpoint = pool_master_endpoint();
    for (int attempt = 0;; attempt++) {
        g_autofree char *session = pool_session(master, endpoint, err);
        if (!session)
            return -1;
        g_autoptr(Xv) params = xv_new_array();
        xv_array_append_string(params, session);
        for (guint i = 0; args && i < xv_len(args); i++)
            xv_array_append(params, xv_dup(xv_at(args, i)));
        g_autoptr(XapiError) e = NULL;
        int rc = pool_rpc(endpoint, method, params, TO_MASTER_TIMEOUT_S, value, &e);
        if (rc == -2)
            return unreachable(master, e, err);
        if (rc < 0 && attempt == 0 && strcmp(e->code, "SESSION_INVALID") == 0) {
            drop_session(master);
            continue;
        }
        if (rc < 0)
            *err = g_steal_pointer(&e);
        return rc;
    }
}

int pool_forward_internal(const char *host, const char *method, const char *arg,
                          XapiError **err)
{
    g_autoptr(Xv) args = xv_new_array();
    if (arg)
        xv_array_append_string(args, arg);
    g_autoptr(Xv) value = NULL;
    return send_to(host, method, args, NULL, &value, err);
}

bool pool_forward_is_pool_session(const char *session_ref)
{
    db_read_begin();
    DbRow *s = session_ref ? db_lookup(dm_class_by_name("session"), session_ref) : NULL;
    bool pool = s && db_get(s, "pool")->b;
    db_read_end();
    return pool;
}
