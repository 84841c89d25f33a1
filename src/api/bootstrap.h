/* bootstrap.h: first-start objects and the static role objects. */
#pragma once

#include "xapi_error.h"

/* Creates the host's initial objects if the database has no pool yet, and
 * the role objects (never persisted) on every start. */
int bootstrap_database(const char *state_dir, XapiError **err);
