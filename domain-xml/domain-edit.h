/* Opting a libvirt domain in to rma-broker and out again, as an edit of its XML: the
 * transform behind `rmactl domain enable|disable`, with no libvirt connection, so unit
 * tests drive it on plain strings. */
#pragma once

#include <glib.h>
#include <stdint.h>

/* enable: <emulator> becomes `wrapper` (the original is kept in our metadata) and the
 * rma:rma metadata element is added (tenant= set when tenant is non-NULL): the opt-in,
 * nothing else. The NUMA cells that 0.2.0's enable added to a domain without any (cell 0
 * of rma_size; 0 when it is not known) are removed: the wrapper lays memory out itself now. *changes gets one line per change
 * for the admin. Refuses (-EINVAL, *error says why) a non-pseries machine. */
int domain_edit_enable(const char *xml, const char *wrapper, const char *tenant, uint64_t rma_size, char **ret_xml,
                       GPtrArray *changes, GError **error);
/* disable: the original <emulator> back, our metadata gone, and 0.2.0's cells too; the
 * domain's own cells stay. */
int domain_edit_disable(const char *xml, uint64_t rma_size, char **ret_xml, GPtrArray *changes, GError **error);
/* How the wrapper will lay out the domain's memory with an RMA of rma bytes, in one line
 * for the admin; -EINVAL (*error says what to change) when it cannot start so. */
int domain_edit_layout(const char *xml, uint64_t rma, char **ret_text, GError **error);
/* The XML as the edits write it (same quoting and indentation), so that a diff against an
 * edited version shows only what the edit changed. */
int domain_edit_normalize(const char *xml, char **ret_xml, GError **error);
