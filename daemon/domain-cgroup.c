/* Does a process sit in the cgroup that libvirt made for a given domain? */
#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "domain-cgroup.h"

#define MACHINE_NAME_MAX 64
#define HOSTNAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"

char *libvirt_machine_name(unsigned long id, const char *name) {
        GString *s = g_string_new(NULL);
        bool skip = true;

        g_string_printf(s, "qemu-%lu-", id);
        for (const char *p = name; *p; p++) {
                if (s->len >= MACHINE_NAME_MAX)
                        break;
                if (*p == '.' || *p == '-') {
                        if (!skip)
                                g_string_append_c(s, *p);
                        skip = true;
                        continue;
                }
                skip = false;
                if (!strchr(HOSTNAME_CHARS, *p))
                        continue;
                g_string_append_c(s, *p);
        }
        while (s->len > 1 && (s->str[s->len - 1] == '-' || s->str[s->len - 1] == '.'))
                g_string_truncate(s, s->len - 1);
        return g_string_free(s, FALSE);
}

/* systemd unit-name escaping reduces to '-' -> "\x2d" for machine names. */
static char *unescape_unit_name(const char *s) {
        GString *out = g_string_new(NULL);

        for (const char *p = s; *p; p++) {
                if (p[0] == '\\' && p[1] == 'x' && g_ascii_isxdigit(p[2]) && g_ascii_isxdigit(p[3])) {
                        g_string_append_c(out, (char) (g_ascii_xdigit_value(p[2]) * 16 + g_ascii_xdigit_value(p[3])));
                        p += 3;
                } else
                        g_string_append_c(out, *p);
        }
        return g_string_free(out, FALSE);
}

static bool is_thread_group(const char *c) {
        const char *prefixes[] = { "vcpu", "iothread" };

        if (strcmp(c, "emulator") == 0)
                return true;
        for (size_t i = 0; i < G_N_ELEMENTS(prefixes); i++) {
                size_t n = strlen(prefixes[i]);
                if (strncmp(c, prefixes[i], n) == 0 && c[n] && strspn(c + n, "0123456789") == strlen(c + n))
                        return true;
        }
        return false;
}

/* "qemu-ID[-rest]" -> ID, and check that the whole machine name is the one libvirt
 * derives for this domain with that ID. */
static bool machine_name_is_domain(const char *mn, const char *domain) {
        g_autofree char *expected = NULL;
        const char *p;
        char *end;
        unsigned long id;

        if (strncmp(mn, "qemu-", 5) != 0)
                return false;
        p = mn + 5;
        if (!g_ascii_isdigit(*p))
                return false;
        errno = 0;
        id = strtoul(p, &end, 10);
        if (errno != 0 || (*end != '-' && *end != '\0'))
                return false;
        expected = libvirt_machine_name(id, domain);
        return strcmp(expected, mn) == 0;
}

static bool component_names_domain(const char *c, const char *domain) {
        size_t len = strlen(c);

        if (g_str_has_suffix(c, ".libvirt-qemu")) {
                g_autofree char *mn = g_strndup(c, len - strlen(".libvirt-qemu"));
                return machine_name_is_domain(mn, domain);
        }
        if (g_str_has_prefix(c, "machine-") && g_str_has_suffix(c, ".scope")) {
                g_autofree char *esc = g_strndup(c + strlen("machine-"), len - strlen("machine-") - strlen(".scope"));
                g_autofree char *mn = unescape_unit_name(esc);
                return machine_name_is_domain(mn, domain);
        }
        return false;
}

/* The whole path must have libvirt's shape, anchored at the root:
 *   /machine[.slice] {/X.slice | /X.partition}* /MACHINE [/libvirt] [/emulator|vcpuN|iothreadN]
 * Only root can create groups there; anything else in between (a delegated service's
 * subtree, say) could carry any name its owner likes. */
static bool path_names_domain(const char *path, const char *domain) {
        g_auto(GStrv) parts = g_strsplit(path, "/", -1);
        guint n = g_strv_length(parts), i = 2;

        /* parts[0] is "" (the path is absolute). */
        if (n < 3 || parts[0][0] != '\0')
                return false;
        if (strcmp(parts[1], "machine") != 0 && strcmp(parts[1], "machine.slice") != 0)
                return false;
        if (n > 3 && is_thread_group(parts[n - 1]))
                n--;
        if (n > 3 && strcmp(parts[n - 1], "libvirt") == 0)
                n--;
        /* parts[n - 1] is the machine's group; everything between is partitions. */
        for (; i < n - 1; i++)
                if (!g_str_has_suffix(parts[i], ".slice") && !g_str_has_suffix(parts[i], ".partition"))
                        return false;
        return component_names_domain(parts[n - 1], domain);
}

bool domain_cgroup_content_matches(const char *content, const char *domain, char **why) {
        g_auto(GStrv) lines = g_strsplit(content, "\n", -1);
        const char *seen = NULL;

        for (char **l = lines; *l; l++) {
                /* hierarchy-ID:controller-list:path; the path may itself contain ':'. */
                char *c1 = strchr(*l, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
                if (!c2)
                        continue;
                if (!seen)
                        seen = c2 + 1;
                if (path_names_domain(c2 + 1, domain))
                        return true;
        }
        if (why)
                *why = g_strdup_printf("its cgroup (%s) is not the libvirt cgroup of domain %s; only the QEMU "
                                       "that libvirt starts for that domain may claim its RMA",
                                       seen ? seen : "none", domain);
        return false;
}

int domain_cgroup_check_pid(pid_t pid, const char *domain, char **why) {
        g_autofree char *path = g_strdup_printf("/proc/%d/cgroup", (int) pid);
        g_autofree char *content = NULL;
        g_autoptr(GError) e = NULL;

        if (!g_file_get_contents(path, &content, NULL, &e)) {
                if (why)
                        *why = g_strdup_printf("cannot read %s: %s", path, e->message);
                return -EIO;
        }
        return domain_cgroup_content_matches(content, domain, why) ? 1 : 0;
}
