/* `rmactl domain enable|disable` as an edit of the domain XML, with libxml2. */
#include <errno.h>
#include <inttypes.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <stdbool.h>
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

static xmlNode *cell_by_id(xmlNode *numa, const char *id) {
        for (xmlNode *c = numa ? numa->children : NULL; c; c = c->next)
                if (c->type == XML_ELEMENT_NODE && xmlStrcmp(c->name, BAD_CAST "cell") == 0) {
                        g_autoptr(XmlString) cid = xmlGetProp(c, BAD_CAST "id");
                        if (cid && strcmp((const char *) cid, id) == 0)
                                return c;
                }
        return NULL;
}

static bool attributes_are(xmlNode *n, const char *const *names, size_t count) {
        size_t seen = 0;

        for (xmlAttr *a = n->properties; a; a = a->next, seen++) {
                bool known = false;
                for (size_t i = 0; i < count; i++)
                        known = known || xmlStrcmp(a->name, BAD_CAST names[i]) == 0;
                if (!known)
                        return false;
        }
        return seen == count;
}

static bool prop_is(xmlNode *n, const char *name, const char *want) {
        g_autoptr(XmlString) v = xmlGetProp(n, BAD_CAST name);
        return v && strcmp((const char *) v, want) == 0;
}

static guint64 domain_vcpus(xmlNode *domain) {
        xmlNode *vcpu = child(domain, "vcpu");
        g_autoptr(XmlString) t = vcpu ? xmlNodeGetContent(vcpu) : NULL;
        guint64 vcpus;

        if (!t || !g_ascii_string_to_unsigned(g_strstrip((char *) t), 10, 1, 65536, &vcpus, NULL))
                return 1;
        return vcpus;
}

/* A cell exactly as 0.2.0 wrote it: id, cpus FIRST or FIRST-LAST, memory in KiB. */
static bool cell_as_020_wrote(xmlNode *cell, const char *id, guint64 first, guint64 last, uint64_t *bytes) {
        static const char *const attrs[] = { "id", "cpus", "memory", "unit" };
        g_autofree char *cpus = first == last ? g_strdup_printf("%" G_GUINT64_FORMAT, first)
                                              : g_strdup_printf("%" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT, first, last);

        return cell && xmlStrcmp(cell->name, BAD_CAST "cell") == 0 && attributes_are(cell, attrs, G_N_ELEMENTS(attrs)) &&
               prop_is(cell, "id", id) && prop_is(cell, "cpus", cpus) && prop_is(cell, "unit", "KiB") &&
               memory_bytes(cell, bytes) == 0;
}

static xmlNode *next_element(xmlNode *n) {
        while (n && n->type != XML_ELEMENT_NODE)
                n = n->next;
        return n;
}

/* rma-broker 0.2.0's enable gave a domain without NUMA cells <cpu><numa> with cell 0 of
 * its RMA size and, when the domain had more memory, cell 1 of the rest: vCPU 0 in cell 0
 * and the others in cell 1 (all of them in a lone cell 0), memory in KiB, the cells
 * adding up to <memory>, nothing else. Only a numa element of exactly that shape, in a
 * domain with our metadata, whose cell 0 is this host's RMA size (0: unknown, nothing
 * is removed), is 0.2.0's: it goes, and the <cpu> with it if that is all
 * the <cpu> held (libvirt's default mode/match/check aside). Cells 0.2.0 resized in a
 * domain that had some cannot be told from the admin's and stay. */
static void remove_020_cells(xmlNode *domain, uint64_t rma, GPtrArray *changes) {
        static const char *const cpu_defaults[] = { "mode", "match", "check" };
        xmlNode *memory = child(domain, "memory"), *cpu = child(domain, "cpu"), *numa = child(cpu, "numa");
        xmlNode *c0, *c1;
        uint64_t total, b0 = 0, b1 = 0;
        guint64 vcpus = domain_vcpus(domain);

        if (!rma || !numa || numa->properties || !memory || memory_bytes(memory, &total) < 0)
                return;
        c0 = next_element(numa->children);
        c1 = c0 ? next_element(c0->next) : NULL;
        if (c1 && next_element(c1->next))
                return;
        if (!c1 ? !cell_as_020_wrote(c0, "0", 0, vcpus - 1, &b0) || b0 != total || b0 != rma
                : vcpus < 2 || !cell_as_020_wrote(c0, "0", 0, 0, &b0) || !cell_as_020_wrote(c1, "1", 1, vcpus - 1, &b1) ||
                          b0 + b1 != total || b0 != rma)
                return;
        xmlUnlinkNode(numa);
        xmlFreeNode(numa);
        if (!next_element(cpu->children) &&
            (!cpu->properties || (attributes_are(cpu, cpu_defaults, G_N_ELEMENTS(cpu_defaults)) &&
                                  prop_is(cpu, "mode", "custom") && prop_is(cpu, "match", "exact") &&
                                  prop_is(cpu, "check", "none")))) {
                xmlUnlinkNode(cpu);
                xmlFreeNode(cpu);
        }
        if (c1)
                g_ptr_array_add(changes, g_strdup_printf("NUMA: removed cell 0 of %" PRIu64 " MiB and cell 1 of %" PRIu64
                                                         " MiB, which rma-broker 0.2.0 added (the wrapper no longer needs "
                                                         "them)", b0 / MIB, b1 / MIB));
        else
                g_ptr_array_add(changes, g_strdup_printf("NUMA: removed cell 0 of %" PRIu64 " MiB, which rma-broker 0.2.0 "
                                                         "added (the wrapper no longer needs it)", b0 / MIB));
}

#define PSERIES_STEP (256 * MIB)

int domain_edit_layout(const char *xml, uint64_t rma, char **ret_text, GError **error) {
        g_autoptr(xmlDoc) doc = NULL;
        xmlNode *domain, *numa, *cell0;
        uint64_t node0 = 0, total = 0;
        int r;

        r = parse(xml, &doc, &domain, error);
        if (r < 0)
                return r;
        if (rma == 0 || rma % PSERIES_STEP != 0)
                return fail(error, "no pseries guest can use an RMA of %" PRIu64 " MiB: QEMU and libvirt size pseries "
                            "boot memory and NUMA nodes in steps of 256 MiB (and SLOF needs 128 MiB); give rma-brokerd "
                            "a Size= of 256M or a multiple of it (a POWER host: boot with kvm_rma_size=256M, 1G or 16G)",
                            rma / MIB);
        if (!child(domain, "memory") || memory_bytes(child(domain, "memory"), &total) < 0)
                return fail(error, "the domain has no readable <memory>");
        numa = child(child(domain, "cpu"), "numa");
        cell0 = cell_by_id(numa, "0");
        if (cell0 && memory_bytes(cell0, &node0) < 0)
                return fail(error, "NUMA cell 0 has no readable memory=");
        if (!cell0)
                node0 = total;
        /* libvirt rounds pseries memory and cells up to 256 MiB, and so does the wrapper's view. */
        node0 = (node0 + PSERIES_STEP - 1) / PSERIES_STEP * PSERIES_STEP;
        if (node0 < rma)
                return fail(error, "%s is %" PRIu64 " MiB, smaller than the RMA of %" PRIu64 " MiB: give it at least %"
                            PRIu64 " MiB", cell0 ? "NUMA cell 0" : "the domain's memory", node0 / MIB, rma / MIB,
                            rma / MIB);
        if (node0 == rma)
                *ret_text = g_strdup_printf("guest memory 0-%" PRIu64 " MiB (%s, the guest's memory@0) is the RMA",
                                            rma / MIB, cell0 ? "all of NUMA cell 0" : "all its memory");
        else
                *ret_text = g_strdup_printf("guest memory 0-%" PRIu64 " MiB (boot memory, the guest's memory@0) is the "
                                            "RMA; the other %" PRIu64 " MiB of %s is a pc-dimm on node 0%s",
                                            rma / MIB, (node0 - rma) / MIB, cell0 ? "NUMA cell 0" : "its memory",
                                            cell0 ? "; every other cell as the XML says" : "");
        return 0;
}

int domain_edit_enable(const char *xml, const char *wrapper, const char *tenant, uint64_t rma_size, char **ret_xml,
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
        remove_020_cells(domain, rma_size, changes);
        *ret_xml = serialize(doc);
        return 0;
}

int domain_edit_disable(const char *xml, uint64_t rma_size, char **ret_xml, GPtrArray *changes, GError **error) {
        g_autoptr(xmlDoc) doc = NULL;
        xmlNode *domain, *rma, *emulator;
        int r;

        r = parse(xml, &doc, &domain, error);
        if (r < 0)
                return r;
        rma = rma_metadata(domain);
        if (rma) {
                remove_020_cells(domain, rma_size, changes);
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
