/* qemu_migrate.h: live migration of a QEMU domain (the qemu driver's
 * migrate_send, migrate_receive and migrate_cancel), over a MigrateLink:
 * QEMU migrates to and from an fd (getfd, fd: URI), never a port. */
#pragma once

#include <json-c/json.h>

#include "hv_driver.h"

int qemu_migrate_send(const char *uuid, int conn, const HvMigrateOptions *opts,
                      HvMigrateStats *stats, XapiError **err);
int qemu_migrate_receive(const char *uuid, const Xv *vm, const HvDisk *disks, size_t n_disks,
                         const HvNic *nics, size_t n_nics, int conn, const HvMigrateOptions *opts,
                         XapiError **err);
void qemu_migrate_cancel(const char *uuid);

/* query-migrate's answer as stats (fields it lacks: -1). */
void qemu_migrate_stats_parse(json_object *info, HvMigrateStats *stats);

/* What driver_qemu.c lends this module: its domain, by uuid. */
typedef struct Domain QemuDomain;
QemuDomain *qemu_domain_lookup(const char *uuid, XapiError **err);
/* A QMP command on the domain's monitor (fd: a descriptor sent with it,
 * or -1); its "return" (caller puts), or NULL with err. */
json_object *qemu_domain_command(QemuDomain *d, const char *command, json_object *args, int fd,
                                 XapiError **err);
/* Events on, fd handed to QEMU as name, the last MIGRATION status
 * forgotten. */
int qemu_domain_migration_prepare(QemuDomain *d, int fd, const char *name, XapiError **err);
/* The last MIGRATION status once it is a final one (completed, failed,
 * cancelled), QEMU is gone ("gone") or the monotonic deadline passed (the
 * status then, maybe NULL); caller frees. */
char *qemu_domain_migration_wait(QemuDomain *d, int64_t deadline);
HvState qemu_domain_state(QemuDomain *d);
void qemu_domain_set_state(QemuDomain *d, HvState state);
int qemu_domain_hotplugged_vcpus(QemuDomain *d, XapiError **err);
/* Until the domain's QEMU exited (true) or timeout_ms passed. */
bool qemu_domain_wait_exit(QemuDomain *d, int timeout_ms);
/* The last line QEMU wrote on its stderr (caller frees). */
char *qemu_domain_last_words(QemuDomain *d);
/* destroy(): QEMU stopped, the domain forgotten. */
int qemu_domain_destroy(const char *uuid, XapiError **err);
/* start() without its last step: the domain waits for its state
 * (-incoming defer), paused. */
int qemu_domain_start_incoming(const char *uuid, const Xv *vm, const HvDisk *disks,
                               size_t n_disks, const HvNic *nics, size_t n_nics, XapiError **err);
