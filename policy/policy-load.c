/* Load the tenant policy from its directories. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>

#include "policy-load.h"
#include "policy-parse.h"
#include "rma-config.h"

/* Policy files are small; anything bigger is a mistake, not a policy. */
#define POLICY_FILE_MAX (1u << 20)

char **policy_default_dirs(const char *runtime_dir) {
        char **dirs = g_new0(char *, 4);

        dirs[0] = g_strdup(RMA_DATADIR "/policy.d");
        dirs[1] = g_strdup(RMA_SYSCONFDIR "/policy.d");
        dirs[2] = g_build_filename(runtime_dir, "policy.d", NULL);
        return dirs;
}

static int read_file(const char *path, char **ret_text, size_t *ret_len, GPtrArray *errors) {
        g_autoptr(GError) e = NULL;

        if (!g_file_get_contents(path, ret_text, ret_len, &e)) {
                g_ptr_array_add(errors, g_strdup_printf("%s: cannot read: %s", path, e->message));
                return -EIO;
        }
        if (*ret_len > POLICY_FILE_MAX) {
                g_ptr_array_add(errors, g_strdup_printf("%s: is %zu bytes; a policy file may have at most %u",
                                                        path, *ret_len, POLICY_FILE_MAX));
                g_clear_pointer(ret_text, g_free);
                return -EFBIG;
        }
        return 0;
}

static bool is_mask(const char *path) {
        g_autofree char *target = g_file_read_link(path, NULL);

        return target && strcmp(target, "/dev/null") == 0;
}

/* basename -> full path, later directories winning; returned sorted by basename. */
static GPtrArray *collect_files(char *const *dirs, GPtrArray *errors) {
        g_autoptr(GHashTable) by_name = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        g_autoptr(GList) names = NULL;
        GPtrArray *out = g_ptr_array_new_with_free_func(g_free);

        for (char *const *d = dirs; d && *d; d++) {
                g_autoptr(GError) e = NULL;
                g_autoptr(GDir) dir = g_dir_open(*d, 0, &e);
                const char *name;

                if (!dir) {
                        if (!g_error_matches(e, G_FILE_ERROR, G_FILE_ERROR_NOENT))
                                g_ptr_array_add(errors, g_strdup_printf("%s: cannot list: %s", *d, e->message));
                        continue;
                }
                while ((name = g_dir_read_name(dir))) {
                        g_autofree char *path = NULL;
                        /* Only *.conf: editor backups and package leftovers never become policy. */
                        if (!g_str_has_suffix(name, ".conf") || name[0] == '.')
                                continue;
                        path = g_build_filename(*d, name, NULL);
                        /* A symlink to /dev/null masks the file of that name in earlier
                         * directories, as in systemd's configuration directories. */
                        if (is_mask(path)) {
                                g_hash_table_replace(by_name, g_strdup(name), NULL);
                                continue;
                        }
                        if (!g_file_test(path, G_FILE_TEST_IS_REGULAR))
                                continue;
                        g_hash_table_replace(by_name, g_strdup(name), g_steal_pointer(&path));
                }
        }
        names = g_hash_table_get_keys(by_name);
        names = g_list_sort(names, (GCompareFunc) strcmp);
        for (GList *l = names; l; l = l->next) {
                const char *path = g_hash_table_lookup(by_name, l->data);
                if (path)
                        g_ptr_array_add(out, g_strdup(path));
        }
        return out;
}

/* Where in its file a tenant's KEY is, for messages; the section header if unknown. */
static void account_error(GPtrArray *errors, const PolicyTenant *t, const char *key, const char *kind,
                          const char *name) {
        g_ptr_array_add(errors, g_strdup_printf("%s:%u: [Tenant %s] %s=%s: no %s named '%s' on this host",
                                                t->file, t->line, t->name, key, name, kind, name));
}

void policy_resolve_accounts(Policy *p, GPtrArray *errors) {
        for (guint i = 0; i < p->tenants->len; i++) {
                PolicyTenant *t = g_ptr_array_index(p->tenants, i);
                size_t nu = t->users ? g_strv_length(t->users) : 0, ng = t->groups ? g_strv_length(t->groups) : 0;

                g_free(t->uids);
                g_free(t->gids);
                t->uids = g_new0(uid_t, nu + 1);
                t->gids = g_new0(gid_t, ng + 1);
                t->n_uids = t->n_gids = 0;
                for (size_t j = 0; j < nu; j++) {
                        struct passwd *pw = getpwnam(t->users[j]);
                        if (pw)
                                t->uids[t->n_uids++] = pw->pw_uid;
                        else
                                account_error(errors, t, "Users", "user", t->users[j]);
                }
                for (size_t j = 0; j < ng; j++) {
                        struct group *gr = getgrnam(t->groups[j]);
                        if (gr)
                                t->gids[t->n_gids++] = gr->gr_gid;
                        else
                                account_error(errors, t, "Groups", "group", t->groups[j]);
                }
        }
}

int policy_load(const char *daemon_config, char *const *dirs, uint32_t pool_size, Policy **ret, GPtrArray *errors) {
        g_autoptr(Policy) p = policy_new();
        g_autoptr(GPtrArray) files = NULL;
        guint before = errors->len;

        if (daemon_config && g_file_test(daemon_config, G_FILE_TEST_EXISTS)) {
                g_autofree char *text = NULL;
                size_t len;
                if (read_file(daemon_config, &text, &len, errors) >= 0)
                        policy_parse_text(p, daemon_config, text, len, true, errors);
        }
        files = collect_files(dirs, errors);
        for (guint i = 0; i < files->len; i++) {
                const char *path = g_ptr_array_index(files, i);
                g_autofree char *text = NULL;
                size_t len;
                if (read_file(path, &text, &len, errors) >= 0)
                        policy_parse_text(p, path, text, len, false, errors);
        }
        /* Check what did parse too, so one run reports every problem. */
        if (p->tenants->len == 0 && !p->default_tenant && errors->len == before)
                policy_make_implicit(p);
        policy_resolve_accounts(p, errors);
        policy_validate(p, pool_size, errors);
        if (errors->len > before)
                return -EINVAL;
        *ret = g_steal_pointer(&p);
        return 0;
}
