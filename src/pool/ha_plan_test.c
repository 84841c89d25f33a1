/* ha_plan_test.c: the planner against XAPI's own examples
 * (ocaml/tests/test_ha_vm_failover.ml: PlanForNFailures,
 * AssertNewVMPreservesHAPlan, ComputeMaxFailures) and binpack.ml's
 * packing order. Host free memory is what XAPI's setup leaves: memory
 * total less the protected VMs resident there. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <glib.h>
#include <string.h>

#include "ha_plan.h"

#define GIB(x) ((int64_t)(x) << 30)

static void test_plan_for_n_failures(void **state)
{
    (void)state;
    /* Two host pool with no VMs. */
    g_autoptr(HaPlanPool) a = ha_plan_pool_new(2);
    ha_plan_add_host(a, "master", GIB(256));
    ha_plan_add_host(a, "slave", GIB(256));
    assert_int_equal(ha_plan_for_n_failures(a, 1), HA_PLAN_EXISTS);

    /* One VM taking just under half of one host's memory. */
    g_autoptr(HaPlanPool) b = ha_plan_pool_new(2);
    ha_plan_add_host(b, "master", GIB(256 - 120));
    ha_plan_add_host(b, "slave", GIB(256));
    ha_plan_add_vm(b, "vm1", GIB(120), "master");
    assert_int_equal(ha_plan_for_n_failures(b, 1), HA_PLAN_EXISTS);

    /* Two VMs taking almost all of one host's memory. */
    g_autoptr(HaPlanPool) c = ha_plan_pool_new(2);
    ha_plan_add_host(c, "master", GIB(256 - 240));
    ha_plan_add_host(c, "slave", GIB(256));
    ha_plan_add_vm(c, "vm1", GIB(120), "master");
    ha_plan_add_vm(c, "vm2", GIB(120), "master");
    assert_int_equal(ha_plan_for_n_failures(c, 1), HA_PLAN_EXISTS);

    /* Overcommitted. */
    g_autoptr(HaPlanPool) d = ha_plan_pool_new(2);
    ha_plan_add_host(d, "master", GIB(256 - 240));
    ha_plan_add_host(d, "slave", GIB(256 - 240));
    ha_plan_add_vm(d, "vm1", GIB(120), "master");
    ha_plan_add_vm(d, "vm2", GIB(120), "master");
    ha_plan_add_vm(d, "vm3", GIB(120), "slave");
    ha_plan_add_vm(d, "vm4", GIB(120), "slave");
    assert_int_equal(ha_plan_for_n_failures(d, 1), HA_PLAN_NONE);
    assert_int_equal(ha_plan_for_n_failures(d, 0), HA_PLAN_EXISTS);
    /* more failures than hosts: XAPI's check_configuration refuses */
    assert_int_equal(ha_plan_for_n_failures(a, 3), HA_PLAN_NONE);
}

static void test_new_vm_preserves_plan(void **state)
{
    (void)state;
    /* One VM using just under half of one host: another can be added
     * (the new one is offline: the plan places it first). */
    g_autoptr(HaPlanPool) a = ha_plan_pool_new(2);
    ha_plan_add_host(a, "master", GIB(256 - 120));
    ha_plan_add_host(a, "slave", GIB(256));
    ha_plan_add_vm(a, "vm1", GIB(120), "master");
    ha_plan_add_vm(a, "vm2", GIB(120), NULL);
    assert_int_equal(ha_plan_for_n_failures(a, 1), HA_PLAN_EXISTS);

    /* Two VMs using almost all of one host: a third breaks the plan. */
    g_autoptr(HaPlanPool) b = ha_plan_pool_new(2);
    ha_plan_add_host(b, "master", GIB(256 - 240));
    ha_plan_add_host(b, "slave", GIB(256));
    ha_plan_add_vm(b, "vm1", GIB(120), "master");
    ha_plan_add_vm(b, "vm2", GIB(120), "master");
    assert_int_equal(ha_plan_for_n_failures(b, 1), HA_PLAN_EXISTS);
    ha_plan_add_vm(b, "vm3", GIB(120), NULL);
    assert_int_equal(ha_plan_for_n_failures(b, 1), HA_PLAN_NONE);
}

static void test_max_failures(void **state)
{
    (void)state;
    /* Three host pool with no VMs: the quorum of three survives one. */
    g_autoptr(HaPlanPool) a = ha_plan_pool_new(3);
    for (int i = 0; i < 3; i++)
        ha_plan_add_host(a, i == 0 ? "master" : i == 1 ? "slave1" : "slave2", GIB(256));
    assert_int_equal(ha_plan_max_failures(a, ha_plan_quorum_cap(3)), 1);
    /* Without a quorum bound the planner alone says 3 (XAPI without
     * clustering: with no VM to restart, every host may fail). */
    assert_int_equal(ha_plan_max_failures(a, 3), 3);
    /* Two hosts: no failure keeps a quorum of two. */
    g_autoptr(HaPlanPool) b = ha_plan_pool_new(2);
    ha_plan_add_host(b, "master", GIB(256));
    ha_plan_add_host(b, "slave1", GIB(256));
    assert_int_equal(ha_plan_max_failures(b, ha_plan_quorum_cap(2)), 0);
    /* Memory bound: 3 hosts of 4 GiB with one 2 GiB VM each: any one
     * host's VM fits on another, but after two failures the last host
     * cannot hold all three. */
    g_autoptr(HaPlanPool) c = ha_plan_pool_new(3);
    for (int i = 0; i < 3; i++) {
        g_autofree char *h = g_strdup_printf("h%d", i);
        ha_plan_add_host(c, h, GIB(4) - GIB(2));
        g_autofree char *v = g_strdup_printf("vm%d", i);
        ha_plan_add_vm(c, v, GIB(2), h);
    }
    assert_int_equal(ha_plan_max_failures(c, 3), 1);
}

/* moves are exactly expect[0..n) (VM, host), in that order. */
static void assert_moves(const GPtrArray *moves, const char *expect[][2], guint n)
{
    assert_int_equal(moves->len, n);
    for (guint i = 0; i < n; i++) {
        const HaPlanMove *m = moves->pdata[i];
        assert_string_equal(m->vm, expect[i][0]);
        assert_string_equal(m->host, expect[i][1]);
    }
}

static void test_pack_biggest_first(void **state)
{
    (void)state;
    g_autoptr(HaPlanPool) p = ha_plan_pool_new(2);
    ha_plan_add_host(p, "small", GIB(3));
    ha_plan_add_host(p, "big", GIB(5));
    ha_plan_add_vm(p, "a", GIB(1), NULL);
    ha_plan_add_vm(p, "b", GIB(4), NULL);
    ha_plan_add_vm(p, "c", GIB(2), NULL);
    ha_plan_add_vm(p, "huge", GIB(9), NULL);
    g_autoptr(GPtrArray) left = NULL;
    g_autoptr(GPtrArray) moves = ha_plan_restart(p, &left);
    /* Biggest first: huge fits nowhere and is skipped; b (4) -> big (1
     * left), c (2) -> small (1 left), a (1) -> small (a tie: the bin just
     * used goes before its equals). The moves come in the VMs' order. */
    const char *expect[][2] = {{"a", "small"}, {"b", "big"}, {"c", "small"}};
    assert_moves(moves, expect, 3);
    assert_int_equal(left->len, 1);
    assert_string_equal(left->pdata[0], "huge");
}

/* xapi_ha_vm_failover.ml's non-agile VMs: pinned to one host as its
 * overhead, never moved by a failure, and the plan only ever "excludes
 * non-agile VMs" while there are any (which the pool's fields, as
 * XAPI's update_pool_status, count as overcommitted). */
static void test_non_agile_vms(void **state)
{
    (void)state;
    /* A running non-agile VM stays with its host: the loss of h0 moves
     * only a (agile) to h1; were n agile, h1 could not take both. */
    g_autoptr(HaPlanPool) a = ha_plan_pool_new(2);
    ha_plan_add_host(a, "h0", GIB(10));
    ha_plan_add_host(a, "h1", GIB(100));
    ha_plan_add_vm(a, "a", GIB(50), "h0");
    ha_plan_add_non_agile_vm(a, "n", GIB(150), "h0", "h0");
    assert_int_equal(ha_plan_for_n_failures(a, 1), HA_PLAN_EXCLUDING_NON_AGILE);
    assert_int_equal(ha_plan_for_n_failures(a, 0), HA_PLAN_EXCLUDING_NON_AGILE);
    /* compute_max_host_failures_to_tolerate bisects over "for all VMs" */
    assert_int_equal(ha_plan_max_failures(a, 1), 0);
    g_autoptr(HaPlanPool) agile = ha_plan_pool_new(2);
    ha_plan_add_host(agile, "h0", GIB(10));
    ha_plan_add_host(agile, "h1", GIB(100));
    ha_plan_add_vm(agile, "a", GIB(50), "h0");
    ha_plan_add_vm(agile, "n", GIB(150), "h0");
    assert_int_equal(ha_plan_for_n_failures(agile, 1), HA_PLAN_NONE);

    /* An offline non-agile VM goes to its pinned host, whose room it
     * takes before the agile ones are packed: a (80) finds the master
     * with 50 left and goes to the slave. XAPI lists the pinned VM as
     * not restarted all the same: no plan while it is offline. */
    g_autoptr(HaPlanPool) b = ha_plan_pool_new(2);
    ha_plan_add_host(b, "master", GIB(200));
    ha_plan_add_host(b, "slave", GIB(100));
    ha_plan_add_non_agile_vm(b, "pin", GIB(150), NULL, "master");
    ha_plan_add_vm(b, "a", GIB(80), NULL);
    g_autoptr(GPtrArray) left = NULL;
    g_autoptr(GPtrArray) moves = ha_plan_restart(b, &left);
    const char *expect[][2] = {{"pin", "master"}, {"a", "slave"}};
    assert_moves(moves, expect, 2);
    assert_int_equal(left->len, 1);
    assert_string_equal(left->pdata[0], "pin");
    assert_int_equal(ha_plan_for_n_failures(b, 0), HA_PLAN_NONE);

    /* No host can run it: no move, not restarted. */
    g_autoptr(HaPlanPool) c = ha_plan_pool_new(2);
    ha_plan_add_host(c, "master", GIB(200));
    ha_plan_add_non_agile_vm(c, "homeless", GIB(1), NULL, NULL);
    g_autoptr(GPtrArray) left_c = NULL;
    g_autoptr(GPtrArray) moves_c = ha_plan_restart(c, &left_c);
    assert_int_equal(moves_c->len, 0);
    assert_int_equal(left_c->len, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_for_n_failures),
        cmocka_unit_test(test_new_vm_preserves_plan),
        cmocka_unit_test(test_max_failures),
        cmocka_unit_test(test_pack_biggest_first),
        cmocka_unit_test(test_non_agile_vms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
