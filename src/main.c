/* main.c: xapid's command line, start-up and shutdown. */
#include <glib-unix.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "boot_files.h"
#include "bootstrap.h"
#include "storage.h"
#include "compat.h"
#include "config_file.h"
#include "db.h"
#include "host.h"
#include "host_certificate.h"
#include "log_ring.h"
#include "message_store.h"
#include "metrics.h"
#include "plugins.h"
#include "pool_db.h"
#include "pool_forward.h"
#include "pool_role.h"
#include "pool_start.h"
#include "http_server.h"
#include "login_throttle.h"
#include "pam_login.h"
#include "session.h"
#include "pif_host.h"
#include "sd_notify.h"
#include "task.h"
#include "tls_cert.h"
#include "xenops.h"
#include "xva_import.h"

static gboolean on_signal(gpointer loop)
{
    g_main_loop_quit(loop);
    return G_SOURCE_REMOVE;
}

static gboolean on_session_gc(gpointer unused)
{
    int64_t now = g_get_real_time() / G_USEC_PER_SEC;
    unsigned sessions = session_gc(now), tasks = task_gc(now);
    if (sessions || tasks)
        g_message("GC: %u sessions and %u tasks destroyed", sessions, tasks);
    return G_SOURCE_CONTINUE;
}

static int fail(XapiError *err)
{
    fprintf(stderr, "xapid: %s", err->code);
    for (guint i = 0; i < err->params->len; i++)
        fprintf(stderr, " %s", (char *)err->params->pdata[i]);
    fputc('\n', stderr);
    xapi_error_free(err);
    return 1;
}

/* The port actually bound, so that "--listen 127.0.0.1:0" tells its caller
 * which free port it got (the tests start daemons that way). */
static void print_listening(const char *scheme, const char *host_port, int port)
{
    const char *colon = strrchr(host_port, ':');
    int host_len = colon ? (int)(colon - host_port) : 0;
    printf("xapid: listening on %s://%.*s:%d\n", scheme, host_len, host_port, port);
}

static int open_listeners(HttpServer *server, const char *const *addrs, char **listen_tls,
                          const char *unix_path, const char *state_dir, XapiError **err)
{
    http_server_set_management_at_start(server, !host_management_disabled(state_dir));
    for (const char *const *a = addrs; *a; a++) {
        int port = http_server_listen_tcp(server, *a, err);
        if (port < 0)
            return -1;
        pool_start_listening(*a, port);
        print_listening("http", *a, port);
    }
    if (listen_tls) {
        g_autofree char *key_pem = NULL, *cert_pem = NULL;
        if (tls_cert_load_or_create(state_dir, &key_pem, &cert_pem, err) < 0)
            return -1;
        for (char **a = listen_tls; *a; a++) {
            int port = http_server_listen_tls(server, *a, key_pem, cert_pem, err);
            if (port < 0)
                return -1;
            print_listening("https", *a, port);
        }
    }
    if (unix_path) {
        if (http_server_listen_unix(server, unix_path, err) < 0)
            return -1;
        printf("xapid: listening on unix:%s\n", unix_path);
    }
    return 0;
}

int main(int argc, char **argv)
{
    g_auto(GStrv) original_argv = g_strdupv(argv); /* for host.restart_agent */
    g_autofree char *plugin_dir = NULL, *extension_dir = NULL, *python_dir = NULL;
    g_autofree char *power_command = NULL;
    gboolean allow_host_changes = FALSE;
    gint plugin_time_limit = PLUGINS_DEFAULT_TIME_LIMIT;
    gint64 plugin_output_limit = PLUGINS_DEFAULT_OUTPUT_LIMIT;
    g_autofree char *state_dir = NULL, *unix_path = NULL, *password_file = NULL;
    g_autofree char *config_path = NULL, *runtime_dir = NULL;
    g_autofree char *hypervisor = NULL;
    g_auto(GStrv) kernel_dirs = NULL;
    g_auto(GStrv) listen = NULL, listen_tls = NULL, sr_roots = NULL;
    gboolean print_compat = FALSE, print_password = FALSE;
    gboolean no_metrics = FALSE;
    gint message_limit = 0;
    gint login_failure_delay_ms = 250;
    g_autofree gchar *pam_service = NULL;
    gint member_timeout = POOL_DEFAULT_MEMBER_TIMEOUT;
    gboolean pool_dqlite = FALSE;
    HttpLimits def = HTTP_LIMITS_DEFAULT;
    gint body_limit = (gint)def.rpc_body_limit, header_timeout = (gint)def.header_timeout,
         idle_timeout = (gint)def.idle_timeout, max_conns = (gint)def.max_connections,
         max_conns_per_ip = (gint)def.max_connections_per_ip;
    GOptionEntry entries[] = {
        {"config", 0, 0, G_OPTION_ARG_FILENAME, &config_path,
         "Read settings from FILE first: a [xapid] group whose keys are these flags' long "
         "names (\"listen-tls = 0.0.0.0:443\", lists as \"a;b\", switches as true or "
         "false); a flag given here wins over the file's (installed: /etc/xapid/xapid.conf)",
         "FILE"},
        {"state-dir", 0, 0, G_OPTION_ARG_FILENAME, &state_dir,
         "Directory for the database, the local SR and runtime files (default ./var)", "DIR"},
        {"runtime-dir", 0, 0, G_OPTION_ARG_FILENAME, &runtime_dir,
         "Directory for the QEMU domains' sockets, pid files and logs, which live as long as "
         "the domains (default STATE_DIR; installed: /run/xapid)", "DIR"},
        {"listen", 0, 0, G_OPTION_ARG_STRING_ARRAY, &listen,
         "Serve HTTP on HOST:PORT; may be given more than once (default 127.0.0.1:8080)",
         "HOST:PORT"},
        {"listen-tls", 0, 0, G_OPTION_ARG_STRING_ARRAY, &listen_tls,
         "Serve HTTPS on HOST:PORT with the certificate in STATE_DIR/xapi-ssl.pem "
         "(self-signed, made on first use); may be given more than once", "HOST:PORT"},
        {"unix", 0, 0, G_OPTION_ARG_FILENAME, &unix_path,
         "Serve on a unix socket; its clients are pre-authenticated as root", "PATH"},
        {"root-password-file", 0, 0, G_OPTION_ARG_FILENAME, &password_file,
         "The root password on first start; generated and written there if missing "
         "(default STATE_DIR/root-password)", "FILE"},
        {"print-root-password", 0, 0, G_OPTION_ARG_NONE, &print_password,
         "Also print a generated root password on stdout (it is always in the file)", NULL},
        {"login-failure-delay", 0, 0, G_OPTION_ARG_INT, &login_failure_delay_ms,
         "The delay before answering a failed login, doubled at each further failure from the "
         "same address up to 20 times itself (default 250)", "MS"},
        {"pam-service", 0, 0, G_OPTION_ARG_STRING, &pam_service,
         "The PAM service that checks users' passwords when external authentication (type "
         "PAM) is on (default xapid; without /etc/pam.d/xapid, PAM uses \"other\")", "NAME"},
        {"message-limit", 0, 0, G_OPTION_ARG_INT, &message_limit,
         "Messages kept; beyond, the oldest are deleted (default 10000, as XAPI)", "N"},
        {"no-metrics", 0, 0, G_OPTION_ARG_NONE, &no_metrics,
         "Do not sample the host and VMs every 5 s: /rrd_updates, /host_rrd and /vm_rrd answer "
         "503 (for measuring what sampling costs)", NULL},
        {"hypervisor", 0, 0, G_OPTION_ARG_STRING, &hypervisor,
         "How VMs run: qemu (a QEMU process per VM, KVM when /dev/kvm is usable and the CPU has "
         "VT-x or AMD-V, else TCG; "
         "the default) or sim (simulated domains, for scale tests)", "qemu|sim"},
        {"guest-kernel-dir", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &kernel_dirs,
         "A host directory VMs may take PV_kernel and PV_ramdisk from, besides "
         BOOT_FILES_DEFAULT_DIR "; may be given more than once", "DIR"},
        {"sr-root", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &sr_roots,
         "An existing directory under which SR.create and PBD.plug accept an SR's "
         "device_config:location, besides STATE_DIR/sr and STATE_DIR/iso; may be given more "
         "than once", "DIR"},
        {"rpc-body-limit", 0, 0, G_OPTION_ARG_INT, &body_limit,
         "Largest XML-RPC/JSON-RPC request body in bytes; a larger one is refused with "
         "HTTP 413 before it is read (default 307200, XAPI's 300 KiB)", "BYTES"},
        {"http-header-timeout", 0, 0, G_OPTION_ARG_INT, &header_timeout,
         "Seconds a client has to send a request's line and headers, from the connection's "
         "start or the request line; then the connection is closed (default 10, as XAPI; "
         "0: none)", "S"},
        {"http-idle-timeout", 0, 0, G_OPTION_ARG_INT, &idle_timeout,
         "Seconds a connection may send nothing (between requests, or within a body) before "
         "it is closed; a call being executed (a long-polling event.from) does not count "
         "(default 300; 0: none)", "S"},
        {"http-max-connections", 0, 0, G_OPTION_ARG_INT, &max_conns,
         "Connections the TCP and TLS listeners hold at once, together; more are closed as "
         "they come (default 800, as XAPI; 0: no limit; the unix socket is not counted)", "N"},
        {"http-max-connections-per-ip", 0, 0, G_OPTION_ARG_INT, &max_conns_per_ip,
         "Connections one client address may hold on a TCP listener (default 100; 0: no "
         "limit)", "N"},
        {"plugin-dir", 0, 0, G_OPTION_ARG_FILENAME, &plugin_dir,
         "Where host.call_plugin finds plugins, by entry name (default "
         PLUGINS_DEFAULT_DIR "); xapid's built-in ones (echo) are in PYTHON_DIR/plugins", "DIR"},
        {"extension-dir", 0, 0, G_OPTION_ARG_FILENAME, &extension_dir,
         "Where host.call_extension finds extensions (default " EXTENSIONS_DEFAULT_DIR ")", "DIR"},
        {"python-dir", 0, 0, G_OPTION_ARG_FILENAME, &python_dir,
         "xapid's Python modules for plugins (XenAPI.py, XenAPIPlugin.py), on each plugin's "
         "PYTHONPATH (default: ../python beside the binary if there, else the installed "
         "share/xapid/python)", "PYTHON_DIR"},
        {"plugin-time-limit", 0, 0, G_OPTION_ARG_INT, &plugin_time_limit,
         "Seconds a plugin or extension may run before its process group is killed "
         "(default 300; 0: none)", "S"},
        {"plugin-output-limit", 0, 0, G_OPTION_ARG_INT64, &plugin_output_limit,
         "Bytes of stdout a plugin or extension may write before it is killed (default "
         "16 MiB; 0: none)", "BYTES"},
        {"host-power-command", 0, 0, G_OPTION_ARG_FILENAME, &power_command,
         "Run as \"CMD reboot\" or \"CMD poweroff\" by host.reboot and host.shutdown (for "
         "example /usr/bin/systemctl); without it they refuse with PERMISSION_DENIED", "CMD"},
        {"allow-host-changes", 0, 0, G_OPTION_ARG_NONE, &allow_host_changes,
         "Let host.set_hostname_live set the machine's hostname and host.dmesg_clear clear "
         "the kernel's log (refused with PERMISSION_DENIED otherwise)", NULL},
        {"member-timeout", 0, 0, G_OPTION_ARG_INT, &member_timeout,
         "On a pool's master: seconds a member may stay silent (its change stream is its "
         "heartbeat) before its host_metrics.live turns false; XAPI waits 600 (default 30)",
         "S"},
        {"pool-dqlite", 0, 0, G_OPTION_ARG_NONE, &pool_dqlite,
         "Keep a pool's database in dqlite (Raft-replicated across the hosts): the master "
         "founds it at the first join, members run nodes (experimental; see docs/pool.md)",
         NULL},
        {"print-compat", 0, 0, G_OPTION_ARG_NONE, &print_compat,
         "Print docs/compat.md (implemented messages) and exit", NULL},
        {NULL}};
    g_autoptr(GOptionContext) ctx = g_option_context_new("- the XenAPI toolstack daemon");
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_autoptr(GError) gerr = NULL;
    /* The file's settings go before the command line's, which win. */
    const char *config = config_file_path(argc, argv);
    g_auto(GStrv) merged = config ? config_file_merge(config, entries, argc, argv, &gerr) : NULL;
    g_autofree char **merged_view = NULL; /* GOption rearranges the array it parses */
    if (config && !merged) {
        fprintf(stderr, "xapid: %s\n", gerr->message);
        return 2;
    }
    if (merged) {
        argc = (int)g_strv_length(merged);
        merged_view = g_memdup2(merged, sizeof(char *) * (gsize)(argc + 1));
        argv = merged_view;
    }
    if (!g_option_context_parse(ctx, &argc, &argv, &gerr)) {
        fprintf(stderr, "xapid: %s\n", gerr->message);
        return 2;
    }
    if (message_limit < 0) {
        fprintf(stderr, "xapid: --message-limit must not be negative\n");
        return 2;
    }
    message_store_set_limit((unsigned)message_limit);
    if (plugin_time_limit < 0 || plugin_output_limit < 0) {
        fprintf(stderr, "xapid: --plugin-time-limit and --plugin-output-limit must not be "
                        "negative\n");
        return 2;
    }
    if (body_limit <= 0 || header_timeout < 0 || idle_timeout < 0 || max_conns < 0 ||
        max_conns_per_ip < 0) {
        fprintf(stderr, "xapid: --rpc-body-limit must be positive, and the timeouts and "
                        "connection limits not negative\n");
        return 2;
    }
    HttpLimits limits = {.rpc_body_limit = (size_t)body_limit,
                         .header_timeout = (unsigned)header_timeout,
                         .idle_timeout = (unsigned)idle_timeout,
                         .max_connections = (unsigned)max_conns,
                         .max_connections_per_ip = (unsigned)max_conns_per_ip};
    if (print_compat) {
        g_autofree char *md = compat_markdown();
        fputs(md, stdout);
        return 0;
    }
    /* One malloc arena per connection thread multiplies idle memory; two
     * are enough for a daemon whose threads mostly wait. */
    mallopt(M_ARENA_MAX, 2);
    if (!state_dir)
        state_dir = g_strdup("var");
    if (g_mkdir_with_parents(state_dir, 0700) < 0) {
        perror(state_dir);
        return 1;
    }
    if (member_timeout <= 0) {
        fprintf(stderr, "xapid: --member-timeout must be positive\n");
        return 2;
    }
    if (login_failure_delay_ms < 0) {
        fprintf(stderr, "xapid: --login-failure-delay must be 0 or more\n");
        return 2;
    }
    log_ring_install(1 << 20);
    login_throttle_configure(login_failure_delay_ms);
    if (pam_service)
        pam_login_set_service(pam_service);
    plugins_configure(&(PluginsConfig){.plugin_dir = plugin_dir, .extension_dir = extension_dir,
                                       .python_dir = python_dir, .unix_socket = unix_path,
                                       .time_limit_s = (unsigned)plugin_time_limit,
                                       .output_limit = (size_t)plugin_output_limit});
    host_ops_configure(&(HostOpsConfig){.power_command = power_command,
                                        .allow_host_changes = allow_host_changes});
    session_print_generated_password(print_password);
    if (!password_file)
        password_file = g_build_filename(state_dir, "root-password", NULL);

    for (char **d = kernel_dirs; d && *d; d++)
        boot_files_allow_dir(*d);
    XapiError *err = NULL;
    const char *default_listen[] = {"127.0.0.1:8080", NULL};
    const char *const *addrs = listen ? (const char *const *)listen : default_listen;
    /* A member opens a replica of the master's database instead of its own. */
    pool_db_enable(pool_dqlite);
    if (pool_start_prepare(state_dir, addrs, (unsigned)member_timeout, &err) < 0)
        return fail(err);
    /* A host whose database is the pool's dqlite listens first: its node
     * is reached through the HTTP port before the database can be read. */
    HttpServer *server = NULL;
    if (pool_start_listens_first()) {
        server = http_server_new(&limits);
        if (open_listeners(server, addrs, listen_tls, unix_path, state_dir, &err) < 0)
            return fail(err);
    }
    if (pool_start_database(&err) < 0 || bootstrap_database(state_dir, &err) < 0)
        return fail(err);
    /* Messages are kept outside the database, on the master. */
    if (pool_is_member())
        message_store_set_remote(pool_forward_to_master);
    else if (message_store_open(state_dir, &err) < 0)
        return fail(err);
    pif_host_start_of_day();
    if (session_init_root_password(password_file, &err) < 0 ||
        storage_init(state_dir, (const char *const *)sr_roots, &err) < 0 ||
        xenops_init(state_dir, runtime_dir ? runtime_dir : state_dir, hypervisor, &err) < 0 ||
        (!no_metrics && metrics_start(state_dir, &err) < 0))
        return fail(err);
    xva_import_sweep(); /* imports that a crash interrupted are undone */

    if (!server) {
        server = http_server_new(&limits);
        if (open_listeners(server, addrs, listen_tls, unix_path, state_dir, &err) < 0)
            return fail(err);
    }
    if (host_certificate_start(state_dir, &err) < 0)
        return fail(err);
    db_crash_points_arm();
    pool_start_services();
    printf("xapid: ready\n");
    fflush(stdout);
    /* systemd's Type=notify: the database is loaded, the domains found
     * again and every listener answers. */
    sd_notify_send("READY=1");

    GMainLoop *loop = g_main_loop_new(NULL, FALSE);
    agent_init(loop, original_argv);
    g_unix_signal_add(SIGINT, on_signal, loop);
    g_unix_signal_add(SIGTERM, on_signal, loop);
    g_timeout_add_seconds(30, on_session_gc, NULL);
    g_main_loop_run(loop);
    g_main_loop_unref(loop);
    if (agent_end() != AGENT_RESTART)
        sd_notify_send("STOPPING=1");
    metrics_stop(); /* the archives are written, also before a restart_agent */
    if (agent_end() == AGENT_RESTART)
        agent_reexec(server); /* returns only if exec failed: then a clean stop */
    http_server_free(server);
    pool_start_stop();
    message_store_close();
    db_close();
    pool_db_stop(); /* after db_close, which writes the generation floor */
    return 0;
}
