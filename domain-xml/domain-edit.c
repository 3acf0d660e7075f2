/* `rmactl domain enable|disable` as an edit of the domain XML, with libxml2. */
#include <errno.h>
#include <inttypes.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <stdio.h>
#include <string.h>

#include "domain-edit.h"
#include "rma-names.h"

#define MIB (UINT64_C(1) << 20)

static void xml_doc_free(xmlDoc *d) {
        xmlFreeDoc(d);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlDoc, xml_doc_free)

static void xml_free_string(xmlChar *s) {
        xmlFree(s);
}
typedef xmlChar XmlString;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(XmlString, xml_free_string)

static int fail(GError **error, const char *format, ...) G_GNUC_PRINTF(2, 3);
static int fail(GError **error, const char *format, ...) {
        g_autofree char *message = NULL;
        va_list ap;

        va_start(ap, format);
        message = g_strdup_vprintf(format, ap);
        va_end(ap);
        g_set_error_literal(error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT, message);
        return -EINVAL;
}

static xmlNode *child(xmlNode *parent, const char *name) {
        for (xmlNode *c = parent ? parent->children : NULL; c; c = c->next)
                if (c->type == XML_ELEMENT_NODE && xmlStrcmp(c->name, BAD_CAST name) == 0)
                        return c;
        return NULL;
}

static xmlNode *child_or_new(xmlNode *parent, const char *name) {
        xmlNode *c = child(parent, name);
        return c ? c : xmlNewChild(parent, NULL, BAD_CAST name, NULL);
}

/* <metadata><rma:rma xmlns:rma="..."/> of this domain, or NULL. */
static xmlNode *rma_metadata(xmlNode *domain) {
        for (xmlNode *c = child(domain, "metadata") ? child(domain, "metadata")->children : NULL; c; c = c->next)
                if (c->type == XML_ELEMENT_NODE && c->ns && xmlStrcmp(c->name, BAD_CAST "rma") == 0 &&
                    xmlStrcmp(c->ns->href, BAD_CAST RMA_LIBVIRT_XMLNS) == 0)
                        return c;
        return NULL;
}

static int parse(const char *xml, xmlDoc **ret_doc, xmlNode **ret_domain, GError **error) {
        xmlDoc *doc = xmlReadMemory(xml, (int) strlen(xml), "domain.xml", NULL,
                                    XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;

        if (!root || xmlStrcmp(root->name, BAD_CAST "domain") != 0) {
                xmlFreeDoc(doc);
                return fail(error, "not a libvirt domain XML");
        }
        *ret_doc = doc;
        *ret_domain = root;
        return 0;
}

static char *serialize(xmlDoc *doc) {
        xmlChar *buf = NULL;
        int len = 0;
        char *out;

        xmlDocDumpFormatMemory(doc, &buf, &len, 1);
        out = g_strndup((const char *) buf, (gsize) len);
        xmlFree(buf);
        return out;
}

/* A libvirt memory amount in bytes (unit= defaults to KiB). */
static int memory_bytes(xmlNode *n, uint64_t *ret) {
        g_autoptr(XmlString) text = xmlNodeGetContent(n);
        g_autoptr(XmlString) unit = xmlGetProp(n, BAD_CAST "unit");
        g_autoptr(XmlString) mem_attr = xmlGetProp(n, BAD_CAST "memory");
        const char *u = unit ? (const char *) unit : "KiB";
        const char *v = mem_attr ? (const char *) mem_attr : (const char *) text;
        static const struct {
                const char *unit;
                uint64_t factor;
        } units[] = { { "b", 1 }, { "bytes", 1 }, { "KiB", 1024 }, { "k", 1024 }, { "MiB", MIB }, { "M", MIB },
                      { "GiB", MIB * 1024 }, { "G", MIB * 1024 }, { "KB", 1000 }, { "MB", 1000000 },
                      { "GB", 1000000000 } };
        guint64 n_value;

        if (!v || !g_ascii_string_to_unsigned(g_strstrip((char *) v), 10, 0, UINT64_MAX / (1 << 30), &n_value, NULL))
                return -EINVAL;
        for (size_t i = 0; i < G_N_ELEMENTS(units); i++)
                if (strcmp(u, units[i].unit) == 0) {
                        *ret = n_value * units[i].factor;
                        return 0;
                }
        return -EINVAL;
}

static void set_cell_memory(xmlNode *cell, uint64_t bytes) {
        char v[32];

        snprintf(v, sizeof(v), "%" PRIu64, bytes / 1024);
        xmlSetProp(cell, BAD_CAST "memory", BAD_CAST v);
        xmlSetProp(cell, BAD_CAST "unit", BAD_CAST "KiB");
}

static xmlNode *cell_by_id(xmlNode *numa, const char *id) {
        for (xmlNode *c = numa ? numa->children : NULL; c; c = c->next)
                if (c->type == XML_ELEMENT_NODE && xmlStrcmp(c->name, BAD_CAST "cell") == 0) {
                        g_autoptr(XmlString) cid = xmlGetProp(c, BAD_CAST "id");
                        if (cid && strcmp((const char *) cid, id) == 0)
                                return c;
                }
        return NULL;
}

/* Cell 0 exactly the RMA size; memory moves between cell 0 and cell 1. */
static int make_cell0(xmlNode *domain, uint64_t rma, GPtrArray *changes, GError **error) {
        xmlNode *memory = child(domain, "memory"), *vcpu = child(domain, "vcpu"), *cpu, *numa, *cell0, *cell1;
        uint64_t total = 0, c0 = 0, c1 = 0;
        guint64 vcpus = 1;

        if (!memory || memory_bytes(memory, &total) < 0)
                return fail(error, "the domain has no readable <memory>");
        if (vcpu) {
                g_autoptr(XmlString) t = xmlNodeGetContent(vcpu);
                if (!t || !g_ascii_string_to_unsigned(g_strstrip((char *) t), 10, 1, 65536, &vcpus, NULL))
                        vcpus = 1;
        }
        numa = child(child(domain, "cpu"), "numa");
        cell0 = cell_by_id(numa, "0");
        if (!cell0) {
                char cpus[32];
                if (total < rma)
                        return fail(error, "the domain has %" PRIu64 " MiB of memory, less than the RMA (%" PRIu64
                                    " MiB) that NUMA cell 0 must be: raise <memory> to at least %" PRIu64 " MiB",
                                    total / MIB, rma / MIB, rma / MIB);
                if (total > rma && vcpus < 2)
                        return fail(error, "the domain's %" PRIu64 " MiB must be split into NUMA cell 0 of the RMA size "
                                    "(%" PRIu64 " MiB) and a cell 1, and every cell needs a vCPU: raise <vcpu> to 2",
                                    total / MIB, rma / MIB);
                cpu = child_or_new(domain, "cpu");
                numa = child_or_new(cpu, "numa");
                /* One cell: it takes every vCPU. Two: vCPU 0 in cell 0, the rest in cell 1. */
                if (total == rma && vcpus > 1)
                        snprintf(cpus, sizeof(cpus), "0-%" G_GUINT64_FORMAT, vcpus - 1);
                else
                        snprintf(cpus, sizeof(cpus), "0");
                cell0 = xmlNewChild(numa, NULL, BAD_CAST "cell", NULL);
                xmlSetProp(cell0, BAD_CAST "id", BAD_CAST "0");
                xmlSetProp(cell0, BAD_CAST "cpus", BAD_CAST cpus);
                set_cell_memory(cell0, rma);
                if (total > rma) {
                        cell1 = xmlNewChild(numa, NULL, BAD_CAST "cell", NULL);
                        xmlSetProp(cell1, BAD_CAST "id", BAD_CAST "1");
                        if (vcpus > 2)
                                snprintf(cpus, sizeof(cpus), "1-%" G_GUINT64_FORMAT, vcpus - 1);
                        else
                                snprintf(cpus, sizeof(cpus), "1");
                        xmlSetProp(cell1, BAD_CAST "cpus", BAD_CAST cpus);
                        set_cell_memory(cell1, total - rma);
                        g_ptr_array_add(changes, g_strdup_printf("NUMA: added cell 0 of %" PRIu64 " MiB (the RMA) and "
                                                                 "cell 1 of %" PRIu64 " MiB",
                                                                 rma / MIB, (total - rma) / MIB));
                } else
                        g_ptr_array_add(changes, g_strdup_printf("NUMA: added cell 0 of %" PRIu64 " MiB (the RMA)",
                                                                 rma / MIB));
                return 0;
        }
        if (memory_bytes(cell0, &c0) < 0)
                return fail(error, "NUMA cell 0 has no readable memory=");
        if (c0 == rma)
                return 0;
        cell1 = cell_by_id(numa, "1");
        if (!cell1 || memory_bytes(cell1, &c1) < 0 || c0 + c1 < rma)
                return fail(error, "NUMA cell 0 has %" PRIu64 " MiB and must be exactly the RMA, %" PRIu64 " MiB; %s: set "
                            "cell 0 to %" PRIu64 " MiB in the domain XML",
                            c0 / MIB, rma / MIB, cell1 ? "cell 1 cannot make up the difference" : "there is no cell 1 to "
                            "take the difference", rma / MIB);
        set_cell_memory(cell0, rma);
        set_cell_memory(cell1, c0 + c1 - rma);
        g_ptr_array_add(changes, g_strdup_printf("NUMA: cell 0 %" PRIu64 " MiB -> %" PRIu64 " MiB (the RMA), cell 1 %"
                                                 PRIu64 " MiB -> %" PRIu64 " MiB",
                                                 c0 / MIB, rma / MIB, c1 / MIB, (c0 + c1 - rma) / MIB));
        return 0;
}

int domain_edit_enable(const char *xml, const char *wrapper, uint64_t rma_size, const char *tenant, char **ret_xml,
                       GPtrArray *changes, GError **error) {
        g_autoptr(xmlDoc) doc = NULL;
        xmlNode *domain, *os_type, *devices, *emulator, *metadata, *rma;
        g_autoptr(XmlString) machine = NULL, current = NULL;
        int r;

        r = parse(xml, &doc, &domain, error);
        if (r < 0)
                return r;
        os_type = child(child(domain, "os"), "type");
        machine = os_type ? xmlGetProp(os_type, BAD_CAST "machine") : NULL;
        if (!machine || !g_str_has_prefix((const char *) machine, "pseries"))
                return fail(error, "the domain's machine is %s, not pseries: RMAs are for ppc64 pseries guests "
                            "(<os><type arch='ppc64' machine='pseries'>)", machine ? (const char *) machine : "not set");
        devices = child_or_new(domain, "devices");
        emulator = child(devices, "emulator");
        current = emulator ? xmlNodeGetContent(emulator) : NULL;
        metadata = child_or_new(domain, "metadata");
        rma = rma_metadata(domain);
        if (!rma) {
                xmlNs *ns;
                rma = xmlNewChild(metadata, NULL, BAD_CAST "rma", NULL);
                ns = xmlNewNs(rma, BAD_CAST RMA_LIBVIRT_XMLNS, BAD_CAST "rma");
                xmlSetNs(rma, ns);
                g_ptr_array_add(changes, g_strdup_printf("metadata: added <rma:rma%s%s%s/>", tenant ? " tenant=\"" : "",
                                                         tenant ? tenant : "", tenant ? "\"" : ""));
        } else if (tenant)
                g_ptr_array_add(changes, g_strdup_printf("metadata: tenant set to %s", tenant));
        if (tenant)
                xmlSetProp(rma, BAD_CAST "tenant", BAD_CAST tenant);
        if (!current || strcmp((const char *) current, wrapper) != 0) {
                /* The original emulator is what disable puts back. */
                if (current)
                        xmlSetProp(rma, BAD_CAST "emulator", current);
                if (emulator)
                        xmlNodeSetContent(emulator, BAD_CAST wrapper);
                else
                        xmlNewTextChild(devices, NULL, BAD_CAST "emulator", BAD_CAST wrapper);
                g_ptr_array_add(changes, g_strdup_printf("emulator: %s -> %s", current ? (const char *) current : "(none)",
                                                         wrapper));
        }
        r = make_cell0(domain, rma_size, changes, error);
        if (r < 0)
                return r;
        *ret_xml = serialize(doc);
        return 0;
}

int domain_edit_disable(const char *xml, char **ret_xml, GPtrArray *changes, GError **error) {
        g_autoptr(xmlDoc) doc = NULL;
        xmlNode *domain, *rma, *emulator;
        int r;

        r = parse(xml, &doc, &domain, error);
        if (r < 0)
                return r;
        rma = rma_metadata(domain);
        if (rma) {
                g_autoptr(XmlString) original = xmlGetProp(rma, BAD_CAST "emulator");
                emulator = child(child(domain, "devices"), "emulator");
                if (original && emulator) {
                        g_autoptr(XmlString) current = xmlNodeGetContent(emulator);
                        xmlNodeSetContent(emulator, original);
                        g_ptr_array_add(changes, g_strdup_printf("emulator: %s -> %s", (const char *) current,
                                                                 (const char *) original));
                }
                xmlUnlinkNode(rma);
                xmlFreeNode(rma);
                g_ptr_array_add(changes, g_strdup("metadata: removed <rma:rma/>"));
        }
        *ret_xml = serialize(doc);
        return 0;
}

int domain_edit_normalize(const char *xml, char **ret_xml, GError **error) {
        g_autoptr(xmlDoc) doc = NULL;
        xmlNode *domain;
        int r = parse(xml, &doc, &domain, error);

        if (r < 0)
                return r;
        *ret_xml = serialize(doc);
        return 0;
}
