/* pool_join.c: joining a pool and leaving it. */
#include "pool_join.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

#include "agent.h"
#include "bootstrap.h"
#include "db.h"
#include "pool_client.h"
#include "pool_forward.h"
#include "pool_db.h"
#include "pool_role.h"
#include "pool_secret.h"
#include "pool_start.h"
#include "pool_wire.h"

const char *pool_db_schema(void)
{
    static char digest[17];
    if (!digest[0]) {
        GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
        for (unsigned c = 0; c < dm_n_classes; c++) {
            const DmClass *cls = &dm_classes[c];
            if (!cls->persist)
                continue;
            g_checksum_update(sum, (const guchar *)cls->name, -1);
            for (unsigned i = 0; i < cls->n_fields; i++) {
                g_checksum_update(sum, (const guchar *)cls->fields[i].name, -1);
                g_checksum_update(sum, (const guchar *)cls->fields[i].type->text, -1);
            }
        }
        g_strlcpy(digest, g_checksum_get_string(sum), sizeof digest);
        g_checksum_free(sum);
    }
    return digest;
}

/* ---- the joining host's checks ------------------------------------------- */

typedef struct {
    const char *host;
    int running, shared, bonds, with_ops;
    int hosts;
    bool ha;
} LocalFacts;

static bool count_vm(DbRow *vm, void *ctx)
{
    LocalFacts *f = ctx;
    if (db_get(vm, "is_control_domain")->b)
        return true;
    if (strcmp(xv_str(db_get(vm, "power_state")), "Halted") != 0)
        f->running++;
    if (xv_len(db_get(vm, "current_operations")))
        f->with_ops++;
    return true;
}

static bool count_sr(DbRow *sr, void *ctx)
{
    ((LocalFacts *)ctx)->shared += db_get(sr, "shared")->b;
    return true;
}

static bool count_row(DbRow *row, void *ctx)
{
    ++*(int *)ctx;
    return true;
}

static bool note_ha(DbRow *pool, void *ctx)
{
    ((LocalFacts *)ctx)->ha = db_get(pool, "ha_enabled")->b;
    return false;
}

static int local_checks(XapiError **err)
{
    LocalFacts f = {0};
    db_read_begin();
    db_foreach(dm_class_by_name("VM"), count_vm, &f);
    db_foreach(dm_class_by_name("SR"), count_sr, &f);
    db_foreach(dm_class_by_name("Bond"), count_row, &f.bonds);
    db_foreach(dm_class_by_name("host"), count_row, &f.hosts);
    db_foreach(dm_class_by_name("pool"), note_ha, &f);
    db_read_end();
    if (pool_is_member() || f.hosts > 1)
        return xapi_error_set(err, "JOINING_HOST_CANNOT_BE_MASTER_OF_OTHER_HOSTS", NULL);
    if (f.ha)
        return xapi_error_set(err, "HA_IS_ENABLED", NULL);
    if (f.running)
        return xapi_error_set(err, "JOINING_HOST_CANNOT_HAVE_RUNNING_VMS", NULL);
    if (f.with_ops)
        return xapi_error_set(err, "JOINING_HOST_CANNOT_HAVE_VMS_WITH_CURRENT_OPERATIONS", NULL);
    if (f.shared)
        return xapi_error_set(err, "JOINING_HOST_CANNOT_CONTAIN_SHARED_SRS", NULL);
    if (f.bonds)
        return xapi_error_set(err, "POOL_JOINING_HOST_HAS_BONDS", NULL);
    return 0;
}

/* A call to the master during the join: a host that cannot be reached is
 * XAPI's JOINING_HOST_CONNECTION_FAILED. */
static Xv *master_call(const char *endpoint, const char *method, Xv *params, XapiError **err)
{
    Xv *value = NULL;
    g_autoptr(XapiError) e = NULL;
    int rc = pool_rpc(endpoint, method, params, 60, &value, &e);
    xv_free(params);
    if (rc == -2) {
        g_warning("pool.join: %s: %s", method, e->params->len ? (char *)e->params->pdata[0] : "");
        xapi_error_set(err, "JOINING_HOST_CONNECTION_FAILED", NULL);
    } else if (rc < 0) {
        *err = g_steal_pointer(&e);
    }
    return value;
}

static Xv *args(const char *first, ...)
{
    Xv *a = xv_new_array();
    va_list ap;
    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *))
        xv_array_append_string(a, s);
    va_end(ap);
    return a;
}

static const char *rec_str(const Xv *rec, const char *key)
{
    const Xv *v = rec ? xv_struct_get(rec, key) : NULL;
    return v && xv_str(v) ? xv_str(v) : "";
}

/* XAPI's checks against the master's records. */
static int remote_checks(const char *endpoint, const char *session, const char *my_host,
                         bool force, char **master_ref, XapiError **err)
{
    g_autoptr(Xv) pools = master_call(endpoint, "pool.get_all_records", args(session, NULL), err);
    if (!pools || pools->kind != XV_STRUCT || !xv_len(pools))
        return pools ? xapi_error_internal(err, "the master has no pool") : -1;
    const Xv *pool = &xv_member_at(pools, 0)->value;
    const Xv *ha = xv_struct_get(pool, "ha_enabled");
    if (ha && ha->kind == XV_BOOL && ha->b)
        return xapi_error_set(err, "HA_IS_ENABLED", NULL);
    *master_ref = g_strdup(rec_str(pool, "master"));
    g_autoptr(Xv) master =
        master_call(endpoint, "host.get_record", args(session, *master_ref, NULL), err);
    if (!master)
        return -1;
    db_read_begin();
    DbRow *me = db_lookup(dm_class_by_name("host"), my_host);
    g_autofree char *my_uuid = g_strdup(me ? xv_str(db_get(me, "uuid")) : "");
    int64_t my_major = me ? db_get(me, "API_version_major")->i : 0;
    int64_t my_minor = me ? db_get(me, "API_version_minor")->i : 0;
    const Xv *sv = me ? xv_struct_get(db_get(me, "software_version"), "db_schema") : NULL;
    g_autofree char *my_schema = g_strdup(sv && xv_str(sv) ? xv_str(sv) : "");
    db_read_end();
    if (strcmp(rec_str(master, "uuid"), my_uuid) == 0)
        return xapi_error_set(err, "OPERATION_NOT_ALLOWED", "Host cannot become slave of itself",
                              NULL);
    const Xv *major = xv_struct_get(master, "API_version_major");
    const Xv *minor = xv_struct_get(master, "API_version_minor");
    int64_t m_major = major ? (major->kind == XV_INT ? major->i : g_ascii_strtoll(xv_str(major), NULL, 10)) : -1;
    int64_t m_minor = minor ? (minor->kind == XV_INT ? minor->i : g_ascii_strtoll(xv_str(minor), NULL, 10)) : -1;
    if (m_major != my_major || m_minor != my_minor) {
        g_autofree char *mine = g_strdup_printf("%" G_GINT64_FORMAT ".%" G_GINT64_FORMAT, my_major, my_minor);
        g_autofree char *theirs = g_strdup_printf("%" G_GINT64_FORMAT ".%" G_GINT64_FORMAT, m_major, m_minor);
        return xapi_error_set(err, "POOL_JOINING_HOST_MUST_HAVE_SAME_API_VERSION", mine, theirs, NULL);
    }
    const char *their_schema = rec_str(xv_struct_get(master, "software_version"), "db_schema");
    if (!*my_schema || !*their_schema || strcmp(my_schema, their_schema) != 0)
        return xapi_error_set(err, "POOL_JOINING_HOST_MUST_HAVE_SAME_DB_SCHEMA", my_schema,
                              their_schema, NULL);
    if (!force) {
        const char *their_cpu = rec_str(xv_struct_get(master, "cpu_info"), "vendor");
        db_read_begin();
        me = db_lookup(dm_class_by_name("host"), my_host);
        const Xv *v = me ? xv_struct_get(db_get(me, "cpu_info"), "vendor") : NULL;
        bool same = v && g_strcmp0(xv_str(v), their_cpu) == 0;
        db_read_end();
        if (!same)
            return xapi_error_set(err, "POOL_HOSTS_NOT_HOMOGENEOUS", "CPUs differ", NULL);
    }
    return 0;
}

/* ---- what the joining host contributes ------------------------------------ */

typedef struct {
    json_object *ops;
    GHashTable *added;       /* refs */
    GHashTable *network_map; /* local network ref -> the master's, same bridge */
} Contribution;

static void contribute(Contribution *c, const char *ref)
{
    if (!ref || !*ref || strcmp(ref, "OpaqueRef:NULL") == 0 || g_hash_table_contains(c->added, ref))
        return;
    DbRow *row = db_lookup_any(ref);
    if (!row)
        return;
    if (g_hash_table_contains(c->network_map, ref))
        return; /* merged with the master's */
    g_hash_table_add(c->added, g_strdup(ref));
    json_object *o = pool_wire_row(row);
    json_object_object_add(o, "op", json_object_new_string("insert"));
    json_object *fields = NULL;
    json_object_object_get_ex(o, "f", &fields);
    json_object *network = NULL;
    if (fields && json_object_object_get_ex(fields, "network", &network)) {
        const char *mapped = g_hash_table_lookup(c->network_map, json_object_get_string(network));
        if (mapped)
            json_object_object_add(fields, "network", json_object_new_string(mapped));
    }
    json_object_array_add(c->ops, o);
}

static void contribute_set(Contribution *c, const DbRow *row, const char *field)
{
    const Xv *set = db_get(row, field);
    for (guint i = 0; set && i < xv_len(set); i++)
        contribute(c, xv_str(xv_at(set, i)));
}

static void contribute_vm(Contribution *c, DbRow *vm)
{
    contribute(c, vm->ref);
    contribute(c, xv_str(db_get(vm, "metrics")));
    contribute(c, xv_str(db_get(vm, "guest_metrics")));
    contribute_set(c, vm, "VBDs");
    contribute_set(c, vm, "VIFs");
    const Xv *vifs = db_get(vm, "VIFs");
    for (guint i = 0; i < xv_len(vifs); i++) {
        DbRow *vif = db_lookup_any(xv_str(xv_at(vifs, i)));
        if (vif)
            contribute(c, xv_str(db_get(vif, "network")));
    }
    contribute_set(c, vm, "consoles");
}

static bool contribute_vm_if_ours(DbRow *vm, void *ctx)
{
    Contribution *c = ctx;
    bool dom0 = db_get(vm, "is_control_domain")->b;
    bool halted = strcmp(xv_str(db_get(vm, "power_state")), "Halted") == 0;
    if (dom0 || (halted && !db_get(vm, "is_a_template")->b && !db_get(vm, "is_a_snapshot")->b))
        contribute_vm(c, vm);
    return true;
}

static bool collect_row(DbRow *row, void *ctx)
{
    g_ptr_array_add(ctx, row);
    return true;
}

static json_object *contribution(const char *host_ref, const Xv *master_networks)
{
    Contribution c = {json_object_new_array(), g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL),
                      g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free)};
    db_read_begin();
    /* Networks are merged by bridge name, as XAPI's join does. */
    GHashTable *nets = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; master_networks && i < xv_len(master_networks); i++) {
        const XvMember *m = xv_member_at(master_networks, i);
        g_hash_table_insert(nets, (gpointer)rec_str(&m->value, "bridge"), m->key);
    }
    GPtrArray *local_nets = g_ptr_array_new();
    const DmClass *network = dm_class_by_name("network");
    db_foreach(network, collect_row, local_nets);
    for (guint i = 0; i < local_nets->len; i++) {
        DbRow *n = local_nets->pdata[i];
        const char *theirs = g_hash_table_lookup(nets, xv_str(db_get(n, "bridge")));
        if (theirs)
            g_hash_table_insert(c.network_map, g_strdup(n->ref), g_strdup(theirs));
    }
    g_ptr_array_unref(local_nets);
    g_hash_table_destroy(nets);
    DbRow *host = db_lookup(dm_class_by_name("host"), host_ref);
    contribute(&c, host_ref);
    if (host) {
        contribute(&c, xv_str(db_get(host, "metrics")));
        contribute_set(&c, host, "host_CPUs");
        const Xv *pifs = db_get(host, "PIFs");
        for (guint i = 0; i < xv_len(pifs); i++) {
            DbRow *pif = db_lookup_any(xv_str(xv_at(pifs, i)));
            if (!pif)
                continue;
            contribute(&c, pif->ref);
            contribute(&c, xv_str(db_get(pif, "metrics")));
            contribute(&c, xv_str(db_get(pif, "network")));
        }
        const Xv *pbds = db_get(host, "PBDs");
        for (guint i = 0; i < xv_len(pbds); i++) {
            DbRow *pbd = db_lookup_any(xv_str(xv_at(pbds, i)));
            DbRow *sr = pbd ? db_lookup_any(xv_str(db_get(pbd, "SR"))) : NULL;
            if (!sr)
                continue;
            contribute(&c, pbd->ref);
            contribute(&c, sr->ref);
            contribute_set(&c, sr, "VDIs");
        }
        db_foreach(dm_class_by_name("VM"), contribute_vm_if_ours, &c);
    }
    db_read_end();
    json_object *ws = json_object_new_object();
    json_object_object_add(ws, "ops", c.ops);
    g_hash_table_destroy(c.added);
    g_hash_table_destroy(c.network_map);
    return ws;
}

static int send_contribution(const char *endpoint, const char *secret, json_object *ws,
                             XapiError **err)
{
    const char *text = json_object_to_json_string_ext(ws, JSON_C_TO_STRING_PLAIN);
    g_autofree char *header = g_strconcat(POOL_SECRET_HEADER ": ", secret, NULL);
    const char *headers[] = {header, "Content-Type: application/json", NULL};
    PoolHttpReply reply;
    g_autoptr(XapiError) io = NULL;
    if (pool_http(endpoint, "POST", "/pool/commit", headers, text, strlen(text), 120, &reply,
                  &io) < 0)
        return xapi_error_set(err, "JOINING_HOST_CONNECTION_FAILED", NULL);
    json_object *answer = reply.status == 200 ? pool_wire_parse(reply.body, reply.len, err) : NULL;
    if (!answer && reply.status != 200)
        xapi_error_internal(err, "the master answered %d to this host's records", reply.status);
    pool_http_reply_clear(&reply);
    if (!answer)
        return -1;
    json_object *g = NULL;
    int rc = json_object_object_get_ex(answer, "generation", &g) ? 0
                                                                   : pool_wire_take_error(answer, err);
    json_object_put(answer);
    return rc;
}

/* The standalone database is kept beside, never mixed into the pool's;
 * so are its messages (a member keeps none: they are the master's). */
static void set_database_aside(const char *state_dir)
{
    static const char *const files[] = {"xapid.db", "messages.db"};
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (unsigned f = 0; f < G_N_ELEMENTS(files); f++)
        for (unsigned i = 0; i < G_N_ELEMENTS(suffixes); i++) {
            g_autofree char *from = g_strdup_printf("%s/%s%s", state_dir, files[f], suffixes[i]);
            g_autofree char *to =
                g_strdup_printf("%s/%s.standalone%s", state_dir, files[f], suffixes[i]);
            if (g_rename(from, to) < 0 && errno != ENOENT)
                g_warning("pool: %s not set aside: %s", from, g_strerror(errno));
        }
}

int pool_join(const char *master_address, const char *user, const char *password, bool force,
              XapiError **err)
{
    if (local_checks(err) < 0)
        return -1;
    g_autofree char *endpoint = pool_endpoint_of(master_address);
    db_read_begin();
    g_autofree char *my_host = bootstrap_this_host();
    db_read_end();
    g_autoptr(Xv) session = master_call(endpoint, "session.login_with_password",
                                        args(user, password, "1.0", "xapid-pool-join", NULL), err);
    if (!session)
        return -1;
    const char *s = xv_str(session);
    g_autofree char *master_ref = NULL;
    g_autoptr(Xv) secret = NULL, networks = NULL;
    int rc = remote_checks(endpoint, s, my_host, force, &master_ref, err);
    if (rc == 0 && !(secret = master_call(endpoint, "pool.initial_auth", args(s, NULL), err)))
        rc = -1;
    if (rc == 0 && !(networks = master_call(endpoint, "network.get_all_records", args(s, NULL), err)))
        rc = -1;
    if (rc == 0) {
        json_object *ws = contribution(my_host, networks);
        rc = send_contribution(endpoint, xv_str(secret), ws, err);
        json_object_put(ws);
    }
    g_autoptr(XapiError) ignored = NULL;
    xv_free(master_call(endpoint, "session.logout", args(s, NULL), &ignored));
    if (rc < 0)
        return -1;
    const char *state_dir = pool_state_dir();
    if (pool_secret_set(state_dir, xv_str(secret), err) < 0 ||
        pool_role_write_member(master_address, my_host, err) < 0)
        return -1;
    set_database_aside(state_dir);
    g_message("pool: joined the pool of %s; restarting as a member", master_address);
    agent_schedule_end(AGENT_RESTART);
    return 0;
}

/* ---- leaving ---------------------------------------------------------------- */

typedef struct {
    const char *host;
    bool busy;
    GPtrArray *doomed; /* DbRow* to delete */
} EjectScan;

static bool check_vm(DbRow *vm, void *ctx)
{
    EjectScan *scan = ctx;
    if (strcmp(xv_str(db_get(vm, "resident_on")), scan->host) != 0)
        return true;
    if (db_get(vm, "is_control_domain")->b) {
        g_ptr_array_add(scan->doomed, vm);
        DbRow *m = db_lookup_any(xv_str(db_get(vm, "metrics")));
        if (m)
            g_ptr_array_add(scan->doomed, m);
    } else if (strcmp(xv_str(db_get(vm, "power_state")), "Halted") != 0) {
        scan->busy = true;
    }
    return true;
}

static void doom_ref(EjectScan *scan, const char *ref)
{
    DbRow *row = db_lookup_any(ref);
    if (row && !g_ptr_array_find(scan->doomed, row, NULL))
        g_ptr_array_add(scan->doomed, row);
}

static void doom_set(EjectScan *scan, const DbRow *row, const char *field)
{
    const Xv *set = db_get(row, field);
    for (guint i = 0; i < xv_len(set); i++)
        doom_ref(scan, xv_str(xv_at(set, i)));
}

/* The host's own records: itself, its metrics and CPUs, its PIFs, its PBDs
 * and the SRs (with their VDIs) that no other host has plugged. */
static void doom_host_records(EjectScan *scan, DbRow *host)
{
    doom_ref(scan, xv_str(db_get(host, "metrics")));
    doom_set(scan, host, "host_CPUs");
    const Xv *pifs = db_get(host, "PIFs");
    for (guint i = 0; i < xv_len(pifs); i++) {
        DbRow *pif = db_lookup_any(xv_str(xv_at(pifs, i)));
        if (pif)
            doom_ref(scan, xv_str(db_get(pif, "metrics")));
        doom_ref(scan, xv_str(xv_at(pifs, i)));
    }
    const Xv *pbds = db_get(host, "PBDs");
    for (guint i = 0; i < xv_len(pbds); i++) {
        DbRow *pbd = db_lookup_any(xv_str(xv_at(pbds, i)));
        DbRow *sr = pbd ? db_lookup_any(xv_str(db_get(pbd, "SR"))) : NULL;
        doom_ref(scan, xv_str(xv_at(pbds, i)));
        if (sr && !db_get(sr, "shared")->b) {
            /* The disks go with the host; a VM of the pool that had one
             * keeps no VBD to nothing. */
            const Xv *vdis = db_get(sr, "VDIs");
            for (guint v = 0; v < xv_len(vdis); v++) {
                DbRow *vdi = db_lookup_any(xv_str(xv_at(vdis, v)));
                if (vdi)
                    doom_set(scan, vdi, "VBDs");
            }
            doom_set(scan, sr, "VDIs");
            doom_ref(scan, sr->ref);
        }
    }
    g_ptr_array_add(scan->doomed, host);
}

int pool_eject(const char *host, XapiError **err)
{
    db_read_begin();
    g_autofree char *master = bootstrap_this_host();
    DbRow *ejected = db_lookup(dm_class_by_name("host"), host);
    bool exists = ejected != NULL;
    g_autofree char *address = exists ? g_strdup(xv_str(db_get(ejected, "address"))) : NULL;
    EjectScan scan = {host, false, g_ptr_array_new()};
    if (exists)
        db_foreach(dm_class_by_name("VM"), check_vm, &scan);
    db_read_end();
    g_ptr_array_unref(scan.doomed);
    if (!exists)
        return xapi_error_set(err, "HANDLE_INVALID", "host", host, NULL);
    if (strcmp(host, master) == 0)
        return xapi_error_set(err, "INTERNAL_ERROR", "Xapi_pool.Cannot_eject_master", NULL);
    if (scan.busy)
        return xapi_error_set(err, "OPERATION_NOT_ALLOWED", "VM resident on host", NULL);
    /* The member forgets the pool first; then its records go. */
    if (pool_forward_internal(host, "pool.eject", host, err) < 0)
        return -1;
    if (db_write_begin(err) < 0)
        return -1;
    DbRow *row = db_lookup(dm_class_by_name("host"), host);
    EjectScan doomed = {host, false, g_ptr_array_new()};
    if (row) {
        db_foreach(dm_class_by_name("VM"), check_vm, &doomed);
        doom_host_records(&doomed, row);
    }
    int rc = 0;
    for (guint i = 0; i < doomed.doomed->len && rc == 0; i++)
        rc = db_delete(doomed.doomed->pdata[i], err);
    g_ptr_array_unref(doomed.doomed);
    if (db_write_finish(err, rc) < 0)
        return -1;
    pool_forget_host(host);
    g_autoptr(XapiError) raft = NULL;
    if (pool_db_running() && address && *address && pool_db_remove_host(address, &raft) < 0)
        g_warning("pool: the ejected host's dqlite node stays in the cluster: %s %s",
                  raft->code, raft->params->len ? (char *)raft->params->pdata[0] : "");
    return 0;
}

int pool_eject_self(XapiError **err)
{
    const char *state_dir = pool_state_dir();
    g_autofree char *secret = g_build_filename(state_dir, "pool-secret", NULL);
    if (pool_role_clear(err) < 0 || pool_db_leave(err) < 0)
        return -1;
    if (g_unlink(secret) < 0 && errno != ENOENT)
        g_warning("pool: %s not removed: %s", secret, g_strerror(errno));
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (unsigned i = 0; i < G_N_ELEMENTS(suffixes); i++) {
        g_autofree char *settings =
            g_strdup_printf("%s/%s%s", state_dir, POOL_MEMBER_SETTINGS, suffixes[i]);
        g_unlink(settings); /* the standalone database holds them again */
    }
    g_message("pool: ejected from the pool; restarting standalone with a fresh database");
    agent_schedule_end(AGENT_RESTART);
    return 0;
}
