/* boot_config.h: the default entry of a guest's boot loader
 * configuration (GRUB 2's grub.cfg, GRUB legacy's menu.lst, SYSLINUX's
 * extlinux.conf/syslinux.cfg), as pygrub picks it. Text in, paths out:
 * reading the disk is vm_bootloader.c's. */
#pragma once

#include <glib.h>

typedef enum { BOOT_CONFIG_GRUB2, BOOT_CONFIG_GRUB_LEGACY, BOOT_CONFIG_SYSLINUX } BootConfigKind;

typedef struct {
    char *title;       /* the entry's title or label ("" if none) */
    char *kernel;      /* as written, a GRUB device prefix "(hd0,1)" removed */
    GPtrArray *initrds; /* of char *, in order (their contents are concatenated) */
    char *args;        /* the kernel's command line ("" if none) */
} BootEntry;

void boot_entry_clear(BootEntry *e);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(BootEntry, boot_entry_clear)

/* The default entry of text (a configuration of kind): true with *out
 * filled, or false with *why (caller frees) saying what was missing. */
gboolean boot_config_default_entry(BootConfigKind kind, const char *text, BootEntry *out,
                                   char **why);
