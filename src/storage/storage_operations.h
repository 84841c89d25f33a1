/* storage_operations.h: the operation locks of SRs and VDIs (operations.h). */
#pragma once

#include "operations.h"
#include "storage.h"

extern const ObjectOperations sr_operations;
extern const ObjectOperations vdi_operations;

/* Whether the SR's driver can do op (a storage_operations name). Lock held. */
bool storage_sr_supports(const DbRow *sr, const char *op);
bool storage_has_capability(const SrDriver *driver, const char *capability);
