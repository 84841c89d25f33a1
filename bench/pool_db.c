/* pool_db.c: the replicated database's cost (see docs/bench.md). In one
 * run: single-row commit latency through store_dqlite on a 3-node
 * in-process dqlite cluster against store_sqlite on the same box (median
 * and p99 of N commits, the two interleaved in blocks so that load from
 * elsewhere falls on both), then failover: the time from stopping the
 * leader until another node leads and has committed a row (p50/p99 over
 * T trials, each a fresh cluster).
 * Usage: build/pool_db [commits] [trials] */
#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dqlite_node.h"
#include "store.h"

#define N 3
static PoolDqliteNode *nodes[N];
static char *dirs[N];

static int dial(void *ctx, const char *address, int *fd)
{
    for (int i = 0; i < N; i++)
        if (nodes[i] && strcmp(pool_dqlite_node_address(nodes[i]), address) == 0) {
            *fd = pool_dqlite_dial_abstract(pool_dqlite_node_bind_address(nodes[i]));
            return *fd < 0 ? -1 : 0;
        }
    errno = ECONNREFUSED;
    return -1;
}

static void die(const char *what, XapiError *err)
{
    fprintf(stderr, "pool_db: %s: %s\n", what, err ? err->code : "?");
    exit(1);
}

static int leader(void)
{
    for (int i = 0; i < N; i++)
        if (nodes[i] && pool_dqlite_is_leader(nodes[i]))
            return i;
    return -1;
}

static void cluster_up(void)
{
    XapiError *err = NULL;
    for (int i = 0; i < N; i++) {
        dirs[i] = g_dir_make_tmp("xapid-pooldb-XXXXXX", NULL);
        g_autofree char *address = g_strdup_printf("n%d", i + 1);
        PoolDqliteConfig cfg = {dirs[i], address, i == 0, dial, NULL, 0};
        if (!(nodes[i] = pool_dqlite_node_start(&cfg, &err)))
            die("start", err);
        if (i == 0)
            while (leader() != 0)
                g_usleep(2000);
        else if (pool_dqlite_add(nodes[0], pool_dqlite_node_id(nodes[i]), address, &err) < 0)
            die("add", err);
    }
}

static void cluster_down(void)
{
    for (int i = 0; i < N; i++) {
        pool_dqlite_node_stop(nodes[i]);
        nodes[i] = NULL;
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dirs[i]);
        if (system(cmd) != 0)
            exit(1);
        g_clear_pointer(&dirs[i], g_free);
    }
}

static int commit_row(Store *s, int k, XapiError **err)
{
    const DmClass *vm = dm_class_by_name("VM");
    g_autofree const char **texts = g_new0(const char *, vm->n_fields);
    for (unsigned i = 0; i < vm->n_fields; i++)
        texts[i] = vm->fields[i].name;
    g_autofree char *ref = g_strdup_printf("OpaqueRef:%08d", k);
    if (store_begin(s, err) < 0)
        return -1;
    if (store_put_row(s, vm, ref, texts, err) < 0 || store_commit(s, err) < 0) {
        store_rollback(s);
        return -1;
    }
    return 0;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return v[(int)(p * (n - 1))];
}

int main(int argc, char **argv)
{
    int commits = argc > 1 ? atoi(argv[1]) : 1000, trials = argc > 2 ? atoi(argv[2]) : 10;
    XapiError *err = NULL;
    cluster_up();
    Store *dq = pool_dqlite_store_open(nodes[0], &err);
    if (!dq)
        die("open dqlite store", err);
    g_autofree char *sdir = g_dir_make_tmp("xapid-pooldb-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(sdir, "xapid.db", NULL);
    Store *sq = store_open(path, &err);
    if (!sq)
        die("open sqlite store", err);
    double *tdq = g_new(double, commits), *tsq = g_new(double, commits);
    for (int k = 0; k < commits; k += 50) {
        for (int j = k; j < k + 50 && j < commits; j++) {
            int64_t t0 = g_get_monotonic_time();
            if (commit_row(dq, j, &err) < 0)
                die("dqlite commit", err);
            tdq[j] = (g_get_monotonic_time() - t0) / 1000.0;
        }
        for (int j = k; j < k + 50 && j < commits; j++) {
            int64_t t0 = g_get_monotonic_time();
            if (commit_row(sq, j, &err) < 0)
                die("sqlite commit", err);
            tsq[j] = (g_get_monotonic_time() - t0) / 1000.0;
        }
    }
    double dq50 = pct(tdq, commits, 0.5), dq99 = pct(tdq, commits, 0.99);
    double sq50 = pct(tsq, commits, 0.5), sq99 = pct(tsq, commits, 0.99);
    printf("single-row commit, %d commits: store_dqlite (3 voters) median %.2f ms p99 %.2f ms;"
           " store_sqlite median %.2f ms p99 %.2f ms; ratio median %.1f p99 %.1f\n",
           commits, dq50, dq99, sq50, sq99, dq50 / sq50, dq99 / sq99);
    store_close(dq);
    store_close(sq);
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", sdir);
    if (system(cmd) != 0)
        return 1;
    cluster_down();

    double *fo = g_new(double, trials);
    for (int t = 0; t < trials; t++) {
        cluster_up();
        int64_t t0 = g_get_monotonic_time();
        pool_dqlite_node_stop(nodes[0]);
        nodes[0] = NULL;
        int l;
        while ((l = leader()) < 0)
            g_usleep(2000);
        Store *s = pool_dqlite_store_open(nodes[l], &err);
        if (!s || commit_row(s, 0, &err) < 0)
            die("write after failover", err);
        fo[t] = (g_get_monotonic_time() - t0) / 1000.0;
        store_close(s);
        cluster_down();
    }
    printf("failover (leader stopped -> new leader committed a row), %d trials: p50 %.0f ms p99 %.0f ms\n",
           trials, pct(fo, trials, 0.5), pct(fo, trials, 0.99));
    return 0;
}
