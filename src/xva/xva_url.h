/* xva_url.h: VM.import's fetch: an XVA read from an http(s) URL (a GET, as
 * XAPI's Import.import_from_url) straight into an import. */
#pragma once

#include <stdbool.h>

#include "xapi_error.h"
#include "xv.h"

/* Imports the XVA at url onto sr (a ref; NULL or null: the default SR).
 * *vms: the new VMs' refs (an array). IMPORT_ERROR_GENERIC when the URL
 * cannot be fetched. */
int xva_import_url(const char *url, const char *sr, bool restore, bool force,
                   const char *task_ref, Xv **vms, XapiError **err);
