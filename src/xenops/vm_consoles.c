/* vm_consoles.c: console records of running VMs (XAPI's xapi_xenops.ml
 * makes one per console xenopsd reports) and the lookup of /console
 * requests (console.ml console_of_request, check_vm_is_running_here). */
#include "vm_consoles.h"

#include "serial_hub.h"

#include <string.h>

#include "bootstrap.h"
#include "xenops.h"

static const char *const PROTOCOLS[] = {"rfb", "vt100"};

/* https://<address>/console (XAPI builds it with Uri.make: an IPv6
 * address goes in brackets). */
static char *console_base(void)
{
    g_autofree char *host_ref = bootstrap_this_host();
    DbRow *host = db_lookup(dm_class_by_name("host"), host_ref);
    const char *address = host ? xv_str(db_get(host, "address")) : "";
    bool v6 = strchr(address, ':') != NULL;
    return g_strdup_printf("https://%s%s%s/console", v6 ? "[" : "", address, v6 ? "]" : "");
}

/* Whether the record is one this host would make now for protocol. */
static bool record_current(const DbRow *console, const char *base)
{
    g_autofree char *location =
        g_strdup_printf("%s?uuid=%s", base, xv_str(db_get(console, "uuid")));
    return strcmp(xv_str(db_get(console, "location")), location) == 0;
}

static int create_record(DbRow *vm, const char *protocol, const char *base, XapiError **err)
{
    DbRow *console = db_row_new(dm_class_by_name("console"));
    g_autofree char *location =
        g_strdup_printf("%s?uuid=%s", base, xv_str(db_get(console, "uuid")));
    db_row_put(console, "protocol", xv_new_string(protocol));
    db_row_put(console, "location", xv_new_string(location));
    db_row_put(console, "VM", xv_new_string(vm->ref));
    return db_insert(console, err);
}

int vm_consoles_sync(DbRow *vm, XapiError **err)
{
    const HvDriver *driver = xenops_driver();
    const char *uuid = xv_str(db_get(vm, "uuid"));
    g_autofree char *base = console_base();
    const DmClass *cls = dm_class_by_name("console");
    for (size_t i = 0; i < G_N_ELEMENTS(PROTOCOLS); i++) {
        bool served = driver->console_served(uuid, PROTOCOLS[i]);
        bool have = false;
        g_autoptr(Xv) consoles = xv_dup(db_get(vm, "consoles"));
        for (guint c = 0; c < xv_len(consoles); c++) {
            DbRow *console = db_lookup(cls, xv_str(xv_at(consoles, c)));
            if (!console || strcmp(xv_str(db_get(console, "protocol")), PROTOCOLS[i]) != 0)
                continue;
            if (served && !have && record_current(console, base))
                have = true;
            else if (db_delete(console, err) < 0)
                return -1;
        }
        if (served && !have && create_record(vm, PROTOCOLS[i], base, err) < 0)
            return -1;
    }
    return 0;
}

void vm_consoles_destroy(DbRow *vm)
{
    g_autoptr(Xv) consoles = xv_dup(db_get(vm, "consoles"));
    for (guint i = 0; i < xv_len(consoles); i++) {
        DbRow *c = db_lookup(dm_class_by_name("console"), xv_str(xv_at(consoles, i)));
        if (c)
            db_delete(c, NULL);
    }
}

/* A VM's first rfb console (XAPI's default_console_of_vm). */
static DbRow *default_console(const DbRow *vm)
{
    const DmClass *cls = dm_class_by_name("console");
    const Xv *consoles = db_get(vm, "consoles");
    for (guint i = 0; i < xv_len(consoles); i++) {
        DbRow *c = db_lookup(cls, xv_str(xv_at(consoles, i)));
        if (c && strcmp(xv_str(db_get(c, "protocol")), "rfb") == 0)
            return c;
    }
    return NULL;
}

/* The VM, or the console, that ref or uuid names (read lock held). */
static int find(const char *ref, const char *uuid, DbRow **vm, DbRow **console, XapiError **err)
{
    const DmClass *vm_cls = dm_class_by_name("VM"), *console_cls = dm_class_by_name("console");
    *vm = *console = NULL;
    if (uuid && !ref) {
        if (!(*vm = db_lookup_uuid(vm_cls, uuid)) && !(*console = db_lookup_uuid(console_cls, uuid)))
            return xapi_error_set(err, "UUID_INVALID", "console", uuid, NULL);
        return 0;
    }
    if (!ref)
        return xapi_error_set(err, "HANDLE_INVALID", "console", "OpaqueRef:NULL", NULL);
    if (!(*vm = db_lookup(vm_cls, ref)) && !(*console = db_lookup(console_cls, ref)))
        return xapi_error_set(err, "HANDLE_INVALID", "console", ref, NULL);
    return 0;
}

static int lookup(const char *ref, const char *uuid, VmConsoleTarget *t, XapiError **err)
{
    DbRow *vm, *console;
    if (find(ref, uuid, &vm, &console, err) < 0)
        return -1;
    if (console)
        vm = db_lookup(dm_class_by_name("VM"), xv_str(db_get(console, "VM")));
    if (!vm)
        return xapi_error_set(err, "HANDLE_INVALID", "VM", xv_str(db_get(console, "VM")), NULL);
    const char *state = xv_str(db_get(vm, "power_state"));
    if (strcmp(state, "Running") != 0) {
        g_autofree char *actual = g_ascii_strdown(state, -1);
        return xapi_error_set(err, "VM_BAD_POWER_STATE", vm->ref, "running", actual, NULL);
    }
    g_autofree char *here = bootstrap_this_host();
    if (strcmp(xv_str(db_get(vm, "resident_on")), here) != 0)
        return xapi_error_set(err, "VM_NOT_RESIDENT_HERE", vm->ref, here, NULL);
    if (!console && !(console = default_console(vm)))
        return xapi_error_set(err, "HANDLE_INVALID", "console", vm->ref, NULL);
    t->console = g_strdup(console->ref);
    t->vm = g_strdup(vm->ref);
    t->protocol = g_strdup(xv_str(db_get(console, "protocol")));
    t->vm_uuid = g_strdup(xv_str(db_get(vm, "uuid")));
    t->served = xenops_driver()->console_served(t->vm_uuid, t->protocol);
    return 0;
}

int vm_console_target(const char *ref, const char *uuid, VmConsoleTarget *t, XapiError **err)
{
    memset(t, 0, sizeof *t);
    db_read_begin();
    int rc = lookup(ref, uuid, t, err);
    db_read_end();
    return rc;
}

void vm_console_target_clear(VmConsoleTarget *t)
{
    g_free(t->console);
    g_free(t->vm);
    g_free(t->protocol);
    g_free(t->vm_uuid);
    memset(t, 0, sizeof *t);
}

static int connect_serial(void *ctx, XapiError **err)
{
    const VmConsoleTarget *t = ctx;
    return xenops_driver()->console_connect(t->vm_uuid, t->protocol, err);
}

int vm_console_connect(const VmConsoleTarget *t, XapiError **err)
{
    if (strcmp(t->protocol, "vt100") == 0) /* one connection to QEMU, shared */
        return serial_hub_join(t->console, connect_serial, (void *)t, err);
    return xenops_driver()->console_connect(t->vm_uuid, t->protocol, err);
}
