/* Unit tests of config/broker-config.c and daemon/command-line.c: defaults, file, command line, and error messages. */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "broker-config.h"
#include "command-line.h"

static char *write_conf(const char *text) {
        g_autoptr(GError) error = NULL;
        char *path = NULL;
        int fd = g_file_open_tmp("rma-config-XXXXXX.conf", &path, &error);

        g_assert_no_error(error);
        g_assert_true(g_file_set_contents(path, text, -1, &error));
        close(fd);
        return path;
}

static int load(const char *const *args, BrokerConfig **ret, GError **error) {
        /* GOption drops parsed arguments from the array without freeing them: keep our
         * own list of the strings, and hand it a copy of the array. */
        g_auto(GStrv) owned = g_strdupv((char **) args);
        int argc = (int) g_strv_length(owned);
        g_autofree char **argv = g_memdup2(owned, sizeof(char *) * (size_t) (argc + 1));
        char **a = argv;

        return command_line_load(&argc, &a, ret, error);
}

static void test_file_and_cmdline(void) {
        g_autofree char *path = write_conf("[Broker]\nBackend=memfd\nCount=4\nSize=64M\nQemuUsers=root; nobody\n"
                                           "ReservationTimeoutSec=30\nCheckCgroup=no\n");
        g_autofree char *opt = g_strdup_printf("--config=%s", path);
        const char *args[] = { "rma-brokerd", opt, "--count=2", NULL };
        g_autoptr(BrokerConfig) c = NULL;
        g_autoptr(GError) error = NULL;

        g_assert_cmpint(load(args, &c, &error), ==, 0);
        g_assert_no_error(error);
        g_assert_cmpint(c->backend, ==, BACKEND_MEMFD);
        g_assert_cmpuint(c->count, ==, 2); /* the command line wins */
        g_assert_cmpuint(c->size, ==, 64u << 20);
        g_assert_cmpuint(c->reservation_timeout_usec, ==, 30 * G_USEC_PER_SEC);
        g_assert_false(c->check_cgroup);
        g_assert_cmpuint(c->n_qemu_uids, ==, 2);
        g_assert_true(broker_config_uid_may_claim(c, 0));
        g_assert_true(broker_config_uid_may_claim(c, 65534));
        g_assert_false(broker_config_uid_may_claim(c, 1));
        g_unlink(path);
}

static void test_count_auto(void) {
        g_autofree char *path = write_conf("[Broker]\nBackend=hugetlb\nCount=auto\nHugePageSize=2M\n");
        g_autofree char *opt = g_strdup_printf("--config=%s", path);
        const char *args[] = { "rma-brokerd", opt, NULL };
        g_autoptr(BrokerConfig) c = NULL;
        g_autoptr(GError) error = NULL;

        g_assert_cmpint(load(args, &c, &error), ==, 0);
        g_assert_cmpuint(c->count, ==, RMA_COUNT_AUTO);
        g_unlink(path);
}

static void test_defaults(void) {
        const char *args[] = { "rma-brokerd", "--config=/nonexistent/rma-brokerd.conf", NULL };
        const char *args_missing_ok[] = { "rma-brokerd", NULL };
        g_autoptr(BrokerConfig) c = NULL;
        g_autoptr(GError) error = NULL;

        /* A config file named on the command line must exist. */
        g_assert_cmpint(load(args, &c, &error), <, 0);
        g_assert_nonnull(strstr(error->message, "/nonexistent/rma-brokerd.conf"));
        g_clear_error(&error);

        if (g_file_test("/etc/rma-broker/rma-brokerd.conf", G_FILE_TEST_EXISTS)) {
                g_test_skip("/etc/rma-broker/rma-brokerd.conf exists on this host");
                return;
        }
        g_assert_cmpint(load(args_missing_ok, &c, &error), ==, 0);
        /* No Count=: the whole pool for kvm (it exists only for RMAs), 8 for the others. */
        g_assert_cmpuint(c->count, ==, RMA_COUNT_UNSET);
        g_assert_cmpuint(broker_config_count(c, BACKEND_MEMFD), ==, 8);
        g_assert_cmpuint(broker_config_count(c, BACKEND_HUGETLB), ==, 8);
        g_assert_cmpuint(broker_config_count(c, BACKEND_AUTO), ==, 8);
        g_assert_cmpuint(broker_config_count(c, BACKEND_KVM), ==, RMA_COUNT_AUTO);
        g_assert_cmpuint(c->size, ==, 256u << 20);
        g_assert_cmpint(c->backend, ==, BACKEND_AUTO);
        g_assert_true(c->check_cgroup);
}

static void test_errors_name_file_and_key(void) {
        const struct {
                const char *text;
                const char *want;
        } cases[] = {
                { "[Broker]\nCount=0\n", "Count=0 is invalid; allowed: auto (as many as the kvm or hugetlb pool holds), or a whole number from 1 to 65536" },
                { "[Broker]\nCount=lots\n", "Count=lots" },
                { "[Broker]\nSize=300M\n", "Size=300M is invalid; allowed: a power of two" },
                { "[Broker]\nSize=4K\n", "Size=4K" },
                { "[Broker]\nSize=8388608T\n", "Size=8388608T is invalid; allowed: a power of two from 1M to 1T" },
                { "[Broker]\nSize=2T\n", "Size=2T" },
                { "[Broker]\nMaxConnections=0\n", "MaxConnections=0 is invalid; allowed: a whole number from 1 to 65536" },
                { "[Broker]\nMaxConnectionsPerUser=-1\n", "MaxConnectionsPerUser=-1" },
                { "[Broker]\nConnectionTimeoutSec=3601\n", "ConnectionTimeoutSec=3601" },
                { "[Broker]\nMaxQueuedReplies=0\n", "MaxQueuedReplies=0" },
                { "[Broker]\nBackend=xen\n", "allowed: auto, kvm, hugetlb, memfd" },
                { "[Broker]\nCheckCgroup=maybe\n", "allowed: yes or no" },
                { "[Broker]\nReservationTimeoutSec=0\n", "ReservationTimeoutSec=0" },
                { "not an ini file\n", "rma-config-" },
                { "[Broker]\nCount=8   # pool\n", "Count=8   # pool: a comment must stand on a line of its own" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *path = write_conf(cases[i].text);
                g_autofree char *opt = g_strdup_printf("--config=%s", path);
                const char *args[] = { "rma-brokerd", opt, NULL };
                g_autoptr(BrokerConfig) c = NULL;
                g_autoptr(GError) error = NULL;

                g_assert_cmpint(load(args, &c, &error), <, 0);
                g_assert_null(c);
                g_assert_nonnull(strstr(error->message, cases[i].want));
                g_assert_nonnull(strstr(error->message, path));
                g_unlink(path);
        }
}

static void test_connection_limits(void) {
        g_autofree char *path = write_conf("[Broker]\nMaxConnections=10\nMaxConnectionsPerUser=3\n"
                                           "ConnectionTimeoutSec=5\nMaxQueuedReplies=2\n");
        g_autofree char *opt = g_strdup_printf("--config=%s", path);
        const char *args[] = { "rma-brokerd", opt, NULL };
        g_autofree char *empty = write_conf("[Broker]\n");
        g_autofree char *empty_opt = g_strdup_printf("--config=%s", empty);
        const char *defaults[] = { "rma-brokerd", empty_opt, NULL };
        g_autoptr(BrokerConfig) c = NULL, d = NULL;
        g_autoptr(GError) error = NULL;

        g_assert_cmpint(load(args, &c, &error), ==, 0);
        g_assert_cmpuint(c->max_connections, ==, 10);
        g_assert_cmpuint(c->max_connections_per_user, ==, 3);
        g_assert_cmpuint(c->connection_timeout_usec, ==, 5 * G_USEC_PER_SEC);
        g_assert_cmpuint(c->max_queued_replies, ==, 2);
        g_assert_cmpint(load(defaults, &d, &error), ==, 0);
        g_assert_cmpuint(d->max_connections, ==, RMA_DEFAULT_MAX_CONNECTIONS);
        g_assert_cmpuint(d->max_connections_per_user, ==, RMA_DEFAULT_MAX_CONNECTIONS_PER_USER);
        g_assert_cmpuint(d->connection_timeout_usec, ==, RMA_DEFAULT_CONNECTION_TIMEOUT_SEC * G_USEC_PER_SEC);
        g_assert_cmpuint(d->max_queued_replies, ==, RMA_DEFAULT_MAX_QUEUED_REPLIES);
        g_unlink(path);
        g_unlink(empty);
}

static void test_cmdline_errors(void) {
        const char *args[] = { "rma-brokerd", "--config=/nonexistent", "--size=12", NULL };
        const char *extra[] = { "rma-brokerd", "stray", NULL };
        g_autoptr(BrokerConfig) c = NULL;
        g_autoptr(GError) e1 = NULL, e2 = NULL;

        g_assert_cmpint(load(args, &c, &e1), <, 0);
        g_assert_cmpint(load(extra, &c, &e2), <, 0);
        g_assert_nonnull(strstr(e2->message, "stray"));
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/config/file-and-cmdline", test_file_and_cmdline);
        g_test_add_func("/config/defaults", test_defaults);
        g_test_add_func("/config/count-auto", test_count_auto);
        g_test_add_func("/config/errors-name-file-and-key", test_errors_name_file_and_key);
        g_test_add_func("/config/connection-limits", test_connection_limits);
        g_test_add_func("/config/cmdline-errors", test_cmdline_errors);
        return g_test_run();
}
