/* fault_vfs.h: the test-only SQLite VFS that fails writes on demand. */
#pragma once

/* The VFS name to open databases with, or NULL when no faults were asked
 * for (XAPID_SQLITE_FAULTS unset): then SQLite's default VFS is used. */
const char *fault_vfs_name(void);
