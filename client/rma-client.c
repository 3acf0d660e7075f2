/* The client library: a peer-to-peer sd-bus connection to broker.sock, and one call per
 * method of org.rmabroker.Broker1, on that connection or on the system bus. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "rma-client.h"
#include "rma-config.h"
#include "rma-names.h"
#include "rma-paths.h"

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/* RMA_CLIENT_TIMEOUT_SEC, or $RMA_BROKER_TIMEOUT seconds (1 to 300; for tests: libvirt
 * gives hooks and QEMU a clean environment). */
static uint64_t timeout_usec(void) {
        const char *env = getenv("RMA_BROKER_TIMEOUT");
        unsigned long v = env && *env ? strtoul(env, NULL, 10) : 0;

        return (v >= 1 && v <= 300 ? v : RMA_CLIENT_TIMEOUT_SEC) * 1000000ULL;
}

/* sd-bus finishes connecting and authenticating inside its first call, with a fixed
 * 90 s timeout of its own: do it here instead, until the deadline. */
static int wait_ready(sd_bus *bus, uint64_t deadline) {
        for (;;) {
                uint64_t now;
                int r = sd_bus_is_ready(bus);

                if (r != 0)
                        return r < 0 ? r : 0;
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                now = now_usec();
                if (now >= deadline)
                        return -ETIMEDOUT;
                r = sd_bus_wait(bus, deadline - now);
                if (r < 0)
                        return r;
        }
}

const char *rma_client_socket_path(void) {
        return rma_socket_path();
}

/* NAME (and LEAF) beside broker.sock, as the fronts find it (rma-paths.h). */
static char *runtime_path(const char *name, const char *leaf) {
        size_t len = rma_runtime_path(NULL, 0, name, leaf);
        char *path = g_malloc(len + 1);

        rma_runtime_path(path, len + 1, name, leaf);
        return path;
}

char *rma_client_privileged_socket_path(void) {
        return runtime_path(RMA_PRIVILEGED_SOCKET_NAME, NULL);
}

/* One try: connected (sd_bus_start() connects at once on AF_UNIX), not yet authenticated. */
static int bus_connect(const char *path, sd_bus **ret) {
        g_autoptr(sd_bus) bus = NULL;
        g_autofree char *address = NULL;
        int r;

        if (asprintf(&address, "unix:path=%s", path) < 0)
                return -ENOMEM;
        r = sd_bus_new(&bus);
        if (r < 0)
                return r;
        r = sd_bus_set_address(bus, address);
        if (r < 0)
                return r;
        /* No bus daemon in between: no Hello, and the broker speaks for itself. */
        r = sd_bus_set_bus_client(bus, 0);
        if (r < 0)
                return r;
        r = sd_bus_negotiate_fds(bus, 1);
        if (r < 0)
                return r;
        r = sd_bus_set_method_call_timeout(bus, timeout_usec());
        if (r < 0)
                return r;
        r = sd_bus_start(bus);
        if (r < 0)
                return r;
        *ret = g_steal_pointer(&bus);
        return 0;
}

/* EAGAIN is a full accept backlog: a burst, or someone flooding the socket. The broker
 * drains it in batches, so try again soon, with backoff and jitter (so that a crowd of
 * clients does not retry in step), until the deadline. */
static int bus_connect_retrying(const char *path, uint64_t deadline, sd_bus **ret) {
        uint64_t delay = 1000;

        for (;;) {
                uint64_t now;
                int r = bus_connect(path, ret);

                now = now_usec();
                if (r != -EAGAIN || now >= deadline)
                        return r;
                (void) usleep((useconds_t) MIN(delay + (uint64_t) g_random_int_range(0, (int) delay), deadline - now));
                delay = MIN(delay * 2, RMA_CLIENT_MAX_RETRY_USEC);
        }
}

/* Where nothing is named: broker-priv.sock for those it lets in (root, the QemuUsers),
 * else broker.sock. broker-priv.sock is missing while the broker is stopped (systemd
 * then queues the call on broker.sock) and refuses everyone else (EACCES). */
static bool try_public_instead(int r) {
        return r == -ENOENT || r == -ECONNREFUSED || r == -EACCES || r == -EPERM;
}

int rma_client_open(const char *path, sd_bus **ret, sd_bus_error *error) {
        g_autoptr(sd_bus) bus = NULL;
        g_autofree char *privileged = NULL;
        uint64_t deadline = now_usec() + timeout_usec();
        int r;

        if (path)
                r = bus_connect_retrying(path, deadline, &bus);
        else {
                path = privileged = rma_client_privileged_socket_path();
                r = bus_connect_retrying(path, deadline, &bus);
                if (try_public_instead(r)) {
                        path = rma_client_socket_path();
                        r = bus_connect_retrying(path, deadline, &bus);
                }
        }
        if (r == -EAGAIN)
                return sd_bus_error_set_errnof(error, r,
                                               "rma-brokerd's %s stayed full for %llu s (%m): some local process floods it. "
                                               "Find it with ss -x src %s, then start the domain again",
                                               path, (unsigned long long) (timeout_usec() / 1000000), path);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r,
                                               "cannot reach rma-brokerd at %s (%m); is rma-brokerd.service running?",
                                               path);
        r = wait_ready(bus, deadline);
        if (r < 0)
                sd_bus_close(bus);   /* else the cleanup's flush waits for the broker after all */
        if (r == -ETIMEDOUT)
                return sd_bus_error_setf(error, SD_BUS_ERROR_TIMEOUT,
                                         "rma-brokerd accepted on %s but did not answer within %llu s: it is starting, "
                                         "stopped or stuck. Check systemctl status rma-brokerd.service (and its journal), "
                                         "then start the domain again", path,
                                         (unsigned long long) (timeout_usec() / 1000000));
        if (r < 0)
                return sd_bus_error_set_errnof(error, r,
                                               "cannot talk to rma-brokerd at %s (%m); is rma-brokerd.service running?",
                                               path);
        *ret = g_steal_pointer(&bus);
        return 0;
}

char *rma_domain_record_path(const char *uuid) {
        return runtime_path(RMA_DOMAINS_DIR_NAME, uuid);
}

int rma_domain_record_write(const char *uuid, const char *domain, const char *tenant) {
        g_autofree char *path = rma_domain_record_path(uuid), *dir = g_path_get_dirname(path);
        g_autofree char *tmp = g_strconcat(path, ".new", NULL);
        g_autofree char *text = g_strdup_printf("uuid=%s\ndomain=%s\ntenant=%s\n", uuid, domain, tenant ? tenant : "");
        _cleanup_close_ int fd = -EBADF;
        size_t len = strlen(text);

        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return -errno;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        if (write(fd, text, len) != (ssize_t) len || fchmod(fd, 0644) < 0 || rename(tmp, path) < 0) {
                int k = errno ? -errno : -EIO;
                (void) unlink(tmp);
                return k;
        }
        return 0;
}

/* broker.sock has no bus daemon to route by name; the system bus does. */
static const char *destination(sd_bus *bus) {
        return sd_bus_is_bus_client(bus) > 0 ? RMA_BUS_NAME : NULL;
}

static int call(sd_bus *bus, const char *method, sd_bus_error *error, sd_bus_message **reply, const char *types, ...) {
        g_autoptr(sd_bus_message) m = NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, destination(bus), RMA_OBJECT_PATH, RMA_INTERFACE, method);
        if (r < 0)
                return r;
        va_start(ap, types);
        r = sd_bus_message_appendv(m, types, ap);
        va_end(ap);
        if (r < 0)
                return r;
        return sd_bus_call(bus, m, 0, error, reply);
}

int rma_client_reserve(sd_bus *bus, const char *uuid, const char *domain, const char *tenant,
                       uint32_t *ret_slot, sd_bus_error *error) {
        g_autoptr(sd_bus_message) reply = NULL;
        uint32_t slot;
        int r;

        r = call(bus, "Reserve", error, &reply, "sss", uuid, domain, tenant ? tenant : "");
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "u", &slot);
        if (r < 0)
                return r;
        if (ret_slot)
                *ret_slot = slot;
        return 0;
}

int rma_client_release(sd_bus *bus, const char *uuid, sd_bus_error *error) {
        return call(bus, "Release", error, NULL, "s", uuid);
}

int rma_client_find(sd_bus *bus, const char *uuid, uint32_t *ret_slot, char **ret_state, uint32_t *ret_pid,
                    char **ret_tenant, sd_bus_error *error) {
        g_autoptr(sd_bus_message) reply = NULL;
        const char *state, *u, *domain, *tenant;
        uint32_t slot, pid;
        int r;

        *ret_state = NULL;
        r = rma_client_list_rmas(bus, &reply, error);
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(reply, RMA_CLIENT_LIST_RMAS_ELEMENT, &slot, &state, &u, &domain, &tenant,
                                        &pid)) > 0)
                if (strcmp(u, uuid) == 0) {
                        *ret_slot = slot;
                        *ret_pid = pid;
                        *ret_state = g_strdup(state);
                        if (ret_tenant)
                                *ret_tenant = g_strdup(tenant);
                        return 0;
                }
        return r;
}

int rma_client_claim(sd_bus *bus, const char *uuid, int *ret_fd, uint64_t *ret_size, sd_bus_error *error) {
        g_autoptr(sd_bus_message) reply = NULL;
        uint64_t size;
        int fd, r;

        r = call(bus, "Claim", error, &reply, "s", uuid);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "ht", &fd, &size);
        if (r < 0)
                return r;
        /* The message owns the received fd; keep a copy of our own. */
        fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return -errno;
        *ret_fd = fd;
        *ret_size = size;
        return 0;
}

/* A List* method's reply, entered into its array. */
static int call_list(sd_bus *bus, const char *method, const char *element, sd_bus_message **ret, sd_bus_error *error) {
        g_autoptr(sd_bus_message) reply = NULL;
        int r;

        r = call(bus, method, error, &reply, "");
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', element);
        if (r < 0)
                return r;
        *ret = g_steal_pointer(&reply);
        return 0;
}

int rma_client_list_rmas(sd_bus *bus, sd_bus_message **ret, sd_bus_error *error) {
        return call_list(bus, "ListRmas", RMA_CLIENT_LIST_RMAS_ELEMENT, ret, error);
}

int rma_client_list_tenants(sd_bus *bus, sd_bus_message **ret, sd_bus_error *error) {
        return call_list(bus, "ListTenants", RMA_CLIENT_LIST_TENANTS_ELEMENT, ret, error);
}

int rma_client_list_held_elsewhere(sd_bus *bus, sd_bus_message **ret, sd_bus_error *error) {
        return call_list(bus, "ListHeldElsewhere", RMA_CLIENT_LIST_HELD_ELSEWHERE_ELEMENT, ret, error);
}

int rma_client_list_slots(sd_bus *bus, sd_bus_message **ret, sd_bus_error *error) {
        return call_list(bus, "ListSlots", RMA_CLIENT_LIST_SLOTS_ELEMENT, ret, error);
}

int rma_client_get_tenant(sd_bus *bus, const char *name, RmaClientTenant *ret, sd_bus_error *error) {
        g_autoptr(sd_bus_message) reply = NULL;
        const char *tenant;
        int r;

        r = call(bus, "GetTenant", error, &reply, "s", name);
        if (r >= 0)
                r = sd_bus_message_read(reply, "suuuu", &tenant, &ret->max, &ret->guaranteed, &ret->leased,
                                        &ret->reserved);
        if (r < 0)
                return r;
        ret->name = g_strdup(tenant);
        return 0;
}

int rma_client_get_capacity(sd_bus *bus, const char *tenant, RmaClientCapacity *ret, sd_bus_error *error) {
        g_autoptr(sd_bus_message) reply = NULL;
        int r;

        r = call(bus, "GetCapacity", error, &reply, "s", tenant ? tenant : "");
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "tuuu", &ret->region_size, &ret->total, &ret->available, &ret->held);
        return r < 0 ? r : 0;
}

static int call_string(sd_bus *bus, const char *method, char **ret, sd_bus_error *error) {
        g_autoptr(sd_bus_message) reply = NULL;
        const char *text;
        int r;

        r = call(bus, method, error, &reply, "");
        if (r >= 0)
                r = sd_bus_message_read(reply, "s", &text);
        if (r < 0)
                return r;
        *ret = g_strdup(text);
        return 0;
}

int rma_client_get_metrics(sd_bus *bus, char **ret, sd_bus_error *error) {
        return call_string(bus, "GetMetrics", ret, error);
}

int rma_client_reload(sd_bus *bus, sd_bus_error *error) {
        return call(bus, "Reload", error, NULL, "");
}

int rma_client_forget_region(sd_bus *bus, uint32_t slot, sd_bus_error *error) {
        return call(bus, "ForgetRegion", error, NULL, "u", slot);
}

int rma_client_drain(sd_bus *bus, const char *reason, sd_bus_error *error) {
        return call(bus, "Drain", error, NULL, "s", reason);
}

int rma_client_undrain(sd_bus *bus, sd_bus_error *error) {
        return call(bus, "Undrain", error, NULL, "");
}

int rma_client_check_policy(sd_bus *bus, char ***ret_problems, sd_bus_error *error) {
        g_autoptr(sd_bus_message) reply = NULL;
        int r;

        r = call(bus, "CheckPolicy", error, &reply, "");
        if (r >= 0)
                r = sd_bus_message_read_strv(reply, ret_problems);
        return r < 0 ? r : 0;
}

int rma_client_can_administer(sd_bus *bus, bool *ret_allowed, char **ret_why, sd_bus_error *error) {
        g_autoptr(sd_bus_message) reply = NULL;
        const char *why;
        int allowed, r;

        r = call(bus, "CanAdminister", error, &reply, "");
        if (r >= 0)
                r = sd_bus_message_read(reply, "bs", &allowed, &why);
        if (r < 0)
                return r;
        *ret_allowed = allowed;
        *ret_why = g_strdup(why);
        return 0;
}

typedef struct EventWatch {
        RmaEventFn fn;
        void *userdata;
} EventWatch;

static int on_event(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const EventWatch *w = userdata;
        RmaEvent e = { 0 };
        int r;

        if (sd_bus_message_is_signal(m, RMA_INTERFACE, "SlotChanged")) {
                e.kind = "slot-changed";
                r = sd_bus_message_read(m, "ussssus", &e.slot, &e.state, &e.domain, &e.uuid, &e.tenant, &e.pid,
                                        &e.reason);
        } else if (sd_bus_message_is_signal(m, RMA_INTERFACE, "Refused")) {
                e.kind = "refused";
                r = sd_bus_message_read(m, "sssssus", &e.method, &e.error, &e.uuid, &e.domain, &e.tenant, &e.uid,
                                        &e.message);
        } else if (sd_bus_message_is_signal(m, RMA_INTERFACE, "EventsDropped")) {
                e.kind = "events-dropped";
                r = sd_bus_message_read(m, "u", &e.dropped);
        } else
                return 0;
        if (r > 0)
                w->fn(&e, w->userdata);
        return 0;
}

int rma_client_watch_events(sd_bus *bus, RmaEventFn fn, void *userdata) {
        g_autofree EventWatch *w = g_new0(EventWatch, 1);
        sd_bus_slot *slot = NULL;
        int r;

        *w = (EventWatch) { .fn = fn, .userdata = userdata };
        r = sd_bus_match_signal(bus, &slot, RMA_BUS_NAME, RMA_OBJECT_PATH, RMA_INTERFACE, NULL, on_event, w);
        if (r < 0)
                return r;
        /* The match, and w with it, lives as long as the bus. */
        (void) sd_bus_slot_set_destroy_callback(slot, g_free);
        (void) sd_bus_slot_set_floating(slot, 1);
        sd_bus_slot_unref(slot);
        g_steal_pointer(&w);
        return 0;
}

int rma_client_get_bool(sd_bus *bus, const char *property, bool *ret, sd_bus_error *error) {
        int value = 0, r;

        r = sd_bus_get_property_trivial(bus, destination(bus), RMA_OBJECT_PATH, RMA_INTERFACE, property, error, 'b',
                                        &value);
        if (r >= 0)
                *ret = value;
        return r;
}

int rma_client_get_u32(sd_bus *bus, const char *property, uint32_t *ret, sd_bus_error *error) {
        return sd_bus_get_property_trivial(bus, destination(bus), RMA_OBJECT_PATH, RMA_INTERFACE, property, error, 'u',
                                           ret);
}

int rma_client_get_u64(sd_bus *bus, const char *property, uint64_t *ret, sd_bus_error *error) {
        return sd_bus_get_property_trivial(bus, destination(bus), RMA_OBJECT_PATH, RMA_INTERFACE, property, error, 't',
                                           ret);
}

int rma_client_get_string(sd_bus *bus, const char *property, char **ret, sd_bus_error *error) {
        g_autofree char *value = NULL;
        int r;

        r = sd_bus_get_property_string(bus, destination(bus), RMA_OBJECT_PATH, RMA_INTERFACE, property, error, &value);
        if (r < 0)
                return r;
        *ret = g_strdup(value);   /* sd-bus's is malloc()ed: the caller's is GLib's */
        return 0;
}
