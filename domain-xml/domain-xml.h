/* What the hook needs from a libvirt domain XML: name, uuid, emulator, and whether the
 * domain opted in to rma-broker (and for which tenant). */
#pragma once

#include <glib.h>
#include <stdbool.h>

typedef struct DomainInfo {
        char *name;
        char *uuid;
        char *emulator;
        bool has_rma_metadata;   /* <rma:rma xmlns:rma="http://rmabroker.org/schemas/domain/1"/> */
        char *tenant;            /* its tenant= attribute, NULL when absent */
        /* What Nova writes in <metadata><nova:instance>: the flavor's name and the
         * instance's project id (NULL when absent). */
        char *nova_flavor;
        char *nova_project;
} DomainInfo;

int domain_info_parse(const char *xml, size_t len, DomainInfo **ret, GError **error);
void domain_info_free(DomainInfo *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DomainInfo, domain_info_free)

/* Opted in: the rma metadata element, or an emulator whose file name starts with qemu-rma. */
bool domain_info_wants_rma(const DomainInfo *d);
