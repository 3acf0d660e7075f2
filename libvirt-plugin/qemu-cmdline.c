/* The qemu-rma wrapper's view of the QEMU command line that libvirt builds. */
#include <json-glib/json-glib.h>
#include <stdbool.h>
#include <string.h>

#include "qemu-cmdline.h"

/* libvirt names node 0's backend ram-node0 when the domain has NUMA cells; without
 * cells the machine's whole RAM is one backend with the machine's own id. */
static const char *const node0_ids[] = { "ram-node0" };
static const char *const whole_ram_ids[] = { "ppc_spapr.ram", "pc.ram" };

/* memory-backend-memfd options that memory-backend-file does not have. */
static const char *const memfd_only_members[] = { "hugetlb", "hugetlbsize", "seal" };

const char *qemu_cmdline_find_uuid(char *const *argv) {
        for (size_t i = 1; argv[i]; i++)
                if (strcmp(argv[i], "-uuid") == 0)
                        return argv[i + 1];
        return NULL;
}

static bool id_in(const char *id, const char *const *ids, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(id, ids[i]) == 0)
                        return true;
        return false;
}

/* Parse "-object {json}" at argv[i+1] if it is a memory backend; NULL otherwise. */
static JsonObject *memory_backend_at(char *const *argv, size_t i, JsonParser **ret_parser) {
        g_autoptr(JsonParser) parser = NULL;
        JsonNode *root;
        JsonObject *obj;
        const char *type;

        if (strcmp(argv[i], "-object") != 0 || !argv[i + 1] || argv[i + 1][0] != '{')
                return NULL;
        parser = json_parser_new();
        if (!json_parser_load_from_data(parser, argv[i + 1], -1, NULL))
                return NULL;
        root = json_parser_get_root(parser);
        if (!root || !JSON_NODE_HOLDS_OBJECT(root))
                return NULL;
        obj = json_node_get_object(root);
        type = json_object_get_string_member_with_default(obj, "qom-type", "");
        if (!g_str_has_prefix(type, "memory-backend-") || !json_object_has_member(obj, "id"))
                return NULL;
        *ret_parser = g_steal_pointer(&parser);
        return obj;
}

static uint64_t backend_size(JsonObject *obj) {
        JsonNode *n = json_object_get_member(obj, "size");

        if (!n || json_node_get_value_type(n) != G_TYPE_INT64)
                return 0;
        return (uint64_t) json_node_get_int(n);
}

static char *backend_as_file(JsonObject *obj, int fd) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonGenerator) gen = json_generator_new();
        g_autoptr(JsonNode) root = NULL;
        g_autofree char *mem_path = g_strdup_printf("/proc/self/fd/%d", fd);
        JsonObjectIter iter;
        const char *member;
        JsonNode *value;

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "qom-type");
        json_builder_add_string_value(b, "memory-backend-file");
        json_object_iter_init(&iter, obj);
        while (json_object_iter_next(&iter, &member, &value)) {
                if (strcmp(member, "qom-type") == 0 || strcmp(member, "mem-path") == 0 || strcmp(member, "share") == 0 ||
                    id_in(member, memfd_only_members, G_N_ELEMENTS(memfd_only_members)))
                        continue;
                json_builder_set_member_name(b, member);
                json_builder_add_value(b, json_node_copy(value));
        }
        json_builder_set_member_name(b, "mem-path");
        json_builder_add_string_value(b, mem_path);
        json_builder_set_member_name(b, "share");
        json_builder_add_boolean_value(b, TRUE);
        json_builder_end_object(b);

        root = json_builder_get_root(b);
        json_generator_set_root(gen, root);
        return json_generator_to_data(gen, NULL);
}

char **qemu_cmdline_rewrite_ram(char *const *argv, int fd, uint64_t region_size, GError **error) {
        g_autoptr(JsonParser) node0_parser = NULL, whole_parser = NULL;
        JsonObject *node0 = NULL, *whole = NULL, *chosen;
        size_t node0_at = 0, whole_at = 0, at, n = g_strv_length((char **) argv);
        char **out;

        for (size_t i = 1; i + 1 < n; i++) {
                g_autoptr(JsonParser) parser = NULL;
                JsonObject *obj = memory_backend_at(argv, i, &parser);
                const char *id;

                if (!obj)
                        continue;
                id = json_object_get_string_member_with_default(obj, "id", "");
                if (!node0 && id_in(id, node0_ids, G_N_ELEMENTS(node0_ids))) {
                        node0 = obj;
                        node0_at = i + 1;
                        node0_parser = g_steal_pointer(&parser);
                } else if (!whole && id_in(id, whole_ram_ids, G_N_ELEMENTS(whole_ram_ids))) {
                        whole = obj;
                        whole_at = i + 1;
                        whole_parser = g_steal_pointer(&parser);
                }
        }

        if (node0) {
                chosen = node0;
                at = node0_at;
        } else if (whole) {
                /* Without NUMA cells all guest RAM is one backend: it can be the RMA only
                 * if it is exactly the RMA's size (checked below). */
                chosen = whole;
                at = whole_at;
        } else {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                            "the QEMU command line has no memory backend for guest RAM node 0 (ram-node0); give the "
                            "domain a NUMA cell 0 of exactly %llu KiB", (unsigned long long) (region_size / 1024));
                return NULL;
        }
        if (backend_size(chosen) != region_size) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                            "guest RAM node 0 is %llu bytes but the RMA is %llu bytes; set the memory of NUMA "
                            "cell 0 to exactly %llu KiB in the domain XML",
                            (unsigned long long) backend_size(chosen), (unsigned long long) region_size,
                            (unsigned long long) (region_size / 1024));
                return NULL;
        }

        out = g_new0(char *, n + 1);
        for (size_t i = 0; i < n; i++)
                out[i] = i == at ? backend_as_file(chosen, fd) : g_strdup(argv[i]);
        return out;
}
