/* qemu_platform.h: the VM's platform keys, bios_strings and xenstore_data
 * as QEMU options, and the ones QEMU is not given refused (one table for
 * both). */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "xapi_error.h"
#include "xv.h"

/* What the platform keys add to the command line (each member owned). */
typedef struct {
    GString *machine; /* appended to -machine pc,accel=...: ",acpi=off" */
    GString *cpu;     /* appended to -cpu MODEL: ",-nx,hv-relaxed=on" */
    char *vga;        /* -vga: "std" or "cirrus" */
    GPtrArray *args;  /* other arguments: -rtc, -global, -device usb-tablet, -smbios */
    int64_t cores_per_socket; /* 0: QEMU's default topology (a socket per vCPU) */
} QemuPlatform;

void qemu_platform_clear(QemuPlatform *p);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(QemuPlatform, qemu_platform_clear)

/* Checks vm's platform, bios_strings and xenstore_data (vm: VM.get_record's struct) as
 * the QEMU driver under accel ("kvm" or "tcg") would give them: a key XAPI
 * gives a meaning that QEMU is not given is VALUE_NOT_SUPPORTED
 * [platform:KEY, value, why]; a value out of XAPI's range INVALID_VALUE
 * [platform:KEY, value]. Keys XAPI gives no meaning are ignored, as XAPI's
 * xenopsd does. */
int qemu_platform_check(const Xv *vm, const char *accel, XapiError **err);

/* The options for them; now: the host's time (seconds since the epoch)
 * that platform:timeoffset counts from. Fails as qemu_platform_check. */
int qemu_platform_options(const Xv *vm, const char *accel, int64_t now, QemuPlatform *out,
                          XapiError **err);

/* The platform section of docs/compat.md. */
void qemu_platform_markdown(GString *out);
