/* host.c: the host's own messages: time, enable/disable, agent restart
 * and shutdown, logs, hostname, memory, evacuation, licences, power.
 * Checks, then one call into what does the work (agent.c, log_ring.c,
 * the kernel, host_certificate.c). Acting on the machine itself (its power, its hostname, its
 * kernel log) needs a flag of xapid's: without it a clear error. */
#include "host.h"

#include <errno.h>
#include <string.h>
#include <sys/klog.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "bootstrap.h"
#include "call.h"
#include "db.h"
#include "dm_handlers.h"
#include "host_certificate.h"
#include "external_auth.h"
#include "ha.h"
#include "ha_fence.h"
#include "host_evacuate.h"
#include "log_ring.h"

static struct {
    char *power_command;
    bool allow_host_changes;
} ops;

void host_ops_configure(const HostOpsConfig *c)
{
    ops.power_command = g_strdup(c->power_command);
    ops.allow_host_changes = c->allow_host_changes;
}

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

int xapi_host_get_servertime(Call *call, const char *host, Xv **result)
{
    if (bootstrap_check_this_host(host, &call->error) < 0)
        return -1;
    *result = xv_new_datetime(g_get_real_time() / G_USEC_PER_SEC);
    return 0;
}

int xapi_host_get_server_localtime(Call *call, const char *host, Xv **result)
{
    if (bootstrap_check_this_host(host, &call->error) < 0)
        return -1;
    time_t now = time(NULL);
    struct tm local;
    localtime_r(&now, &local);
    *result = xv_new_local_datetime((int64_t)timegm(&local));
    return 0;
}

/* ---- enable / disable ------------------------------------------------ */

static int set_enabled(Call *call, const char *host, bool enabled)
{
    if (bootstrap_check_this_host(host, &call->error) < 0)
        return -1;
    DbRow *row = db_write_begin_on("host", host, &call->error);
    if (!row)
        return -1;
    if (db_get(row, "enabled")->b == enabled) { /* idempotent, as XAPI */
        db_write_abort();
        return 0;
    }
    db_write_abort(); /* the plan is read without the write lock */
    if (!enabled && ha_check_host_disable(host, &call->error) < 0)
        return -1;
    row = db_write_begin_on("host", host, &call->error);
    if (!row)
        return -1;
    if (db_set_by_name(row, "enabled", xv_new_bool(enabled), &call->error) < 0) {
        db_write_abort();
        return -1;
    }
    g_message("host %s %s by request", host, enabled ? "enabled" : "disabled");
    return db_write_commit(&call->error);
}

int xapi_host_enable(Call *call, const char *host) { return set_enabled(call, host, true); }
int xapi_host_disable(Call *call, const char *host) { return set_enabled(call, host, false); }

/* ---- the agent ------------------------------------------------------- */

int xapi_host_restart_agent(Call *call, const char *host)
{
    if (bootstrap_check_this_host(host, &call->error) < 0)
        return -1;
    agent_schedule_end(AGENT_RESTART);
    return 0;
}

int xapi_host_shutdown_agent(Call *call)
{
    agent_schedule_end(AGENT_SHUTDOWN);
    return 0;
}

/* ---- logs ------------------------------------------------------------ */

int xapi_host_get_log(Call *call, const char *host, Xv **result)
{
    if (bootstrap_check_this_host(host, &call->error) < 0)
        return -1;
    *result = xv_new_string_take(log_ring_contents());
    return 0;
}

/* The kernel's log buffer: read (and cleared, with action 4). */
static int read_kernel_log(Call *call, int action, Xv **result)
{
    int size = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
    if (size <= 0)
        size = 1 << 20;
    g_autofree char *buf = g_malloc((gsize)size + 1);
    int n = klogctl(action, buf, size);
    if (n < 0 && (errno == EPERM || errno == EACCES))
        return xapi_error_set(&call->error, "PERMISSION_DENIED",
                              "xapid may not read the kernel's log (CAP_SYSLOG)", NULL);
    if (n < 0)
        return xapi_error_internal(&call->error, "klogctl: %s", g_strerror(errno));
    buf[n] = '\0';
    *result = xv_new_string(buf);
    return 0;
}

int xapi_host_dmesg(Call *call, const char *host, Xv **result)
{
    if (bootstrap_check_this_host(host, &call->error) < 0)
        return -1;
    return read_kernel_log(call, 3 /* SYSLOG_ACTION_READ_ALL */, result);
}

int xapi_host_dmesg_clear(Call *call, const char *host, Xv **result)
{
    if (bootstrap_check_this_host(host, &call->error) < 0)
        return -1;
    if (!ops.allow_host_changes)
        return xapi_error_set(&call->error, "PERMISSION_DENIED",
                              "host.dmesg_clear clears the kernel's log only when xapid is "
                              "started with --allow-host-changes", NULL);
    return read_kernel_log(call, 4 /* SYSLOG_ACTION_READ_CLEAR */, result);
}

/* No system status report can be made here (XAPI's xen-bugtool): none of
 * its capabilities is offered. */
int xapi_host_get_system_status_capabilities(Call *call, const char *host, Xv **result)
{
    if (bootstrap_check_this_host(host, &call->error) < 0)
        return -1;
    *result = xv_new_string("<?xml version=\"1.0\" ?>"
                            "<system-status-capabilities></system-status-capabilities>");
    return 0;
}

int xapi_host_syslog_reconfigure(Call *call, const char *host)
{
    if (bootstrap_check_this_host(host, &call->error) < 0)
        return -1;
    db_read_begin();
    DbRow *row = db_lookup(cls("host"), host);
    const Xv *dest = row ? xv_struct_get(db_get(row, "logging"), "syslog_destination") : NULL;
    g_autofree char *destination = g_strdup(dest ? xv_str(dest) : "");
    db_read_end();
    return log_ring_forward_to(destination, &call->error);
}

/* ---- hostname -------------------------------------------------------- */

/* XAPI's rule: letters, digits, '-' and '.', not starting or ending with
 * '-', 1 to 255 characters. */
static int check_hostname(Call *call, const char *name)
{
    size_t len = strlen(name);
    if (len == 0)
        return xapi_error_set(&call->error, "HOST_NAME_INVALID", "hostname empty", NULL);
    if (len > 255)
        return xapi_error_set(&call->error, "HOST_NAME_INVALID", "hostname is too long", NULL);
    bool valid = name[0] != '-' && name[len - 1] != '-';
    for (const char *c = name; *c && valid; c++)
        valid = g_ascii_isalnum(*c) || *c == '-' || *c == '.';
    if (!valid)
        return xapi_error_set(&call->error, "HOST_NAME_INVALID",
                              "hostname contains invalid characters", NULL);
    return 0;
}

int xapi_host_set_hostname_live(Call *call, const char *host, const char *hostname)
{
    if (bootstrap_check_this_host(host, &call->error) < 0 || check_hostname(call, hostname) < 0)
        return -1;
    if (!ops.allow_host_changes)
        return xapi_error_set(&call->error, "PERMISSION_DENIED",
                              "host.set_hostname_live sets the machine's hostname only when "
                              "xapid is started with --allow-host-changes", NULL);
    if (sethostname(hostname, strlen(hostname)) < 0)
        return xapi_error_set(&call->error, "PERMISSION_DENIED", g_strerror(errno), NULL);
    DbRow *row = db_write_begin_on("host", host, &call->error);
    if (!row)
        return -1;
    if (db_set_by_name(row, "hostname", xv_new_string(hostname), &call->error) < 0) {
        db_write_abort();
        return -1;
    }
    /* The control domain is named after its host, as XAPI renames it. */
    const Xv *vms = db_get(row, "resident_VMs");
    for (guint i = 0; i < xv_len(vms); i++) {
        DbRow *vm = db_lookup(cls("VM"), xv_str(xv_at(vms, i)));
        if (vm && db_get(vm, "is_control_domain")->b) {
            g_autofree char *label = g_strdup_printf("Control domain on host: %s", hostname);
            db_set_by_name(vm, "name_label", xv_new_string(label), NULL);
        }
    }
    return db_write_commit(&call->error);
}

/* ---- memory and evacuation ------------------------------------------- */

/* XAPI's answer is the host's memory_overhead field, which xapid keeps
 * at the memory the host holds back from guests (xenops.c). */
int xapi_host_compute_memory_overhead(Call *call, const char *host, Xv **result)
{
    if (bootstrap_check_this_host(host, &call->error) < 0)
        return -1;
    db_read_begin();
    DbRow *row = db_lookup(cls("host"), host);
    *result = xv_new_int(row ? db_get(row, "memory_overhead")->i : 0);
    db_read_end();
    return 0;
}

/* No balloon drivers here: XAPI's answer too is always empty. */
int xapi_host_get_uncooperative_resident_VMs(Call *call, const char *self, Xv **result)
{
    if (bootstrap_check_this_host(self, &call->error) < 0)
        return -1;
    *result = xv_new_array();
    return 0;
}

/* ---- licences: the free edition only -------------------------------- */

/* No licence can be processed by xapid: XAPI's error for one it could
 * not apply (a text that is not base64 gets the same). */
int xapi_host_license_add(Call *call, const char *host, const char *contents)
{
    if (bootstrap_check_this_host(host, &call->error) < 0)
        return -1;
    return xapi_error_set(&call->error, "LICENSE_PROCESSING_ERROR", NULL);
}

int xapi_host_license_apply(Call *call, const char *host, const char *contents)
{
    return xapi_host_license_add(call, host, contents);
}

/* The host is on the free edition already: removing a licence leaves
 * the free edition's record, which the start-up refresh keeps. */
int xapi_host_license_remove(Call *call, const char *host)
{
    if (bootstrap_check_this_host(host, &call->error) < 0)
        return -1;
    return bootstrap_license_free(host, &call->error);
}

/* ---- management interface -------------------------------------------- */

typedef struct {
    const char *host;
    char *pif;
} FindManagement;

static bool find_management(DbRow *pif, void *ctx)
{
    FindManagement *f = ctx;
    if (db_get(pif, "management")->b && strcmp(xv_str(db_get(pif, "host")), f->host) == 0) {
        f->pif = g_strdup(pif->ref);
        return false;
    }
    return true;
}

int xapi_host_get_management_interface(Call *call, const char *host, Xv **result)
{
    if (bootstrap_check_this_host(host, &call->error) < 0)
        return -1;
    FindManagement f = {host, NULL};
    db_read_begin();
    db_foreach(cls("PIF"), find_management, &f);
    db_read_end();
    if (!f.pif)
        return xapi_error_internal(&call->error, "host %s has no management interface", host);
    *result = xv_new_string_take(f.pif);
    return 0;
}

/* ---- power ----------------------------------------------------------- */

/* XAPI's checks before powering a host off: disabled first, then no
 * guest running (HOST_IN_USE [host, "vm", the first]). */
static int check_can_power_off(Call *call, const char *host)
{
    int rc = 0;
    db_read_begin();
    DbRow *row = db_lookup(cls("host"), host);
    if (row && db_get(row, "enabled")->b)
        rc = xapi_error_set(&call->error, "HOST_NOT_DISABLED", NULL);
    const Xv *vms = row && rc == 0 ? db_get(row, "resident_VMs") : NULL;
    for (guint i = 0; vms && i < xv_len(vms) && rc == 0; i++) {
        DbRow *vm = db_lookup(cls("VM"), xv_str(xv_at(vms, i)));
        if (vm && !db_get(vm, "is_control_domain")->b &&
            strcmp(xv_str(db_get(vm, "power_state")), "Running") == 0)
            rc = xapi_error_set(&call->error, "HOST_IN_USE", host, "vm", vm->ref, NULL);
    }
    db_read_end();
    return rc;
}

static int power_off(Call *call, const char *host, const char *action, const char *message)
{
    if (bootstrap_check_this_host(host, &call->error) < 0 || check_can_power_off(call, host) < 0)
        return -1;
    if (!ops.power_command) {
        g_autofree char *text = g_strdup_printf(
            "%s acts on the machine only when xapid is started with --host-power-command",
            message);
        return xapi_error_set(&call->error, "PERMISSION_DENIED", text, NULL);
    }
    return agent_power_command(ops.power_command, action, &call->error);
}

int xapi_host_reboot(Call *call, const char *host)
{
    return power_off(call, host, "reboot", "host.reboot");
}

int xapi_host_shutdown(Call *call, const char *host)
{
    return power_off(call, host, "poweroff", "host.shutdown");
}

/* ---- evacuation ---------------------------------------------------------------- */

/* VM -> [error code, parameters...] for each resident VM that cannot go
 * anywhere (XAPI's form): on a standalone host each is NO_HOSTS_AVAILABLE. */
int xapi_host_get_vms_which_prevent_evacuation(Call *call, const char *self, Xv **result)
{
    db_read_begin();
    bool exists = db_lookup(dm_class_by_name("host"), self) != NULL;
    db_read_end();
    if (!exists)
        return xapi_error_set(&call->error, "HANDLE_INVALID", "host", self, NULL);
    g_autoptr(GPtrArray) plan = host_evacuation_plan(self);
    *result = xv_new_struct();
    for (guint i = 0; i < plan->len; i++) {
        const EvacuationStep *s = plan->pdata[i];
        if (!s->why)
            continue;
        Xv *why = xv_new_array();
        xv_array_append_string(why, s->why->code);
        for (guint j = 0; j < s->why->params->len; j++)
            xv_array_append_string(why, s->why->params->pdata[j]);
        xv_struct_set(*result, s->vm, why);
    }
    return 0;
}

int xapi_host_assert_can_evacuate(Call *call, const char *host)
{
    db_read_begin();
    bool exists = db_lookup(dm_class_by_name("host"), host) != NULL;
    db_read_end();
    if (!exists)
        return xapi_error_set(&call->error, "HANDLE_INVALID", "host", host, NULL);
    g_autoptr(GPtrArray) plan = host_evacuation_plan(host);
    for (guint i = 0; i < plan->len; i++) {
        EvacuationStep *s = plan->pdata[i];
        if (s->why) {
            call->error = g_steal_pointer(&s->why);
            return -1;
        }
    }
    return 0;
}

/* network: a migration network is not supported (OpaqueRef:NULL only);
 * the VMs go one at a time, whatever evacuate_batch_size (at least 1). */
int xapi_host_evacuate(Call *call, const char *host, const char *network,
                       int64_t evacuate_batch_size)
{
    if (network && *network && strcmp(network, "OpaqueRef:NULL") != 0)
        return xapi_error_set(&call->error, "VALUE_NOT_SUPPORTED", "network", network,
                              "a migration network is not supported", NULL);
    if (evacuate_batch_size < 0)
        return xapi_error_set(&call->error, "VALUE_NOT_SUPPORTED", "evacuate_batch_size", "",
                              "must not be negative", NULL);
    /* XAPI: as a disable would (the VMs leave it) */
    if (ha_check_host_disable(host, &call->error) < 0)
        return -1;
    db_read_begin();
    bool exists = db_lookup(dm_class_by_name("host"), host) != NULL;
    db_read_end();
    if (!exists)
        return xapi_error_set(&call->error, "HANDLE_INVALID", "host", host, NULL);
    return host_evacuate(call, host);
}

/* ---- the server certificate and https_only ----------------------------- */

int xapi_host_get_server_certificate(Call *call, const char *host, Xv **result)
{
    if (bootstrap_check_this_host(host, &call->error) < 0)
        return -1;
    char *pem = host_certificate_get(&call->error);
    if (!pem)
        return -1;
    *result = xv_new_string_take(pem);
    return 0;
}

static bool take_ha(DbRow *pool, void *ctx)
{
    *(bool *)ctx = db_get(pool, "ha_enabled")->b;
    return false;
}

/* XAPI's check first: no new certificate while HA is on. */
static int check_ha_off(Call *call)
{
    bool ha = false;
    db_read_begin();
    db_foreach(cls("pool"), take_ha, &ha);
    db_read_end();
    return ha ? xapi_error_set(&call->error, "HA_IS_ENABLED", NULL) : 0;
}

int xapi_host_install_server_certificate(Call *call, const char *host, const char *certificate,
                                         const char *private_key, const char *certificate_chain)
{
    if (bootstrap_check_this_host(host, &call->error) < 0 || check_ha_off(call) < 0)
        return -1;
    return host_certificate_install(certificate, private_key, certificate_chain, &call->error);
}

int xapi_host_reset_server_certificate(Call *call, const char *host)
{
    if (bootstrap_check_this_host(host, &call->error) < 0)
        return -1;
    return host_certificate_renew(false, &call->error);
}

/* XAPI's is for when the database cannot be used; xapid's record follows. */
int xapi_host_emergency_reset_server_certificate(Call *call)
{
    return host_certificate_renew(false, &call->error);
}

/* XAPI renews there the host_internal certificate its hosts use between
 * them; xapid's hosts have one certificate, renewed when it is xapid's own
 * self-signed one (an installed one is left, OPERATION_NOT_ALLOWED). */
int xapi_host_refresh_server_certificate(Call *call, const char *host)
{
    if (bootstrap_check_this_host(host, &call->error) < 0)
        return -1;
    return host_certificate_renew(true, &call->error);
}

/* Internal in XAPI (pool.set_https_only calls it on each host). */
int xapi_host_set_https_only(Call *call, const char *self, bool value)
{
    if (bootstrap_check_this_host(self, &call->error) < 0)
        return -1;
    return host_certificate_set_https_only(value, &call->error);
}

/* External authentication of one host (pool.enable_external_auth does
 * every host's): external_auth.h. */
int xapi_host_enable_external_auth(Call *call, const char *host, const Xv *config,
                                   const char *service_name, const char *auth_type)
{
    return external_auth_enable_host(host, config, service_name, auth_type, &call->error);
}

int xapi_host_disable_external_auth(Call *call, const char *host, const Xv *config)
{
    return external_auth_disable_host(host, &call->error);
}

/* ---- HA ------------------------------------------------------------------ */

/* XAPI's: this host only stops fencing itself (the pool's HA stays on). */
int xapi_host_emergency_ha_disable(Call *call, bool soft)
{
    return ha_fence_emergency_disable(soft, &call->error);
}
