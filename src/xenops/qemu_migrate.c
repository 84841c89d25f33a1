/* qemu_migrate.c: live migration of a QEMU domain between two hosts.
 *
 * The source QEMU migrates into its end of a MigrateLink (getfd, then
 * migrate fd:NAME); the destination QEMU, started -incoming defer and
 * paused (-S), takes its state with migrate-incoming fd:NAME from its
 * link's end, with late-block-activate so that it opens its images
 * inactive and takes them (and their qcow2 locks) only at "cont", after
 * the source QEMU inactivated its own at the end of the migration. The
 * handshake (migrate_link.c) runs the destination only once the source is
 * stopped, and stops the source only once the destination runs. */
#include <string.h>

#include "migrate_link.h"
#include "qemu_migrate.h"

#define SEND_NAME "xapid-migrate"
#define RECEIVE_NAME "xapid-migrate-in"
#define PROGRESS_US (200 * 1000)
/* A source whose migration failed runs again by itself; this long at most. */
#define RESUME_WAIT_US (10 * G_USEC_PER_SEC)

void qemu_migrate_cancel(const char *uuid) { migrate_link_cancel(uuid); }

static json_object *member(json_object *o, const char *key)
{
    json_object *v = NULL;
    return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static int64_t int_member(json_object *o, const char *key)
{
    json_object *v = member(o, key);
    return v ? json_object_get_int64(v) : -1;
}

void qemu_migrate_stats_parse(json_object *info, HvMigrateStats *stats)
{
    json_object *status = member(info, "status");
    g_strlcpy(stats->status, status ? json_object_get_string(status) : "", sizeof stats->status);
    stats->total_ms = int_member(info, "total-time");
    stats->setup_ms = int_member(info, "setup-time");
    stats->downtime_ms = int_member(info, "downtime");
    stats->expected_downtime_ms = int_member(info, "expected-downtime");
    json_object *ram = member(info, "ram");
    stats->ram_total = int_member(ram, "total");
    stats->ram_transferred = int_member(ram, "transferred");
    stats->ram_remaining = int_member(ram, "remaining");
    stats->dirty_sync_count = int_member(ram, "dirty-sync-count");
    stats->dirty_pages_rate = int_member(ram, "dirty-pages-rate");
}

static int command(QemuDomain *d, const char *name, json_object *args, XapiError **err)
{
    json_object *ret = qemu_domain_command(d, name, args, -1, err);
    json_object_put(ret);
    return ret ? 0 : -1;
}

static int set_capability(QemuDomain *d, const char *capability, bool on, XapiError **err)
{
    json_object *cap = json_object_new_object();
    json_object_object_add(cap, "capability", json_object_new_string(capability));
    json_object_object_add(cap, "state", json_object_new_boolean(on));
    json_object *caps = json_object_new_array();
    json_object_array_add(caps, cap);
    json_object *args = json_object_new_object();
    json_object_object_add(args, "capabilities", caps);
    return command(d, "migrate-set-capabilities", args, err);
}

static char *status_field(QemuDomain *d, const char *query, const char *field)
{
    g_autoptr(XapiError) ignored = NULL;
    json_object *info = qemu_domain_command(d, query, NULL, -1, &ignored);
    json_object *v = member(info, field);
    char *text = v ? g_strdup(json_object_get_string(v)) : NULL;
    json_object_put(info);
    return text;
}

/* Why QEMU's migration (either side) did not complete. */
static int migration_error(QemuDomain *d, const char *what, const char *status, XapiError **err)
{
    g_autofree char *why = strcmp(status, "gone") == 0
                               ? NULL : status_field(d, "query-migrate", "error-desc");
    return xapi_error_internal(err, "%s failed: %s", what,
                               why ? why : strcmp(status, "gone") == 0 ? "QEMU is gone" : status);
}

/* ---- source ------------------------------------------------------------------ */

typedef struct {
    const char *uuid;
    QemuDomain *d;
    const HvMigrateOptions *opts;
    MigrateLink *link;
    HvMigrateStats *stats;
    bool stopped; /* paused by us for a migration that is not live */
    int64_t stopped_at; /* then: when (monotonic) */
} Source;

/* QEMU before 9.0 under TCG loses pages the guest writes during a live
 * migration: the fast path of its dirty-bitmap sync (whole 64-page words)
 * clears dirty bits without putting the TCG TLB's not-dirty flags back,
 * so later stores through the TLB mark nothing (QEMU commit 03bfc2188f,
 * "physmem: Fix migration dirty bitmap coherency with TCG memory access",
 * in 9.0; Debian 12's 7.2 lacks it). docs/migration.md has the trials. */
static bool loses_dirty_pages(QemuDomain *d)
{
    g_autoptr(XapiError) ignored = NULL;
    json_object *kvm = qemu_domain_command(d, "query-kvm", NULL, -1, &ignored);
    json_object *enabled = member(kvm, "enabled");
    bool tcg = kvm && !(enabled && json_object_get_boolean(enabled));
    json_object_put(kvm);
    if (!tcg)
        return false;
    json_object *version = qemu_domain_command(d, "query-version", NULL, -1, &ignored);
    int64_t major = int_member(member(version, "qemu"), "major");
    json_object_put(version);
    return major < 9;
}

static int source_start(void *ctx, int fd, XapiError **err)
{
    Source *s = ctx;
    json_object *params = json_object_new_object();
    if (s->opts && s->opts->max_bandwidth > 0)
        json_object_object_add(params, "max-bandwidth",
                               json_object_new_int64(s->opts->max_bandwidth));
    if (s->opts && s->opts->downtime_limit_ms > 0)
        json_object_object_add(params, "downtime-limit",
                               json_object_new_int64(s->opts->downtime_limit_ms));
    if (json_object_object_length(params) == 0) {
        json_object_put(params);
    } else if (command(s->d, "migrate-set-parameters", params, err) < 0) {
        return -1;
    }
    if (!s->stats->live) {
        if (command(s->d, "stop", NULL, err) < 0)
            return -1;
        s->stopped = true;
        s->stopped_at = g_get_monotonic_time();
        qemu_domain_set_state(s->d, HV_PAUSED);
    }
    json_object *args = json_object_new_object();
    json_object_object_add(args, "uri", json_object_new_string("fd:" SEND_NAME));
    return qemu_domain_migration_prepare(s->d, fd, SEND_NAME, err) < 0 ||
                   command(s->d, "migrate", args, err) < 0
               ? -1 : 0;
}

/* The figures now, with the link's, to stats and the progress callback. */
static void source_figures(Source *s, bool report)
{
    g_autoptr(XapiError) ignored = NULL;
    json_object *info = qemu_domain_command(s->d, "query-migrate", NULL, -1, &ignored);
    if (!info)
        return;
    qemu_migrate_stats_parse(info, s->stats);
    json_object_put(info);
    migrate_link_counts(s->link, &s->stats->link_sent, &s->stats->link_received);
    if (report && s->opts && s->opts->progress)
        s->opts->progress(s->opts->opaque, s->stats);
}

/* After a failed migration QEMU runs the guest again by itself (its
 * images reactivated); until it does, nothing else may touch it. */
static void source_running_again(Source *s)
{
    for (int64_t deadline = g_get_monotonic_time() + RESUME_WAIT_US;
         g_get_monotonic_time() < deadline;) {
        g_autofree char *status = status_field(s->d, "query-status", "status");
        if (!status || strcmp(status, "running") == 0)
            return;
        g_usleep(10000);
    }
    g_autoptr(XapiError) ignored = NULL;
    command(s->d, "cont", NULL, &ignored);
}

static int source_resume(void *ctx, XapiError **err);

static int source_wait_sent(void *ctx, XapiError **err)
{
    Source *s = ctx;
    for (;;) {
        g_autofree char *status =
            qemu_domain_migration_wait(s->d, g_get_monotonic_time() + PROGRESS_US);
        if (status && strcmp(status, "completed") == 0) {
            source_figures(s, true);
            qemu_domain_set_state(s->d, HV_PAUSED); /* postmigrate, its images let go */
            return 0;
        }
        if (status && (strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0 ||
                       strcmp(status, "gone") == 0)) {
            source_figures(s, false);
            migration_error(s->d, "the migration", status, err);
            g_autoptr(XapiError) ignored = NULL;
            if (strcmp(status, "gone") != 0 && s->stopped)
                source_resume(s, &ignored); /* we paused it: QEMU would not resume it */
            else if (strcmp(status, "gone") != 0)
                source_running_again(s);
            return -1;
        }
        source_figures(s, true);
    }
}

/* cont takes the images back (QEMU activates them) and runs the guest. */
static int source_resume(void *ctx, XapiError **err)
{
    Source *s = ctx;
    if (command(s->d, "cont", NULL, err) < 0)
        return -1;
    qemu_domain_set_state(s->d, HV_RUNNING);
    return 0;
}

static void source_finish(void *ctx)
{
    Source *s = ctx;
    if (s->stopped) /* QEMU counts only its last stage: the guest waited from the stop */
        s->stats->downtime_ms = (g_get_monotonic_time() - s->stopped_at) / 1000;
    g_autoptr(XapiError) err = NULL;
    if (qemu_domain_destroy(s->uuid, &err) < 0)
        g_warning("VM %s migrated, but its QEMU here did not stop: %s", s->uuid,
                  err->params->len ? (char *)err->params->pdata[0] : err->code);
}

static bool source_was_running(void *ctx)
{
    (void)ctx;
    return true; /* qemu_migrate_send takes running domains only */
}

static const MigrateSourceOps source_ops = {source_start, source_wait_sent, source_resume,
                                            source_finish, source_was_running};

int qemu_migrate_send(const char *uuid, int conn, const HvMigrateOptions *opts,
                      HvMigrateStats *stats, XapiError **err)
{
    HvMigrateStats scratch;
    Source s = {.uuid = uuid, .opts = opts, .stats = stats ? stats : &scratch};
    memset(s.stats, 0, sizeof *s.stats);
    s.stats->downtime_ms = s.stats->expected_downtime_ms = -1;
    s.d = qemu_domain_lookup(uuid, err);
    if (!s.d)
        return -1;
    /* A paused guest's images could not be taken back without running it
     * (QEMU 7.2 activates them only at cont) should the destination fail. */
    if (qemu_domain_state(s.d) != HV_RUNNING)
        return xapi_error_internal(err, "only a running domain migrates live");
    int hotplugged = qemu_domain_hotplugged_vcpus(s.d, err);
    if (hotplugged < 0)
        return -1;
    if (hotplugged > 0) /* the destination boots VCPUs_at_startup */
        return xapi_error_set(err, "OPERATION_NOT_ALLOWED",
                              "the domain has hot-plugged vCPUs: set_VCPUs_number_live back to "
                              "VCPUs_at_startup before migrating it", NULL);
    s.stats->live = !(opts && opts->non_live);
    if (s.stats->live && loses_dirty_pages(s.d)) {
        g_message("VM %s: migrated with the guest paused: live migration under TCG loses "
                  "memory with this QEMU (docs/migration.md)", uuid);
        s.stats->live = false;
    }
    s.link = migrate_link_new(conn, opts ? opts->idle_timeout_ms : 0, err);
    if (!s.link)
        return -1;
    migrate_link_register(uuid, s.link);
    int rc = migrate_link_unregister(uuid, migrate_link_send(s.link, &source_ops, &s, err), err);
    migrate_link_free(s.link, g_get_monotonic_time() + 5 * G_USEC_PER_SEC);
    return rc;
}

/* ---- destination ------------------------------------------------------------ */

typedef struct {
    const char *uuid;
    QemuDomain *d;
} Dest;

static int dest_start(void *ctx, int fd, XapiError **err)
{
    Dest *t = ctx;
    json_object *args = json_object_new_object();
    json_object_object_add(args, "uri", json_object_new_string("fd:" RECEIVE_NAME));
    return set_capability(t->d, "late-block-activate", true, err) < 0 ||
                   qemu_domain_migration_prepare(t->d, fd, RECEIVE_NAME, err) < 0 ||
                   command(t->d, "migrate-incoming", args, err) < 0
               ? -1 : 0;
}

static int dest_wait_loaded(void *ctx, XapiError **err)
{
    Dest *t = ctx;
    for (;;) {
        g_autofree char *status = qemu_domain_migration_wait(t->d, G_MAXINT64);
        if (status && strcmp(status, "completed") == 0)
            return 0; /* paused (-S), its images not taken yet */
        if (status && (strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0 ||
                       strcmp(status, "gone") == 0)) {
            /* An incoming QEMU says why only on its stderr, and exits. */
            qemu_domain_wait_exit(t->d, 2000);
            g_autofree char *why = qemu_domain_last_words(t->d);
            return xapi_error_internal(err, "loading the migrated state failed: %s", why);
        }
    }
}

static int dest_run(void *ctx, bool run, XapiError **err)
{
    Dest *t = ctx;
    if (!run)
        return xapi_error_internal(err, "the source's domain was paused: not taken");
    if (command(t->d, "cont", NULL, err) < 0)
        return -1;
    qemu_domain_set_state(t->d, HV_RUNNING);
    return 0;
}

static void dest_discard(void *ctx)
{
    Dest *t = ctx;
    g_autoptr(XapiError) ignored = NULL;
    qemu_domain_destroy(t->uuid, &ignored);
}

static const MigrateDestOps dest_ops = {dest_start, dest_wait_loaded, dest_run, dest_discard};

int qemu_migrate_receive(const char *uuid, const Xv *vm, const HvDisk *disks, size_t n_disks,
                         const HvNic *nics, size_t n_nics, int conn, const HvMigrateOptions *opts,
                         XapiError **err)
{
    MigrateLink *link = migrate_link_new(conn, opts ? opts->idle_timeout_ms : 0, err);
    if (!link)
        return -1;
    Dest t = {.uuid = uuid};
    if (qemu_domain_start_incoming(uuid, vm, disks, n_disks, nics, n_nics, err) < 0 ||
        !(t.d = qemu_domain_lookup(uuid, err))) {
        migrate_link_refuse(link, err ? *err : NULL);
        return -1;
    }
    migrate_link_register(uuid, link);
    int rc = migrate_link_unregister(uuid, migrate_link_receive(link, &dest_ops, &t, err), err);
    migrate_link_free(link, g_get_monotonic_time() + 5 * G_USEC_PER_SEC);
    return rc;
}
