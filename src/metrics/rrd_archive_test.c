/* rrd_archive_test.c: the archives' consolidation (by librrd) (rates of counters, averages,
 * minima and maxima per row, unknown points and xff, gaps), the
 * /rrd_updates choice of archive and its XML and JSON against golden
 * files, the dump, the file read back, the bytes a VM's archive
 * takes, and the disk I/O rates of an SR's archive (disk_stats.h) with
 * their golden. XAPID_UPDATE_GOLDEN=1 rewrites the golden files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "disk_stats.h"
#include "rrd_archive.h"

/* A multiple of every archive's row span (5 s x 17280 = 1 day). */
#define T0 1700006400LL

/* Each archive in a file of its own in one directory, removed at the end. */
static char *tmp_dir;
static unsigned n_files;

static char *next_path(void)
{
    g_autofree char *name = g_strdup_printf("a%u.rrd", n_files++);
    return g_build_filename(tmp_dir, name, NULL);
}

static Rrd *fresh(bool min_max, int64_t now)
{
    g_autofree char *path = next_path();
    return rrda_new(path, min_max, now);
}

static void remove_tmp_dir(void)
{
    GDir *dir = g_dir_open(tmp_dir, 0, NULL);
    for (const char *n; dir && (n = g_dir_read_name(dir));) {
        g_autofree char *path = g_build_filename(tmp_dir, n, NULL);
        unlink(path);
    }
    if (dir)
        g_dir_close(dir);
    rmdir(tmp_dir);
    g_free(tmp_dir);
}

static char *golden_path(const char *name)
{
    const char *root = g_getenv("SOURCE_ROOT");
    if (!root)
        fail_msg("SOURCE_ROOT is not set (run through meson test)");
    return g_build_filename(root, "src", "metrics", "golden", name, NULL);
}

static void check_golden(const char *name, const GString *actual)
{
    g_autofree char *path = golden_path(name);
    if (g_strcmp0(g_getenv("XAPID_UPDATE_GOLDEN"), "1") == 0) {
        if (!g_file_set_contents(path, actual->str, (gssize)actual->len, NULL))
            fail_msg("cannot write %s", path);
        return;
    }
    g_autofree char *expected = NULL;
    if (!g_file_get_contents(path, &expected, NULL, NULL))
        fail_msg("missing golden %s (XAPID_UPDATE_GOLDEN=1 writes it)", path);
    if (strcmp(expected, actual->str) != 0)
        fail_msg("%s differs\n--- expected\n%s\n--- actual\n%s", path, expected, actual->str);
}

/* One reading every 5 s: cpu0 a counter of seconds growing by
 * busy x 5 each time, memory a gauge. */
static void feed(Rrd *rrd, int64_t from, int n, double busy_start, double busy_step,
                 double *counter)
{
    for (int i = 1; i <= n; i++) {
        *counter += (busy_start + busy_step * (i - 1)) * RRD_STEP;
        RrdSample s[] = {{"cpu0", RRD_DERIVE, *counter},
                         {"memory", RRD_GAUGE, 1000.0 * i}};
        rrda_update(rrd, from + (int64_t)i * RRD_STEP, s, 2);
    }
}

static void test_counter_rates_and_averages(void **state)
{
    g_autoptr(Rrd) rrd = fresh(true, T0);
    double counter = 0;
    /* 24 readings: busy 0.1, 0.2, ..., the first rate unknown (no
     * previous reading). */
    feed(rrd, T0, 24, 0.05, 0.05, &counter);
    g_autoptr(GString) out = g_string_new(NULL);
    rrda_xport(out, &(RrdSource){"vm", "u", rrd}, 1, T0 + 60, 60, -1, true);
    /* Rows of 12 points: the first row (T0+60) lacks its first point:
     * AVERAGE over the 11 known; xff 1.0 in a min/max archive. The second
     * row (T0+120) holds busy 0.65 .. 1.2. */
    assert_non_null(strstr(out->str, "\"step\":\"60\""));
    assert_non_null(strstr(out->str, "\"legend\":[\"AVERAGE:vm:u:cpu0\",\"AVERAGE:vm:u:memory\","
                                     "\"MIN:vm:u:cpu0\",\"MIN:vm:u:memory\",\"MAX:vm:u:cpu0\","
                                     "\"MAX:vm:u:memory\"]"));
    assert_non_null(strstr(out->str, "{\"t\":\"1700006520\",\"values\":[\"0.925\",\"18500\","
                                     "\"0.65\",\"13000\",\"1.2\",\"24000\"]}"));
    assert_non_null(strstr(out->str, "{\"t\":\"1700006460\",\"values\":[\"0.35\",\"6500\","
                                     "\"0.1\",\"1000\",\"0.6\",\"12000\"]}"));
}

static void test_unknown_points_and_xff(void **state)
{
    /* Without min/max the 12-point archive has xff 0.5: a row with more
     * than 6 unknown points is unknown. */
    g_autoptr(Rrd) rrd = fresh(false, T0);
    RrdSample known = {"memory", RRD_GAUGE, 7};
    for (int i = 1; i <= 5; i++)
        rrda_update(rrd, T0 + i * RRD_STEP, &known, 1);
    rrda_update(rrd, T0 + 60, NULL, 0); /* the source not read: unknown */
    g_autoptr(GString) out = g_string_new(NULL);
    rrda_xport(out, &(RrdSource){"vm", "u", rrd}, 1, T0 + 60, 60, RRD_AVERAGE, false);
    assert_non_null(strstr(out->str, "<row><t>1700006460</t><v>NaN</v></row>"));
    /* A gap beyond the heartbeat is unknown, then readings resume. */
    for (int i = 1; i <= 12; i++)
        rrda_update(rrd, T0 + 60 + i * RRD_STEP, &known, 1);
    rrda_update(rrd, T0 + 60 + 60 + 400, &known, 1);
    g_string_truncate(out, 0);
    rrda_xport(out, &(RrdSource){"vm", "u", rrd}, 1, T0 + 100, 0, RRD_AVERAGE, false);
    assert_non_null(strstr(out->str, "<row><t>1700006580</t><v>NaN</v></row>"));
    assert_non_null(strstr(out->str, "<row><t>1700006520</t><v>7</v></row>"));
}

static void test_best_archive(void **state)
{
    g_autoptr(Rrd) rrd = fresh(false, T0);
    double counter = 0;
    feed(rrd, T0, 3, 0.5, 0, &counter);
    g_autoptr(GString) out = g_string_new(NULL);
    /* interval 0 and a start inside the 10 minutes of the finest: step 5. */
    rrda_xport(out, &(RrdSource){"vm", "u", rrd}, 1, T0, 0, RRD_AVERAGE, false);
    assert_non_null(strstr(out->str, "<step>5</step>"));
    /* A start older than 10 minutes: the 1-minute archive (2 hours). */
    g_string_truncate(out, 0);
    rrda_xport(out, &(RrdSource){"vm", "u", rrd}, 1, T0 - 3600, 0, RRD_AVERAGE, false);
    assert_non_null(strstr(out->str, "<step>60</step>"));
    /* interval 3600: the hourly archive. */
    g_string_truncate(out, 0);
    rrda_xport(out, &(RrdSource){"vm", "u", rrd}, 1, T0, 3600, RRD_AVERAGE, false);
    assert_non_null(strstr(out->str, "<step>3600</step>"));
    /* Older than a year: the coarsest. */
    g_string_truncate(out, 0);
    rrda_xport(out, &(RrdSource){"vm", "u", rrd}, 1, 0, 0, RRD_AVERAGE, false);
    assert_non_null(strstr(out->str, "<step>86400</step><end>1700006400</end><rows>366</rows>"));
}

/* The wire forms, byte by byte: a host and a VM archive. */
static void test_xport_golden(void **state)
{
    g_autoptr(Rrd) host = fresh(true, T0);
    g_autoptr(Rrd) vm = fresh(false, T0);
    double c1 = 0, c2 = 0;
    feed(host, T0, 4, 0.25, 0.125, &c1);
    feed(vm, T0, 4, 0.0, 0.5, &c2);
    RrdSource sources[] = {{"host", "11111111-2222-3333-4444-555555555555", host},
                           {"vm", "66666666-7777-8888-9999-000000000000", vm}};
    g_autoptr(GString) xml = g_string_new(NULL);
    rrda_xport(xml, sources, 2, T0 + 5, 5, RRD_AVERAGE, false);
    check_golden("rrd_updates.xml", xml);
    g_autoptr(GString) json = g_string_new(NULL);
    rrda_xport(json, sources, 2, T0 + 5, 5, RRD_AVERAGE, true);
    check_golden("rrd_updates.json", json);
}

static void test_dump_and_image(void **state)
{
    g_autoptr(Rrd) rrd = fresh(false, T0);
    double counter = 0;
    feed(rrd, T0, 30, 0.1, 0.01, &counter);
    g_autoptr(GString) dump = g_string_new(NULL);
    rrda_dump_xml(dump, rrd);
    assert_true(g_str_has_prefix(dump->str, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rrd>"
                                            "<version>0003</version><step>5</step><lastupdate>"
                                            "1700006550</lastupdate><ds><name>cpu0</name><type>"
                                            "DERIVE</type><minimal_heartbeat>300"));
    /* The file read back gives the same dump. */
    g_autoptr(Rrd) back = rrda_load(rrda_path(rrd));
    assert_non_null(back);
    g_autoptr(GString) again = g_string_new(NULL);
    rrda_dump_xml(again, back);
    assert_string_equal(again->str, dump->str);
    /* Anything else is no archive: refused, never read as one. */
    g_autofree char *junk = next_path();
    assert_true(g_file_set_contents(junk, "garbage", 7, NULL));
    assert_null(rrda_load(junk));
    g_autofree char *none = next_path();
    assert_null(rrda_load(none));
}

/* Sources added after the file was made, and one forgotten: its past is
 * unknown, the others keep theirs; all survive a reload (names included). */
static void test_sources_added_and_forgotten(void **state)
{
    g_autoptr(Rrd) rrd = fresh(false, T0);
    RrdSample a = {"memory", RRD_GAUGE, 5};
    rrda_update(rrd, T0 + 5, &a, 1);
    RrdSample ab[] = {{"memory", RRD_GAUGE, 6}, {"vbd_xvda_iops_total_long_name", RRD_GAUGE, 9}};
    rrda_update(rrd, T0 + 10, ab, 2);
    assert_int_equal(rrda_n_sources(rrd), 2);
    assert_true(rrda_source_value(rrd, 1) == 9.0);
    rrda_forget_source(rrd, 0);
    assert_int_equal(rrda_n_sources(rrd), 2);
    assert_string_equal(rrda_source_name(rrd, 1), "memory");
    assert_true(isnan(rrda_source_value(rrd, 1)));
    rrda_update(rrd, T0 + 15, ab, 2);
    g_autoptr(Rrd) back = rrda_load(rrda_path(rrd));
    assert_non_null(back);
    assert_int_equal(rrda_source_index(back, "vbd_xvda_iops_total_long_name"), 0);
    assert_int_equal(rrda_source_index(back, "memory"), 1);
    assert_true(rrda_source_value(back, 1) == 6.0);
    g_autoptr(GString) out = g_string_new(NULL);
    rrda_xport(out, &(RrdSource){"vm", "u", back}, 1, T0, 0, RRD_AVERAGE, false);
    assert_non_null(strstr(out->str, "<row><t>1700006410</t><v>9</v><v>NaN</v></row>"));
    assert_non_null(strstr(out->str, "<row><t>1700006415</t><v>9</v><v>6</v></row>"));
}

/* Linux lets a link's name hold '"', '<' and '&': escaped on both wires. */
static void test_names_escaped(void **state)
{
    g_autoptr(Rrd) rrd = fresh(false, T0);
    RrdSample s = {"pif_a\"<b&_rx", RRD_GAUGE, 1};
    rrda_update(rrd, T0 + 5, &s, 1);
    g_autoptr(GString) out = g_string_new(NULL);
    rrda_xport(out, &(RrdSource){"host", "u", rrd}, 1, T0, 0, RRD_AVERAGE, false);
    assert_non_null(strstr(out->str, "<entry>AVERAGE:host:u:pif_a&quot;&lt;b&amp;_rx</entry>"));
    g_string_truncate(out, 0);
    rrda_xport(out, &(RrdSource){"host", "u", rrd}, 1, T0, 0, RRD_AVERAGE, true);
    assert_non_null(strstr(out->str, "[\"AVERAGE:host:u:pif_a\\\"<b&_rx\"]"));
    g_string_truncate(out, 0);
    rrda_dump_xml(out, rrd);
    assert_non_null(strstr(out->str, "<name>pif_a&quot;&lt;b&amp;_rx</name>"));
}

/* A VM with one vCPU, a disk and a NIC: its archive's rows are in its
 * file; the handle kept in memory for a running VM is small. */
static void test_vm_archive_bytes(void **state)
{
    g_autoptr(Rrd) rrd = fresh(false, T0);
    RrdSample s[] = {{"cpu0", RRD_DERIVE, 1},        {"memory", RRD_GAUGE, 1},
                     {"memory_target", RRD_GAUGE, 1}, {"vbd_xvda_read", RRD_DERIVE, 1},
                     {"vbd_xvda_write", RRD_DERIVE, 1}, {"vif_0_rx", RRD_DERIVE, 1},
                     {"vif_0_tx", RRD_DERIVE, 1}};
    rrda_update(rrd, T0 + 5, s, G_N_ELEMENTS(s));
    size_t bytes = rrda_bytes(rrd);
    print_message("handle of a VM's archive with 7 sources: %zu bytes\n", bytes);
    assert_true(bytes < 4096);
    GStatBuf st;
    assert_int_equal(g_stat(rrda_path(rrd), &st), 0);
    assert_true(st.st_size >= 7 * 8 * (120 + 120 + 168 + 366));
}

/* Two disks on one SR read every 5 s: their rates, summed, are the SR's
 * sources; a counter that goes back (a new domain) or is unknown gives no
 * rates for that reading. */
static void test_sr_io_golden(void **state)
{
    g_autoptr(Rrd) sr = fresh(false, T0);
    DiskStats *ds = disk_stats_new();
    DiskCounters a = {0, 0, 0, 0, 0, 0}, b = {0, 0, 0, 0, 0, 0};
    DiskRates r;
    for (int i = 0; i <= 4; i++) {
        int64_t t = T0 + (int64_t)i * RRD_STEP;
        DiskRates sum = {0};
        /* a: 10 reads of 4 KiB a second, 250 us each; b: 2 writes of 64
         * KiB a second, 1 ms each, more from the third reading on */
        a = (DiskCounters){a.read_bytes + 50 * 4096, 0, a.read_ops + 50, 0,
                           a.read_ns + 50 * 250000, 0};
        int writes = i >= 2 ? 20 : 10;
        b = (DiskCounters){0, b.write_bytes + writes * 65536, 0, b.write_ops + writes, 0,
                           b.write_ns + writes * 1000000LL};
        bool got_a = disk_stats_update(ds, "vm1/0", t, &a, &r);
        assert_int_equal(got_a, i > 0);
        if (got_a)
            disk_rates_add(&sum, &r);
        if (disk_stats_update(ds, "vm2/1", t, &b, &r))
            disk_rates_add(&sum, &r);
        if (i == 0)
            continue;
        g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GArray) samples = g_array_new(FALSE, FALSE, sizeof(RrdSample));
        disk_rates_samples(&sum, "", "", names, samples);
        rrda_update(sr, t, (const RrdSample *)samples->data, samples->len);
    }
    /* 10 reads/s x 4 KiB = 0.0390625 MiB/s; at the last, 4 writes/s x 64
     * KiB = 0.25 MiB/s; latency (10 x 250 + 4 x 1000) / 14 us. */
    assert_int_equal(rrda_source_index(sr, "read_latency"), 6);
    assert_true(rrda_source_value(sr, 6) == 250.0);
    assert_true(fabs(rrda_source_value(sr, 8) - 6500.0 / 14) < 1e-9);
    assert_true(fabs(rrda_source_value(sr, 9) - (10 * 0.00025 + 4 * 0.001)) < 1e-12);
    g_autoptr(GString) xml = g_string_new(NULL);
    rrda_xport(xml, &(RrdSource){"sr", "77777777-8888-9999-aaaa-bbbbbbbbbbbb", sr}, 1,
              T0 + 5, 5, RRD_AVERAGE, false);
    check_golden("sr_rrd_updates.xml", xml);
    /* A counter gone back or unknown: no rates, and the next reading
     * starts afresh. */
    DiskCounters back = {0, 0, 0, 0, 0, 0}, unknown = {-1, 0, 0, 0, 0, 0};
    assert_false(disk_stats_update(ds, "vm1/0", T0 + 25, &back, &r));
    assert_false(disk_stats_update(ds, "vm1/0", T0 + 30, &unknown, &r));
    assert_false(disk_stats_update(ds, "vm1/0", T0 + 35, &back, &r));
    assert_true(disk_stats_update(ds, "vm1/0", T0 + 40, &back, &r));
    /* Disks not read since a round are forgotten. */
    disk_stats_expire(ds, T0 + 40);
    assert_false(disk_stats_update(ds, "vm2/1", T0 + 45, &b, &r));
    /* XAPI's names and units, however the source is named. */
    const char *description, *units;
    assert_true(disk_stats_describe("vbd_xvdb_iops_read", &description, &units));
    assert_string_equal(units, "requests/s");
    assert_true(disk_stats_describe("read_latency_77777777", &description, &units));
    assert_string_equal(units, "μs");
    assert_true(disk_stats_describe("io_throughput_total", &description, &units));
    assert_false(disk_stats_describe("vbd_xvda_read", &description, &units));
    disk_stats_free(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_rates_and_averages),
        cmocka_unit_test(test_unknown_points_and_xff),
        cmocka_unit_test(test_best_archive),
        cmocka_unit_test(test_xport_golden),
        cmocka_unit_test(test_dump_and_image),
        cmocka_unit_test(test_sources_added_and_forgotten),
        cmocka_unit_test(test_names_escaped),
        cmocka_unit_test(test_vm_archive_bytes),
        cmocka_unit_test(test_sr_io_golden),
    };
    tmp_dir = g_dir_make_tmp("xapid-rrd-XXXXXX", NULL);
    if (!tmp_dir)
        return 1;
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    remove_tmp_dir();
    return rc;
}
