/* Parse one policy file (GKeyFile syntax) into a Policy, with file:line:key errors. */
#include <string.h>

#include "policy-parse.h"
#include "rma-util.h"

#define TENANT_PREFIX "Tenant "

/* GKeyFile reports no line numbers, and silently merges repeated sections and keys,
 * so a first pass records where every section and key is and catches those itself. */
typedef struct LineIndex {
        GHashTable *lines;      /* "group\nkey" (key "" for the header) -> line */
        GPtrArray *groups;      /* group names in file order, each once */
        GHashTable *keys;       /* group -> GPtrArray of its keys in file order; GKeyFile's
                                 * own key list hides some (e.g. "Key[locale]") */
} LineIndex;

static GPtrArray *keys_of(const LineIndex *ix, const char *group) {
        return g_hash_table_lookup(ix->keys, group);
}

static unsigned line_of(const LineIndex *ix, const char *group, const char *key) {
        g_autofree char *k = g_strdup_printf("%s\n%s", group, key ? key : "");
        return GPOINTER_TO_UINT(g_hash_table_lookup(ix->lines, k));
}

static void add_error(GPtrArray *errors, const char *file, unsigned line, const char *fmt, ...) G_GNUC_PRINTF(4, 5);
static void add_error(GPtrArray *errors, const char *file, unsigned line, const char *fmt, ...) {
        g_autofree char *msg = NULL;
        va_list ap;

        va_start(ap, fmt);
        msg = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        g_ptr_array_add(errors, line ? g_strdup_printf("%s:%u: %s", file, line, msg) : g_strdup_printf("%s: %s", file, msg));
}

static bool index_lines(LineIndex *ix, const char *file, const char *text, size_t len, GPtrArray *errors) {
        g_auto(GStrv) lines = NULL;
        g_autofree char *copy = g_strndup(text, len);
        g_autofree char *group = NULL;
        guint before = errors->len;

        if (memchr(text, '\0', len)) {
                add_error(errors, file, 0, "contains a NUL byte; a policy file is UTF-8 text");
                return false;
        }
        if (!g_utf8_validate(text, (gssize) len, NULL)) {
                add_error(errors, file, 0, "is not valid UTF-8 text");
                return false;
        }
        lines = g_strsplit(copy, "\n", -1);
        for (unsigned n = 0; lines[n]; n++) {
                unsigned line = n + 1;
                char *l = g_strstrip(lines[n]);
                char *eq;

                if (*l == '\0' || *l == '#')
                        continue;
                if (*l == '[') {
                        size_t ll = strlen(l);
                        g_autofree char *hk = NULL;
                        if (ll < 3 || l[ll - 1] != ']' || memchr(l + 1, '[', ll - 2) || memchr(l + 1, ']', ll - 2)) {
                                add_error(errors, file, line, "'%s' is not a section header; write [Defaults] or [Tenant NAME]", l);
                                g_clear_pointer(&group, g_free);
                                continue;
                        }
                        g_free(group);
                        group = g_strndup(l + 1, ll - 2);
                        hk = g_strdup_printf("%s\n", group);
                        if (g_hash_table_contains(ix->lines, hk)) {
                                add_error(errors, file, line, "[%s] appears twice in this file (first at line %u); "
                                          "merge the two sections", group, line_of(ix, group, NULL));
                                continue;
                        }
                        g_hash_table_insert(ix->lines, g_steal_pointer(&hk), GUINT_TO_POINTER(line));
                        g_ptr_array_add(ix->groups, g_strdup(group));
                        g_hash_table_insert(ix->keys, g_strdup(group), g_ptr_array_new_with_free_func(g_free));
                        continue;
                }
                eq = strchr(l, '=');
                if (!eq) {
                        add_error(errors, file, line, "'%s' is neither [Section], Key=Value nor a # comment", l);
                        continue;
                }
                if (!group) {
                        add_error(errors, file, line, "'%s' stands before any section; put it under [Defaults] or "
                                  "[Tenant NAME]", l);
                        continue;
                }
                if (rma_value_has_inline_comment(eq)) {
                        add_error(errors, file, line, "'%s': a comment must stand on a line of its own; '#' "
                                  "starts a comment only at the start of a line", l);
                        continue;
                }
                *eq = '\0';
                g_strchomp(l);
                {
                        g_autofree char *kk = g_strdup_printf("%s\n%s", group, l);
                        unsigned first = GPOINTER_TO_UINT(g_hash_table_lookup(ix->lines, kk));
                        if (first) {
                                add_error(errors, file, line, "[%s] %s is set twice (first at line %u); keep one",
                                          group, l, first);
                                continue;
                        }
                        g_hash_table_insert(ix->lines, g_steal_pointer(&kk), GUINT_TO_POINTER(line));
                        g_ptr_array_add(keys_of(ix, group), g_strdup(l));
                }
        }
        return errors->len == before;
}

static bool parse_count(GKeyFile *kf, const char *file, unsigned line, const char *group, const char *key,
                        uint32_t *ret, GPtrArray *errors) {
        g_autofree char *v = g_key_file_get_value(kf, group, key, NULL);
        guint64 n;

        if (!v || !g_ascii_string_to_unsigned(g_strstrip(v), 10, 0, POLICY_MAX_RMAS, &n, NULL)) {
                add_error(errors, file, line, "[%s] %s=%s is invalid; allowed: a whole number from 0 to %u",
                          group, key, v ? v : "", POLICY_MAX_RMAS);
                return false;
        }
        *ret = (uint32_t) n;
        return true;
}

static char **parse_list(GKeyFile *kf, const char *file, unsigned line, const char *group, const char *key,
                         GPtrArray *errors) {
        g_autoptr(GError) e = NULL;
        g_auto(GStrv) raw = g_key_file_get_string_list(kf, group, key, NULL, &e);
        GPtrArray *out = g_ptr_array_new();

        if (!raw) {
                add_error(errors, file, line, "[%s] %s: %s", group, key, e ? e->message : "cannot read the list");
                g_ptr_array_free(out, TRUE);
                return NULL;
        }
        for (char **r = raw; *r; r++) {
                char *item = g_strstrip(*r);
                if (*item == '\0')
                        continue;
                if (strlen(item) > 255 || strpbrk(item, "\t\n")) {
                        add_error(errors, file, line, "[%s] %s: '%.40s' is not allowed; items are at most 255 "
                                  "characters without tabs, separated by ';'", group, key, item);
                        continue;
                }
                g_ptr_array_add(out, g_strdup(item));
        }
        g_ptr_array_add(out, NULL);
        return (char **) g_ptr_array_free(out, FALSE);
}

static void parse_defaults(Policy *p, GKeyFile *kf, const LineIndex *ix, const char *file, const char *group,
                           GPtrArray *errors) {
        GPtrArray *keys = keys_of(ix, group);

        for (guint i = 0; i < keys->len; i++) {
                const char *key = g_ptr_array_index(keys, i);
                unsigned line = line_of(ix, group, key);
                g_autofree char *v = NULL;

                if (strcmp(key, "Tenant") != 0) {
                        add_error(errors, file, line, "[Defaults] has no key %s; allowed: Tenant", key);
                        continue;
                }
                v = g_key_file_get_value(kf, group, key, NULL);
                if (v)
                        g_strstrip(v);
                if (!policy_tenant_name_is_valid(v)) {
                        add_error(errors, file, line, "[Defaults] Tenant=%s is not a tenant name; allowed: 1 to %d "
                                  "of A-Z a-z 0-9 . _ -", v ? v : "", POLICY_TENANT_NAME_MAX);
                        continue;
                }
                /* A later file overrides the default of an earlier one. */
                g_free(p->default_tenant);
                g_free(p->default_file);
                p->default_tenant = g_steal_pointer(&v);
                p->default_file = g_strdup(file);
                p->default_line = line;
        }
}

static void parse_tenant(Policy *p, GKeyFile *kf, const LineIndex *ix, const char *file, const char *group,
                         GPtrArray *errors) {
        const char *name = group + strlen(TENANT_PREFIX);
        unsigned header = line_of(ix, group, NULL);
        const PolicyTenant *existing;
        GPtrArray *keys = keys_of(ix, group);
        PolicyTenant *t;

        if (!policy_tenant_name_is_valid(name)) {
                add_error(errors, file, header, "[%s]: '%s' is not a tenant name; allowed: 1 to %d of A-Z a-z 0-9 . _ -",
                          group, name, POLICY_TENANT_NAME_MAX);
                return;
        }
        existing = policy_find_tenant(p, name);
        if (existing) {
                add_error(errors, file, header, "[%s] is already defined at %s:%u; a tenant is defined once "
                          "(a file of the same name in a later directory replaces the whole file)",
                          group, existing->file, existing->line);
                return;
        }

        t = g_new0(PolicyTenant, 1);
        t->name = g_strdup(name);
        t->max_rmas = POLICY_UNLIMITED;
        t->file = g_strdup(file);
        t->line = header;
        g_ptr_array_add(p->tenants, t);

        for (guint i = 0; i < keys->len; i++) {
                const char *key = g_ptr_array_index(keys, i);
                unsigned line = line_of(ix, group, key);

                if (strcmp(key, "MaxRmas") == 0) {
                        (void) parse_count(kf, file, line, group, key, &t->max_rmas, errors);
                        t->max_line = line;
                } else if (strcmp(key, "GuaranteedRmas") == 0) {
                        (void) parse_count(kf, file, line, group, key, &t->guaranteed_rmas, errors);
                        t->guaranteed_line = line;
                }
                else if (strcmp(key, "Domains") == 0) {
                        g_strfreev(t->domains);
                        t->domains = parse_list(kf, file, line, group, key, errors);
                } else if (strcmp(key, "Users") == 0) {
                        g_strfreev(t->users);
                        t->users = parse_list(kf, file, line, group, key, errors);
                } else if (strcmp(key, "Groups") == 0) {
                        g_strfreev(t->groups);
                        t->groups = parse_list(kf, file, line, group, key, errors);
                } else if (strcmp(key, "NovaFlavors") == 0) {
                        g_strfreev(t->nova_flavors);
                        t->nova_flavors = parse_list(kf, file, line, group, key, errors);
                } else if (strcmp(key, "NovaProjects") == 0) {
                        g_strfreev(t->nova_projects);
                        t->nova_projects = parse_list(kf, file, line, group, key, errors);
                        for (char **u = t->nova_projects; u && *u; u++)
                                if (!rma_project_id_is_valid(*u))
                                        add_error(errors, file, line, "[%s] NovaProjects=%s is not a Keystone "
                                                  "project id (32 hex digits, dashes allowed)", group, *u);
                } else
                        add_error(errors, file, line, "[%s] has no key %s; allowed: MaxRmas, GuaranteedRmas, "
                                  "Domains, Users, Groups, NovaFlavors, NovaProjects", group, key);
        }
}

static void line_index_done(LineIndex *ix) {
        g_clear_pointer(&ix->lines, g_hash_table_unref);
        g_clear_pointer(&ix->groups, g_ptr_array_unref);
        g_clear_pointer(&ix->keys, g_hash_table_unref);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(LineIndex, line_index_done)

void policy_parse_text(Policy *p, const char *file, const char *text, size_t len, bool in_daemon_config,
                       GPtrArray *errors) {
        g_auto(LineIndex) ix = {
                .lines = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL),
                .groups = g_ptr_array_new_with_free_func(g_free),
                .keys = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_ptr_array_unref),
        };
        g_autoptr(GKeyFile) kf = g_key_file_new();
        g_autoptr(GError) e = NULL;

        g_ptr_array_add(p->files, g_strdup(file));
        if (!index_lines(&ix, file, text, len, errors))
                return;
        if (!g_key_file_load_from_data(kf, text, len, G_KEY_FILE_NONE, &e)) {
                add_error(errors, file, 0, "%s", e->message);
                return;
        }
        for (guint i = 0; i < ix.groups->len; i++) {
                const char *group = g_ptr_array_index(ix.groups, i);

                if (strcmp(group, "Defaults") == 0)
                        parse_defaults(p, kf, &ix, file, group, errors);
                else if (g_str_has_prefix(group, TENANT_PREFIX))
                        parse_tenant(p, kf, &ix, file, group, errors);
                else if (strcmp(group, "Broker") == 0 && in_daemon_config)
                        continue;
                else
                        add_error(errors, file, line_of(&ix, group, NULL), "unknown section [%s]; allowed: [Defaults], "
                                  "[Tenant NAME]%s", group, in_daemon_config ? ", [Broker]" : "");
        }
}
