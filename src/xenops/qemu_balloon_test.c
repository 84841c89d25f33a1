/* qemu_balloon_test.c: memory_internal_free from the balloon's guest-stats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "qemu_balloon.h"

static int64_t free_kib(const char *json)
{
    json_object *o = json_tokener_parse(json);
    int64_t kib = qemu_balloon_free_kib_of(o);
    json_object_put(o);
    return kib;
}

static void test_free_kib(void **state)
{
    (void)state;
    /* MemAvailable when the guest gives it, else MemFree */
    assert_int_equal(free_kib("{\"stats\":{\"stat-free-memory\":1048576,"
                              "\"stat-available-memory\":4194304},\"last-update\":1700000000}"),
                     4096);
    assert_int_equal(free_kib("{\"stats\":{\"stat-free-memory\":1048576,"
                              "\"stat-available-memory\":-1},\"last-update\":1700000000}"),
                     1024);
    /* nothing reported yet, nothing at all, no reply */
    assert_int_equal(free_kib("{\"stats\":{\"stat-free-memory\":-1,"
                              "\"stat-available-memory\":-1},\"last-update\":0}"), -1);
    assert_int_equal(free_kib("{\"stats\":{\"stat-free-memory\":-1},\"last-update\":5}"), -1);
    assert_int_equal(qemu_balloon_free_kib_of(NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_free_kib)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
