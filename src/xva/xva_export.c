/* xva_export.c: the XVA stream of a VM (see xva_export.h). */
#include "xva_export.h"

#include <string.h>
#include <xxhash.h>

#include "db.h"
#include "dm_handlers.h"
#include "task.h"
#include "vdi_target.h"
#include "vdi_transfer.h"
#include "vm_operations.h"
#include "xva_ova.h"
#include "xva_tar.h"

#define BLOCK ((size_t)1 << 20) /* stream_vdi.ml's chunk_size */
#define PROGRESS_STEP ((int64_t)64 << 20)
/* stream_vdi.ml: after 5 s without output while zero blocks are skipped,
 * an empty block keeps the client's connection alive. */
#define KEEPALIVE_US ((gint64)5 * G_USEC_PER_SEC)

struct XvaExport {
    XvaExportOptions opt;
    char *task;
    char *vm;           /* the VM whose record and disks go out (locked) */
    char *snapshot;     /* taken of a running VM: destroyed at the end */
    XvaOva *ova;
    XvaEncoder *enc;
    GByteArray *tar;    /* the next tar bytes, before compression */
    GByteArray *out;    /* compressed bytes not yet handed out */
    size_t out_pos;
    guint disk;         /* index in ova->disks */
    VdiExport *ex;      /* the disk being read */
    int64_t disk_size;
    int64_t pos;        /* in the disk */
    guint block;        /* its next block number */
    guint8 *buf;
    int64_t done_bytes, reported;
    gint64 last_output; /* monotonic time of the last block written */
    bool ended;    /* the tar's end is written */
    bool finished; /* and compressed */
};

static bool all_zero(const guint8 *p, size_t n)
{
    static const guint8 zeros[4096];
    for (size_t i = 0; i < n; i += sizeof zeros)
        if (memcmp(p + i, zeros, MIN(sizeof zeros, n - i)) != 0)
            return false;
    return true;
}

static const char *power_state(const char *vm_ref)
{
    db_read_begin();
    DbRow *vm = db_lookup(dm_class_by_name("VM"), vm_ref);
    const char *state = vm ? xv_str(db_get(vm, "power_state")) : NULL;
    db_read_end();
    return state; /* an enum value: static storage */
}

static int take_snapshot(XvaExport *x, const char *vm_ref, XapiError **err)
{
    Call sub = {.msg = dm_message_by_wire_name("VM.snapshot"), .task_ref = x->task};
    g_autoptr(Xv) ignore = xv_new_array();
    Xv *result = NULL;
    if (xapi_VM_snapshot(&sub, vm_ref, "export", ignore, &result) < 0) {
        *err = sub.error;
        return -1;
    }
    x->snapshot = g_strdup(xv_str(result));
    xv_free(result);
    return 0;
}

static void drop_snapshot(const char *snap)
{
    g_autoptr(GPtrArray) vdis = g_ptr_array_new_with_free_func(g_free);
    db_read_begin();
    DbRow *vm = db_lookup(dm_class_by_name("VM"), snap);
    const Xv *vbds = vm ? db_get(vm, "VBDs") : NULL;
    for (guint i = 0; vbds && i < xv_len(vbds); i++) {
        DbRow *vbd = db_lookup(dm_class_by_name("VBD"), xv_str(xv_at(vbds, i)));
        const char *vdi = vbd ? xv_str(db_get(vbd, "VDI")) : "";
        if (vbd && db_lookup(dm_class_by_name("VDI"), vdi))
            g_ptr_array_add(vdis, g_strdup(vdi));
    }
    db_read_end();
    Call sub = {.msg = dm_message_by_wire_name("VM.destroy")};
    if (xapi_VM_destroy(&sub, snap) < 0)
        g_warning("xva: cannot destroy the export's snapshot %s: %s", snap, sub.error->code);
    g_clear_pointer(&sub.error, xapi_error_free);
    for (guint i = 0; i < vdis->len; i++) {
        Call d = {.msg = dm_message_by_wire_name("VDI.destroy")};
        if (xapi_VDI_destroy(&d, vdis->pdata[i]) < 0)
            g_warning("xva: cannot destroy the export's disk %s: %s", (char *)vdis->pdata[i],
                      d.error->code);
        xapi_error_free(d.error);
    }
}

XvaExport *xva_export_begin(const char *vm_ref, const XvaExportOptions *opt, const char *task_ref,
                            XapiError **err)
{
    XvaExport *x = g_new0(XvaExport, 1);
    x->opt = *opt;
    x->task = g_strdup(task_ref);
    const char *state = power_state(vm_ref);
    if (!state) {
        xapi_error_set(err, "HANDLE_INVALID", "VM", vm_ref, NULL);
        goto fail;
    }
    /* XenServer's file then carries the memory image as one more disk,
     * which xapid neither writes nor reads: refused, not exported Halted. */
    if (opt->preserve_power_state && strcmp(state, "Suspended") == 0) {
        xapi_error_set(err, "OPERATION_NOT_ALLOWED",
                       "exporting a suspended VM with its memory image (preserve_power_state) "
                       "is not implemented: resume and shut it down, or export without it",
                       NULL);
        goto fail;
    }
    bool live = strcmp(state, "Running") == 0 || strcmp(state, "Paused") == 0;
    if (live && take_snapshot(x, vm_ref, err) < 0)
        goto fail;
    if (operations_begin(&vm_operations, live ? x->snapshot : vm_ref, "export", task_ref, err) < 0)
        goto fail;
    x->vm = g_strdup(live ? x->snapshot : vm_ref);
    XvaOvaOptions o = {.preserve_power_state = opt->preserve_power_state,
                       .include_snapshots = opt->include_snapshots,
                       .with_disks = true,
                       .as_vm = live ? vm_ref : NULL};
    const char *vms[] = {x->vm};
    x->ova = xva_ova_build(vms, 1, &o, err);
    if (!x->ova)
        goto fail;
    /* Every disk readable here, before the answer says 200 (an SR of
     * another host, unplugged, gets its error now; pools would redirect) */
    for (guint i = 0; i < x->ova->disks->len; i++) {
        VdiTarget t;
        if (vdi_target_read(x->ova->disks->pdata[i], &t, err) < 0)
            goto fail;
        vdi_target_clear(&t);
    }
    x->enc = xva_encoder_new(opt->compression);
    x->tar = g_byte_array_new();
    x->out = g_byte_array_new();
    x->buf = g_malloc(BLOCK);
    size_t len = strlen(x->ova->xml);
    xva_tar_append_header(x->tar, "ova.xml", len, g_get_real_time() / G_USEC_PER_SEC);
    g_byte_array_append(x->tar, (const guint8 *)x->ova->xml, (guint)len);
    xva_tar_append_padding(x->tar, len);
    return x;
fail:
    xva_export_free(x);
    return NULL;
}

/* Reads the next block of the current disk into buf: its length. */
static ssize_t read_block(XvaExport *x, XapiError **err)
{
    size_t want = (size_t)MIN((int64_t)BLOCK, x->disk_size - x->pos), got = 0;
    while (got < want) {
        ssize_t n = vdi_export_read(x->ex, x->pos + (int64_t)got, x->buf + got, want - got, err);
        if (n < 0)
            return -1;
        if (n == 0)
            return xapi_error_set(err, "VDI_IO_ERROR", "the disk ended early", NULL);
        got += (size_t)n;
    }
    return (ssize_t)got;
}

static void append_block(XvaExport *x, size_t len)
{
    char name[64];
    g_snprintf(name, sizeof name, "%s/%08u", (char *)x->ova->ids->pdata[x->disk], x->block);
    xva_tar_append_header(x->tar, name, len, 0);
    g_byte_array_append(x->tar, x->buf, (guint)len);
    xva_tar_append_padding(x->tar, len);
    char hash[17];
    g_snprintf(hash, sizeof hash, "%016" G_GINT64_MODIFIER "X", (guint64)XXH64(x->buf, len, 0));
    g_autofree char *hash_name = g_strconcat(name, ".xxhash", NULL);
    xva_tar_append_header(x->tar, hash_name, 16, 0);
    g_byte_array_append(x->tar, (const guint8 *)hash, 16);
    xva_tar_append_padding(x->tar, 16);
}

/* Adds the next piece of the tar: a block of a disk, or the end. */
static int produce(XvaExport *x, XapiError **err)
{
    if (x->disk >= x->ova->disks->len) {
        xva_tar_append_end(x->tar);
        x->ended = true;
        return 0;
    }
    if (!x->ex) {
        x->ex = vdi_export_begin(x->ova->disks->pdata[x->disk], NULL, VDI_STREAM_RAW, x->task,
                                 err);
        if (!x->ex)
            return -1;
        x->disk_size = vdi_export_length(x->ex);
        x->pos = 0;
        x->block = 0;
    }
    if (x->pos < x->disk_size) {
        ssize_t n = read_block(x, err);
        if (n < 0)
            return -1;
        bool first = x->pos == 0, last = x->pos + n >= x->disk_size;
        gint64 now = g_get_monotonic_time();
        if (first || last || !all_zero(x->buf, (size_t)n)) {
            append_block(x, (size_t)n);
            x->last_output = now;
        } else if (now - x->last_output >= KEEPALIVE_US) {
            /* an empty block of its own number: the numbers run ahead of
             * the offset from here on, as XAPI's do */
            append_block(x, 0);
            x->block++;
            x->last_output = now;
        }
        x->pos += n;
        x->block++;
        x->done_bytes += n;
    }
    if (x->pos >= x->disk_size) {
        vdi_export_free(g_steal_pointer(&x->ex));
        x->disk++;
    }
    if (x->task && x->ova->disk_bytes &&
        x->done_bytes - x->reported >= PROGRESS_STEP) {
        x->reported = x->done_bytes;
        task_set_progress(x->task, 0.99 * (double)x->done_bytes / (double)x->ova->disk_bytes);
    }
    return 0;
}

ssize_t xva_export_read(XvaExport *x, void *buf, size_t max, XapiError **err)
{
    while (x->out_pos >= x->out->len) {
        if (x->finished)
            return 0;
        g_byte_array_set_size(x->out, 0);
        x->out_pos = 0;
        if (produce(x, err) < 0)
            return -1;
        xva_encoder_write(x->enc, x->tar->data, x->tar->len, x->ended, x->out);
        g_byte_array_set_size(x->tar, 0);
        x->finished = x->ended;
    }
    size_t n = MIN(max, x->out->len - x->out_pos);
    memcpy(buf, x->out->data + x->out_pos, n);
    x->out_pos += n;
    return (ssize_t)n;
}

void xva_export_free(XvaExport *x)
{
    if (!x)
        return;
    vdi_export_free(x->ex);
    if (x->vm)
        operations_end(&vm_operations, x->vm, x->task);
    if (x->snapshot)
        drop_snapshot(x->snapshot);
    xva_ova_free(x->ova);
    xva_encoder_free(x->enc);
    if (x->tar)
        g_byte_array_free(x->tar, TRUE);
    if (x->out)
        g_byte_array_free(x->out, TRUE);
    g_free(x->buf);
    g_free(x->vm);
    g_free(x->snapshot);
    g_free(x->task);
    g_free(x);
}
