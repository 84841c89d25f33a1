/* boot_config_test.c: the default entry of Debian's grub.cfg (its
 * conditionals, function and submenu), of a "N>M" default into a submenu,
 * of menu.lst and of extlinux.conf, and what is missing when none boots. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "boot_config.h"

static const char debian_grub[] =
    "if [ -s $prefix/grubenv ]; then\n  load_env\nfi\n"
    "if [ \"${next_entry}\" ] ; then\n   set default=\"${next_entry}\"\nelse\n"
    "   set default=\"0\"\nfi\n"
    "function load_video {\n  if [ x$feature_all_video_module = xy ]; then\n"
    "    insmod all_video\n  fi\n}\n"
    "menuentry 'Debian GNU/Linux' --class debian $menuentry_id_option 'gnulinux-simple-x' {\n"
    "\tload_video\n\tset root='hd0,msdos1'\n"
    "\tlinux\t/boot/vmlinuz-6.1.0-9-amd64 root=UUID=abc ro  quiet\n"
    "\tinitrd\t/boot/initrd.img-6.1.0-9-amd64\n}\n"
    "submenu 'Advanced options for Debian GNU/Linux' {\n"
    "\tmenuentry 'Debian, with Linux 6.1.0-9-amd64' {\n"
    "\t\tlinux\t(hd0,msdos1)/boot/vmlinuz-6.1.0-9-amd64 root=UUID=abc ro single\n"
    "\t\tinitrd\t/boot/initrd.img-a /boot/initrd.img-b\n\t}\n}\n";

static void test_grub2(void **state)
{
    g_auto(BootEntry) e = {0};
    g_autofree char *why = NULL;
    assert_true(boot_config_default_entry(BOOT_CONFIG_GRUB2, debian_grub, &e, &why));
    assert_string_equal(e.title, "Debian GNU/Linux");
    assert_string_equal(e.kernel, "/boot/vmlinuz-6.1.0-9-amd64");
    assert_string_equal(e.args, "root=UUID=abc ro quiet");
    assert_int_equal(e.initrds->len, 1);
    assert_string_equal(e.initrds->pdata[0], "/boot/initrd.img-6.1.0-9-amd64");

    /* a later default wins, as GRUB reads it at the menu */
    g_autofree char *sub = g_strconcat(debian_grub, "set default='1>0'\n", NULL);
    g_auto(BootEntry) s = {0};
    assert_true(boot_config_default_entry(BOOT_CONFIG_GRUB2, sub, &s, &why));
    assert_string_equal(s.kernel, "/boot/vmlinuz-6.1.0-9-amd64");
    assert_string_equal(s.args, "root=UUID=abc ro single");
    assert_int_equal(s.initrds->len, 2);

    g_auto(BootEntry) t = {0};
    assert_true(boot_config_default_entry(
        BOOT_CONFIG_GRUB2,
        "set default=\"Advanced options for Debian GNU/Linux>Debian, with Linux 6.1.0-9-amd64\"\n"
        "menuentry 'x' {\n linux /a\n}\nsubmenu 'Advanced options for Debian GNU/Linux' {\n"
        " menuentry 'Debian, with Linux 6.1.0-9-amd64' {\n  linux /b x=1\n }\n}\n",
        &t, &why));
    assert_string_equal(t.kernel, "/b");

    g_auto(BootEntry) none = {0};
    assert_false(boot_config_default_entry(BOOT_CONFIG_GRUB2, "set timeout=5\n", &none, &why));
    assert_string_equal(why, "grub.cfg: no menuentry");
}

static void test_grub_legacy(void **state)
{
    g_auto(BootEntry) e = {0};
    g_autofree char *why = NULL;
    assert_true(boot_config_default_entry(
        BOOT_CONFIG_GRUB_LEGACY,
        "default=1\ntimeout 5\ntitle CentOS (old)\n root (hd0,0)\n kernel /vmlinuz-old ro\n"
        "title CentOS (2.6.18)\n\troot (hd0,0)\n\tkernel (hd0,0)/vmlinuz-2.6.18 ro root=/dev/xvda1\n"
        "\tinitrd /initrd-2.6.18.img\n",
        &e, &why));
    assert_string_equal(e.title, "CentOS (2.6.18)");
    assert_string_equal(e.kernel, "/vmlinuz-2.6.18");
    assert_string_equal(e.args, "ro root=/dev/xvda1");
    assert_string_equal(e.initrds->pdata[0], "/initrd-2.6.18.img");
}

static void test_syslinux(void **state)
{
    g_auto(BootEntry) e = {0};
    g_autofree char *why = NULL;
    assert_true(boot_config_default_entry(
        BOOT_CONFIG_SYSLINUX,
        "DEFAULT xapid\nPROMPT 0\nLABEL other\n  KERNEL nope\nLABEL xapid\n  KERNEL vmlinuz\n"
        "  INITRD initrd.img\n  APPEND console=ttyS0 quiet\n",
        &e, &why));
    assert_string_equal(e.kernel, "vmlinuz");
    assert_string_equal(e.initrds->pdata[0], "initrd.img");
    assert_string_equal(e.args, "console=ttyS0 quiet");
    g_auto(BootEntry) m = {0};
    assert_true(boot_config_default_entry(
        BOOT_CONFIG_SYSLINUX,
        "default vesamenu.c32\nlabel a\n linux /a\nlabel b\n menu default\n linux /b\n"
        " append initrd=/i1,/i2 ro\n",
        &m, &why));
    assert_string_equal(m.kernel, "/b");
    assert_int_equal(m.initrds->len, 2);
    assert_string_equal(m.args, "ro");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grub2),
        cmocka_unit_test(test_grub_legacy),
        cmocka_unit_test(test_syslinux),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
