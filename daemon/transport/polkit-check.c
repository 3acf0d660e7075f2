/* Asynchronous CheckAuthorization against polkitd, with a bound on what is pending. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "log.h"
#include "polkit-check.h"
#include "rma-names.h"

#define POLKIT_NAME "org.freedesktop.PolicyKit1"
#define POLKIT_PATH "/org/freedesktop/PolicyKit1/Authority"
#define POLKIT_INTERFACE "org.freedesktop.PolicyKit1.Authority"
/* Without a person to ask, polkitd answers at once; with one, give them time to type. */
#define POLKIT_TIMEOUT_USEC (25 * G_USEC_PER_SEC)

typedef struct PolkitPending {
        PolkitChecks *owner;
        sd_bus_slot *slot;
        uid_t uid;
        const void *connection;
        bool interactive;
        char cancellation_id[32];   /* unique per check: polkitd's CancelCheckAuthorization names it */
        PolkitCallback callback;
        void *userdata;
        GDestroyNotify free_userdata;
} PolkitPending;

void polkit_checks_init(PolkitChecks *p) {
        *p = (PolkitChecks) { .pending = g_hash_table_new(NULL, NULL), .per_uid = g_hash_table_new(NULL, NULL) };
}

static void charge(PolkitChecks *p, uid_t uid, int delta) {
        gpointer key = GUINT_TO_POINTER((guint) uid);
        guint n = GPOINTER_TO_UINT(g_hash_table_lookup(p->per_uid, key)) + (guint) delta;

        if (n == 0)
                g_hash_table_remove(p->per_uid, key);
        else
                g_hash_table_insert(p->per_uid, key, GUINT_TO_POINTER(n));
        p->n_pending = (unsigned) ((int) p->n_pending + delta);
}

/* Out of the books, the slot let go, the userdata freed. */
static void pending_free(PolkitPending *q) {
        charge(q->owner, q->uid, -1);
        g_hash_table_remove(q->owner->pending, q);
        sd_bus_slot_unref(q->slot);
        if (q->free_userdata)
                q->free_userdata(q->userdata);
        g_free(q);
}

static void finish(PolkitPending *q, PolkitVerdict verdict) {
        q->callback(verdict, q->userdata);
        pending_free(q);
}

void polkit_checks_fail_all(PolkitChecks *p) {
        g_autoptr(GList) all = p->pending ? g_hash_table_get_keys(p->pending) : NULL;

        for (GList *l = all; l; l = l->next)
                finish(l->data, POLKIT_UNAVAILABLE);
}

void polkit_checks_done(PolkitChecks *p) {
        g_autoptr(GList) all = p->pending ? g_hash_table_get_keys(p->pending) : NULL;

        for (GList *l = all; l; l = l->next)
                pending_free(l->data);
        g_clear_pointer(&p->pending, g_hash_table_unref);
        g_clear_pointer(&p->per_uid, g_hash_table_unref);
}

/* No reply wanted: polkitd closes the agent's dialogue, if it opened one. */
static void tell_cancelled(PolkitChecks *p, const PolkitPending *q) {
        g_autoptr(sd_bus_message) m = NULL;

        if (sd_bus_message_new_method_call(p->bus, &m, POLKIT_NAME, POLKIT_PATH, POLKIT_INTERFACE,
                                           "CancelCheckAuthorization") < 0 ||
            sd_bus_message_append(m, "s", q->cancellation_id) < 0 || sd_bus_message_set_expect_reply(m, 0) < 0)
                return;
        (void) sd_bus_send(p->bus, m, NULL);
}

void polkit_checks_cancel(PolkitChecks *p, const void *connection) {
        g_autoptr(GList) all = NULL;

        /* Every broker.sock connection ends here; almost none has a check pending. */
        if (!connection || p->n_pending == 0)
                return;
        all = g_hash_table_get_keys(p->pending);
        for (GList *l = all; l; l = l->next) {
                PolkitPending *q = l->data;
                if (q->connection != connection)
                        continue;
                if (q->interactive && p->bus)
                        tell_cancelled(p, q);
                pending_free(q);
        }
}

static void say_unavailable(PolkitChecks *p, const char *why) {
        if (p->unavailable_said)
                return;
        p->unavailable_said = true;
        log_notice("polkit does not answer (%s): deciding by the broker's own rules alone (root, AdminGroup=, the "
                   "tenants' Users=/Groups=) until it does", why);
}

static int on_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        PolkitPending *q = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        int authorized = 0, challenge = 0, r;

        if (e) {
                /* The bus's own errors (no such name, no reply, access denied by the bus
                 * policy) mean polkitd is not there to ask; polkitd's own mean no. */
                if (g_str_has_prefix(e->name, "org.freedesktop.DBus.Error.")) {
                        say_unavailable(q->owner, e->message ? e->message : e->name);
                        finish(q, POLKIT_UNAVAILABLE);
                } else {
                        log_debug("polkit refused to decide: %s: %s", e->name, e->message ? e->message : "");
                        finish(q, POLKIT_DENIED);
                }
                return 0;
        }
        r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
        if (r >= 0)
                r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
        if (r < 0) {
                log_warning_errno(r, "polkit sent an answer that cannot be read (%m); refusing");
                finish(q, POLKIT_DENIED);
                return 0;
        }
        if (q->owner->unavailable_said) {
                q->owner->unavailable_said = false;
                log_info("polkit answers again: it decides for those the broker's own rules refuse");
        }
        finish(q, authorized ? POLKIT_GRANTED : challenge ? POLKIT_CHALLENGE : POLKIT_DENIED);
        return 0;
}

static int append_subject(sd_bus_message *m, const PolkitSubject *s) {
        int r;

        if (s->bus_name)
                return sd_bus_message_append(m, "(sa{sv})", "system-bus-name", 1, "name", "s", s->bus_name);
        r = sd_bus_message_append(m, "(sa{sv})", "unix-process", 3, "pid", "u", (uint32_t) s->pid, "start-time",
                                  "t", s->start_time, "uid", "i", (int32_t) s->uid);
        return r;
}

static int append_details(sd_bus_message *m, const char *const *details) {
        int r = sd_bus_message_open_container(m, 'a', "{ss}");

        for (size_t i = 0; r >= 0 && details && details[i] && details[i + 1]; i += 2)
                r = sd_bus_message_append(m, "{ss}", details[i], details[i + 1]);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

int polkit_check_async(PolkitChecks *p, const PolkitSubject *subject, const char *action,
                       const char *const *details, bool interactive, PolkitCallback callback, void *userdata,
                       GDestroyNotify free_userdata) {
        g_autoptr(sd_bus_message) call = NULL;
        PolkitPending *q;
        int r;

        if (!p->bus) {
                say_unavailable(p, "no system bus");
                return -ENOTCONN;
        }
        if (p->n_pending >= POLKIT_PENDING_MAX ||
            GPOINTER_TO_UINT(g_hash_table_lookup(p->per_uid, GUINT_TO_POINTER((guint) subject->uid))) >=
                    POLKIT_PENDING_PER_UID)
                return -EBUSY;
        r = sd_bus_message_new_method_call(p->bus, &call, POLKIT_NAME, POLKIT_PATH, POLKIT_INTERFACE,
                                           "CheckAuthorization");
        if (r >= 0)
                r = append_subject(call, subject);
        if (r >= 0)
                r = sd_bus_message_append(call, "s", action);
        if (r >= 0)
                r = append_details(call, details);
        if (r < 0)
                return r;
        q = g_new0(PolkitPending, 1);
        *q = (PolkitPending) { .owner = p, .uid = subject->uid, .connection = subject->connection,
                               .interactive = interactive, .callback = callback };
        snprintf(q->cancellation_id, sizeof(q->cancellation_id), "rma-%" PRIu64, ++p->next_cancellation_id);
        /* flags: 1 = AllowUserInteraction; the id a cancel names */
        r = sd_bus_message_append(call, "us", (uint32_t) (interactive ? 1 : 0), q->cancellation_id);
        if (r >= 0)
                r = sd_bus_call_async(p->bus, &q->slot, call, on_reply, q,
                                      interactive ? RMA_INTERACTIVE_AUTH_TIMEOUT_USEC : POLKIT_TIMEOUT_USEC);
        if (r < 0) {
                g_free(q);
                return r;
        }
        q->userdata = userdata;
        q->free_userdata = free_userdata;
        g_hash_table_add(p->pending, q);
        charge(p, subject->uid, +1);
        return 0;
}
