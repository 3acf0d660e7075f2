/* Unit tests of the wrapper's command-line rewrite (libvirt-plugin/qemu-cmdline.c). */
#include <glib.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "qemu-cmdline.h"

#define MIB256 268435456ULL
/* Verbatim shape of what libvirt 9.0 passes for a 2-cell pseries guest. */
#define NODE0 "{\"qom-type\":\"memory-backend-ram\",\"id\":\"ram-node0\",\"size\":268435456}"
#define NODE1 "{\"qom-type\":\"memory-backend-ram\",\"id\":\"ram-node1\",\"size\":268435456}"

static JsonObject *parse_object(const char *s, JsonParser **keep) {
        *keep = json_parser_new();
        g_assert_true(json_parser_load_from_data(*keep, s, -1, NULL));
        return json_node_get_object(json_parser_get_root(*keep));
}

static void test_find_uuid(void) {
        char *with[] = { "qemu", "-name", "x", "-uuid", "4dea22b3-1d52-d8f3-2516-782e98ab3fa0", NULL };
        char *probe[] = { "qemu", "-S", "-no-user-config", "-machine", "none", NULL };
        char *dangling[] = { "qemu", "-uuid", NULL };

        g_assert_cmpstr(qemu_cmdline_find_uuid(with), ==, "4dea22b3-1d52-d8f3-2516-782e98ab3fa0");
        g_assert_null(qemu_cmdline_find_uuid(probe));
        g_assert_null(qemu_cmdline_find_uuid(dangling));
}

static void test_rewrite_node0(void) {
        char *argv[] = { "qemu", "-machine", "pseries", "-object", NODE0, "-numa", "node,nodeid=0,cpus=0,memdev=ram-node0",
                         "-object", NODE1, "-uuid", "4dea22b3-1d52-d8f3-2516-782e98ab3fa0", NULL };
        g_autoptr(GError) error = NULL;
        g_auto(GStrv) out = qemu_cmdline_rewrite_ram(argv, 7, MIB256, &error);
        g_autoptr(JsonParser) keep = NULL;
        JsonObject *o;

        g_assert_no_error(error);
        g_assert_nonnull(out);
        g_assert_cmpuint(g_strv_length(out), ==, g_strv_length(argv));
        for (guint i = 0; argv[i]; i++)
                if (i != 4)
                        g_assert_cmpstr(out[i], ==, argv[i]);
        o = parse_object(out[4], &keep);
        g_assert_cmpstr(json_object_get_string_member(o, "qom-type"), ==, "memory-backend-file");
        g_assert_cmpstr(json_object_get_string_member(o, "id"), ==, "ram-node0");
        g_assert_cmpstr(json_object_get_string_member(o, "mem-path"), ==, "/proc/self/fd/7");
        g_assert_true(json_object_get_boolean_member(o, "share"));
        g_assert_cmpint(json_object_get_int_member(o, "size"), ==, (gint64) MIB256);
        /* Node 1 is not ours. */
        g_assert_cmpstr(out[8], ==, NODE1);
}

static void test_rewrite_keeps_options(void) {
        char *argv[] = { "qemu", "-object",
                         "{\"qom-type\":\"memory-backend-memfd\",\"id\":\"ram-node0\",\"size\":268435456,"
                         "\"seal\":true,\"prealloc\":true,\"host-nodes\":[0],\"policy\":\"bind\"}",
                         "-uuid", "4dea22b3-1d52-d8f3-2516-782e98ab3fa0", NULL };
        g_autoptr(GError) error = NULL;
        g_auto(GStrv) out = qemu_cmdline_rewrite_ram(argv, 3, MIB256, &error);
        g_autoptr(JsonParser) keep = NULL;
        JsonObject *o;

        g_assert_no_error(error);
        o = parse_object(out[2], &keep);
        g_assert_cmpstr(json_object_get_string_member(o, "qom-type"), ==, "memory-backend-file");
        g_assert_false(json_object_has_member(o, "seal"));
        g_assert_true(json_object_get_boolean_member(o, "prealloc"));
        g_assert_cmpstr(json_object_get_string_member(o, "policy"), ==, "bind");
        g_assert_true(json_object_has_member(o, "host-nodes"));
}

static void test_rewrite_whole_ram(void) {
        char *argv[] = { "qemu", "-object", "{\"qom-type\":\"memory-backend-ram\",\"id\":\"ppc_spapr.ram\",\"size\":268435456}",
                         NULL };
        char *bigger[] = { "qemu", "-object", "{\"qom-type\":\"memory-backend-ram\",\"id\":\"ppc_spapr.ram\",\"size\":536870912}",
                           NULL };
        g_autoptr(GError) error = NULL;
        g_auto(GStrv) out = qemu_cmdline_rewrite_ram(argv, 5, MIB256, &error);
        g_auto(GStrv) none = NULL;

        g_assert_no_error(error);
        g_assert_nonnull(strstr(out[2], "\"memory-backend-file\""));
        g_assert_nonnull(strstr(out[2], "/proc/self/fd/5"));
        /* Whole RAM larger than the RMA cannot be node 0: the message gives the size. */
        none = qemu_cmdline_rewrite_ram(bigger, 5, MIB256, &error);
        g_assert_null(none);
        g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
        g_assert_nonnull(strstr(error->message, "NUMA cell 0 to exactly 262144 KiB"));
}

static void test_rewrite_refusals(void) {
        char *wrong_size[] = { "qemu", "-object", NODE0, NULL };
        char *no_backend[] = { "qemu", "-m", "512", "-object", "secret,id=s0,data=x", "-object", "{not json", NULL };
        g_autoptr(GError) e1 = NULL, e2 = NULL;
        char **out;

        out = qemu_cmdline_rewrite_ram(wrong_size, 3, 2 * MIB256, &e1);
        g_assert_null(out);
        g_assert_error(e1, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
        g_assert_nonnull(strstr(e1->message, "524288 KiB"));
        out = qemu_cmdline_rewrite_ram(no_backend, 3, MIB256, &e2);
        g_assert_null(out);
        g_assert_error(e2, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/qemu-cmdline/find-uuid", test_find_uuid);
        g_test_add_func("/qemu-cmdline/rewrite-node0", test_rewrite_node0);
        g_test_add_func("/qemu-cmdline/rewrite-keeps-options", test_rewrite_keeps_options);
        g_test_add_func("/qemu-cmdline/rewrite-whole-ram", test_rewrite_whole_ram);
        g_test_add_func("/qemu-cmdline/rewrite-refusals", test_rewrite_refusals);
        return g_test_run();
}
