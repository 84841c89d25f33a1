/* dqlite_cluster_test.c: a 3-node dqlite cluster inside this process,
 * driven through our wire client and store_dqlite: bootstrap, two voters
 * added, 1,000 single-row commits through the leader, the leader stopped,
 * another leading within 2 s with every acknowledged row, writes going
 * on; a deposed leader's commit fails with HOST_IS_SLAVE and leaves no
 * row; the store tests' round trip against the dqlite driver; the voters
 * kept odd (one of two nodes votes, three of three) and a standby told
 * the leader by the voters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <glib.h>
#include <string.h>

#include "db.h"
#include "dqlite_node.h"
#include "store.h"

#define N_NODES 3

/* Raft address "nK" -> node K's abstract socket. */
static PoolDqliteNode *nodes[N_NODES];
static char *dirs[N_NODES];

static int dial(void *ctx, const char *address, int *fd)
{
    for (int i = 0; i < N_NODES; i++) {
        if (nodes[i] && strcmp(pool_dqlite_node_address(nodes[i]), address) == 0) {
            *fd = pool_dqlite_dial_abstract(pool_dqlite_node_bind_address(nodes[i]));
            return *fd < 0 ? -1 : 0;
        }
    }
    errno = ECONNREFUSED;
    return -1;
}

static PoolDqliteNode *start(int i, bool founder)
{
    if (!dirs[i])
        dirs[i] = g_dir_make_tmp("xapid-dqlite-XXXXXX", NULL);
    g_autofree char *address = g_strdup_printf("n%d", i + 1);
    PoolDqliteConfig cfg = {dirs[i], address, founder, dial, NULL, 0};
    XapiError *err = NULL;
    PoolDqliteNode *n = pool_dqlite_node_start(&cfg, &err);
    if (!n)
        fail_msg("start n%d: %s", i + 1, err->code);
    return n;
}

/* Waits until some running node leads; returns its index or -1. */
static int wait_leader(int64_t timeout_us)
{
    int64_t until = g_get_monotonic_time() + timeout_us;
    while (g_get_monotonic_time() < until) {
        for (int i = 0; i < N_NODES; i++)
            if (nodes[i] && pool_dqlite_is_leader(nodes[i]))
                return i;
        g_usleep(5000);
    }
    return -1;
}

static int put_vm(Store *s, const char *ref, const char *label, XapiError **err)
{
    const DmClass *vm = dm_class_by_name("VM");
    g_autofree const char **texts = g_new0(const char *, vm->n_fields);
    for (unsigned i = 0; i < vm->n_fields; i++)
        texts[i] = vm->fields[i].name;
    texts[dm_field_by_name(vm, "name_label")->index] = label;
    return store_put_row(s, vm, ref, texts, err);
}

static int commit_vm(Store *s, const char *ref, const char *label, XapiError **err)
{
    if (store_begin(s, err) < 0)
        return -1;
    if (put_vm(s, ref, label, err) < 0 || store_commit(s, err) < 0) {
        store_rollback(s);
        return -1;
    }
    return 0;
}

static int collect(void *ctx, const DmClass *cls, const char *ref, const char *const *texts)
{
    const DmField *label = dm_field_by_name(cls, "name_label");
    g_hash_table_insert(ctx, g_strdup(ref), g_strdup(texts[label->index] ? texts[label->index] : ""));
    return 0;
}

static GHashTable *load_vms(Store *s)
{
    GHashTable *rows = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    XapiError *err = NULL;
    if (store_load_class(s, dm_class_by_name("VM"), collect, rows, &err) < 0)
        fail_msg("load: %s", err->code);
    return rows;
}

static void stop_all(void)
{
    for (int i = 0; i < N_NODES; i++) {
        pool_dqlite_node_stop(nodes[i]);
        nodes[i] = NULL;
        if (dirs[i]) {
            g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dirs[i]);
            assert_int_equal(system(cmd), 0);
            g_free(dirs[i]);
            dirs[i] = NULL;
        }
    }
}

static void test_failover_keeps_acknowledged_rows(void **state)
{
    XapiError *err = NULL;
    nodes[0] = start(0, true);
    assert_int_equal(pool_dqlite_node_id(nodes[0]), POOL_DQLITE_FOUNDER_ID);
    assert_int_equal(wait_leader(5 * G_USEC_PER_SEC), 0);
    nodes[1] = start(1, false);
    nodes[2] = start(2, false);
    for (int i = 1; i < N_NODES; i++)
        assert_int_equal(pool_dqlite_add(nodes[0], pool_dqlite_node_id(nodes[i]),
                                         pool_dqlite_node_address(nodes[i]), &err), 0);
    GPtrArray *servers = pool_dqlite_cluster(nodes[0], &err);
    assert_non_null(servers);
    assert_int_equal(servers->len, 3);
    for (guint i = 0; i < servers->len; i++)
        assert_int_equal(((DqliteServerInfo *)servers->pdata[i])->role, DQLITE_ROLE_VOTER);
    g_ptr_array_free(servers, TRUE);

    Store *s = pool_dqlite_store_open(nodes[0], &err);
    assert_non_null(s);
    assert_string_equal(store_driver_name(s), "dqlite");
    for (int k = 0; k < 1000; k++) {
        g_autofree char *ref = g_strdup_printf("OpaqueRef:%04d", k);
        if (commit_vm(s, ref, "before", &err) < 0)
            fail_msg("commit %d: %s", k, err->code);
    }
    store_close(s);

    int64_t stopped = g_get_monotonic_time();
    pool_dqlite_node_stop(nodes[0]);
    nodes[0] = NULL;
    int leader = wait_leader(2 * G_USEC_PER_SEC);
    assert_true(leader > 0);
    g_message("new leader n%d after %.0f ms", leader + 1,
              (g_get_monotonic_time() - stopped) / 1000.0);

    s = pool_dqlite_store_open(nodes[leader], &err);
    assert_non_null(s);
    g_autoptr(GHashTable) rows = load_vms(s);
    assert_int_equal(g_hash_table_size(rows), 1000);
    assert_string_equal(g_hash_table_lookup(rows, "OpaqueRef:0999"), "before");
    assert_int_equal(commit_vm(s, "OpaqueRef:after", "after", &err), 0);

    /* The survivors hand leadership over: the deposed node's store fails
     * at once, names the new leader, and nothing of its write remains. */
    int other = leader == 1 ? 2 : 1;
    assert_int_equal(pool_dqlite_transfer(nodes[leader], pool_dqlite_node_id(nodes[other]), &err), 0);
    assert_int_equal(wait_leader(2 * G_USEC_PER_SEC), other);
    assert_int_equal(commit_vm(s, "OpaqueRef:lost", "lost", &err), -1);
    assert_string_equal(err->code, "HOST_IS_SLAVE");
    assert_string_equal(g_ptr_array_index(err->params, 0), pool_dqlite_node_address(nodes[other]));
    xapi_error_free(err);
    err = NULL;
    store_close(s);
    s = pool_dqlite_store_open(nodes[other], &err);
    assert_non_null(s);
    g_autoptr(GHashTable) again = load_vms(s);
    assert_int_equal(g_hash_table_size(again), 1001);
    assert_null(g_hash_table_lookup(again, "OpaqueRef:lost"));
    store_close(s);
    stop_all();
}

/* n1 founds a pool, n2 joins as a voter; a store on n1, the leader. */
static Store *two_node_pool(void)
{
    XapiError *err = NULL;
    nodes[0] = start(0, true);
    assert_int_equal(wait_leader(5 * G_USEC_PER_SEC), 0);
    nodes[1] = start(1, false);
    assert_int_equal(pool_dqlite_add(nodes[0], pool_dqlite_node_id(nodes[1]), "n2", &err), 0);
    /* The second node of two stands by; leadership moves only to a voter. */
    assert_int_equal(pool_dqlite_assign(nodes[0], pool_dqlite_node_id(nodes[1]), DQLITE_ROLE_VOTER,
                                        &err), 0);
    Store *s = pool_dqlite_store_open(nodes[0], &err);
    assert_non_null(s);
    return s;
}

/* Leadership lost between the row and the commit: the commit fails, and
 * the row is in no node's database. */
static void test_commit_after_lost_leadership_leaves_nothing(void **state)
{
    XapiError *err = NULL;
    Store *s = two_node_pool();
    assert_int_equal(store_begin(s, &err), 0);
    assert_int_equal(put_vm(s, "OpaqueRef:pending", "pending", &err), 0);
    assert_int_equal(pool_dqlite_transfer(nodes[0], pool_dqlite_node_id(nodes[1]), &err), 0);
    assert_int_equal(wait_leader(2 * G_USEC_PER_SEC), 1);
    assert_int_equal(store_commit(s, &err), -1);
    assert_string_equal(err->code, "HOST_IS_SLAVE");
    xapi_error_free(err);
    err = NULL;
    store_rollback(s);
    store_close(s);
    s = pool_dqlite_store_open(nodes[1], &err);
    assert_non_null(s);
    g_autoptr(GHashTable) rows = load_vms(s);
    assert_int_equal(g_hash_table_size(rows), 0);
    /* The new leader takes writes; the old one can lead again later. */
    assert_int_equal(commit_vm(s, "OpaqueRef:new", "new", &err), 0);
    store_close(s);
    stop_all();
}

/* store_test's round trip, against the dqlite driver of a one-node pool,
 * and a pool founded from a SQLite store's rows and meta keys. */
static void test_round_trip_and_founding_copy(void **state)
{
    XapiError *err = NULL;
    g_autofree char *sqlite_dir = g_dir_make_tmp("xapid-store-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(sqlite_dir, "xapid.db", NULL);
    Store *local = store_open(path, &err);
    assert_non_null(local);
    assert_int_equal(commit_vm(local, "OpaqueRef:a", "first", &err), 0);
    assert_int_equal(commit_vm(local, "OpaqueRef:b", "second", &err), 0);
    assert_int_equal(store_meta_set(local, "generation_floor", "42", &err), 0);

    nodes[0] = start(0, true);
    assert_int_equal(wait_leader(5 * G_USEC_PER_SEC), 0);
    Store *s = pool_dqlite_store_open(nodes[0], &err);
    assert_non_null(s);
    assert_int_equal(store_copy(local, s, &err), 0);
    store_close(local);
    g_autofree char *floor = store_meta_get(s, "generation_floor");
    assert_string_equal(floor, "42");

    const DmClass *vm = dm_class_by_name("VM");
    assert_int_equal(store_begin(s, &err), 0);
    assert_int_equal(store_set_field(s, vm, "OpaqueRef:a", dm_field_by_name(vm, "name_label"),
                                     "renamed", &err), 0);
    assert_int_equal(store_delete_row(s, vm, "OpaqueRef:b", &err), 0);
    assert_int_equal(store_commit(s, &err), 0);
    assert_int_equal(store_begin(s, &err), 0);
    assert_int_equal(put_vm(s, "OpaqueRef:c", "rolled back", &err), 0);
    store_rollback(s);
    /* Writes outside a transaction are refused. */
    assert_int_equal(put_vm(s, "OpaqueRef:d", "outside", &err), -1);
    xapi_error_free(err);
    err = NULL;
    g_autoptr(GHashTable) rows = load_vms(s);
    assert_int_equal(g_hash_table_size(rows), 1);
    assert_string_equal(g_hash_table_lookup(rows, "OpaqueRef:a"), "renamed");

    assert_int_equal(store_meta_set(s, "pool:a", "1", &err), 0);
    assert_int_equal(store_meta_set(s, "pool:b", "2", &err), 0);
    g_autoptr(GPtrArray) keys = store_meta_keys(s, "pool:");
    assert_int_equal(keys->len, 2);
    assert_int_equal(store_meta_delete(s, "pool:a", &err), 0);
    g_autofree char *gone = store_meta_get(s, "pool:a");
    assert_null(gone);
    store_close(s);
    stop_all();
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", sqlite_dir);
    assert_int_equal(system(cmd), 0);
}

/* db's contract on the dqlite driver: a write whose commit fails because
 * this node stopped leading is undone in memory, and no node holds it. */
static void test_db_undoes_write_of_deposed_leader(void **state)
{
    XapiError *err = NULL;
    Store *s = two_node_pool();
    assert_int_equal(db_open_store(s, &err), 0);
    const DmClass *vm = dm_class_by_name("VM");
    assert_int_equal(db_write_begin(&err), 0);
    DbRow *row = db_row_new(vm);
    db_row_put(row, "name_label", xv_new_string("kept"));
    assert_int_equal(db_insert(row, &err), 0);
    g_autofree char *ref = g_strdup(row->ref);
    assert_int_equal(db_write_commit(&err), 0);

    assert_int_equal(db_write_begin(&err), 0);
    row = db_lookup(vm, ref);
    assert_int_equal(db_set_by_name(row, "name_label", xv_new_string("lost"), &err), 0);
    assert_int_equal(pool_dqlite_transfer(nodes[0], pool_dqlite_node_id(nodes[1]), &err), 0);
    assert_int_equal(wait_leader(2 * G_USEC_PER_SEC), 1);
    assert_int_equal(db_write_commit(&err), -1);
    assert_string_equal(err->code, "HOST_IS_SLAVE");
    xapi_error_free(err);
    err = NULL;
    db_read_begin();
    assert_string_equal(xv_str(db_get(db_lookup(vm, ref), "name_label")), "kept");
    db_read_end();
    db_close();

    s = pool_dqlite_store_open(nodes[1], &err);
    assert_non_null(s);
    g_autoptr(GHashTable) rows = load_vms(s);
    assert_string_equal(g_hash_table_lookup(rows, ref), "kept");
    store_close(s);
    stop_all();
}

/* A founder's live move: db open on its SQLite file, then moved to the
 * pool's dqlite database in one step; the rows from before and the writes
 * after are all in dqlite, and the generation floor covers the old run. */
static void test_db_moves_from_sqlite_to_dqlite(void **state)
{
    XapiError *err = NULL;
    g_autofree char *sqlite_dir = g_dir_make_tmp("xapid-store-XXXXXX", NULL);
    assert_int_equal(db_open(sqlite_dir, &err), 0);
    const DmClass *vm = dm_class_by_name("VM");
    assert_int_equal(db_write_begin(&err), 0);
    DbRow *row = db_row_new(vm);
    db_row_put(row, "name_label", xv_new_string("before"));
    g_autofree char *before = db_insert_and_commit(row, &err);
    assert_non_null(before);

    nodes[0] = start(0, true);
    assert_int_equal(wait_leader(5 * G_USEC_PER_SEC), 0);
    Store *s = pool_dqlite_store_open(nodes[0], &err);
    assert_non_null(s);
    uint64_t generation = db_generation();
    assert_int_equal(db_move_to_store(s, &err), 0);
    assert_int_equal(db_write_begin(&err), 0);
    row = db_row_new(vm);
    db_row_put(row, "name_label", xv_new_string("after"));
    g_autofree char *after = db_insert_and_commit(row, &err);
    assert_non_null(after);
    db_close();

    s = pool_dqlite_store_open(nodes[0], &err);
    assert_non_null(s);
    g_autoptr(GHashTable) rows = load_vms(s);
    assert_string_equal(g_hash_table_lookup(rows, before), "before");
    assert_string_equal(g_hash_table_lookup(rows, after), "after");
    g_autofree char *floor = store_meta_get(s, "generation_floor");
    assert_true(g_ascii_strtoull(floor, NULL, 10) >= generation);
    store_close(s);

    /* A member's replica has no store to move. */
    assert_int_equal(db_open(NULL, &err), 0);
    s = pool_dqlite_store_open(nodes[0], &err);
    assert_non_null(s);
    assert_int_equal(db_move_to_store(s, &err), -1);
    assert_string_equal(err->code, "INTERNAL_ERROR");
    xapi_error_free(err);
    store_close(s);
    db_close();
    stop_all();
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", sqlite_dir);
    assert_int_equal(system(cmd), 0);
}

static uint64_t role_of(PoolDqliteNode *leader, PoolDqliteNode *n)
{
    XapiError *err = NULL;
    GPtrArray *servers = pool_dqlite_cluster(leader, &err);
    assert_non_null(servers);
    uint64_t role = DQLITE_ROLE_SPARE;
    for (guint i = 0; i < servers->len; i++) {
        const DqliteServerInfo *info = servers->pdata[i];
        if (info->id == pool_dqlite_node_id(n))
            role = info->role;
    }
    g_ptr_array_free(servers, TRUE);
    return role;
}

/* Two nodes: the leader alone votes, the other stands by, and knows no
 * leader of its own (dqlite tells only a voter's clients) but learns it
 * from the voters; a third node: all three vote; one removed: the leader
 * alone votes again. */
static void test_voters_are_kept_odd(void **state)
{
    XapiError *err = NULL;
    nodes[0] = start(0, true);
    assert_int_equal(wait_leader(5 * G_USEC_PER_SEC), 0);
    nodes[1] = start(1, false);
    assert_int_equal(pool_dqlite_add(nodes[0], pool_dqlite_node_id(nodes[1]), "n2", &err), 0);
    assert_int_equal(role_of(nodes[0], nodes[0]), DQLITE_ROLE_VOTER);
    assert_int_equal(role_of(nodes[0], nodes[1]), DQLITE_ROLE_STANDBY);
    assert_null(pool_dqlite_other_voters(nodes[0])); /* it votes: its own answer stands */
    uint64_t id = 0;
    char *address = NULL;
    int64_t until = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
    while (id == 0 && g_get_monotonic_time() < until) { /* until it has the configuration */
        g_usleep(10000);
        GPtrArray *voters = pool_dqlite_other_voters(nodes[1]);
        if (voters && voters->len == 1) {
            assert_string_equal(voters->pdata[0], "n1");
            pool_dqlite_peer_leader(dial, NULL, voters->pdata[0], 1000, &id, &address);
        }
        if (voters)
            g_ptr_array_free(voters, TRUE);
    }
    assert_int_equal(id, POOL_DQLITE_FOUNDER_ID);
    assert_string_equal(address, "n1");
    g_free(address);
    assert_int_equal(pool_dqlite_leader(nodes[1], &id, &address, &err), 0);
    assert_int_equal(id, 0);
    g_free(address);

    nodes[2] = start(2, false);
    assert_int_equal(pool_dqlite_add(nodes[0], pool_dqlite_node_id(nodes[2]), "n3", &err), 0);
    for (int i = 0; i < N_NODES; i++)
        assert_int_equal(role_of(nodes[0], nodes[i]), DQLITE_ROLE_VOTER);

    assert_int_equal(pool_dqlite_remove(nodes[0], pool_dqlite_node_id(nodes[2]), &err), 0);
    assert_int_equal(role_of(nodes[0], nodes[0]), DQLITE_ROLE_VOTER);
    assert_int_equal(role_of(nodes[0], nodes[1]), DQLITE_ROLE_STANDBY);
    stop_all();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_and_founding_copy),
        cmocka_unit_test(test_commit_after_lost_leadership_leaves_nothing),
        cmocka_unit_test(test_db_undoes_write_of_deposed_leader),
        cmocka_unit_test(test_db_moves_from_sqlite_to_dqlite),
        cmocka_unit_test(test_failover_keeps_acknowledged_rows),
        cmocka_unit_test(test_voters_are_kept_odd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
