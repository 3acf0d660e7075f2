/* The broker's rules, then polkit, for a method call; the answer from polkit's callback. */
#include <errno.h>
#include <string.h>

#include "bus-authorize.h"
#include "cleanup.h"
#include "log.h"

typedef struct AuthRequest {
        sd_bus_message *msg;    /* the call, answered when polkit has decided */
        BusOrigin *origin;      /* lives as long as the check: a broker.sock peer cancels its checks when it goes */
        BusService *service;
        Caller caller;          /* a copy: the gids owned, no fds */
        char *action;
        char *details;          /* "key=value, ...", for the journal */
        char *arg;
        AuthorizedFn granted;
        RefusedFn refused;
} AuthRequest;

static void auth_request_free(void *userdata) {
        AuthRequest *req = userdata;

        sd_bus_message_unref(req->msg);
        caller_done(&req->caller);
        g_free(req->action);
        g_free(req->details);
        g_free(req->arg);
        g_free(req);
}

static void on_verdict(PolkitVerdict verdict, void *userdata) {
        AuthRequest *req = userdata;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        if (verdict == POLKIT_GRANTED) {
                log_info("polkit grants %s to uid %u (pid %d): %s", req->action, (unsigned) req->caller.uid,
                         (int) req->caller.pid, req->details);
                r = req->granted(req->msg, req->service, &req->caller, req->arg, &error);
        } else
                r = req->refused(req->msg, req->service, &req->caller, req->arg, verdict, &error);
        if (sd_bus_error_is_set(&error))
                (void) sd_bus_reply_method_error(req->msg, &error);
        else if (r < 0)
                (void) sd_bus_reply_method_errno(req->msg, r, NULL);
        sd_bus_error_free(&error);
        if (req->origin->answered_later)
                req->origin->answered_later(req->origin);
}

static char *details_text(const char *const *details) {
        g_autoptr(GString) text = g_string_new(NULL);

        for (size_t i = 0; details && details[i] && details[i + 1]; i += 2)
                g_string_append_printf(text, "%s%s=%s", i ? ", " : "", details[i], details[i + 1]);
        return g_string_free(g_steal_pointer(&text), FALSE);
}

int bus_authorize(BusOrigin *origin, sd_bus_message *msg, Caller *caller, const Authorization *a,
                  sd_bus_error *error) {
        BusService *service = origin->service;
        PolkitSubject subject = { .pid = caller->pid, .start_time = caller->start_time, .uid = caller->uid,
                                  .connection = origin->peer ? sd_bus_message_get_bus(msg) : NULL };
        AuthRequest *req;
        int r;

        if (a->own_rules_allow)
                return a->granted(msg, service, caller, a->arg, error);
        if (!origin->peer)
                subject.bus_name = sd_bus_message_get_sender(msg);
        if (!origin->peer && !subject.bus_name)
                return a->refused(msg, service, caller, a->arg, POLKIT_UNAVAILABLE, error);
        req = g_new0(AuthRequest, 1);
        *req = (AuthRequest) {
                .msg = sd_bus_message_ref(msg),
                .origin = origin,
                .service = service,
                .caller = { .uid = caller->uid, .pid = caller->pid, .start_time = caller->start_time,
                            .gids = g_memdup2(caller->gids, caller->n_gids * sizeof(gid_t)),
                            .n_gids = caller->n_gids, .gids_known = caller->gids_known,
                            .cgroup_fd = -EBADF, .pidfd = -EBADF },
                .action = g_strdup(a->action),
                .details = details_text(a->details),
                .arg = g_strdup(a->arg),
                .granted = a->granted,
                .refused = a->refused,
        };
        r = polkit_check_async(&service->polkit, &subject, a->action, a->details,
                               !a->no_interaction && sd_bus_message_get_allow_interactive_authorization(msg) > 0, on_verdict, req,
                               auth_request_free);
        if (r == 0)
                return 1;
        auth_request_free(req);
        if (r == -EBUSY)
                return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                         "Too many authorization checks are pending for uid %u or in all; try again "
                                         "when polkit has answered the earlier ones", (unsigned) caller->uid);
        if (r != -ENOTCONN)
                log_warning_errno(r, "Cannot ask polkit about %s (%m); deciding by the broker's own rules", a->action);
        return a->refused(msg, service, caller, a->arg, POLKIT_UNAVAILABLE, error);
}
