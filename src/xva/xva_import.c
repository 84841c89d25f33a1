/* xva_import.c: XVA streams made into VMs (see xva_import.h). */
#include "xva_import.h"

#include <string.h>
#include <xxhash.h>

#include "bootstrap.h"
#include "call.h"
#include "db.h"
#include "dm_handlers.h"
#include "vdi_transfer.h"
#include "xva_codec.h"
#include "xva_ova.h"
#include "xva_records.h"
#include "xva_tar.h"
#include "xv.h"

#define NULL_REF "OpaqueRef:NULL"
#define OVA_MAX ((size_t)64 << 20)   /* ova.xml of thousands of VMs still fits */
#define BLOCK_MAX ((size_t)64 << 20) /* a block is 1 MiB; others write no more */
#define SUM_MAX 64

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

typedef struct {
    char *ref;
    int64_t virtual_size;
    bool created;  /* made by this import (destroyed if it fails) */
    VdiImport *im; /* its blocks being written */
    int64_t offset;
    long last_block; /* -1: none yet */
} Disk;

typedef enum { ENTRY_NONE, ENTRY_OVA, ENTRY_BLOCK, ENTRY_SUM, ENTRY_SKIP } EntryKind;

struct XvaImport {
    XvaImportOptions opt;
    char *sr;
    char *task;
    /* detection: the first block, before the format is known */
    guint8 head[XVA_TAR_BLOCK];
    size_t head_len;
    XvaDecoder *dec;
    /* the tar */
    guint8 hdr[XVA_TAR_BLOCK];
    size_t hdr_len;
    EntryKind kind;
    char *name;         /* the entry's */
    uint64_t left, pad; /* data and padding still to come */
    GString *data;      /* ova.xml, a block, a checksum */
    bool ended;         /* the tar's end came */
    /* ova.xml */
    Xv *ova;
    GHashTable *objects; /* id -> snapshot struct (borrowed from ova) */
    GHashTable *classes; /* id -> class name (borrowed) */
    GHashTable *disks;   /* id -> Disk */
    /* the block waiting for its checksum */
    char *block_name;
    GString *block;
    Disk *disk;          /* whose blocks come now */
    int64_t first_block_size; /* -1: none yet */
    bool committed;
    GPtrArray *new_vms;  /* as the task's result names them */
    XapiError *error;    /* of a sink called by the decoder */
};

static void disk_free(gpointer p)
{
    Disk *d = p;
    vdi_import_free(d->im);
    g_free(d->ref);
    g_free(d);
}

XvaImport *xva_import_begin(const XvaImportOptions *opt, const char *task_ref)
{
    XvaImport *im = g_new0(XvaImport, 1);
    im->opt = *opt;
    im->sr = g_strdup(opt->sr);
    im->opt.sr = im->sr;
    im->task = g_strdup(task_ref);
    im->data = g_string_new(NULL);
    im->block = g_string_new(NULL);
    im->objects = g_hash_table_new(g_str_hash, g_str_equal);
    im->classes = g_hash_table_new(g_str_hash, g_str_equal);
    im->disks = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, disk_free);
    im->first_block_size = -1;
    im->new_vms = g_ptr_array_new_with_free_func(g_free);
    return im;
}

/* ---- ova.xml: what the file holds, and its disks made ------------------------------- */

static const char *class_of(XvaImport *im, const char *id)
{
    return g_hash_table_lookup(im->classes, id);
}

/* The format's version must be the one this reader knows (export_vsn 2:
 * a checksum after each block, no table at the end). XAPI compares the
 * exporter's xapi version with its own instead; xapid reads the format, so
 * a file of XenServer's newest xapi imports as long as its format is 2. */
static int check_version(const Xv *version, XapiError **err)
{
    if (xva_snap_int(version, "export_vsn") != 2)
        return xapi_error_set(err, "IMPORT_INCOMPATIBLE_VERSION", NULL);
    return 0;
}

static int create_disk(XvaImport *im, const char *id, const Xv *snap, XapiError **err)
{
    Xv *rec = xv_new_struct();
    xv_struct_set_string(rec, "name_label", xva_snap_str(snap, "name_label"));
    xv_struct_set_string(rec, "name_description", xva_snap_str(snap, "name_description"));
    xv_struct_set_string(rec, "SR", im->sr);
    xv_struct_set(rec, "virtual_size", xv_new_int(xva_snap_int(snap, "virtual_size")));
    const char *type = xva_snap_str(snap, "type");
    xv_struct_set_string(rec, "type", *type ? type : "user");
    xv_struct_set(rec, "sharable", xv_new_bool(xva_snap_bool(snap, "sharable")));
    xv_struct_set(rec, "read_only", xv_new_bool(xva_snap_bool(snap, "read_only")));
    const Xv *oc = xv_struct_get(snap, "other_config");
    Xv *other = oc && oc->kind == XV_STRUCT ? xv_dup(oc) : xv_new_struct();
    xv_struct_set_string(other, XVA_PENDING_KEY, "true");
    xv_struct_set(rec, "other_config", other);
    Call sub = {.msg = dm_message_by_wire_name("VDI.create"), .task_ref = im->task};
    Xv *result = NULL;
    int rc = xapi_VDI_create(&sub, rec, &result);
    xv_free(rec);
    if (rc < 0) {
        *err = sub.error;
        return -1;
    }
    Disk *d = g_new0(Disk, 1);
    d->ref = g_strdup(xv_str(result));
    d->virtual_size = xva_snap_int(snap, "virtual_size");
    d->created = true;
    d->last_block = -1;
    xv_free(result);
    g_hash_table_insert(im->disks, g_strdup(id), d);
    return 0;
}

/* Metadata only: the disk of that uuid, wherever it is. */
static int find_disk(XvaImport *im, const char *id, const Xv *snap, XapiError **err)
{
    db_read_begin();
    DbRow *vdi = db_lookup_uuid(cls("VDI"), xva_snap_str(snap, "uuid"));
    char *ref = vdi ? g_strdup(vdi->ref) : NULL;
    db_read_end();
    if (!ref)
        return xapi_error_set(err, "IMPORT_ERROR_ATTACHED_DISKS_NOT_FOUND", NULL);
    Disk *d = g_new0(Disk, 1);
    d->ref = ref;
    d->last_block = -1;
    g_hash_table_insert(im->disks, g_strdup(id), d);
    return 0;
}

/* The VDIs of the VMs' disks (not CDs), each once. */
static int make_disks(XvaImport *im, XapiError **err)
{
    const Xv *objects = xv_struct_get(im->ova, "objects");
    for (guint i = 0; i < xv_len(objects); i++) {
        const Xv *snap = xv_struct_get(xv_at(objects, i), "snapshot");
        const char *id = xva_snap_str(xv_at(objects, i), "id");
        if (g_strcmp0(class_of(im, id), "VBD") != 0 || strcmp(xva_snap_str(snap, "type"), "CD") == 0)
            continue;
        const char *vdi = xva_snap_str(snap, "VDI");
        if (g_strcmp0(class_of(im, xva_snap_str(snap, "VM")), "VM") != 0 ||
            g_strcmp0(class_of(im, vdi), "VDI") != 0 || g_hash_table_contains(im->disks, vdi))
            continue;
        const Xv *vdi_snap = g_hash_table_lookup(im->objects, vdi);
        if ((im->opt.metadata_only ? find_disk(im, vdi, vdi_snap, err)
                                   : create_disk(im, vdi, vdi_snap, err)) < 0)
            return -1;
    }
    return 0;
}

static int read_ova(XvaImport *im, XapiError **err)
{
    im->ova = xva_ova_parse(im->data->str, im->data->len, err);
    if (!im->ova)
        return -1;
    const Xv *objects = xv_struct_get(im->ova, "objects");
    for (guint i = 0; i < xv_len(objects); i++) {
        const Xv *o = xv_at(objects, i);
        const Xv *snap = xv_struct_get(o, "snapshot");
        const char *id = xva_snap_str(o, "id");
        if (!*id || !snap || snap->kind != XV_STRUCT)
            return xapi_error_set(err, "IMPORT_ERROR_GENERIC", "ova.xml: an object without id",
                                  NULL);
        g_hash_table_insert(im->objects, (char *)id, (gpointer)snap);
        g_hash_table_insert(im->classes, (char *)id, (char *)xva_snap_str(o, "class"));
    }
    if (check_version(xv_struct_get(im->ova, "version"), err) < 0)
        return -1;
    return make_disks(im, err);
}

/* ---- disk blocks --------------------------------------------------------------------- */

static const guint8 zero_block[1 << 20];

/* Writes len bytes of data (NULL: zeros) at the disk's offset, up to its
 * virtual size (import.ml stops there too). */
static int disk_put(Disk *d, const guint8 *data, int64_t len, XapiError **err)
{
    len = MIN(len, d->virtual_size - d->offset);
    while (len > 0) {
        size_t n = data ? (size_t)len : MIN((size_t)len, sizeof zero_block);
        if (vdi_import_write(d->im, data ? data : zero_block, n, err) < 0)
            return -1;
        d->offset += (int64_t)n;
        len -= (int64_t)n;
        if (data)
            data += n;
    }
    return 0;
}

static int disk_end(Disk *d, XapiError **err)
{
    if (!d || !d->im)
        return 0;
    int rc = vdi_import_finish(d->im, err);
    vdi_import_free(g_steal_pointer(&d->im));
    return rc;
}

/* "Ref:3/00000012" -> the id and the number. */
static bool parse_block_name(const char *name, char **id, long *number)
{
    const char *slash = strrchr(name, '/');
    if (!slash || strlen(slash + 1) != 8)
        return false;
    for (const char *p = slash + 1; *p; p++)
        if (!g_ascii_isdigit(*p))
            return false;
    *id = g_strndup(name, (gsize)(slash - name));
    *number = strtol(slash + 1, NULL, 10);
    return true;
}

/* A block's entry is in (held until its checksum is): the disk it goes to. */
static int block_begins(XvaImport *im, const char *name, XapiError **err)
{
    g_autofree char *id = NULL;
    long number;
    if (!parse_block_name(name, &id, &number))
        return xapi_error_set(err, "IMPORT_ERROR_UNEXPECTED_FILE", "Ref:<id>/<8 digits>", name,
                              NULL);
    Disk *d = g_hash_table_lookup(im->disks, id);
    if (!d)
        return xapi_error_set(err, "IMPORT_ERROR_FAILED_TO_FIND_OBJECT", id, NULL);
    if (d != im->disk) {
        if (disk_end(im->disk, err) < 0)
            return -1;
        if (d->last_block >= 0 || d->im) /* a disk's blocks come together */
            return xapi_error_set(err, "IMPORT_ERROR_UNEXPECTED_FILE", "", name, NULL);
        d->im = vdi_import_begin(d->ref, VDI_STREAM_RAW, -1, im->task, err);
        if (!d->im)
            return -1;
        im->disk = d;
    }
    if (number <= d->last_block) /* the suffixes only increase */
        return xapi_error_set(err, "IMPORT_ERROR_UNEXPECTED_FILE", "", name, NULL);
    /* A jump of k numbers is k - 1 blocks of zeros (the size of the
     * import's first block): the exporter left them out. */
    long skipped = number - d->last_block - 1;
    if (skipped > 0 && im->first_block_size > 0 &&
        disk_put(d, NULL, skipped * im->first_block_size, err) < 0)
        return -1;
    d->last_block = number;
    g_free(im->block_name);
    im->block_name = g_strdup(name);
    return 0;
}

static bool checksum_matches(const GString *block, const char *kind, const GString *sum)
{
    g_autofree char *want = g_strstrip(g_strndup(sum->str, sum->len));
    if (strcmp(kind, "xxhash") == 0) {
        char got[17];
        g_snprintf(got, sizeof got, "%016" G_GINT64_MODIFIER "X",
                   (guint64)XXH64(block->str, block->len, 0));
        return g_ascii_strcasecmp(got, want) == 0;
    }
    g_autofree char *got =
        g_compute_checksum_for_data(G_CHECKSUM_SHA1, (const guchar *)block->str, block->len);
    return g_ascii_strcasecmp(got, want) == 0;
}

/* The held block's checksum is in: checked, then the block written. */
static int block_checked(XvaImport *im, const char *kind, XapiError **err)
{
    if (!checksum_matches(im->block, kind, im->data) && !im->opt.force)
        return xapi_error_set(err, "IMPORT_ERROR_SOME_CHECKSUMS_FAILED", NULL);
    if (im->first_block_size < 0 && im->block->len)
        im->first_block_size = (int64_t)im->block->len;
    int rc = disk_put(im->disk, (const guint8 *)im->block->str, (int64_t)im->block->len, err);
    g_clear_pointer(&im->block_name, g_free);
    g_string_truncate(im->block, 0);
    return rc;
}

/* A block with no checksum after it: only a keep-alive's empty entry. */
static int block_unchecked(XvaImport *im, XapiError **err)
{
    if (!im->block_name)
        return 0;
    if (im->block->len) {
        g_autofree char *want = g_strconcat(im->block_name, ".xxhash", NULL);
        return xapi_error_set(err, "IMPORT_ERROR_UNEXPECTED_FILE", want, im->name ? im->name : "",
                              NULL);
    }
    g_clear_pointer(&im->block_name, g_free);
    return 0;
}

/* ---- the tar -------------------------------------------------------------------------- */

/* The header of the next entry: what it is, and whether it may come now. */
static int entry_begins(XvaImport *im, XapiError **err)
{
    const char *name = im->name;
    if (!im->ova) {
        if (strcmp(name, "ova.xml") != 0)
            return xapi_error_set(err, "IMPORT_ERROR_UNEXPECTED_FILE", "ova.xml", name, NULL);
        if (im->left > OVA_MAX)
            return xapi_error_set(err, "IMPORT_ERROR_GENERIC", "ova.xml is too large", NULL);
        im->kind = ENTRY_OVA;
        return 0;
    }
    const char *dot = strrchr(name, '.');
    const char *slash = strrchr(name, '/');
    if (dot && slash && dot > slash &&
        (strcmp(dot, ".xxhash") == 0 || strcmp(dot, ".checksum") == 0)) {
        if (!im->block_name || strncmp(name, im->block_name, (size_t)(dot - name)) != 0 ||
            im->block_name[dot - name] || im->left > SUM_MAX)
            return xapi_error_set(err, "IMPORT_ERROR_UNEXPECTED_FILE",
                                  im->block_name ? im->block_name : "", name, NULL);
        im->kind = ENTRY_SUM;
        return 0;
    }
    if (block_unchecked(im, err) < 0)
        return -1;
    if (im->opt.metadata_only) { /* an export's disks: not read here */
        im->kind = ENTRY_SKIP;
        return 0;
    }
    if (im->left > BLOCK_MAX)
        return xapi_error_set(err, "IMPORT_ERROR_GENERIC", "a block larger than 64 MiB", NULL);
    im->kind = ENTRY_BLOCK;
    return block_begins(im, name, err);
}

static int entry_ends(XvaImport *im, XapiError **err)
{
    int rc = 0;
    switch (im->kind) {
    case ENTRY_OVA:
        rc = read_ova(im, err);
        break;
    case ENTRY_SUM:
        rc = im->opt.metadata_only
                 ? 0
                 : block_checked(im, strrchr(im->name, '.') + 1, err);
        break;
    case ENTRY_BLOCK: /* held in im->block until its checksum */
    case ENTRY_SKIP:
    case ENTRY_NONE:
        break;
    }
    g_string_truncate(im->data, 0);
    g_clear_pointer(&im->name, g_free);
    im->kind = ENTRY_NONE;
    return rc;
}

/* The tar's bytes, as the decoder hands them out. */
static int tar_feed(void *ctx, const guint8 *p, size_t len)
{
    XvaImport *im = ctx;
    XapiError **err = &im->error;
    while (len > 0 && !im->ended) {
        if (im->left > 0) {
            size_t n = (size_t)MIN((uint64_t)len, im->left);
            if (im->kind != ENTRY_SKIP)
                g_string_append_len(im->kind == ENTRY_BLOCK ? im->block : im->data,
                                    (const char *)p, (gssize)n);
            im->left -= n;
            p += n;
            len -= n;
            if (im->left == 0 && entry_ends(im, err) < 0)
                return -1;
            continue;
        }
        if (im->pad > 0) {
            size_t n = (size_t)MIN((uint64_t)len, im->pad);
            im->pad -= n;
            p += n;
            len -= n;
            continue;
        }
        size_t n = MIN(len, XVA_TAR_BLOCK - im->hdr_len);
        memcpy(im->hdr + im->hdr_len, p, n);
        im->hdr_len += n;
        p += n;
        len -= n;
        if (im->hdr_len < XVA_TAR_BLOCK)
            continue;
        im->hdr_len = 0;
        uint64_t size = 0;
        switch (xva_tar_parse_header(im->hdr, &im->name, &size)) {
        case XVA_TAR_END:
            if (block_unchecked(im, err) < 0)
                return -1;
            im->ended = true;
            break;
        case XVA_TAR_BAD:
            return xapi_error_set(err, "IMPORT_ERROR_GENERIC", "not a tar header", NULL);
        case XVA_TAR_ENTRY:
            im->left = size;
            im->pad = xva_tar_padding(size);
            if (entry_begins(im, err) < 0)
                return -1;
            if (size == 0 && entry_ends(im, err) < 0)
                return -1;
            break;
        }
    }
    return 0;
}

/* The first block says which format the stream is in (import.ml: a tar
 * header, else zstd's magic, else gzip). Any tar header counts, so that a
 * tar whose first file is not ova.xml gets IMPORT_ERROR_UNEXPECTED_FILE. */
static XvaCompression detect(const guint8 *head, size_t len)
{
    g_autofree char *name = NULL;
    uint64_t size;
    if (len == XVA_TAR_BLOCK && xva_tar_parse_header(head, &name, &size) == XVA_TAR_ENTRY)
        return XVA_PLAIN;
    static const guint8 zstd_magic[] = {0x28, 0xB5, 0x2F, 0xFD};
    if (len >= 4 && memcmp(head, zstd_magic, 4) == 0)
        return XVA_ZSTD;
    return XVA_GZIP;
}

static int decode(XvaImport *im, const void *data, size_t len, XapiError **err)
{
    g_autofree char *why = NULL;
    if (xva_decoder_write(im->dec, data, len, tar_feed, im, &why) == 0)
        return 0;
    if (im->error) {
        *err = g_steal_pointer(&im->error);
        return -1;
    }
    return xapi_error_set(err, "IMPORT_ERROR_GENERIC", why ? why : "corrupt stream", NULL);
}

int xva_import_write(XvaImport *im, const void *data, size_t len, XapiError **err)
{
    if (!im->dec) {
        size_t n = MIN(len, XVA_TAR_BLOCK - im->head_len);
        memcpy(im->head + im->head_len, data, n);
        im->head_len += n;
        data = (const guint8 *)data + n;
        len -= n;
        if (im->head_len < XVA_TAR_BLOCK)
            return 0;
        im->dec = xva_decoder_new(detect(im->head, im->head_len));
        if (decode(im, im->head, im->head_len, err) < 0)
            return -1;
    }
    return len ? decode(im, data, len, err) : 0;
}

int xva_import_finish(XvaImport *im, char **result, XapiError **err)
{
    if (!im->dec && im->head_len) { /* shorter than a tar block */
        im->dec = xva_decoder_new(detect(im->head, im->head_len));
        if (decode(im, im->head, im->head_len, err) < 0)
            return -1;
    }
    if (!im->ova || (!im->ended && !im->opt.metadata_only) || im->left || im->kind != ENTRY_NONE)
        return xapi_error_set(err, "IMPORT_ERROR_PREMATURE_EOF", NULL);
    if (block_unchecked(im, err) < 0 || disk_end(im->disk, err) < 0)
        return -1;
    im->disk = NULL;
    g_autoptr(GHashTable) disk_refs = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GPtrArray) made = g_ptr_array_new();
    GHashTableIter it;
    gpointer id, value;
    g_hash_table_iter_init(&it, im->disks);
    while (g_hash_table_iter_next(&it, &id, &value)) {
        Disk *d = value;
        g_hash_table_insert(disk_refs, id, d->ref);
        if (d->created)
            g_ptr_array_add(made, d->ref);
    }
    XvaRecords r = {.ova = im->ova, .objects = im->objects, .disks = disk_refs,
                    .made_disks = made, .restore = im->opt.restore,
                    .dry_run = im->opt.dry_run};
    if (xva_records_write(&r, im->new_vms, result, err) < 0)
        return -1;
    im->committed = true;
    return 0;
}

const GPtrArray *xva_import_new_vms(const XvaImport *im)
{
    return im->new_vms;
}

static bool first_pool(DbRow *row, void *ctx)
{
    *(DbRow **)ctx = row;
    return false;
}

char *xva_import_target_sr(const char *ref, const char *uuid, XapiError **err)
{
    char *out = NULL;
    db_read_begin();
    const DmClass *sr_cls = cls("SR");
    DbRow *sr = NULL;
    if (ref && *ref && strcmp(ref, NULL_REF) != 0) {
        sr = db_lookup(sr_cls, ref);
    } else if (uuid && *uuid) {
        sr = db_lookup_uuid(sr_cls, uuid);
    } else {
        DbRow *pool = NULL;
        db_foreach(cls("pool"), first_pool, &pool);
        sr = pool ? db_lookup(sr_cls, xv_str(db_get(pool, "default_SR"))) : NULL;
    }
    if (sr && strcmp(xv_str(db_get(sr, "content_type")), "iso") == 0)
        xapi_error_set(err, "SR_OPERATION_NOT_SUPPORTED", sr->ref, NULL);
    else if (sr)
        out = g_strdup(sr->ref);
    db_read_end();
    if (!out && ref && *ref && strcmp(ref, NULL_REF) != 0)
        xapi_error_set(err, "HANDLE_INVALID", "SR", ref, NULL);
    else if (!out && uuid && *uuid)
        xapi_error_set(err, "UUID_INVALID", "SR", uuid, NULL);
    else if (!out)
        xapi_error_set(err, "DEFAULT_SR_NOT_FOUND", NULL);
    return out;
}

/* ---- undo ---------------------------------------------------------------------------- */

static void destroy_vdi(const char *ref)
{
    Call sub = {.msg = dm_message_by_wire_name("VDI.destroy")};
    if (xapi_VDI_destroy(&sub, ref) < 0)
        g_warning("xva: cannot destroy %s, left by an import: %s", ref, sub.error->code);
    xapi_error_free(sub.error);
}

void xva_import_free(XvaImport *im)
{
    if (!im)
        return;
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, im->disks);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        Disk *d = value;
        vdi_import_free(g_steal_pointer(&d->im));
        if (d->created && !im->committed)
            destroy_vdi(d->ref);
    }
    g_hash_table_destroy(im->disks);
    g_ptr_array_free(im->new_vms, TRUE);
    g_hash_table_destroy(im->objects);
    g_hash_table_destroy(im->classes);
    xv_free(im->ova);
    xva_decoder_free(im->dec);
    g_string_free(im->data, TRUE);
    g_string_free(im->block, TRUE);
    xapi_error_free(im->error);
    g_free(im->block_name);
    g_free(im->name);
    g_free(im->sr);
    g_free(im->task);
    g_free(im);
}

static bool pending_vdi(DbRow *vdi, void *ctx)
{
    const Xv *oc = db_get(vdi, "other_config");
    if (oc && xv_struct_get(oc, XVA_PENDING_KEY))
        g_ptr_array_add(ctx, g_strdup(vdi->ref));
    return true;
}

void xva_import_sweep(void)
{
    g_autoptr(GPtrArray) refs = g_ptr_array_new_with_free_func(g_free);
    db_read_begin();
    db_foreach(cls("VDI"), pending_vdi, refs);
    db_read_end();
    for (guint i = 0; i < refs->len; i++) {
        g_message("xva: destroying %s, made by an import that did not finish",
                  (char *)refs->pdata[i]);
        destroy_vdi(refs->pdata[i]);
    }
}
