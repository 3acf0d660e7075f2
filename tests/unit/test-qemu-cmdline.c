/* Unit tests of the wrapper's memory layout (libvirt-plugin/qemu-cmdline.c). */
#include <glib.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "qemu-cmdline.h"
#include "qemu-exec.h"

#define MIB256 268435456ULL
#define UUID "4dea22b3-1d52-d8f3-2516-782e98ab3fa0"
/* Verbatim shape of what libvirt 9.0 passes for a 2-cell pseries guest. */
#define NODE0 "{\"qom-type\":\"memory-backend-ram\",\"id\":\"ram-node0\",\"size\":268435456}"
#define NODE1 "{\"qom-type\":\"memory-backend-ram\",\"id\":\"ram-node1\",\"size\":268435456}"
#define NODE0_512 "{\"qom-type\":\"memory-backend-ram\",\"id\":\"ram-node0\",\"size\":536870912}"

static JsonObject *parse_object(const char *s, JsonParser **keep) {
        *keep = json_parser_new();
        g_assert_true(json_parser_load_from_data(*keep, s, -1, NULL));
        return json_node_get_object(json_parser_get_root(*keep));
}

static void assert_region(const char *arg, int fd, const char *id, guint64 size) {
        g_autoptr(JsonParser) keep = NULL;
        g_autofree char *path = g_strdup_printf("/proc/self/fd/%d", fd);
        JsonObject *o = parse_object(arg, &keep);

        g_assert_cmpstr(json_object_get_string_member(o, "qom-type"), ==, "memory-backend-file");
        g_assert_cmpstr(json_object_get_string_member(o, "id"), ==, id);
        g_assert_cmpstr(json_object_get_string_member(o, "mem-path"), ==, path);
        g_assert_true(json_object_get_boolean_member(o, "share"));
        g_assert_cmpint(json_object_get_int_member(o, "size"), ==, (gint64) size);
}

static void test_find_uuid(void) {
        char *with[] = { "qemu", "-name", "x", "-uuid", UUID, NULL };
        char *probe[] = { "qemu", "-S", "-no-user-config", "-machine", "none", NULL };
        char *dangling[] = { "qemu", "-uuid", NULL };

        g_assert_cmpstr(qemu_cmdline_find_uuid(with), ==, UUID);
        g_assert_null(qemu_cmdline_find_uuid(probe));
        g_assert_null(qemu_cmdline_find_uuid(dangling));
}

/* Node 0 exactly the RMA: only its backend changes, as in 0.2.0. */
static void test_node0_is_rma(void) {
        char *argv[] = { "qemu", "-machine", "pseries", "-m", "size=524288k", "-object", NODE0, "-numa",
                         "node,nodeid=0,cpus=0,memdev=ram-node0", "-object", NODE1, "-uuid", UUID, NULL };
        g_autoptr(GError) error = NULL;
        g_autofree char *summary = NULL;
        g_auto(GStrv) out = qemu_cmdline_lay_out_rma(argv, 7, MIB256, &summary, &error);

        g_assert_no_error(error);
        g_assert_cmpuint(g_strv_length(out), ==, g_strv_length(argv));
        for (guint i = 0; argv[i]; i++)
                if (i != 6)
                        g_assert_cmpstr(out[i], ==, argv[i]);
        assert_region(out[6], 7, "ram-node0", MIB256);
        g_assert_nonnull(strstr(summary, "all of node 0"));
}

/* Two cells of 512 MiB, RMA 256 MiB: node 0's backend is the region (boot memory), the
 * other 256 MiB of node 0 a pc-dimm on node 0 of libvirt's kind, node 1 untouched. */
static void test_two_cells(void) {
        char *argv[] = { "qemu", "-m", "size=1048576k", "-object", NODE0_512, "-numa",
                         "node,nodeid=0,cpus=0,memdev=ram-node0", "-object",
                         "{\"qom-type\":\"memory-backend-ram\",\"id\":\"ram-node1\",\"size\":536870912}", "-numa",
                         "node,nodeid=1,cpus=1,memdev=ram-node1", "-uuid", UUID, NULL };
        g_autoptr(GError) error = NULL;
        g_autofree char *summary = NULL;
        g_auto(GStrv) out = qemu_cmdline_lay_out_rma(argv, 9, MIB256, &summary, &error);
        g_autoptr(JsonParser) k1 = NULL, k2 = NULL;
        JsonObject *o;

        g_assert_no_error(error);
        g_assert_cmpuint(g_strv_length(out), ==, g_strv_length(argv) + 4);
        g_assert_cmpstr(out[2], ==, "size=786432k,slots=1,maxmem=1048576k");
        assert_region(out[4], 9, "ram-node0", MIB256);
        g_assert_cmpstr(out[5], ==, "-object");
        o = parse_object(out[6], &k1);
        g_assert_cmpstr(json_object_get_string_member(o, "qom-type"), ==, "memory-backend-ram");
        g_assert_cmpstr(json_object_get_string_member(o, "id"), ==, QEMU_RMA_REST_ID);
        g_assert_cmpint(json_object_get_int_member(o, "size"), ==, (gint64) MIB256);
        g_assert_cmpstr(out[7], ==, "-device");
        o = parse_object(out[8], &k2);
        g_assert_cmpstr(json_object_get_string_member(o, "driver"), ==, "pc-dimm");
        g_assert_cmpstr(json_object_get_string_member(o, "memdev"), ==, QEMU_RMA_REST_ID);
        g_assert_cmpint(json_object_get_int_member(o, "node"), ==, 0);
        g_assert_cmpint(json_object_get_int_member(o, "slot"), ==, 0);
        for (guint i = 5; argv[i]; i++)
                g_assert_cmpstr(out[i + 4], ==, argv[i]);
        g_assert_nonnull(strstr(summary, "the other 256 MiB of node 0 is pc-dimm rma-rest-node0"));
}

/* Without NUMA cells (what virt-install and Nova write): the whole-RAM backend keeps its
 * id (-machine memory-backend= names it) and shrinks to the RMA. */
static void test_no_cells(void) {
        char *argv[] = { "qemu", "-machine", "pseries,usb=off,memory-backend=ppc_spapr.ram", "-m", "2048", "-object",
                         "{\"qom-type\":\"memory-backend-ram\",\"id\":\"ppc_spapr.ram\",\"size\":2147483648}", "-uuid",
                         UUID, NULL };
        g_autoptr(GError) error = NULL;
        g_auto(GStrv) out = qemu_cmdline_lay_out_rma(argv, 5, MIB256, NULL, &error);

        g_assert_no_error(error);
        g_assert_cmpstr(out[2], ==, argv[2]);
        g_assert_cmpstr(out[4], ==, "size=262144k,slots=1,maxmem=2097152k");
        assert_region(out[6], 5, "ppc_spapr.ram", MIB256);
        g_assert_nonnull(strstr(out[8], "\"size\":1879048192"));
        g_assert_nonnull(strstr(out[10], "\"node\":0"));
}

/* A guest with <maxMemory>: its own slots and maxmem stay; ours is the last slot. */
static void test_keeps_hotplug(void) {
        char *argv[] = { "qemu", "-m", "size=524288k,slots=16,maxmem=8388608k", "-object", NODE0_512, "-uuid", UUID,
                         NULL };
        g_autoptr(GError) error = NULL;
        g_auto(GStrv) out = qemu_cmdline_lay_out_rma(argv, 5, MIB256, NULL, &error);

        g_assert_no_error(error);
        g_assert_cmpstr(out[2], ==, "size=262144k,slots=17,maxmem=8388608k");
        g_assert_nonnull(strstr(out[8], "\"slot\":16"));
}

/* The rest keeps libvirt's backend kind and options: memfd with hugepages, a file named
 * after its backend (a file of its own), a hugetlbfs directory (kept). */
static void test_rest_like_libvirt(void) {
        char *memfd[] = { "qemu", "-m", "1024", "-object",
                          "{\"qom-type\":\"memory-backend-memfd\",\"id\":\"ram-node0\",\"hugetlb\":true,"
                          "\"hugetlbsize\":2097152,\"share\":true,\"prealloc\":true,\"size\":1073741824,"
                          "\"host-nodes\":[0],\"policy\":\"bind\"}", NULL };
        char *file[] = { "qemu", "-m", "1024", "-object",
                         "{\"qom-type\":\"memory-backend-file\",\"id\":\"ram-node0\",\"mem-path\":"
                         "\"/var/lib/libvirt/qemu/ram/1-d/ram-node0\",\"share\":true,\"size\":1073741824}", NULL };
        char *dir[] = { "qemu", "-m", "1024", "-object",
                        "{\"qom-type\":\"memory-backend-file\",\"id\":\"ppc_spapr.ram\",\"mem-path\":"
                        "\"/dev/hugepages/libvirt/qemu/1-d\",\"prealloc\":true,\"size\":1073741824}", NULL };
        g_autoptr(GError) error = NULL;
        g_auto(GStrv) a = qemu_cmdline_lay_out_rma(memfd, 3, MIB256, NULL, &error);
        g_auto(GStrv) b = qemu_cmdline_lay_out_rma(file, 3, MIB256, NULL, &error);
        g_auto(GStrv) c = qemu_cmdline_lay_out_rma(dir, 3, MIB256, NULL, &error);
        g_autoptr(JsonParser) k1 = NULL, k2 = NULL, k3 = NULL, k4 = NULL;
        JsonObject *o;

        g_assert_no_error(error);
        /* The region drops what a file backend does not have, keeps the rest. */
        o = parse_object(a[4], &k1);
        g_assert_false(json_object_has_member(o, "hugetlb"));
        g_assert_true(json_object_get_boolean_member(o, "prealloc"));
        g_assert_cmpstr(json_object_get_string_member(o, "policy"), ==, "bind");
        o = parse_object(a[6], &k2);
        g_assert_cmpstr(json_object_get_string_member(o, "qom-type"), ==, "memory-backend-memfd");
        g_assert_true(json_object_get_boolean_member(o, "hugetlb"));
        g_assert_cmpint(json_object_get_int_member(o, "hugetlbsize"), ==, 2097152);
        g_assert_cmpint(json_object_get_int_member(o, "size"), ==, 3 * (gint64) MIB256);
        g_assert_true(json_object_has_member(o, "host-nodes"));
        o = parse_object(b[6], &k3);
        g_assert_cmpstr(json_object_get_string_member(o, "mem-path"), ==,
                        "/var/lib/libvirt/qemu/ram/1-d/" QEMU_RMA_REST_ID);
        o = parse_object(c[6], &k4);
        g_assert_cmpstr(json_object_get_string_member(o, "mem-path"), ==, "/dev/hugepages/libvirt/qemu/1-d");
}

static void test_refusals(void) {
        char *small[] = { "qemu", "-m", "256", "-object", NODE0, NULL };
        char *no_backend[] = { "qemu", "-m", "512", "-object", "secret,id=s0,data=x", "-object", "{not json", NULL };
        char *bad_m[] = { "qemu", "-m", "size=lots", "-object", NODE0_512, NULL };
        g_autoptr(GError) e1 = NULL, e2 = NULL, e3 = NULL;
        char **out;

        out = qemu_cmdline_lay_out_rma(small, 3, 2 * MIB256, NULL, &e1);
        g_assert_null(out);
        g_assert_error(e1, QEMU_CMDLINE_ERROR, QEMU_CMDLINE_ERROR_INVALID);
        g_assert_nonnull(strstr(e1->message, "give the domain at least 512 MiB of memory"));
        out = qemu_cmdline_lay_out_rma(no_backend, 3, MIB256, NULL, &e2);
        g_assert_null(out);
        g_assert_error(e2, QEMU_CMDLINE_ERROR, QEMU_CMDLINE_ERROR_NO_NODE0);
        out = qemu_cmdline_lay_out_rma(bad_m, 3, MIB256, NULL, &e3);
        g_assert_null(out);
        g_assert_error(e3, QEMU_CMDLINE_ERROR, QEMU_CMDLINE_ERROR_INVALID);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/qemu-cmdline/find-uuid", test_find_uuid);
        g_test_add_func("/qemu-cmdline/node0-is-rma", test_node0_is_rma);
        g_test_add_func("/qemu-cmdline/two-cells", test_two_cells);
        g_test_add_func("/qemu-cmdline/no-cells", test_no_cells);
        g_test_add_func("/qemu-cmdline/keeps-hotplug", test_keeps_hotplug);
        g_test_add_func("/qemu-cmdline/rest-like-libvirt", test_rest_like_libvirt);
        g_test_add_func("/qemu-cmdline/refusals", test_refusals);
        return g_test_run();
}
