/* What the hook needs from a libvirt domain XML, read with GMarkup. */
#include <errno.h>
#include <string.h>

#include "domain-xml.h"
#include "rma-names.h"

typedef struct ParseState {
        DomainInfo *info;
        GPtrArray *path;      /* element names from the root down */
        GString *text;
        bool in_nova;         /* inside <metadata><nova:instance> */
} ParseState;

static const char *local_name(const char *element) {
        const char *colon = strchr(element, ':');

        return colon ? colon + 1 : element;
}

static const char *attribute(const char **names, const char **values, const char *name) {
        for (guint i = 0; names[i]; i++)
                if (strcmp(names[i], name) == 0)
                        return values[i];
        return NULL;
}

/* <PREFIX:instance xmlns:PREFIX="http://openstack.org/xmlns/libvirt/nova/1.1"> */
static bool is_nova_instance(const char *element, const char **names, const char **values) {
        const char *colon = strchr(element, ':');
        g_autofree char *xmlns_attr = NULL;
        const char *ns;

        if (strcmp(local_name(element), "instance") != 0)
                return false;
        xmlns_attr = colon ? g_strdup_printf("xmlns:%.*s", (int) (colon - element), element) : g_strdup("xmlns");
        ns = attribute(names, values, xmlns_attr);
        return ns && g_str_has_prefix(ns, RMA_NOVA_XMLNS_PREFIX);
}

/* Inside <nova:instance>: <nova:flavor name=...> and <nova:owner><nova:project uuid=...>. */
static void on_nova_element(ParseState *s, const char *element, const char **names, const char **values) {
        const char *value;
        char **slot = NULL;

        if (s->path->len == 3 && strcmp(local_name(element), "flavor") == 0) {
                value = attribute(names, values, "name");
                slot = &s->info->nova_flavor;
        } else if (s->path->len == 4 && strcmp(local_name(g_ptr_array_index(s->path, 3)), "owner") == 0 &&
                   strcmp(local_name(element), "project") == 0) {
                value = attribute(names, values, "uuid");
                slot = &s->info->nova_project;
        }
        if (slot && value) {
                g_free(*slot);
                *slot = g_strdup(value);
        }
}

static bool path_is(ParseState *s, const char *const *want, guint n) {
        if (s->path->len != n)
                return false;
        for (guint i = 0; i < n; i++)
                if (strcmp(g_ptr_array_index(s->path, i), want[i]) != 0)
                        return false;
        return true;
}

/* <PREFIX:rma xmlns:PREFIX="ns"> or <rma xmlns="ns"> directly below <metadata>.
 * libvirt writes the namespace declaration on the element itself. */
static bool is_rma_element(const char *element, const char **names, const char **values) {
        const char *colon = strchr(element, ':');
        g_autofree char *xmlns_attr = NULL;

        if (strcmp(colon ? colon + 1 : element, "rma") != 0)
                return false;
        xmlns_attr = colon ? g_strdup_printf("xmlns:%.*s", (int) (colon - element), element) : g_strdup("xmlns");
        for (guint i = 0; names[i]; i++)
                if (strcmp(names[i], xmlns_attr) == 0)
                        return strcmp(values[i], RMA_LIBVIRT_XMLNS) == 0;
        return false;
}

static void on_start(GMarkupParseContext *ctx, const char *element, const char **names, const char **values,
                     gpointer user_data, GError **error) {
        ParseState *s = user_data;
        static const char *const metadata[] = { "domain", "metadata" };

        if (s->path->len == 0 && strcmp(element, "domain") != 0) {
                g_set_error(error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT,
                            "root element is <%s>, not <domain>", element);
                return;
        }
        if (path_is(s, metadata, 2) && is_nova_instance(element, names, values))
                s->in_nova = true;
        else if (s->in_nova && s->path->len > 2)
                on_nova_element(s, element, names, values);
        if (path_is(s, metadata, 2) && is_rma_element(element, names, values)) {
                s->info->has_rma_metadata = true;
                for (guint i = 0; names[i]; i++)
                        if (strcmp(names[i], "tenant") == 0) {
                                g_free(s->info->tenant);
                                s->info->tenant = g_strdup(values[i]);
                        }
        }
        g_ptr_array_add(s->path, g_strdup(element));
        g_string_truncate(s->text, 0);
}

static void on_end(GMarkupParseContext *ctx, const char *element, gpointer user_data, GError **error) {
        ParseState *s = user_data;
        static const char *const name[] = { "domain", "name" };
        static const char *const uuid[] = { "domain", "uuid" };
        static const char *const emulator[] = { "domain", "devices", "emulator" };
        char **slot = NULL;

        if (path_is(s, name, 2))
                slot = &s->info->name;
        else if (path_is(s, uuid, 2))
                slot = &s->info->uuid;
        else if (path_is(s, emulator, 3))
                slot = &s->info->emulator;
        if (slot) {
                g_free(*slot);
                *slot = g_strstrip(g_strdup(s->text->str));
        }
        g_ptr_array_remove_index(s->path, s->path->len - 1);
        if (s->path->len == 2)
                s->in_nova = false;   /* left whatever element of <metadata> it was */
        g_string_truncate(s->text, 0);
}

static void on_text(GMarkupParseContext *ctx, const char *text, gsize len, gpointer user_data, GError **error) {
        ParseState *s = user_data;

        g_string_append_len(s->text, text, (gssize) len);
}

int domain_info_parse(const char *xml, size_t len, DomainInfo **ret, GError **error) {
        static const GMarkupParser parser = {
                .start_element = on_start,
                .end_element = on_end,
                .text = on_text,
        };
        g_autoptr(DomainInfo) info = g_new0(DomainInfo, 1);
        g_autoptr(GPtrArray) path = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GString) text = g_string_new(NULL);
        ParseState state = { .info = info, .path = path, .text = text };
        g_autoptr(GMarkupParseContext) ctx = g_markup_parse_context_new(&parser, 0, &state, NULL);

        if (!g_markup_parse_context_parse(ctx, xml, (gssize) len, error) ||
            !g_markup_parse_context_end_parse(ctx, error))
                return -EINVAL;
        if (!info->name || !info->uuid) {
                g_set_error(error, G_MARKUP_ERROR, G_MARKUP_ERROR_MISSING_ATTRIBUTE,
                            "domain XML has no <name> or no <uuid>");
                return -EINVAL;
        }
        *ret = g_steal_pointer(&info);
        return 0;
}

void domain_info_free(DomainInfo *d) {
        if (!d)
                return;
        g_free(d->name);
        g_free(d->uuid);
        g_free(d->emulator);
        g_free(d->tenant);
        g_free(d->nova_flavor);
        g_free(d->nova_project);
        g_free(d);
}

bool domain_info_wants_rma(const DomainInfo *d) {
        g_autofree char *base = NULL;

        if (d->has_rma_metadata)
                return true;
        if (!d->emulator)
                return false;
        base = g_path_get_basename(d->emulator);
        return g_str_has_prefix(base, "qemu-rma");
}
