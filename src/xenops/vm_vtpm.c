/* vm_vtpm.c: XAPI's VTPM objects and their TPM states on this host.
 *
 * A VTPM is a row (VTPM.VM <-> VM.VTPMs) and a directory
 * STATE_DIR/vtpm/<its uuid> holding the file where swtpm keeps the TPM's
 * state while the VM runs (qemu_tpm.c). XAPI keeps the state in its database (a secret the
 * VTPM's contents field names); here it stays a directory of the host
 * that ran the VM, carried in the migration stream when the VM moves, so
 * VTPM.get_contents/set_contents are not offered. */
#include "vm_vtpm.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "dm_handlers.h"
#include "qemu_process.h"

static char *vtpm_root;

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

int vm_vtpm_init(const char *state_dir, XapiError **err)
{
    g_autofree char *cwd = g_get_current_dir();
    g_autofree char *dir = g_build_filename(state_dir ? state_dir : ".", "vtpm", NULL);
    g_free(vtpm_root);
    vtpm_root = g_path_is_absolute(dir) ? g_strdup(dir) : g_build_filename(cwd, dir, NULL);
    if (g_mkdir_with_parents(vtpm_root, 0700) < 0)
        return xapi_error_internal(err, "cannot create %s: %s", vtpm_root, g_strerror(errno));
    return 0;
}

static char *state_dir(const char *vtpm_uuid)
{
    return g_build_filename(vtpm_root ? vtpm_root : ".", vtpm_uuid, NULL);
}

static const char *vm_power_state(const DbRow *vtpm)
{
    DbRow *vm = db_lookup(cls("VM"), xv_str(db_get(vtpm, "VM")));
    return vm ? xv_str(db_get(vm, "power_state")) : "Halted";
}

/* XAPI's vtpm_update_allowed_operations: destroy while the VM is halted
 * (VTPM.destroy itself also takes a suspended one). */
static int vtpm_check(const DbRow *vtpm, const char *op, XapiError **err)
{
    (void)op;
    if (strcmp(vm_power_state(vtpm), "Halted") == 0)
        return 0;
    g_autofree char *actual = g_ascii_strdown(vm_power_state(vtpm), -1);
    return xapi_error_set(err, "VM_BAD_POWER_STATE", xv_str(db_get(vtpm, "VM")), "halted",
                          actual, NULL);
}

static const char *const vtpm_ops[] = {"destroy", NULL};
const ObjectOperations vtpm_operations = {"VTPM", vtpm_check, vtpm_ops, NULL};

int vm_vtpm_refresh_for_vm(DbRow *vm, XapiError **err)
{
    const Xv *refs = db_get(vm, "VTPMs");
    for (guint i = 0; refs && i < xv_len(refs); i++) {
        DbRow *vtpm = db_lookup(cls("VTPM"), xv_str(xv_at(refs, i)));
        if (vtpm && operations_refresh(vtpm, err) < 0)
            return -1;
    }
    return 0;
}

static char *insert_vtpm(DbRow *vm, bool is_unique, XapiError **err)
{
    DbRow *vtpm = db_row_new(cls("VTPM"));
    db_row_put(vtpm, "VM", xv_new_string(vm->ref));
    db_row_put(vtpm, "is_unique", xv_new_bool(is_unique));
    char *ref = g_strdup(vtpm->ref);
    if (db_insert(vtpm, err) < 0 || operations_refresh(vm, err) < 0) {
        g_free(ref);
        return NULL;
    }
    return ref;
}

/* XAPI's create': assert_no_vtpm_associated, then the VM halted (a
 * template too); no operation lock, as in XAPI. */
char *vm_vtpm_create_locked(DbRow *vm, bool is_unique, XapiError **err)
{
    guint n = xv_len(db_get(vm, "VTPMs"));
    if (n) {
        char amount[16];
        g_snprintf(amount, sizeof amount, "%u", n);
        xapi_error_set(err, "VTPM_MAX_AMOUNT_REACHED", amount, NULL);
        return NULL;
    }
    const char *state = xv_str(db_get(vm, "power_state"));
    if (strcmp(state, "Halted") != 0) {
        g_autofree char *actual = g_ascii_strdown(state, -1);
        xapi_error_set(err, "VM_BAD_POWER_STATE", vm->ref, "halted", actual, NULL);
        return NULL;
    }
    return insert_vtpm(vm, is_unique, err);
}

/* The TPM state of from (a VTPM uuid) as the state of to: for a new VTPM
 * whose directory does not exist yet. */
static int copy_state(const char *from, const char *to, XapiError **err)
{
    g_autofree char *dir = state_dir(from);
    g_autofree char *file = g_build_filename(dir, VM_VTPM_STATE_FILE, NULL);
    g_autofree char *data = NULL;
    gsize len = 0;
    if (!g_file_get_contents(file, &data, &len, NULL))
        return 0; /* never ran: the copy starts as a new TPM too */
    g_autofree char *to_dir = state_dir(to);
    g_autofree char *to_file = g_build_filename(to_dir, VM_VTPM_STATE_FILE, NULL);
    g_autoptr(GError) error = NULL;
    if (g_mkdir_with_parents(to_dir, 0700) < 0 ||
        !g_file_set_contents_full(to_file, data, (gssize)len, G_FILE_SET_CONTENTS_CONSISTENT,
                                  0600, &error))
        return xapi_error_internal(err, "cannot write %s: %s", to_file,
                                   error ? error->message : g_strerror(errno));
    return 0;
}

int vm_vtpm_copy(const DbRow *vm, const char *copy_ref, XapiError **err)
{
    DbRow *copy = db_lookup(cls("VM"), copy_ref);
    const Xv *refs = db_get(vm, "VTPMs");
    for (guint i = 0; copy && refs && i < xv_len(refs); i++) {
        DbRow *vtpm = db_lookup(cls("VTPM"), xv_str(xv_at(refs, i)));
        if (!vtpm)
            continue;
        bool unique = db_get(vtpm, "is_unique")->b;
        g_autofree char *ref = insert_vtpm(copy, unique, err);
        DbRow *made = ref ? db_lookup(cls("VTPM"), ref) : NULL;
        if (!made)
            return -1;
        /* XAPI's copy_or_create_contents: a unique TPM is never copied */
        if (!unique && copy_state(xv_str(db_get(vtpm, "uuid")), xv_str(db_get(made, "uuid")),
                                  err) < 0)
            return -1;
    }
    return 0;
}

static void remove_state(const char *vtpm_uuid)
{
    g_autofree char *dir = state_dir(vtpm_uuid);
    GDir *d = g_dir_open(dir, 0, NULL);
    if (!d)
        return;
    for (const char *name; (name = g_dir_read_name(d));) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        if (unlink(path) < 0)
            g_warning("cannot remove %s: %s", path, g_strerror(errno));
    }
    g_dir_close(d);
    if (rmdir(dir) < 0)
        g_warning("cannot remove %s: %s", dir, g_strerror(errno));
}

void vm_vtpm_remove_states(const Xv *uuids)
{
    for (guint i = 0; uuids && i < xv_len(uuids); i++)
        remove_state(xv_str(xv_at(uuids, i)));
}

int vm_vtpm_destroy(const char *ref, XapiError **err)
{
    DbRow *vtpm = db_write_begin_on("VTPM", ref, err);
    if (!vtpm)
        return -1;
    DbRow *vm = db_lookup(cls("VM"), xv_str(db_get(vtpm, "VM")));
    const char *state = vm ? xv_str(db_get(vm, "power_state")) : "Halted";
    if (strcmp(state, "Halted") != 0 && strcmp(state, "Suspended") != 0) {
        g_autofree char *actual = g_ascii_strdown(state, -1);
        xapi_error_set(err, "VM_BAD_POWER_STATE", vm->ref, "halted, suspended", actual, NULL);
        db_write_abort();
        return -1;
    }
    g_autofree char *uuid = g_strdup(xv_str(db_get(vtpm, "uuid")));
    if (db_delete(vtpm, err) < 0 || (vm && operations_refresh(vm, err) < 0)) {
        db_write_abort();
        return -1;
    }
    if (db_write_commit(err) < 0)
        return -1;
    remove_state(uuid);
    return 0;
}

static bool platform_vtpm(const Xv *record)
{
    const Xv *platform = xv_struct_get(record, "platform");
    const Xv *v = platform && platform->kind == XV_STRUCT ? xv_struct_get(platform, "vtpm")
                                                          : NULL;
    return v && (strcmp(xv_str(v), "true") == 0 || strcmp(xv_str(v), "1") == 0);
}

int vm_vtpm_prepare(const char *vm_ref, Xv *record, XapiError **err)
{
    const Xv *refs = xv_struct_get(record, "VTPMs");
    if ((!refs || xv_len(refs) == 0) && platform_vtpm(record)) {
        DbRow *vm = db_write_begin_on("VM", vm_ref, err);
        if (!vm)
            return -1;
        /* VM.start holds the start operation, checked with the VM halted;
         * the power state is not Running before the domain is */
        g_autofree char *ref = xv_len(db_get(vm, "VTPMs"))
                                   ? g_strdup(xv_str(xv_at(db_get(vm, "VTPMs"), 0)))
                                   : insert_vtpm(vm, false, err);
        if (!ref) {
            db_write_abort();
            return -1;
        }
        if (db_write_commit(err) < 0)
            return -1;
    }
    db_read_begin();
    DbRow *vm = db_lookup(cls("VM"), vm_ref);
    g_autoptr(Xv) now = vm ? xv_dup(db_get(vm, "VTPMs")) : xv_new_array();
    DbRow *vtpm = xv_len(now) == 1 ? db_lookup(cls("VTPM"), xv_str(xv_at(now, 0))) : NULL;
    g_autofree char *uuid = vtpm ? g_strdup(xv_str(db_get(vtpm, "uuid"))) : NULL;
    db_read_end();
    if (xv_len(now) > 1)
        return xapi_error_set(err, "NOT_IMPLEMENTED", "Multiple vTPMs are not supported", NULL);
    xv_struct_set(record, "VTPMs", g_steal_pointer(&now));
    if (!uuid)
        return 0;
    g_autofree char *dir = state_dir(uuid);
    g_autofree char *file = g_build_filename(dir, VM_VTPM_STATE_FILE, NULL);
    if (g_mkdir_with_parents(dir, 0700) < 0)
        return xapi_error_internal(err, "cannot create %s: %s", dir, g_strerror(errno));
    int fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0)
        return xapi_error_internal(err, "cannot open %s: %s", file, g_strerror(errno));
    close(fd);
    /* swtpm runs as QEMU's user and reopens the file through the
     * descriptor it is given (qemu_tpm.c) */
    if (qemu_process_give_to_user(file, err) < 0)
        return -1;
    xv_struct_set(record, VM_VTPM_STATE_MEMBER, xv_new_string(file));
    return 0;
}

void vm_vtpm_markdown(GString *out)
{
    g_string_append(
        out,
        "## vTPM (VTPM)\n\n"
        "- `VTPM.create` with XAPI's checks: the VM halted (`VM_BAD_POWER_STATE`), one VTPM "
        "per VM (`VTPM_MAX_AMOUNT_REACHED [amount]`; `create_vtpm` is in the VM's "
        "`allowed_operations` only then); `VTPM.destroy` with the VM halted or suspended, "
        "its TPM state with it; `VM.destroy` destroys the VM's VTPMs. The pool restriction "
        "`restrict_vtpm` (`FEATURE_RESTRICTED`) does not apply: there is no licensing.\n"
        "- `platform:vtpm=true` on a VM without a VTPM: VM.start makes one "
        "(`is_unique` false), as XAPI's start does.\n"
        "- A running VM with a VTPM has a TPM 2.0: one swtpm (Debian's `swtpm`) per domain, "
        "as QEMU's unprivileged user, on a socket pair with QEMU's `tpm-emulator` "
        "(`-chardev socket,fd=` + `-tpmdev emulator`), `tpm-crb` under UEFI and `tpm-tis` "
        "under SeaBIOS (XAPI refuses BIOS VMs with a VTPM because hvmloader has no TPM "
        "support; SeaBIOS has). swtpm ends with its QEMU, whatever ends it, and outlives a "
        "restart of xapid with it. Without swtpm on the host VM.start is refused "
        "(`VALUE_NOT_SUPPORTED [VTPMs, swtpm, why]`).\n"
        "- The TPM's state is a file on the host running the VM, "
        "`STATE_DIR/vtpm/<VTPM uuid>/tpm2-state` (swtpm's linear file backend), kept "
        "across guest reboots, VM restarts and restarts of xapid; a suspended VM's TPM "
        "state is in QEMU's saved state as well. `VM.clone`, `copy` and `snapshot` give "
        "the new VM a VTPM with a copy of the state (a new TPM when `is_unique`), as "
        "XAPI's `Xapi_vtpm.copy`.\n"
        "- Not done: XAPI keeps the state in its database (the VTPM's `contents` secret); "
        "here it is not in the database, so it is neither replicated in a pool nor "
        "exported in an XVA (an exported VM's VTPM is not carried), and `VM.revert` keeps "
        "the VM's current TPM state. `is_protected` stays false; `persistence_backend` "
        "is `xapi` as in XAPI. Migration of a VM with a VTPM is not tested.\n\n");
}
