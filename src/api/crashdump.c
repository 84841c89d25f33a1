/* crashdump.c: crashdump.destroy (XAPI's xapi_crashdump.ml): the dump's
 * VDI is destroyed, then the record, whatever became of the VDI. */
#include <string.h>

#include "call.h"
#include "db.h"
#include "dm_handlers.h"
#include "implicit.h"

int xapi_crashdump_destroy(Call *call, const char *self)
{
    const DmClass *cls = dm_class_by_name("crashdump");
    db_read_begin();
    DbRow *dump = db_lookup(cls, self);
    g_autofree char *vdi = dump ? g_strdup(xv_str(db_get(dump, "VDI"))) : NULL;
    db_read_end();
    if (!vdi)
        return implicit_handle_invalid(call, cls, self);
    Call sub = {0};
    if (strcmp(vdi, "OpaqueRef:NULL") != 0 && xapi_VDI_destroy(&sub, vdi) < 0) {
        g_message("crashdump %s: its VDI %s stays: %s", self, vdi, sub.error->code);
        xapi_error_free(sub.error);
    }
    DbRow *row = db_write_begin_on("crashdump", self, &call->error);
    if (!row)
        return -1;
    if (db_delete(row, &call->error) < 0) {
        db_write_abort();
        return -1;
    }
    return db_write_commit(&call->error);
}
