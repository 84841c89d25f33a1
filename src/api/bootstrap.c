/* bootstrap.c: what a fresh XenServer host has in its database on first
 * start (pool, host, metrics, CPUs, control domain, local SR and PBD,
 * the host's NICs as PIFs (network.c), templates), and the static role objects
 * created on every start. */
#include "bootstrap.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdarg.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "db.h"
#include "rbac.h"
#include "host_net.h"
#include "log_ring.h"
#include "network.h"
#include "pool_join.h"
#include "pool_role.h"

#define XAPID_PRODUCT_VERSION "8.4.0"
#define API_VERSION_MAJOR 2
#define API_VERSION_MINOR 21

/* Inserts a row of class cls_name with the given (field, Xv*) pairs,
 * NULL-terminated; returns its ref (caller frees) or NULL. Write lock held. */
static char *add_row(XapiError **err, const char *cls_name, ...)
{
    DbRow *row = db_row_new(dm_class_by_name(cls_name));
    va_list ap;
    va_start(ap, cls_name);
    for (const char *field = va_arg(ap, const char *); field; field = va_arg(ap, const char *))
        db_row_put(row, field, va_arg(ap, Xv *));
    va_end(ap);
    char *ref = g_strdup(row->ref);
    if (db_insert(row, err) < 0) {
        g_free(ref);
        return NULL;
    }
    return ref;
}

static Xv *S(const char *s) { return xv_new_string(s); }
static Xv *I(int64_t i) { return xv_new_int(i); }
static Xv *B(bool b) { return xv_new_bool(b); }

/* Builds a string map from NULL-terminated key, value pairs. */
static Xv *M(const char *key, ...)
{
    Xv *m = xv_new_struct();
    va_list ap;
    va_start(ap, key);
    for (const char *k = key; k; k = va_arg(ap, const char *))
        xv_struct_set_string(m, k, va_arg(ap, const char *));
    va_end(ap);
    return m;
}

int64_t bootstrap_meminfo_bytes(const char *key)
{
    g_autofree char *text = NULL;
    if (!g_file_get_contents("/proc/meminfo", &text, NULL, NULL))
        return 0;
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++)
        if (g_str_has_prefix(*l, key) && (*l)[strlen(key)] == ':')
            return g_ascii_strtoll(*l + strlen(key) + 1, NULL, 10) * 1024;
    return 0;
}

static bool take_master(DbRow *pool, void *ctx)
{
    *(char **)ctx = g_strdup(xv_str(db_get(pool, "master")));
    return false;
}

char *bootstrap_pool_master(void)
{
    char *ref = NULL;
    db_foreach(dm_class_by_name("pool"), take_master, &ref);
    return ref ? ref : g_strdup("OpaqueRef:NULL");
}

char *bootstrap_this_host(void)
{
    if (pool_this_host()) /* a pool member: pool.master is another host */
        return g_strdup(pool_this_host());
    return bootstrap_pool_master();
}

/* First value of a "key : value" line of /proc/cpuinfo. */
static char *cpuinfo_value(const char *key)
{
    g_autofree char *text = NULL;
    if (!g_file_get_contents("/proc/cpuinfo", &text, NULL, NULL))
        return g_strdup("");
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++) {
        char *colon = strchr(*l, ':');
        if (!colon)
            continue;
        g_autofree char *k = g_strstrip(g_strndup(*l, (gsize)(colon - *l)));
        if (strcmp(k, key) == 0)
            return g_strstrip(g_strdup(colon + 1));
    }
    return g_strdup("");
}

/* The first non-loopback IPv4 interface: the management interface. */
static void management_interface(char **device, char **address, char **netmask)
{
    *device = g_strdup("lo");
    *address = g_strdup("127.0.0.1");
    *netmask = g_strdup("255.0.0.0");
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) < 0)
        return;
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || (i->ifa_flags & IFF_LOOPBACK))
            continue;
        char a[INET_ADDRSTRLEN], m[INET_ADDRSTRLEN] = "";
        inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, a, sizeof a);
        if (i->ifa_netmask)
            inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_netmask)->sin_addr, m, sizeof m);
        g_free(*device), g_free(*address), g_free(*netmask);
        *device = g_strdup(i->ifa_name);
        *address = g_strdup(a);
        *netmask = g_strdup(m);
        break;
    }
    freeifaddrs(ifs);
    /* The interface holding the default route is the management one. */
    g_autofree char *route_dev = hostnet_default_route_dev();
    char *a = NULL, *m = NULL;
    if (route_dev && hostnet_ipv4(route_dev, &a, &m)) {
        g_free(*device), g_free(*address), g_free(*netmask);
        *device = g_strdup(route_dev);
        *address = a;
        *netmask = m;
    }
}

static bool any_row(DbRow *row, void *ctx)
{
    *(bool *)ctx = true;
    return false;
}

/* The address other hosts and clients reach this one at: the --listen
 * address when one was named, else the management interface's. */
static char *management_address(void)
{
    g_autofree char *device = NULL, *address = NULL, *netmask = NULL;
    management_interface(&device, &address, &netmask);
    return g_strdup(pool_local_address() ? pool_local_address() : address);
}

static int create_host_objects(const char *state_dir, XapiError **err)
{
    char hostname[256] = "localhost";
    gethostname(hostname, sizeof hostname - 1);
    g_autofree char *address = management_address();
    int64_t mem_total = bootstrap_meminfo_bytes("MemTotal");
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    g_autofree char *vendor = cpuinfo_value("vendor_id");
    g_autofree char *model = cpuinfo_value("model name");
    g_autofree char *mhz = cpuinfo_value("cpu MHz");
    g_autofree char *family = cpuinfo_value("cpu family");
    g_autofree char *model_no = cpuinfo_value("model");
    g_autofree char *stepping = cpuinfo_value("stepping");
    g_autofree char *flags = cpuinfo_value("flags");
    g_autofree char *ncpu_text = g_strdup_printf("%ld", ncpu);
    int64_t now = g_get_real_time() / G_USEC_PER_SEC;
    g_autofree char *today = xv_datetime_format(now);

    g_autofree char *metrics = add_row(err, "host_metrics", "memory_total", I(mem_total),
                                       "live", B(true), "last_updated", xv_new_datetime(now),
                                       NULL);
    if (!metrics)
        return -1;
    g_autofree char *host = add_row(
        err, "host", "name_label", S(hostname), "hostname", S(hostname), "address",
        S(address), "enabled", B(true), "metrics", S(metrics), "API_version_major",
        I(API_VERSION_MAJOR), "API_version_minor", I(API_VERSION_MINOR),
        "API_version_vendor", S("XenSource"),
        "software_version",
        M("product_version", XAPID_PRODUCT_VERSION, "product_brand", "XenServer",
          "platform_name", "XCP", "platform_version", "3.4.0", "build_number", "xapid",
          "xapi", "24.0", "xapid", PACKAGE_VERSION, "hostname", hostname, "date", today,
          "hypervisor", "qemu", NULL),
        "cpu_info",
        M("cpu_count", ncpu_text, "socket_count", "1", "vendor", vendor, "modelname",
          model, "speed", mhz, "family", family, "model", model_no, "stepping", stepping,
          "flags", flags, NULL),
        "capabilities", xv_new_array(), "sched_policy", S("credit"), NULL);
    if (!host)
        return -1;
    for (long c = 0; c < ncpu; c++) {
        g_autofree char *cpu = add_row(
            err, "host_cpu", "host", S(host), "number", I(c), "vendor", S(vendor),
            "modelname", S(model), "speed", I(g_ascii_strtoll(mhz, NULL, 10)), "family",
            I(g_ascii_strtoll(family, NULL, 10)), "model", I(g_ascii_strtoll(model_no, NULL, 10)),
            "stepping", S(stepping), "flags", S(flags), NULL);
        if (!cpu)
            return -1;
    }
    g_autofree char *dom0_label = g_strdup_printf("Control domain on host: %s", hostname);
    g_autofree char *dom0 = add_row(
        err, "VM", "name_label", S(dom0_label), "is_control_domain", B(true),
        "power_state", S("Running"), "resident_on", S(host), "domid", I(0),
        "memory_static_max", I(mem_total), "memory_dynamic_max", I(mem_total),
        "memory_dynamic_min", I(mem_total), "memory_static_min", I(mem_total),
        "VCPUs_max", I(ncpu), "VCPUs_at_startup", I(ncpu), "user_version", I(1), NULL);
    if (!dom0)
        return -1;
    g_autofree char *sr_path = g_build_filename(state_dir ? state_dir : ".", "sr", NULL);
    if (state_dir)
        g_mkdir_with_parents(sr_path, 0700);
    struct statvfs fs = {0};
    statvfs(sr_path, &fs);
    g_autofree char *sr = add_row(
        err, "SR", "name_label", S("Local storage"), "name_description",
        S("Files in the state directory"), "type", S("file"), "content_type", S("user"),
        "shared", B(false), "physical_size", I((int64_t)fs.f_blocks * (int64_t)fs.f_frsize),
        "physical_utilisation",
        I((int64_t)(fs.f_blocks - fs.f_bfree) * (int64_t)fs.f_frsize), "other_config",
        M("i18n-key", "local-storage", NULL), NULL);
    g_autofree char *pbd = sr ? add_row(err, "PBD", "host", S(host), "SR", S(sr),
                                        "device_config", M("location", sr_path, NULL),
                                        "currently_attached", B(true), NULL)
                              : NULL;
    if (!pbd)
        return -1;
    g_autofree char *iso_path = g_build_filename(state_dir ? state_dir : ".", "iso", NULL);
    if (state_dir)
        g_mkdir_with_parents(iso_path, 0755);
    g_autofree char *iso_sr = add_row(
        err, "SR", "name_label", S("ISO library"), "name_description",
        S("ISO images in the state directory"), "type", S("iso"), "content_type", S("iso"),
        "shared", B(false), "other_config", M("i18n-key", "local-iso-library", NULL), NULL);
    g_autofree char *iso_pbd = iso_sr ? add_row(err, "PBD", "host", S(host), "SR", S(iso_sr),
                                                "device_config", M("location", iso_path, NULL),
                                                "currently_attached", B(true), NULL)
                                      : NULL;
    if (!iso_pbd)
        return -1;
    if (network_discover_pifs(host, true, err) < 0)
        return -1;
    g_autofree char *pool = add_row(
        err, "pool", "name_label", S(""), "master", S(host), "default_SR", S(sr),
        "suspend_image_SR", S(sr), "crash_dump_SR", S(sr), NULL);
    if (!pool)
        return -1;
    static const struct {
        const char *label, *description, *order;
        int64_t memory;
    } templates[] = {
        {"Other install media", "Boot from a CD or a network image", "dc", 1 << 30},
        {"Debian Bookworm 12", "Debian 12 (64-bit)", "dc", 1 << 30},
        {"Ubuntu Jammy Jellyfish 22.04", "Ubuntu 22.04 (64-bit)", "dc", 1 << 30},
        {"Minimal Linux (direct kernel boot)", "A kernel and initrd booted directly", "", 256 << 20},
    };
    for (unsigned t = 0; t < G_N_ELEMENTS(templates); t++) {
        g_autofree char *ref = add_row(
            err, "VM", "name_label", S(templates[t].label), "name_description",
            S(templates[t].description), "is_a_template", B(true), "is_default_template",
            B(true), "memory_static_max", I(templates[t].memory), "memory_dynamic_max",
            I(templates[t].memory), "memory_dynamic_min", I(templates[t].memory),
            "memory_static_min", I(16 << 20), "VCPUs_max", I(1), "VCPUs_at_startup", I(1),
            "HVM_boot_policy", S(*templates[t].order ? "BIOS order" : ""),
            "HVM_boot_params", *templates[t].order ? M("order", templates[t].order, NULL) : M(NULL),
            "actions_after_shutdown", S("destroy"), "actions_after_reboot", S("restart"),
            "actions_after_crash", S("restart"), "user_version", I(1),
            "platform", M("acpi", "1", "apic", "true", "pae", "true", NULL),
            "other_config", M("default_template", "true", NULL), NULL);
        if (!ref)
            return -1;
    }
    return 0;
}

/* XAPI's static roles and permissions (rbac.h). */
static int create_roles(XapiError **err) { return rbac_insert_role_records(err); }

/* The free edition's record, the only one xapid has. */
static int set_free_license(DbRow *host, XapiError **err)
{
    Xv *params = M("sku_type", "free", "sku_marketing_name", "xapid (free edition)",
                   "expiry", "30000101T00:00:00Z", "restrict_pooling", "true", NULL);
    if (db_set_by_name(host, "edition", S("free"), err) < 0 ||
        db_set_by_name(host, "license_params", params, err) < 0)
        return -1;
    return 0;
}

int bootstrap_license_free(const char *host, XapiError **err)
{
    DbRow *row = db_write_begin_on("host", host, err);
    if (!row)
        return -1;
    if (set_free_license(row, err) < 0) {
        db_write_abort();
        return -1;
    }
    return db_write_commit(err);
}

/* What a start finds true of the machine now, whatever the database said
 * (XAPI's dbsync at start-up): name, address, memory, CPUs, versions, the
 * agent's start time (other_config:agent_start_time, XAPI's form
 * "1718000000."), the boot time, and the host enabled again. */
static int refresh_host(XapiError **err)
{
    g_autofree char *ref = bootstrap_this_host();
    DbRow *host = db_lookup(dm_class_by_name("host"), ref);
    if (!host)
        return 0;
    char hostname[256] = "localhost";
    gethostname(hostname, sizeof hostname - 1);
    g_autofree char *address = management_address();
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    g_autofree char *ncpu_text = g_strdup_printf("%ld", ncpu);
    g_autofree char *vendor = cpuinfo_value("vendor_id");
    g_autofree char *model = cpuinfo_value("model name");
    g_autofree char *mhz = cpuinfo_value("cpu MHz");
    g_autofree char *family = cpuinfo_value("cpu family");
    g_autofree char *model_no = cpuinfo_value("model");
    g_autofree char *stepping = cpuinfo_value("stepping");
    g_autofree char *flags = cpuinfo_value("flags");
    int64_t now = g_get_real_time() / G_USEC_PER_SEC;
    g_autofree char *today = xv_datetime_format(now);
    g_autofree char *start_time = g_strdup_printf("%" G_GINT64_FORMAT ".", now);
    Xv *version = xv_dup(db_get(host, "software_version"));
    xv_struct_set_string(version, "xapid", PACKAGE_VERSION);
    xv_struct_set_string(version, "hostname", hostname);
    xv_struct_set_string(version, "date", today);
    xv_struct_set_string(version, "db_schema", pool_db_schema()); /* compared at pool.join */
    Xv *cpu = xv_dup(db_get(host, "cpu_info"));
    const char *const cpu_facts[][2] = {{"cpu_count", ncpu_text}, {"vendor", vendor},
                                        {"modelname", model}, {"speed", mhz},
                                        {"family", family}, {"model", model_no},
                                        {"stepping", stepping}, {"flags", flags}};
    for (unsigned i = 0; i < G_N_ELEMENTS(cpu_facts); i++)
        xv_struct_set_string(cpu, cpu_facts[i][0], cpu_facts[i][1]);
    Xv *other = xv_dup(db_get(host, "other_config"));
    xv_struct_set_string(other, "agent_start_time", start_time);
    g_autofree char *stat = NULL;
    if (g_file_get_contents("/proc/stat", &stat, NULL, NULL)) {
        const char *btime = strstr(stat, "\nbtime ");
        if (btime) {
            g_autofree char *boot = g_strdup_printf(
                "%" G_GINT64_FORMAT ".", g_ascii_strtoll(btime + 7, NULL, 10));
            xv_struct_set_string(other, "boot_time", boot);
        }
    }
    if (db_set_by_name(host, "hostname", S(hostname), err) < 0 ||
        db_set_by_name(host, "address", S(address), err) < 0 ||
        db_set_by_name(host, "software_version", version, err) < 0 ||
        db_set_by_name(host, "cpu_info", cpu, err) < 0 ||
        db_set_by_name(host, "other_config", other, err) < 0 ||
        db_set_by_name(host, "enabled", B(true), err) < 0 || set_free_license(host, err) < 0)
        return -1;
    DbRow *metrics = db_lookup(dm_class_by_name("host_metrics"), xv_str(db_get(host, "metrics")));
    if (metrics &&
        (db_set_by_name(metrics, "memory_total", I(bootstrap_meminfo_bytes("MemTotal")), err) < 0 ||
         db_set_by_name(metrics, "last_updated", xv_new_datetime(now), err) < 0))
        return -1;
    return 0;
}

int bootstrap_check_host_enabled(XapiError **err)
{
    g_autofree char *ref = bootstrap_this_host();
    DbRow *host = db_lookup(dm_class_by_name("host"), ref);
    if (host && !db_get(host, "enabled")->b)
        return xapi_error_set(err, "HOST_DISABLED", ref, NULL);
    return 0;
}

/* The remote syslog host.syslog_reconfigure set up last, again (XAPI's
 * lives in the host's syslog configuration, which outlives the agent). */
static void forward_log_as_configured(void)
{
    db_read_begin();
    g_autofree char *ref = bootstrap_this_host();
    DbRow *host = db_lookup(dm_class_by_name("host"), ref);
    const Xv *dest = host ? xv_struct_get(db_get(host, "logging"), "syslog_destination") : NULL;
    g_autofree char *destination = g_strdup(dest ? xv_str(dest) : "");
    db_read_end();
    g_autoptr(XapiError) err = NULL;
    if (*destination && log_ring_forward_to(destination, &err) < 0)
        g_warning("log not copied to %s: %s", destination, err->code);
}

int bootstrap_database(const char *state_dir, XapiError **err)
{
    if (db_write_begin(err) < 0)
        return -1;
    bool have_pool = false;
    db_foreach(dm_class_by_name("pool"), any_row, &have_pool);
    if (pool_is_member()) {
        /* The replica has the pool, this host and the roles: only what is
         * true of the machine now is written (shipped to the master). */
        if (have_pool && refresh_host(err) < 0) {
            db_write_abort();
            return -1;
        }
        return db_write_commit(err);
    }
    if ((!have_pool && create_host_objects(state_dir, err) < 0) || create_roles(err) < 0 ||
        refresh_host(err) < 0) {
        db_write_abort();
        return -1;
    }
    if (db_write_commit(err) < 0)
        return -1;
    forward_log_as_configured();
    return 0;
}

int bootstrap_check_this_host(const char *host, XapiError **err)
{
    db_read_begin();
    g_autofree char *this_host = bootstrap_this_host();
    bool exists = db_lookup(dm_class_by_name("host"), host) != NULL;
    db_read_end();
    if (!exists)
        return xapi_error_set(err, "HANDLE_INVALID", "host", host, NULL);
    if (!this_host || strcmp(host, this_host) != 0)
        return xapi_error_set(err, "HOST_OFFLINE", host, NULL);
    return 0;
}
