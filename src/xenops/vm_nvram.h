/* vm_nvram.h: UEFI firmware (OVMF) and a VM's EFI variables, kept in its
 * NVRAM field as XAPI keeps them ("EFI-variables", base64). */
#pragma once

#include <stdbool.h>

#include "db.h"
#include "xapi_error.h"
#include "xv.h"

/* Debian's ovmf package: the firmware and its empty variable store. */
#define OVMF_CODE "/usr/share/OVMF/OVMF_CODE.fd"
#define OVMF_VARS "/usr/share/OVMF/OVMF_VARS.fd"
#define NVRAM_EFI_KEY "EFI-variables"

/* The variable stores live in STATE_DIR/nvram. */
int vm_nvram_init(const char *state_dir, XapiError **err);

/* HVM_boot_params:firmware is "uefi" (record: VM.get_record's struct). */
bool vm_nvram_uefi(const Xv *record);

/* The domain's variable store (caller frees). */
char *vm_nvram_path(const char *uuid);

/* Before a UEFI domain starts: its store from NVRAM:EFI-variables, or
 * OVMF's empty one when there are none yet. A store that is not OVMF's
 * size is INVALID_VALUE [NVRAM:EFI-variables, ...]. Nothing for BIOS. */
int vm_nvram_prepare(const char *uuid, const Xv *record, XapiError **err);

/* After the domain ended (write lock held): what the firmware wrote goes
 * back into NVRAM:EFI-variables. */
int vm_nvram_capture(DbRow *vm, XapiError **err);
