/* Asking polkitd whether a caller may do an action, without waiting for it: the question
 * goes out with sd_bus_call_async, the answer comes back to a callback on the event loop.
 *
 * Every check pending is charged to the uid of the caller it is about, within a bound per
 * uid and one in total, so no client can grow the broker by asking. Where polkitd is not
 * on the bus, or does not answer, the verdict is POLKIT_UNAVAILABLE and the caller falls
 * back to the broker's own rules; that is said once in the journal, and again when polkitd
 * answers again. */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

#define POLKIT_PENDING_PER_UID 8u
#define POLKIT_PENDING_MAX 128u

typedef enum PolkitVerdict {
        POLKIT_DENIED,          /* polkitd said no */
        POLKIT_CHALLENGE,       /* polkitd wants the caller to authenticate (interactive authorization) */
        POLKIT_GRANTED,         /* polkitd said yes */
        POLKIT_UNAVAILABLE,     /* no polkitd (or no bus, or no answer): the broker's own rules decide */
} PolkitVerdict;

/* Who is asking: a bus name on the system bus ("system-bus-name"), or a process on
 * broker.sock, by pid, start time and uid ("unix-process": polkit 122 knows no pidfd). */
typedef struct PolkitSubject {
        const char *bus_name;   /* NULL: the process below */
        pid_t pid;
        uint64_t start_time;    /* /proc/PID/stat field 22, as polkit reads it (0: let polkit read it) */
        uid_t uid;              /* also the uid the check is charged to */
        const void *connection; /* the connection it came over, for polkit_checks_cancel() (NULL: none) */
} PolkitSubject;

/* Called once per check started, unless polkit_checks_done() drops it first. */
typedef void (*PolkitCallback)(PolkitVerdict verdict, void *userdata);

typedef struct PolkitChecks {
        sd_bus *bus;            /* the system bus, where polkitd is (borrowed; NULL: none) */
        GHashTable *pending;    /* PolkitPending* set */
        GHashTable *per_uid;    /* uid -> count of pending checks */
        unsigned n_pending;
        uint64_t next_cancellation_id;
        bool unavailable_said;  /* the journal knows polkitd is not answering */
} PolkitChecks;

void polkit_checks_init(PolkitChecks *p);
/* Drop every pending check: no callback runs, userdata is freed with its free function. */
void polkit_checks_done(PolkitChecks *p);
/* Answer every pending check POLKIT_UNAVAILABLE now (the bus is going away). */
void polkit_checks_fail_all(PolkitChecks *p);

/* Drop the pending checks of one connection (it closed): no callback runs, and polkitd is
 * told to close any authentication dialogue it opened for them. */
void polkit_checks_cancel(PolkitChecks *p, const void *connection);

/* Ask whether subject may do action; details are key, value, ..., NULL. 0: started,
 * callback follows (userdata then belongs to the check, freed with free_userdata after
 * the callback); -EBUSY: too many checks pending for this uid or in all; -ENOTCONN: no
 * bus (the caller decides by its own rules, as for POLKIT_UNAVAILABLE). On an error
 * userdata stays the caller's. */
int polkit_check_async(PolkitChecks *p, const PolkitSubject *subject, const char *action,
                       const char *const *details, bool interactive, PolkitCallback callback, void *userdata,
                       GDestroyNotify free_userdata);
