/* Unit tests of common/rma-util.c: UUIDs, sizes, names. */
#include <errno.h>
#include <glib.h>

#include "rma-util.h"

static void test_uuid(void) {
        char out[RMA_UUID_STRING_LEN + 1];

        g_assert_cmpint(rma_uuid_canonicalize("4DEA22B3-1D52-D8F3-2516-782E98AB3FA0", out), ==, 0);
        g_assert_cmpstr(out, ==, "4dea22b3-1d52-d8f3-2516-782e98ab3fa0");
        g_assert_cmpint(rma_uuid_canonicalize("4dea22b3-1d52-d8f3-2516-782e98ab3fa", out), ==, -EINVAL);
        g_assert_cmpint(rma_uuid_canonicalize("4dea22b3-1d52-d8f3-2516-782e98ab3fa0x", out), ==, -EINVAL);
        g_assert_cmpint(rma_uuid_canonicalize("not-a-uuid", out), ==, -EINVAL);
        g_assert_cmpint(rma_uuid_canonicalize("4dea22b3-1d52-d8f3-2516-782e98ab3fg0", out), ==, -EINVAL);
        g_assert_cmpint(rma_uuid_canonicalize("4dea22b31-d52-d8f3-2516-782e98ab3fa0", out), ==, -EINVAL);
        g_assert_cmpint(rma_uuid_canonicalize("4dea22b3-1d52-d8f3-2516-782e98ab3fa\n", out), ==, -EINVAL);
        g_assert_cmpint(rma_uuid_canonicalize("", out), ==, -EINVAL);
        g_assert_cmpint(rma_uuid_canonicalize(NULL, out), ==, -EINVAL);
}

static void test_size(void) {
        uint64_t v;

        g_assert_cmpint(rma_parse_size("268435456", &v), ==, 0);
        g_assert_cmpuint(v, ==, 268435456);
        g_assert_cmpint(rma_parse_size("256M", &v), ==, 0);
        g_assert_cmpuint(v, ==, 256u << 20);
        g_assert_cmpint(rma_parse_size("256MiB", &v), ==, 0);
        g_assert_cmpuint(v, ==, 256u << 20);
        g_assert_cmpint(rma_parse_size("1g", &v), ==, 0);
        g_assert_cmpuint(v, ==, 1u << 30);
        g_assert_cmpint(rma_parse_size("64K", &v), ==, 0);
        g_assert_cmpuint(v, ==, 65536);
        g_assert_cmpint(rma_parse_size("", &v), ==, -EINVAL);
        g_assert_cmpint(rma_parse_size("M", &v), ==, -EINVAL);
        g_assert_cmpint(rma_parse_size("-1", &v), ==, -EINVAL);
        g_assert_cmpint(rma_parse_size("12X", &v), ==, -EINVAL);
        g_assert_cmpint(rma_parse_size("12MBx", &v), ==, -EINVAL);
        g_assert_cmpint(rma_parse_size("99999999999999999999", &v), ==, -ERANGE);
        g_assert_cmpint(rma_parse_size("99999999999T", &v), ==, -ERANGE);
}

static void test_names(void) {
        g_autofree char *longname = g_strnfill(RMA_NAME_MAX + 1, 'a');

        g_assert_true(rma_name_is_valid("acme"));
        g_assert_true(rma_name_is_valid("my vm.01_ü"));
        g_assert_false(rma_name_is_valid(""));
        g_assert_false(rma_name_is_valid(NULL));
        g_assert_false(rma_name_is_valid("a\nb"));
        g_assert_false(rma_name_is_valid("\xff\xfe"));
        g_assert_false(rma_name_is_valid(longname));
        longname[RMA_NAME_MAX] = '\0';
        g_assert_true(rma_name_is_valid(longname));
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/util/uuid", test_uuid);
        g_test_add_func("/util/size", test_size);
        g_test_add_func("/util/names", test_names);
        return g_test_run();
}
