/* sr_roots.h: where SRs may live. An SR's device_config:location must be
 * a directory at or below one of the configured roots (STATE_DIR/sr and
 * STATE_DIR/iso, and those given with --sr-root), named by an absolute
 * path with no symbolic link, "." or ".." on the way: an API caller cannot
 * point an SR at /etc, nor reach outside a root through a link. */
#pragma once

#include "xapi_error.h"

/* The roots: the state directory's own, then extra (NULL-terminated, may
 * be NULL), each an existing directory; resolved once. */
int sr_roots_init(const char *state_dir, const char *const *extra, XapiError **err);
/* 0 if location may hold an SR; else INVALID_VALUE
 * ["device_config:location", location]. The directory need not exist
 * yet (SR.create makes it); what exists of it must not be a link. */
int sr_roots_check(const char *location, XapiError **err);
