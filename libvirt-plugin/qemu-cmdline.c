/* The qemu-rma wrapper's view of the QEMU command line that libvirt builds. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "qemu-backend.h"
#include "qemu-cmdline.h"

/* libvirt names node 0's backend ram-node0 when the domain has NUMA cells; without
 * cells the machine's whole RAM is one backend with the machine's own id. */
static const char *const node0_ids[] = { "ram-node0", "ppc_spapr.ram", "pc.ram" };

#define MIB ((uint64_t) 1 << 20)

G_DEFINE_QUARK(qemu-cmdline-error-quark, qemu_cmdline_error)

/* A QEMU size: a number with an optional suffix k, M, G, T; bare means MiB, as -m
 * reads it. */
static int parse_size(const char *s, uint64_t *ret) {
        char *end;
        uint64_t v, shift = 20;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || end == s)
                return -EINVAL;
        switch (*end) {
        case '\0': break;
        case 'k': case 'K': shift = 10; end++; break;
        case 'M': case 'm': shift = 20; end++; break;
        case 'G': case 'g': shift = 30; end++; break;
        case 'T': case 't': shift = 40; end++; break;
        case 'b': case 'B': shift = 0; end++; break;
        default: return -EINVAL;
        }
        if (*end || v > (UINT64_MAX >> shift))
                return -EINVAL;
        *ret = v << shift;
        return 0;
}

/* libvirt 9.0 writes "-m size=Nk" and, with <maxMemory>, ",slots=S,maxmem=Mk"; older
 * ones a bare "-m N" (MiB). */
typedef struct {
        uint64_t size, maxmem;
        unsigned slots;
} MemOpt;

static int parse_m(const char *arg, MemOpt *m) {
        g_auto(GStrv) parts = g_strsplit(arg, ",", -1);

        *m = (MemOpt) {};
        for (size_t i = 0; parts[i]; i++) {
                const char *p = parts[i];
                char *end;

                if (i == 0 && g_ascii_isdigit(p[0])) {
                        if (parse_size(p, &m->size) < 0)
                                return -EINVAL;
                } else if (g_str_has_prefix(p, "size=")) {
                        if (parse_size(p + 5, &m->size) < 0)
                                return -EINVAL;
                } else if (g_str_has_prefix(p, "maxmem=")) {
                        if (parse_size(p + 7, &m->maxmem) < 0)
                                return -EINVAL;
                } else if (g_str_has_prefix(p, "slots=")) {
                        unsigned long v = strtoul(p + 6, &end, 10);
                        if (*end || end == p + 6 || v > 256)
                                return -EINVAL;
                        m->slots = (unsigned) v;
                } else
                        return -EINVAL;
        }
        return m->size ? 0 : -EINVAL;
}

static char *pc_dimm_json(unsigned slot) {
        return g_strdup_printf("{\"driver\":\"pc-dimm\",\"id\":\"%s\",\"memdev\":\"%s\",\"node\":0,\"slot\":%u}",
                               QEMU_RMA_REST_ID, QEMU_RMA_REST_ID, slot);
}

char **qemu_cmdline_lay_out_rma(char *const *argv, int fd, uint64_t region_size, char **summary, GError **error) {
        g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(g_free);
        g_autofree char *new_m = NULL;
        g_autoptr(QemuObject) node0 = NULL;
        size_t node0_at = 0, m_at = 0, n = g_strv_length((char **) argv);
        uint64_t node0_size, rest;
        MemOpt m = {};

        for (size_t i = 1; i + 1 < n; i++) {
                if (strcmp(argv[i], "-m") == 0)
                        m_at = i + 1;
                if (node0)
                        continue;
                g_autoptr(QemuObject) obj = qemu_backend_at(argv, i);
                /* ram-node0 comes first in node0_ids: a machine with cells has no whole-RAM backend. */
                for (size_t k = 0; obj && k < G_N_ELEMENTS(node0_ids); k++)
                        if (strcmp(qemu_backend_id(obj), node0_ids[k]) == 0) {
                                node0 = g_steal_pointer(&obj);
                                node0_at = i + 1;
                                break;
                        }
        }
        if (!node0) {
                g_set_error(error, QEMU_CMDLINE_ERROR, QEMU_CMDLINE_ERROR_NO_NODE0,
                            "the QEMU command line has no memory backend for guest RAM node 0 (ram-node0, or "
                            "ppc_spapr.ram without NUMA cells); is this a pseries machine libvirt started?");
                return NULL;
        }
        node0_size = qemu_backend_size(node0);
        if (node0_size < region_size) {
                g_set_error(error, QEMU_CMDLINE_ERROR, QEMU_CMDLINE_ERROR_INVALID,
                            "guest RAM node 0 is %" PRIu64 " MiB, smaller than the RMA of %" PRIu64 " MiB: give the "
                            "domain at least %" PRIu64 " MiB of memory (in NUMA cell 0, if it has cells)",
                            node0_size / MIB, region_size / MIB, region_size / MIB);
                return NULL;
        }
        rest = node0_size - region_size;
        if (rest && (!m_at || parse_m(argv[m_at], &m) < 0 || m.size < rest)) {
                g_set_error(error, QEMU_CMDLINE_ERROR, QEMU_CMDLINE_ERROR_INVALID,
                            "cannot read the guest's memory size from -m '%s'", m_at ? argv[m_at] : "");
                return NULL;
        }

        /* Boot memory is the nodes' backends, node 0's now the RMA; the rest of node 0 is a
         * device, counted in maxmem. */
        if (rest)
                new_m = g_strdup_printf("size=%" PRIu64 "k,slots=%u,maxmem=%" PRIu64 "k", (m.size - rest) / 1024,
                                        m.slots + 1, (m.maxmem ? m.maxmem : m.size) / 1024);
        for (size_t i = 0; i < n; i++) {
                if (i == node0_at)
                        g_ptr_array_add(out, qemu_backend_as_region(node0, fd, region_size));
                else if (rest && i == m_at)
                        g_ptr_array_add(out, g_strdup(new_m));
                else
                        g_ptr_array_add(out, g_strdup(argv[i]));
                if (rest && i == node0_at) {
                        g_ptr_array_add(out, g_strdup("-object"));
                        g_ptr_array_add(out, qemu_backend_clone(node0, QEMU_RMA_REST_ID, rest));
                        g_ptr_array_add(out, g_strdup("-device"));
                        /* The last slot: libvirt numbers its own dimms from 0. */
                        g_ptr_array_add(out, pc_dimm_json(m.slots));
                }
        }
        g_ptr_array_add(out, NULL);

        if (summary)
                *summary = rest ? g_strdup_printf("guest memory 0-%" PRIu64 " MiB (%s, boot memory, the guest's "
                                                  "memory@0) is the region; the other %" PRIu64 " MiB of node 0 is "
                                                  "pc-dimm %s (%s, like libvirt's); -m %s became -m %s",
                                                  region_size / MIB, qemu_backend_id(node0), rest / MIB,
                                                  QEMU_RMA_REST_ID, qemu_backend_type(node0), argv[m_at],
                                                  new_m)
                                : g_strdup_printf("guest memory 0-%" PRIu64 " MiB (%s, all of node 0, the guest's "
                                                  "memory@0) is the region", region_size / MIB, qemu_backend_id(node0));
        return (char **) g_ptr_array_free(g_steal_pointer(&out), FALSE);
}
