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
/* Secure Boot: the build that keeps its keys under SMM, and a store with
 * Microsoft's keys enrolled (PK/KEK/db/dbx), as XAPI's pool certificates. */
#define OVMF_SECBOOT_CODE "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
#define OVMF_SECBOOT_VARS "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"

/* The variable stores live in STATE_DIR/nvram. */
int vm_nvram_init(const char *state_dir, XapiError **err);

/* HVM_boot_params:firmware is "uefi" (record: VM.get_record's struct). */
bool vm_nvram_uefi(const Xv *record);

/* This host has the Secure Boot firmware and its enrolled store. */
bool vm_nvram_secureboot_available(void);

/* The domain boots with Secure Boot: UEFI and platform:secureboot "true"
 * or "1", or "auto" where this host has the keys (XAPI: where the pool
 * has certificates). Such a domain is a q35 machine with SMM. */
bool vm_nvram_secureboot(const Xv *record);
bool vm_nvram_secureboot_row(const DbRow *vm); /* the same of a VM row (lock held) */

/* Such a domain's disks and NICs are not hot-plugged: OPERATION_NOT_ALLOWED. */
int vm_nvram_check_hotplug(const DbRow *vm, XapiError **err);

/* The firmware image and the empty (or enrolled) store for the record. */
const char *vm_nvram_code(const Xv *record);
const char *vm_nvram_template(const Xv *record);

/* The domain's variable store (caller frees). */
char *vm_nvram_path(const char *uuid);

/* Before a UEFI domain starts: its store from NVRAM:EFI-variables, or
 * OVMF's empty one (under Secure Boot the one with Microsoft's keys) when
 * there are none yet. A store that is not the size of this firmware's
 * (also one written by the other build: Secure Boot's is 4 MiB flash) is
 * INVALID_VALUE [NVRAM:EFI-variables, ...]. Nothing for BIOS. */
int vm_nvram_prepare(const char *uuid, const Xv *record, XapiError **err);

/* After the domain ended (write lock held): what the firmware wrote goes
 * back into NVRAM:EFI-variables. */
int vm_nvram_capture(DbRow *vm, XapiError **err);
