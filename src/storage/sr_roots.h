/* sr_roots.h: where SRs may live. An SR's device_config:location must
 * lead (symbolic links resolved) to a directory at or below one of the
 * configured roots (STATE_DIR/sr and STATE_DIR/iso, and those given with
 * --sr-root): an API caller cannot point an SR at /etc, nor reach outside
 * a root through a link planted inside it. Checked at SR.create, SR.probe,
 * PBD.plug, SR.destroy and at start-up. */
#pragma once

#include "xapi_error.h"

/* The roots: the state directory's own, then extra (NULL-terminated, may
 * be NULL), each an existing directory; resolved once. */
int sr_roots_init(const char *state_dir, const char *const *extra, XapiError **err);
/* 0 if location may hold an SR; else INVALID_VALUE
 * ["device_config:location", location]. The directory need not exist
 * yet (SR.create makes it): what does not exist of it must be plain
 * names (no "", "." or ".."). */
int sr_roots_check(const char *location, XapiError **err);
