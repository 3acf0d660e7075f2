/* Linux audit records of the RMAs the broker hands out, in libvirt's style: one
 * AUDIT_VIRT_RESOURCE (2501) record per grant, Claim, end, release, refusal and
 * ForgetRegion, e.g.
 *   virt=kvm resrc=rma reason=start vm="web-01" uuid=... tenant=gold slot=3 size=268435456
 *   pid=4711 uid=64055 ... res=success
 * so that ausearch -m VIRT_RESOURCE shows who got which RMA next to libvirt's own records.
 *
 * Where the kernel has no audit (a container, a kernel without it) the log is closed and
 * every call does nothing; where audit is off the kernel takes the record and drops it.
 * A record that cannot be sent never fails or delays what it records. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct AuditLog AuditLog;

/* Never fails: without the kernel's audit the log does nothing (said once, at info). */
AuditLog *audit_log_new(void);
AuditLog *audit_log_free(AuditLog *a);

typedef struct AuditRecord {
        const char *reason;      /* "start" (a grant or a Claim), "stop" (an end or a release), "forget" */
        const char *vm, *uuid, *tenant;   /* may be NULL or "" */
        int slot;                /* -1: none */
        uint64_t size;
        pid_t pid;               /* the process concerned (the claimant, the caller), 0: none */
        uid_t uid;               /* the caller's uid */
        bool success;
} AuditRecord;

void audit_log_rma(AuditLog *a, const AuditRecord *r);
