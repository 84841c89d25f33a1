/* fault_vfs.c: a SQLite VFS shim that makes writes fail on demand, so that
 * tests can prove a failed commit leaves no trace. It is registered only
 * when the environment names a control file (XAPID_SQLITE_FAULTS=<path>);
 * the file is read before every write, truncate and sync:
 *   absent or empty   no faults
 *   "ioerr"           every write fails with SQLITE_IOERR_WRITE
 *   "full"            every write fails with SQLITE_FULL
 *   "random N SEED"   about one write in N fails (SQLITE_IOERR_WRITE),
 *                     reproducibly for a given SEED
 * Test-only: nothing in xapid's normal path goes through here. */
#include "fault_vfs.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#define FAULT_VFS_NAME "xapid-fault"

typedef struct {
    sqlite3_file base;
    sqlite3_file *real; /* allocated right after this struct */
} FaultFile;

static struct {
    sqlite3_vfs vfs;
    sqlite3_vfs *real;
    char *control_path;
    GMutex lock;
    GRand *rand;
    guint32 seed;
} fault;

/* The error the next write must fail with, or SQLITE_OK. */
static int next_fault(void)
{
    char text[64] = "";
    FILE *f = fopen(fault.control_path, "r");
    if (f) {
        size_t n = fread(text, 1, sizeof text - 1, f);
        text[n] = '\0';
        fclose(f);
    }
    if (g_str_has_prefix(text, "ioerr"))
        return SQLITE_IOERR_WRITE;
    if (g_str_has_prefix(text, "full"))
        return SQLITE_FULL;
    unsigned every = 0, seed = 0;
    if (sscanf(text, "random %u %u", &every, &seed) == 2 && every > 0) {
        g_mutex_lock(&fault.lock);
        if (!fault.rand || fault.seed != seed) {
            g_clear_pointer(&fault.rand, g_rand_free);
            fault.rand = g_rand_new_with_seed(seed);
            fault.seed = seed;
        }
        bool fail = g_rand_int_range(fault.rand, 0, (gint32)every) == 0;
        g_mutex_unlock(&fault.lock);
        return fail ? SQLITE_IOERR_WRITE : SQLITE_OK;
    }
    return SQLITE_OK;
}

#define REAL(f) (((FaultFile *)(f))->real)

static int f_close(sqlite3_file *f)
{
    return REAL(f)->pMethods ? REAL(f)->pMethods->xClose(REAL(f)) : SQLITE_OK;
}
static int f_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
    return REAL(f)->pMethods->xRead(REAL(f), buf, n, off);
}
static int f_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
    int rc = next_fault();
    return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xWrite(REAL(f), buf, n, off);
}
static int f_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    int rc = next_fault();
    return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xTruncate(REAL(f), size);
}
static int f_sync(sqlite3_file *f, int flags)
{
    int rc = next_fault();
    if (rc == SQLITE_IOERR_WRITE)
        rc = SQLITE_IOERR_FSYNC;
    return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int f_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return REAL(f)->pMethods->xFileSize(REAL(f), size);
}
static int f_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int f_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int f_check_lock(sqlite3_file *f, int *out)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int f_control(sqlite3_file *f, int op, void *arg)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int f_sector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int f_device(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int f_shm_map(sqlite3_file *f, int pg, int sz, int extend, void volatile **p)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, extend, p);
}
static int f_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}
static void f_shm_barrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int f_shm_unmap(sqlite3_file *f, int del)
{
    return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}
static int f_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **p)
{
    *p = NULL; /* no memory-mapped reads: every access goes through xRead */
    (void)f, (void)off, (void)n;
    return SQLITE_OK;
}
static int f_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    (void)f, (void)off, (void)p;
    return SQLITE_OK;
}

static const sqlite3_io_methods fault_methods = {
    .iVersion = 3,
    .xClose = f_close,
    .xRead = f_read,
    .xWrite = f_write,
    .xTruncate = f_truncate,
    .xSync = f_sync,
    .xFileSize = f_size,
    .xLock = f_lock,
    .xUnlock = f_unlock,
    .xCheckReservedLock = f_check_lock,
    .xFileControl = f_control,
    .xSectorSize = f_sector,
    .xDeviceCharacteristics = f_device,
    .xShmMap = f_shm_map,
    .xShmLock = f_shm_lock,
    .xShmBarrier = f_shm_barrier,
    .xShmUnmap = f_shm_unmap,
    .xFetch = f_fetch,
    .xUnfetch = f_unfetch,
};

static int fault_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags,
                      int *out_flags)
{
    (void)vfs;
    FaultFile *ff = (FaultFile *)file;
    ff->real = (sqlite3_file *)(ff + 1);
    int rc = fault.real->xOpen(fault.real, name, ff->real, flags, out_flags);
    ff->base.pMethods = ff->real->pMethods ? &fault_methods : NULL;
    return rc;
}

static int fault_delete(sqlite3_vfs *v, const char *name, int sync)
{
    (void)v;
    return fault.real->xDelete(fault.real, name, sync);
}
static int fault_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
    (void)v;
    return fault.real->xAccess(fault.real, name, flags, out);
}
static int fault_full_path(sqlite3_vfs *v, const char *name, int n, char *out)
{
    (void)v;
    return fault.real->xFullPathname(fault.real, name, n, out);
}
static int fault_randomness(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return fault.real->xRandomness(fault.real, n, out);
}
static int fault_sleep(sqlite3_vfs *v, int us)
{
    (void)v;
    return fault.real->xSleep(fault.real, us);
}
static int fault_time(sqlite3_vfs *v, double *out)
{
    (void)v;
    return fault.real->xCurrentTime(fault.real, out);
}
static int fault_last_error(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return fault.real->xGetLastError ? fault.real->xGetLastError(fault.real, n, out) : 0;
}

static void *fault_dl_open(sqlite3_vfs *v, const char *name)
{
    (void)v;
    return fault.real->xDlOpen(fault.real, name);
}
static void fault_dl_error(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    fault.real->xDlError(fault.real, n, out);
}
static void (*fault_dl_sym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
    (void)v;
    return fault.real->xDlSym(fault.real, h, sym);
}
static void fault_dl_close(sqlite3_vfs *v, void *h)
{
    (void)v;
    fault.real->xDlClose(fault.real, h);
}

const char *fault_vfs_name(void)
{
    static gsize once;
    if (g_once_init_enter(&once)) {
        const char *path = g_getenv("XAPID_SQLITE_FAULTS");
        if (path && *path) {
            fault.real = sqlite3_vfs_find(NULL);
            fault.control_path = g_strdup(path);
            fault.vfs = (sqlite3_vfs){
                .iVersion = 1,
                .szOsFile = (int)sizeof(FaultFile) + fault.real->szOsFile,
                .mxPathname = fault.real->mxPathname,
                .zName = FAULT_VFS_NAME,
                .xOpen = fault_open,
                .xDelete = fault_delete,
                .xAccess = fault_access,
                .xFullPathname = fault_full_path,
                .xDlOpen = fault_dl_open,
                .xDlError = fault_dl_error,
                .xDlSym = fault_dl_sym,
                .xDlClose = fault_dl_close,
                .xRandomness = fault_randomness,
                .xSleep = fault_sleep,
                .xCurrentTime = fault_time,
                .xGetLastError = fault_last_error,
            };
            sqlite3_vfs_register(&fault.vfs, 0);
            g_warning("store: SQLite writes go through the fault shim (control file %s)", path);
        }
        g_once_init_leave(&once, 1);
    }
    return fault.control_path ? FAULT_VFS_NAME : NULL;
}
