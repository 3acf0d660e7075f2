/* Unit tests of daemon/system/domain-cgroup.c: libvirt machine names and cgroup matching. */
#include <glib.h>
#include <string.h>
#include <unistd.h>

#include "domain-cgroup.h"

static void check_name(unsigned long id, const char *name, const char *want) {
        g_autofree char *got = libvirt_machine_name(id, name);
        g_assert_cmpstr(got, ==, want);
}

static void test_machine_name(void) {
        g_autofree char *x80 = g_strnfill(80, 'x');
        g_autofree char *x57 = g_strnfill(57, 'x');
        g_autofree char *x55 = g_strnfill(55, 'x');
        g_autofree char *want4 = g_strconcat("qemu-4-", x57, NULL);
        g_autofree char *want123 = g_strconcat("qemu-123-", x55, NULL);

        check_name(4, "rma-probe", "qemu-4-rma-probe");
        check_name(4, "my vm 01", "qemu-4-myvm01");
        check_name(4, "web.example.com", "qemu-4-web.example.com");
        check_name(4, "db_server_1", "qemu-4-dbserver1");
        check_name(4, "tëst-ü", "qemu-4-tst");
        check_name(4, "日本語", "qemu-4");
        check_name(4, "1st-vm", "qemu-4-1st-vm");
        check_name(4, "-leading..dots-", "qemu-4-leading.dots");
        check_name(4, "a-.-b..-c", "qemu-4-a-b.c");
        check_name(4, x80, want4);
        check_name(123, x80, want123);
        check_name(100, "kstest-network-device-default-httpks_(c9eed63e-981e-48ec-acdc-8fa6e3a2e4f8)",
                   "qemu-100-kstest-network-device-default-httpksc9eed63e-981e-48ec");
}

static bool matches(const char *content, const char *domain) {
        g_autofree char *why = NULL;
        bool r = domain_cgroup_content_matches(content, domain, &why);
        g_assert_true(r == (why == NULL));
        return r;
}

static void test_match(void) {
        /* Hybrid v1 as libvirt 9.0 placed QEMU here (docs: FACTS). */
        const char *hybrid =
                "7:blkio:/machine/qemu-4-rma-probe.libvirt-qemu\n"
                "4:memory:/machine/qemu-4-rma-probe.libvirt-qemu\n"
                "3:cpuset:/machine/qemu-4-rma-probe.libvirt-qemu/emulator\n"
                "1:cpu:/machine/qemu-4-rma-probe.libvirt-qemu/emulator\n"
                "0::/machine/qemu-4-rma-probe.libvirt-qemu/emulator\n";
        const char *v2_machined = "0::/machine.slice/machine-qemu\\x2d12\\x2drma\\x2dprobe.scope/libvirt/emulator\n";
        const char *v2_plain = "0::/machine/qemu-7-rma-probe.libvirt-qemu\n";
        const char *custom_partition = "0::/machine/tenant1.partition/qemu-7-rma-probe.libvirt-qemu/vcpu0\n";
        const char *libvirtd = "0::/system.slice/libvirtd.service\n";
        /* A delegated subtree may be named anything by its owner: never trusted. */
        const char *forged = "0::/user.slice/user-64055.slice/user@64055.service/machine/qemu-4-rma-probe.libvirt-qemu\n"
                             "1:name=systemd:/user.slice/qemu-4-rma-probe.libvirt-qemu\n";

        g_assert_true(matches(hybrid, "rma-probe"));
        g_assert_true(matches(v2_machined, "rma-probe"));
        g_assert_true(matches(v2_plain, "rma-probe"));
        g_assert_true(matches(custom_partition, "rma-probe"));
        g_assert_false(matches(hybrid, "rma-probe2"));
        g_assert_false(matches(hybrid, "rma"));
        g_assert_false(matches(v2_machined, "other"));
        g_assert_false(matches(libvirtd, "rma-probe"));
        g_assert_false(matches(forged, "rma-probe"));
        /* Nor a container's delegated subtree below machine.slice. */
        g_assert_false(matches("0::/machine.slice/systemd-nspawn@c1.service/payload/machine-qemu\\x2d4\\x2drma\\x2dprobe.scope\n",
                               "rma-probe"));
        g_assert_false(matches("0::/machine/qemu-4-rma-probe.libvirt-qemu/extra/emulator\n", "rma-probe"));
        g_assert_true(matches("0::/machine.slice/tenant.slice/machine-qemu\\x2d4\\x2drma\\x2dprobe.scope/libvirt/vcpu1\n",
                              "rma-probe"));
        g_assert_false(matches("", "rma-probe"));
        g_assert_false(matches("garbage without colons", "rma-probe"));
        g_assert_false(matches("0::/machine/qemu-x-rma-probe.libvirt-qemu\n", "rma-probe"));
        g_assert_false(matches("0::/machine/qemu-4-rma-probe.libvirt-lxc\n", "rma-probe"));
        /* Names that libvirt reduces are compared in reduced form. */
        g_assert_true(matches("0::/machine/qemu-3-myvm01.libvirt-qemu/emulator\n", "my vm 01"));
}

static void test_check_self(void) {
        g_autofree char *why = NULL;

        /* This test does not run inside a libvirt domain. */
        g_assert_cmpint(domain_cgroup_check_pid(getpid(), "rma-probe", &why), ==, 0);
        g_assert_nonnull(why);
        g_assert_nonnull(strstr(why, "rma-probe"));
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/domain-cgroup/machine-name", test_machine_name);
        g_test_add_func("/domain-cgroup/match", test_match);
        g_test_add_func("/domain-cgroup/check-self", test_check_self);
        return g_test_run();
}
