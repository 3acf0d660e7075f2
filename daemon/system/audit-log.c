/* VIRT_RESOURCE records through libaudit, as libvirt writes its own. */
#include <errno.h>
#include <glib.h>
#include <libaudit.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "audit-log.h"
#include "log.h"

struct AuditLog {
        int fd;                  /* NETLINK_AUDIT, or -1 */
};

AuditLog *audit_log_new(void) {
        AuditLog *a = g_new0(AuditLog, 1);

        a->fd = audit_open();
        if (a->fd < 0)   /* audit_open() makes the fd CLOEXEC itself */
                log_info("No kernel audit here (%s): RMA grants are not audited", g_strerror(errno));
        return a;
}

AuditLog *audit_log_free(AuditLog *a) {
        if (!a)
                return NULL;
        if (a->fd >= 0)
                audit_close(a->fd);
        g_free(a);
        return NULL;
}

/* name=value, hex-encoded by libaudit where the value could be read as more fields (a
 * domain named 'x res=success' must not forge one). */
static char *field(const char *name, const char *value) {
        char *encoded = audit_encode_nv_string(name, value && *value ? value : "?", 0);
        char *copy = encoded ? g_strdup(encoded) : g_strdup_printf("%s=?", name);

        free(encoded);
        return copy;
}

void audit_log_rma(AuditLog *a, const AuditRecord *r) {
        g_autofree char *vm = NULL, *uuid = NULL, *tenant = NULL, *message = NULL;

        if (!a || a->fd < 0)
                return;
        vm = field("vm", r->vm);
        uuid = field("uuid", r->uuid);
        tenant = field("tenant", r->tenant);
        message = g_strdup_printf("virt=kvm resrc=rma reason=%s %s %s %s slot=%d size=%llu pid=%d uid=%u", r->reason,
                                  vm, uuid, tenant, r->slot, (unsigned long long) r->size, (int) r->pid,
                                  (unsigned) r->uid);
        /* The kernel answers at once, also with audit off; a failure is not the grant's. */
        if (audit_log_user_message(a->fd, AUDIT_VIRT_RESOURCE, message, NULL, NULL, NULL, r->success ? 1 : 0) <= 0)
                log_debug("Cannot send an audit record: %s", message);
}
