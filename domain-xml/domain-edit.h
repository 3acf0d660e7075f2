/* Opting a libvirt domain in to rma-broker and out again, as an edit of its XML: the
 * transform behind `rmactl domain enable|disable`, with no libvirt connection, so unit
 * tests drive it on plain strings. */
#pragma once

#include <glib.h>
#include <stdint.h>

/* enable: <emulator> becomes `wrapper` (the original is kept in our metadata), the
 * rma:rma metadata element is added (tenant= set when tenant is non-NULL), and NUMA cell 0
 * is made exactly rma_size (a cell is added when the domain has none). *changes gets one
 * line per change for the admin. Refuses (-EINVAL, *error says which number to change) a
 * non-pseries machine, or memory that cannot be split so. */
int domain_edit_enable(const char *xml, const char *wrapper, uint64_t rma_size, const char *tenant, char **ret_xml,
                       GPtrArray *changes, GError **error);
/* disable: the original <emulator> back, our metadata gone; NUMA cells stay. */
int domain_edit_disable(const char *xml, char **ret_xml, GPtrArray *changes, GError **error);
/* The XML as the edits write it (same quoting and indentation), so that a diff against an
 * edited version shows only what the edit changed. */
int domain_edit_normalize(const char *xml, char **ret_xml, GError **error);
