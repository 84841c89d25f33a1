/* pending_files.h: image files that an operation is about to create or has
 * just stopped recording, noted durably in the database so that a crash in
 * between never leaves an orphan: at the next start, a noted file that no
 * VDI record names is removed (before the SR scan, which would otherwise
 * take the orphan for a new VDI). */
#pragma once

#include "xapi_error.h"

/* Notes path before the file is created (its own transaction, or the
 * calling thread's open one), or inside the transaction that deletes the
 * VDI record naming it. */
int pending_file_note(const char *path, XapiError **err);
/* The file is recorded by a VDI, or gone: forgets the note (best effort). */
void pending_file_done(const char *path);
/* At start-up, database loaded: removes every noted file that no VDI names. */
void pending_files_sweep(void);
