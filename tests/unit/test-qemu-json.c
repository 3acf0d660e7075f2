/* The wrapper's own JSON reader and writer, checked against json-glib (tests only). */
#include <json-glib/json-glib.h>
#include <string.h>

#include "qemu-json.h"

/* Each valid object is read as json-glib reads it, and what qemu_json writes back from it
 * is the same object for json-glib. */
static const char *const valid[] = {
        "{}",
        " { \"a\" : 1 } \n",
        "{\"qom-type\":\"memory-backend-ram\",\"id\":\"ppc_spapr.ram\",\"size\":1073741824}",
        ("{\"qom-type\":\"memory-backend-memfd\",\"id\":\"ram-node0\",\"hugetlb\":true,\"hugetlbsize\":2097152,"
         "\"prealloc\":true,\"size\":536870912,\"host-nodes\":[0, 1],\"policy\":\"bind\",\"x\":null,\"y\":-1.5e3}"),
        "{\"mem-path\":\"/dev/hugepages/libvirt/qemu/1-d\\\\ \\\"q\\\" \\u00e9 \\ud83d\\ude00 \\/x\\n\",\"n\":{\"a\":[{}]}}",
        "{\"s\":\"caf\xc3\xa9\",\"z\":0,\"neg\":-0}",
};

static const char *const invalid[] = {
        "", "[]", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{\"a\":1} x", "{a:1}", "{\"a\":01}",
        "{\"a\":1.}", "{\"a\":tru}", "{\"a\":\"\\u0000\"}", "{\"a\":\"\\ud83d\"}", "{\"a\":\"\\udc00\"}",
        "{\"a\":\"\\x\"}", "{\"a\":\"tab\there\"}", "{\"a\":\"\xff\"}", "{\"a\":[1 2]}", "{\"a\":truex}",
};

static JsonObject *glib_parse(const char *text, JsonParser **keep) {
        *keep = json_parser_new();
        g_assert_true(json_parser_load_from_data(*keep, text, -1, NULL));
        return json_node_get_object(json_parser_get_root(*keep));
}

static void test_valid(void) {
        for (size_t i = 0; i < G_N_ELEMENTS(valid); i++) {
                g_autoptr(QemuObject) obj = qemu_object_parse(valid[i]);
                g_autoptr(JsonParser) k1 = NULL, k2 = NULL;
                g_autofree char *written = NULL;
                g_autoptr(JsonNode) back = NULL;
                JsonObject *expected;
                GString *out = qemu_json_begin();

                g_assert_nonnull(obj);
                expected = glib_parse(valid[i], &k1);
                g_assert_cmpuint(qemu_object_count(obj), ==, json_object_get_size(expected));
                for (size_t m = 0; m < qemu_object_count(obj); m++) {
                        const char *name = qemu_object_name(obj, m);
                        JsonNode *node = json_object_get_member(expected, name);
                        g_assert_nonnull(node);
                        if (JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_STRING)
                                g_assert_cmpstr(qemu_object_string(obj, name), ==, json_node_get_string(node));
                        else
                                g_assert_null(qemu_object_string(obj, name));
                        qemu_json_add_raw(out, name, qemu_object_raw(obj, m));
                }
                written = qemu_json_end(out);
                back = json_node_init_object(json_node_alloc(), glib_parse(written, &k2));
                g_assert_true(json_node_equal(json_parser_get_root(k1), back));
        }
}

static void test_invalid(void) {
        for (size_t i = 0; i < G_N_ELEMENTS(invalid); i++) {
                g_test_message("%s", invalid[i]);
                g_assert_null(qemu_object_parse(invalid[i]));
        }
}

static void test_deep(void) {
        g_autoptr(GString) s = g_string_new("{\"a\":");

        for (int i = 0; i < 40; i++)
                g_string_append_c(s, '[');
        for (int i = 0; i < 40; i++)
                g_string_append_c(s, ']');
        g_string_append_c(s, '}');
        g_assert_null(qemu_object_parse(s->str));
}

static void test_int(void) {
        g_autoptr(QemuObject) obj = qemu_object_parse("{\"a\":9223372036854775807,\"b\":9223372036854775808,"
                                                      "\"c\":1e3,\"d\":\"5\",\"e\":-2,\"f\":2.0,\"a2\":1,\"a2\":2}");
        int64_t v;

        g_assert_true(qemu_object_int(obj, "a", &v));
        g_assert_cmpint(v, ==, G_MAXINT64);
        g_assert_false(qemu_object_int(obj, "b", &v));
        g_assert_false(qemu_object_int(obj, "c", &v));
        g_assert_false(qemu_object_int(obj, "d", &v));
        g_assert_true(qemu_object_int(obj, "e", &v));
        g_assert_cmpint(v, ==, -2);
        g_assert_false(qemu_object_int(obj, "f", &v));
        /* A repeated member: its first place, its last value. */
        g_assert_cmpuint(qemu_object_count(obj), ==, 7);
        g_assert_true(qemu_object_int(obj, "a2", &v));
        g_assert_cmpint(v, ==, 2);
}

static void test_write_escapes(void) {
        GString *out = qemu_json_begin();
        g_autofree char *written = NULL;
        g_autoptr(JsonParser) keep = NULL;
        JsonObject *o;

        qemu_json_add_string(out, "p\"", "a\\b\"c\n\x01\xc3\xa9");
        qemu_json_add_uint(out, "n", G_MAXUINT64);
        written = qemu_json_end(out);
        o = glib_parse(written, &keep);
        g_assert_cmpstr(json_object_get_string_member(o, "p\""), ==, "a\\b\"c\n\x01\xc3\xa9");
        g_assert_true(strstr(written, "\"n\":18446744073709551615"));
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/qemu-json/valid", test_valid);
        g_test_add_func("/qemu-json/invalid", test_invalid);
        g_test_add_func("/qemu-json/deep", test_deep);
        g_test_add_func("/qemu-json/int", test_int);
        g_test_add_func("/qemu-json/write-escapes", test_write_escapes);
        return g_test_run();
}
