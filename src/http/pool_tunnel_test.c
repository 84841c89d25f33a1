/* pool_tunnel_test.c: dqlite over the HTTP port. A real libmicrohttpd
 * server with the /pool/dqlite route fronts node n2; n1 reaches it only
 * through pool_tunnel_dial (HTTP upgrade, HMAC both ways, TCP_NODELAY),
 * n2 reaches n1 directly: n2 joins as a voter, takes a row, takes the
 * leadership. A dialler without the pool secret is refused (403), and the
 * server refuses a stale, a replayed or a wrong authenticator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <glib.h>
#include <string.h>

#include "dqlite_node.h"
#include "pool_secret.h"
#include "pool_tunnel.h"
#include "store.h"

static PoolDqliteNode *n1, *n2;
static char *state_dir;
static GPtrArray *dirs; /* removed at the end */

static char *temp_dir(void)
{
    char *dir = g_dir_make_tmp("xapid-tunnel-XXXXXX", NULL);
    if (!dirs)
        dirs = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(dirs, dir);
    return dir;
}

static int dial(void *ctx, const char *address, int *fd)
{
    if (strcmp(address, "n1") == 0) {
        *fd = pool_dqlite_dial_abstract(pool_dqlite_node_bind_address(n1));
        return *fd < 0 ? -1 : 0;
    }
    return pool_tunnel_dial(state_dir, address, fd);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **con_cls)
{
    if (pool_tunnel_route(method, url))
        return pool_tunnel_serve(conn);
    return MHD_NO;
}

static PoolDqliteNode *start(const char *address, bool founder)
{
    char *dir = temp_dir();
    PoolDqliteConfig cfg = {dir, address, founder, dial, NULL, 0};
    XapiError *err = NULL;
    PoolDqliteNode *n = pool_dqlite_node_start(&cfg, &err);
    if (!n)
        fail_msg("start %s: %s", address, err->code);
    return n;
}

static int wait_leader(PoolDqliteNode *n)
{
    for (int i = 0; i < 400; i++) {
        if (pool_dqlite_is_leader(n))
            return 0;
        g_usleep(5000);
    }
    return -1;
}

static int collect(void *ctx, const DmClass *cls, const char *ref, const char *const *texts)
{
    (*(int *)ctx)++;
    return 0;
}

static void test_cluster_through_the_tunnel(void **state)
{
    XapiError *err = NULL;
    state_dir = temp_dir();
    g_autofree char *secret = pool_secret_get(state_dir, &err);
    assert_non_null(secret);
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD,
                                            0, NULL, NULL, on_request, NULL,
                                            MHD_OPTION_END);
    assert_non_null(d);
    unsigned port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
    g_autofree char *address = g_strdup_printf("127.0.0.1:%u", port);

    n1 = start("n1", true);
    assert_int_equal(wait_leader(n1), 0);
    n2 = start(address, false);
    pool_tunnel_configure(state_dir, pool_dqlite_node_bind_address(n2));

    /* Without the secret: refused. */
    char *stranger = temp_dir();
    int fd = -1;
    assert_int_equal(pool_tunnel_dial(stranger, address, &fd), -1);
    assert_int_equal(errno, EACCES);

    assert_int_equal(pool_dqlite_add(n1, pool_dqlite_node_id(n2), address, &err), 0);
    /* The second node of two stands by; leadership moves only to a voter. */
    assert_int_equal(pool_dqlite_assign(n1, pool_dqlite_node_id(n2), DQLITE_ROLE_VOTER, &err), 0);
    Store *s = pool_dqlite_store_open(n1, &err);
    assert_non_null(s);
    const DmClass *vm = dm_class_by_name("VM");
    g_autofree const char **texts = g_new0(const char *, vm->n_fields);
    assert_int_equal(store_begin(s, &err), 0);
    assert_int_equal(store_put_row(s, vm, "OpaqueRef:t", texts, &err), 0);
    assert_int_equal(store_commit(s, &err), 0);
    store_close(s);
    assert_int_equal(pool_dqlite_transfer(n1, pool_dqlite_node_id(n2), &err), 0);
    assert_int_equal(wait_leader(n2), 0);
    s = pool_dqlite_store_open(n2, &err);
    assert_non_null(s);
    int rows = 0;
    assert_int_equal(store_load_class(s, vm, collect, &rows, &err), 0);
    assert_int_equal(rows, 1);
    store_close(s);
    pool_dqlite_node_stop(n2);
    pool_dqlite_node_stop(n1);
    MHD_stop_daemon(d);
    pool_tunnel_configure(NULL, NULL);
    for (guint i = 0; i < dirs->len; i++) {
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", (char *)dirs->pdata[i]);
        assert_int_equal(system(cmd), 0);
    }
    g_ptr_array_free(dirs, TRUE);
}

static void test_authenticator(void **state)
{
    const char *secret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    gint64 now = 1800000000;
    g_autofree char *nonce = g_strdup_printf("%" G_GINT64_FORMAT "-00112233", now);
    g_autofree char *auth = pool_tunnel_mac(secret, "client", nonce);
    g_autofree char *server = pool_tunnel_mac(secret, "server", nonce);
    assert_string_not_equal(auth, server);
    g_autofree char *other = pool_tunnel_mac("ff", "client", nonce);
    assert_int_equal(pool_tunnel_check(secret, nonce, other, now), -1);
    assert_int_equal(pool_tunnel_check(secret, nonce, auth, now + 120), -1); /* stale */
    assert_int_equal(pool_tunnel_check(secret, nonce, auth, now), 0);
    assert_int_equal(pool_tunnel_check(secret, nonce, auth, now + 1), -1);   /* replayed */
    assert_int_equal(pool_tunnel_check(secret, NULL, auth, now), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_authenticator),
        cmocka_unit_test(test_cluster_through_the_tunnel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
