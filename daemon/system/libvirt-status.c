/* Reading libvirtd's status XML: <domstatus pid='N'> around <domain> with <name> and <uuid>. */
#include <errno.h>
#include <string.h>

#include "libvirt-status.h"
#include "log.h"
#include "regular-file.h"

/* A status file is the domain XML and QEMU's state: hundreds of KiB at most. */
#define LIBVIRT_STATUS_MAX (16u << 20)

typedef struct StatusParse {
        int depth;
        int domain_depth;          /* depth of <domain> inside <domstatus>, 0 outside it */
        const char *capture;       /* "name" or "uuid": the element whose text is read now */
        LibvirtDomain *d;
        GString *text;
} StatusParse;

static void start_element(GMarkupParseContext *context, const char *element, const char **names, const char **values,
                          void *userdata, GError **error) {
        StatusParse *sp = userdata;

        sp->depth++;
        if (sp->depth == 1 && g_str_equal(element, "domstatus")) {
                for (size_t i = 0; names[i]; i++)
                        if (g_str_equal(names[i], "pid"))
                                sp->d->pid = (pid_t) g_ascii_strtoll(values[i], NULL, 10);
        } else if (sp->depth == 2 && g_str_equal(element, "domain"))
                sp->domain_depth = 2;
        else if (sp->domain_depth == 2 && sp->depth == 3 && (g_str_equal(element, "name") || g_str_equal(element, "uuid"))) {
                sp->capture = g_str_equal(element, "name") ? "name" : "uuid";
                g_string_truncate(sp->text, 0);
        }
}

static void end_element(GMarkupParseContext *context, const char *element, void *userdata, GError **error) {
        StatusParse *sp = userdata;

        if (sp->capture && sp->depth == 3) {
                if (g_str_equal(sp->capture, "name") && !sp->d->name)
                        sp->d->name = g_strdup(sp->text->str);
                else if (g_str_equal(sp->capture, "uuid") && !sp->d->uuid[0] &&
                         rma_uuid_canonicalize(sp->text->str, sp->d->uuid) < 0)
                        sp->d->uuid[0] = '\0';
                sp->capture = NULL;
        }
        if (sp->depth == 2 && sp->domain_depth == 2 && g_str_equal(element, "domain"))
                sp->domain_depth = 0;
        sp->depth--;
}

static void text(GMarkupParseContext *context, const char *t, gsize len, void *userdata, GError **error) {
        StatusParse *sp = userdata;

        if (sp->capture)
                g_string_append_len(sp->text, t, (gssize) len);
}

static void libvirt_domain_free(void *p) {
        LibvirtDomain *d = p;

        g_free(d->name);
        g_free(d);
}

static LibvirtDomain *parse_status(const char *data, gsize len) {
        static const GMarkupParser parser = { .start_element = start_element, .end_element = end_element, .text = text };
        g_autoptr(GString) buffer = g_string_new(NULL);
        LibvirtDomain *d = g_new0(LibvirtDomain, 1);
        StatusParse sp = { .d = d, .text = buffer };
        g_autoptr(GMarkupParseContext) ctx = g_markup_parse_context_new(&parser, 0, &sp, NULL);

        if (!g_markup_parse_context_parse(ctx, data, (gssize) len, NULL) || !g_markup_parse_context_end_parse(ctx, NULL) ||
            d->pid <= 0 || !d->name || !d->uuid[0]) {
                libvirt_domain_free(d);
                return NULL;
        }
        return d;
}

GHashTable *libvirt_status_read(const char *dir) {
        GHashTable *by_pid = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, libvirt_domain_free);
        g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
        const char *entry;

        while (d && (entry = g_dir_read_name(d))) {
                g_autofree char *path = NULL, *data = NULL;
                LibvirtDomain *domain;
                size_t len;
                int r;

                if (!g_str_has_suffix(entry, ".xml"))
                        continue;
                path = g_build_filename(dir, entry, NULL);
                /* libvirtd writes regular files; anything else (a FIFO would hang a plain
                 * open) is skipped, by name. */
                r = regular_file_read(path, LIBVIRT_STATUS_MAX, &data, &len);
                if (r == -EBADFD)
                        log_warning("%s is %s, not libvirt's status XML: skipped; remove it", path,
                                    regular_file_kind(path));
                if (r < 0)
                        continue;
                domain = parse_status(data, len);
                if (domain)
                        g_hash_table_replace(by_pid, GINT_TO_POINTER(domain->pid), domain);
        }
        return by_pid;
}
