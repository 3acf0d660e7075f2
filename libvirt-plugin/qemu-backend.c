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

JsonObject *qemu_backend_at(char *const *argv, size_t i, JsonParser **ret_parser) {
        g_autoptr(JsonParser) parser = NULL;
        JsonNode *root;
        JsonObject *obj;

        if (strcmp(argv[i], "-object") != 0 || !argv[i + 1] || argv[i + 1][0] != '{')
                return NULL;
        parser = json_parser_new();
        if (!json_parser_load_from_data(parser, argv[i + 1], -1, NULL))
                return NULL;
        root = json_parser_get_root(parser);
        if (!root || !JSON_NODE_HOLDS_OBJECT(root))
                return NULL;
        obj = json_node_get_object(root);
        if (!g_str_has_prefix(qemu_backend_type(obj), "memory-backend-") || !json_object_has_member(obj, "id"))
                return NULL;
        *ret_parser = g_steal_pointer(&parser);
        return obj;
}

const char *qemu_backend_id(JsonObject *obj) {
        return json_object_get_string_member_with_default(obj, "id", "");
}

const char *qemu_backend_type(JsonObject *obj) {
        return json_object_get_string_member_with_default(obj, "qom-type", "");
}

uint64_t qemu_backend_size(JsonObject *obj) {
        JsonNode *n = json_object_get_member(obj, "size");

        if (!n || json_node_get_value_type(n) != G_TYPE_INT64 || json_node_get_int(n) < 0)
                return 0;
        return (uint64_t) json_node_get_int(n);
}

static char *to_json(JsonBuilder *b) {
        g_autoptr(JsonGenerator) gen = json_generator_new();
        g_autoptr(JsonNode) root = json_builder_get_root(b);

        json_generator_set_root(gen, root);
        return json_generator_to_data(gen, NULL);
}

static void add_uint(JsonBuilder *b, const char *name, uint64_t v) {
        json_builder_set_member_name(b, name);
        json_builder_add_int_value(b, (gint64) v);
}

char *qemu_backend_as_region(JsonObject *obj, int fd, uint64_t size) {
        g_autoptr(JsonBuilder) b = json_builder_new();
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
                    strcmp(member, "size") == 0 || in(member, memfd_only_members, G_N_ELEMENTS(memfd_only_members)))
                        continue;
                json_builder_set_member_name(b, member);
                json_builder_add_value(b, json_node_copy(value));
        }
        add_uint(b, "size", size);
        json_builder_set_member_name(b, "mem-path");
        json_builder_add_string_value(b, mem_path);
        json_builder_set_member_name(b, "share");
        json_builder_add_boolean_value(b, TRUE);
        json_builder_end_object(b);
        return to_json(b);
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

char *qemu_backend_clone(JsonObject *obj, const char *id, uint64_t size) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        JsonObjectIter iter;
        const char *member;
        JsonNode *value;

        json_builder_begin_object(b);
        json_object_iter_init(&iter, obj);
        while (json_object_iter_next(&iter, &member, &value)) {
                if (strcmp(member, "id") == 0 || strcmp(member, "size") == 0)
                        continue;
                json_builder_set_member_name(b, member);
                if (strcmp(member, "mem-path") == 0 && json_node_get_value_type(value) == G_TYPE_STRING) {
                        g_autofree char *path = clone_mem_path(json_node_get_string(value), qemu_backend_id(obj), id);
                        json_builder_add_string_value(b, path);
                } else
                        json_builder_add_value(b, json_node_copy(value));
        }
        json_builder_set_member_name(b, "id");
        json_builder_add_string_value(b, id);
        add_uint(b, "size", size);
        json_builder_end_object(b);
        return to_json(b);
}
