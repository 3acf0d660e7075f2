/* Does a process sit in the cgroup that libvirt made for a given domain?
 *
 * This runs on every Claim, so the match works in place on one read of
 * /proc/PID/cgroup: no allocation unless it fails and has to say why. */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "domain-cgroup.h"

#define MACHINE_NAME_MAX 64
/* Room for a machine name: the cut at 64 bytes may land after a longer "qemu-ID-". */
#define MACHINE_NAME_BUF 96
#define MAX_PATH_DEPTH 32
#define CGROUP_FILE_MAX 16384

static bool is_hostname_char(char c) {
        return g_ascii_isalnum(c) || c == '-';
}

/* libvirt's virDomainMachineNameAppendValid(), into buf; returns the length. */
static size_t machine_name_into(unsigned long id, const char *name, char buf[MACHINE_NAME_BUF]) {
        char digits[24];
        size_t n = 0, len = 5;
        bool skip = true;

        memcpy(buf, "qemu-", 5);
        do
                digits[n++] = (char) ('0' + id % 10);
        while ((id /= 10) > 0);
        while (n > 0)
                buf[len++] = digits[--n];
        buf[len++] = '-';

        for (const char *p = name; *p && len < MACHINE_NAME_MAX; p++) {
                if (*p == '.' || *p == '-') {
                        if (!skip)
                                buf[len++] = *p;
                        skip = true;
                        continue;
                }
                skip = false;
                if (is_hostname_char(*p))
                        buf[len++] = *p;
        }
        while (len > 1 && (buf[len - 1] == '-' || buf[len - 1] == '.'))
                len--;
        buf[len] = '\0';
        return len;
}

char *libvirt_machine_name(unsigned long id, const char *name) {
        char buf[MACHINE_NAME_BUF];

        machine_name_into(id, name, buf);
        return g_strdup(buf);
}

typedef struct Span {
        const char *s;
        size_t n;
} Span;

static bool span_eq(Span a, const char *lit) {
        return a.n == strlen(lit) && memcmp(a.s, lit, a.n) == 0;
}

static bool span_has_prefix(Span a, const char *lit) {
        return a.n >= strlen(lit) && memcmp(a.s, lit, strlen(lit)) == 0;
}

static bool span_has_suffix(Span a, const char *lit) {
        size_t l = strlen(lit);
        return a.n >= l && memcmp(a.s + a.n - l, lit, l) == 0;
}

static bool is_thread_group(Span c) {
        static const char *const prefixes[] = { "vcpu", "iothread" };

        if (span_eq(c, "emulator"))
                return true;
        for (size_t i = 0; i < G_N_ELEMENTS(prefixes); i++) {
                size_t n = strlen(prefixes[i]), j;
                if (!span_has_prefix(c, prefixes[i]) || c.n == n)
                        continue;
                for (j = n; j < c.n && g_ascii_isdigit(c.s[j]); j++)
                        ;
                if (j == c.n)
                        return true;
        }
        return false;
}

/* "qemu-ID[-rest]": is it exactly the name libvirt derives for this domain with that ID? */
static bool machine_name_is_domain(Span mn, const char *domain) {
        char expected[MACHINE_NAME_BUF];
        unsigned long id = 0;
        size_t i = 5, len;

        if (!span_has_prefix(mn, "qemu-") || mn.n <= i || !g_ascii_isdigit(mn.s[i]))
                return false;
        for (; i < mn.n && g_ascii_isdigit(mn.s[i]); i++) {
                if (id > (ULONG_MAX - 9) / 10)
                        return false;
                id = id * 10 + (unsigned long) (mn.s[i] - '0');
        }
        if (i < mn.n && mn.s[i] != '-')
                return false;
        len = machine_name_into(id, domain, expected);
        return len == mn.n && memcmp(expected, mn.s, len) == 0;
}

/* systemd unit-name escaping reduces to '-' -> "\x2d" for machine names. */
static bool unescape_unit_name(Span in, char out[MACHINE_NAME_BUF], Span *ret) {
        size_t n = 0;

        for (size_t i = 0; i < in.n; i++) {
                if (n + 1 >= MACHINE_NAME_BUF)
                        return false;
                if (i + 3 < in.n && in.s[i] == '\\' && in.s[i + 1] == 'x' && g_ascii_isxdigit(in.s[i + 2]) &&
                    g_ascii_isxdigit(in.s[i + 3])) {
                        out[n++] = (char) (g_ascii_xdigit_value(in.s[i + 2]) * 16 + g_ascii_xdigit_value(in.s[i + 3]));
                        i += 3;
                } else
                        out[n++] = in.s[i];
        }
        *ret = (Span) { out, n };
        return true;
}

static bool component_names_domain(Span c, const char *domain) {
        if (span_has_suffix(c, ".libvirt-qemu"))
                return machine_name_is_domain((Span) { c.s, c.n - strlen(".libvirt-qemu") }, domain);
        if (span_has_prefix(c, "machine-") && span_has_suffix(c, ".scope") && c.n > strlen("machine-.scope")) {
                char buf[MACHINE_NAME_BUF];
                Span mn;
                Span esc = { c.s + strlen("machine-"), c.n - strlen("machine-") - strlen(".scope") };
                return unescape_unit_name(esc, buf, &mn) && machine_name_is_domain(mn, domain);
        }
        return false;
}

/* The whole path must have libvirt's shape, anchored at the root:
 *   /machine[.slice] {/X.slice | /X.partition}* /MACHINE [/libvirt] [/emulator|vcpuN|iothreadN]
 * Only root can create groups there; anything else in between (a delegated service's
 * subtree, say) could carry any name its owner likes. */
static bool path_names_domain(Span path, const char *domain) {
        Span parts[MAX_PATH_DEPTH];
        size_t n = 0;

        if (path.n == 0 || path.s[0] != '/')
                return false;
        for (size_t i = 1, start = 1; i <= path.n; i++)
                if (i == path.n || path.s[i] == '/') {
                        if (n == MAX_PATH_DEPTH)
                                return false;
                        parts[n++] = (Span) { path.s + start, i - start };
                        start = i + 1;
                }
        if (n < 2 || (!span_eq(parts[0], "machine") && !span_eq(parts[0], "machine.slice")))
                return false;
        if (n > 2 && is_thread_group(parts[n - 1]))
                n--;
        if (n > 2 && span_eq(parts[n - 1], "libvirt"))
                n--;
        /* parts[n - 1] is the machine's group; everything between is partitions. */
        for (size_t i = 1; i < n - 1; i++)
                if (!span_has_suffix(parts[i], ".slice") && !span_has_suffix(parts[i], ".partition"))
                        return false;
        return component_names_domain(parts[n - 1], domain);
}

bool domain_cgroup_content_matches(const char *content, const char *domain, char **why) {
        Span seen = { NULL, 0 };

        for (const char *line = content; *line;) {
                const char *end = strchrnul(line, '\n');
                /* hierarchy-ID:controller-list:path; the path may itself contain ':'. */
                const char *c1 = memchr(line, ':', (size_t) (end - line));
                const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t) (end - c1 - 1)) : NULL;

                if (c2) {
                        Span path = { c2 + 1, (size_t) (end - c2 - 1) };
                        if (!seen.s)
                                seen = path;
                        if (path_names_domain(path, domain))
                                return true;
                }
                line = *end ? end + 1 : end;
        }
        if (why)
                *why = g_strdup_printf("its cgroup (%.*s) is not the libvirt cgroup of domain %s; only the QEMU that "
                                       "libvirt starts for that domain may claim its RMA",
                                       seen.s ? (int) seen.n : 4, seen.s ? seen.s : "none", domain);
        return false;
}

int domain_cgroup_open(pid_t pid) {
        char path[32], digits[16];
        size_t n = 0, p = 6;
        unsigned v = (unsigned) pid;
        int fd;

        /* "/proc/PID/cgroup", without printf's machinery. */
        memcpy(path, "/proc/", 6);
        do
                digits[n++] = (char) ('0' + v % 10);
        while ((v /= 10) > 0);
        while (n > 0)
                path[p++] = digits[--n];
        memcpy(path + p, "/cgroup", sizeof("/cgroup"));
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        return fd < 0 ? -errno : fd;
}

int domain_cgroup_check_fd(int fd, const char *domain, char **why) {
        char content[CGROUP_FILE_MAX];
        size_t len = 0;
        ssize_t k;

        /* /proc/PID/cgroup is a seq_file, generated anew by a read from offset 0; a read
         * short of the buffer holds all there is, so this is one syscall. */
        while ((k = pread(fd, content + len, sizeof(content) - 1 - len, (off_t) len)) > 0) {
                len += (size_t) k;
                if (len < sizeof(content) - 1)
                        break;
        }
        if (k < 0 || len == sizeof(content) - 1) {
                int e = k < 0 ? errno : EFBIG;
                if (why)
                        *why = g_strdup_printf("cannot read its /proc/PID/cgroup: %s", g_strerror(e));
                return -EIO;
        }
        content[len] = '\0';
        return domain_cgroup_content_matches(content, domain, why) ? 1 : 0;
}

int domain_cgroup_check_pid(pid_t pid, const char *domain, char **why) {
        _cleanup_close_ int fd = domain_cgroup_open(pid);

        if (fd < 0) {
                if (why)
                        *why = g_strdup_printf("cannot read /proc/%d/cgroup: %s", (int) pid, g_strerror(-fd));
                return -EIO;
        }
        return domain_cgroup_check_fd(fd, domain, why);
}
