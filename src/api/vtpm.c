/* vtpm.c: VTPM.create and VTPM.destroy (XAPI's xapi_vtpm.ml); the TPM
 * behind one is swtpm while its VM runs (src/xenops/vm_vtpm.c,
 * qemu_tpm.c). */
#include "call.h"
#include "db.h"
#include "dm_handlers.h"
#include "implicit.h"
#include "vm_vtpm.h"

int xapi_VTPM_create(Call *call, const char *vM, bool is_unique, Xv **result)
{
    if (db_write_begin(&call->error) < 0)
        return -1;
    DbRow *vm = db_lookup(dm_class_by_name("VM"), vM);
    if (!vm) {
        db_write_abort();
        return implicit_handle_invalid(call, dm_class_by_name("VM"), vM);
    }
    char *ref = vm_vtpm_create_locked(vm, is_unique, &call->error);
    if (!ref) {
        db_write_abort();
        return -1;
    }
    if (db_write_commit(&call->error) < 0) {
        g_free(ref);
        return -1;
    }
    *result = xv_new_string_take(ref);
    return 0;
}

int xapi_VTPM_destroy(Call *call, const char *self)
{
    return vm_vtpm_destroy(self, &call->error);
}
