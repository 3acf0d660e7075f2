/* A broker core for unit tests: a real memfd pool of 3 regions of 1 MiB, QemuUsers=4243,
 * no cgroup check, and the policy file text given as the test's data (NULL: none). */
#pragma once

#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <systemd/sd-event.h>

#include "broker.h"
#include "command-line.h"

typedef struct Fixture {
        char *dir;
        Broker *broker;
} Fixture;

/* data: the policy file's text, or NULL for a host without policy. */
static inline void fixture_set_up(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        g_autofree char *policy_dir = NULL, *conf = NULL, *opt_dir = NULL, *opt_conf = NULL, *opt_run = NULL;
        BrokerConfig *config = NULL;

        f->dir = g_dir_make_tmp("rma-broker-XXXXXX", &error);
        g_assert_no_error(error);
        policy_dir = g_build_filename(f->dir, "policy.d", NULL);
        g_assert_cmpint(g_mkdir(policy_dir, 0755), ==, 0);
        if (data) {
                g_autofree char *file = g_build_filename(policy_dir, "10-test.conf", NULL);
                g_assert_true(g_file_set_contents(file, data, -1, &error));
        }
        conf = g_build_filename(f->dir, "rma-brokerd.conf", NULL);
        g_assert_true(g_file_set_contents(conf, "[Broker]\n", -1, &error));
        opt_conf = g_strdup_printf("--config=%s", conf);
        opt_dir = g_strdup_printf("--policy-dir=%s", policy_dir);
        /* Never the host's /run/rma-broker: the backend keeps its mark key there. */
        opt_run = g_strdup_printf("--runtime-dir=%s", f->dir);
        {
                const char *args[] = { "rma-brokerd", opt_conf, opt_dir, opt_run, "--backend=memfd", "--count=3", "--size=1M",
                                       "--qemu-users=4243", "--no-check-cgroup", NULL };
                /* GOption drops parsed arguments without freeing them: keep our own list. */
                g_auto(GStrv) owned = g_strdupv((char **) args);
                int argc = (int) g_strv_length(owned);
                g_autofree char **argv = g_memdup2(owned, sizeof(char *) * (size_t) (argc + 1));
                char **a = argv;

                g_assert_cmpint(command_line_load(&argc, &a, &config, &error), ==, 0);
        }
        g_assert_cmpint(broker_new(config, NULL, &f->broker), ==, 0);
}

/* Run an event loop until cond holds, 10 s at most. */
#define PUMP_UNTIL(event, cond)                                                              \
        do {                                                                                 \
                for (int _i = 0; _i < 1000 && !(cond); _i++)                                 \
                        g_assert_cmpint(sd_event_run((event), 10 * 1000), >=, 0);            \
                if (!(cond))                                                                 \
                        g_error("still not true after 10 s: %s", #cond);                     \
        } while (0)

static inline void fixture_tear_down(Fixture *f, gconstpointer data) {
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", f->dir);
        broker_free(f->broker);
        g_assert_cmpint(system(cmd), ==, 0);
        g_free(f->dir);
}

/* What the region worker does once the old region is gone: a fresh one from the backend. */
static inline void refill_now(Pool *pool, Slot *s) {
        int fd = -EBADF;

        g_assert_cmpint(backend_new_region(pool->backend, s->index, &fd), ==, 0);
        pool_region_ready(pool, s, fd);
}
