/* host_accel_test.c: VT-x or AMD-V is read off /proc/cpuinfo's flags lines
 * (samples as Linux prints them). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "host_accel.h"

static void test_intel_and_amd_flags(void **state)
{
    (void)state;
    assert_true(cpuinfo_has_virtualization("processor\t: 0\n"
                                           "flags\t\t: fpu vme de pse tsc msr vmx smx est\n"));
    assert_true(cpuinfo_has_virtualization("flags\t\t: fpu lm svm extapic\n\n"));
    assert_true(cpuinfo_has_virtualization("flags\t\t: fpu svm"));
}

static void test_no_hardware_virtualization(void **state)
{
    (void)state;
    /* A nested host with kvm-pvm: /dev/kvm exists, the CPU shows neither. */
    assert_false(cpuinfo_has_virtualization(
        "model name\t: AMD EPYC\n"
        "flags\t\t: fpu vme de pse tsc msr pae sse sse2 ht syscall nx lm hypervisor avx2\n"
        "bugs\t\t: sysret_ss_attrs\n"));
    /* The words must be whole, and on a flags line. */
    assert_false(cpuinfo_has_virtualization("flags\t\t: fpu vmx_ept svmx\n"));
    assert_false(cpuinfo_has_virtualization("vmx flags\t: ept vpid unrestricted_guest\n"));
    assert_false(cpuinfo_has_virtualization("model name\t: svm vmx\n"));
    assert_false(cpuinfo_has_virtualization(""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intel_and_amd_flags),
        cmocka_unit_test(test_no_hardware_virtualization),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
