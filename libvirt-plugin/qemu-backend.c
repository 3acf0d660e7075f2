/* The memory backends of a QEMU command line: read them, make the wrapper's variants. */
#include <stdbool.h>
#include <string.h>

#include "qemu-backend.h"

/* memory-backend-memfd options that memory-backend-file does not have. */
static const char *const memfd_only_members[] = { "hugetlb", "hugetlbsize", "seal" };

static bool in(const char *s, const char *const *set, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(s, set[i]) == 0)
                        return true;
        return false;
}

QemuObject *qemu_backend_at(char *const *argv, size_t i) {
        g_autoptr(QemuObject) obj = NULL;

        if (strcmp(argv[i], "-object") != 0 || !argv[i + 1] || argv[i + 1][0] != '{')
                return NULL;
        obj = qemu_object_parse(argv[i + 1]);
        if (!obj || !g_str_has_prefix(qemu_backend_type(obj), "memory-backend-") || !qemu_object_has(obj, "id"))
                return NULL;
        return g_steal_pointer(&obj);
}

const char *qemu_backend_id(const QemuObject *obj) {
        const char *id = qemu_object_string(obj, "id");

        return id ? id : "";
}

const char *qemu_backend_type(const QemuObject *obj) {
        const char *type = qemu_object_string(obj, "qom-type");

        return type ? type : "";
}

uint64_t qemu_backend_size(const QemuObject *obj) {
        int64_t size;

        return qemu_object_int(obj, "size", &size) && size >= 0 ? (uint64_t) size : 0;
}

char *qemu_backend_as_region(const QemuObject *obj, int fd, uint64_t size) {
        g_autofree char *mem_path = g_strdup_printf("/proc/self/fd/%d", fd);
        GString *out = qemu_json_begin();

        qemu_json_add_string(out, "qom-type", "memory-backend-file");
        for (size_t i = 0; i < qemu_object_count(obj); i++) {
                const char *member = qemu_object_name(obj, i);
                if (strcmp(member, "qom-type") == 0 || strcmp(member, "mem-path") == 0 || strcmp(member, "share") == 0 ||
                    strcmp(member, "size") == 0 || in(member, memfd_only_members, G_N_ELEMENTS(memfd_only_members)))
                        continue;
                qemu_json_add_raw(out, member, qemu_object_raw(obj, i));
        }
        qemu_json_add_uint(out, "size", size);
        qemu_json_add_string(out, "mem-path", mem_path);
        qemu_json_add_raw(out, "share", "true");
        return qemu_json_end(out);
}

/* libvirt names a file backend's file after the backend (.../ram-node0); a directory
 * (hugetlbfs) QEMU fills with a temporary file of its own. */
static char *clone_mem_path(const char *path, const char *old_id, const char *new_id) {
        g_autofree char *base = g_path_get_basename(path);
        g_autofree char *dir = NULL;

        if (strcmp(base, old_id) != 0)
                return g_strdup(path);
        dir = g_path_get_dirname(path);
        return g_build_filename(dir, new_id, NULL);
}

char *qemu_backend_clone(const QemuObject *obj, const char *id, uint64_t size) {
        GString *out = qemu_json_begin();

        for (size_t i = 0; i < qemu_object_count(obj); i++) {
                const char *member = qemu_object_name(obj, i), *path = qemu_object_string(obj, member);
                if (strcmp(member, "id") == 0 || strcmp(member, "size") == 0)
                        continue;
                if (strcmp(member, "mem-path") == 0 && path) {
                        g_autofree char *clone = clone_mem_path(path, qemu_backend_id(obj), id);
                        qemu_json_add_string(out, member, clone);
                } else
                        qemu_json_add_raw(out, member, qemu_object_raw(obj, i));
        }
        qemu_json_add_string(out, "id", id);
        qemu_json_add_uint(out, "size", size);
        return qemu_json_end(out);
}
