/* rmactl monitor: follows SlotChanged, Refused and EventsDropped on the system bus. */
#include <errno.h>
#include <glib.h>
#include <json-glib/json-glib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "rma-client.h"
#include "rmactl-monitor.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
        stop = 1;
}

/* UTC, to the millisecond: lines from several hosts sort together. */
static void timestamp(char *buf, size_t size) {
        struct timespec ts;
        struct tm tm;
        size_t n;

        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + n, size - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

static void add_string(JsonBuilder *b, const char *name, const char *value) {
        json_builder_set_member_name(b, name);
        json_builder_add_string_value(b, value);
}

static void add_int(JsonBuilder *b, const char *name, uint32_t value) {
        json_builder_set_member_name(b, name);
        json_builder_add_int_value(b, value);
}

static void print_json(const RmaEvent *e, const char *when) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonGenerator) gen = json_generator_new();
        g_autoptr(JsonNode) root = NULL;
        g_autofree char *text = NULL;

        json_builder_begin_object(b);
        add_string(b, "time", when);
        add_string(b, "event", e->kind);
        if (strcmp(e->kind, "slot-changed") == 0) {
                add_int(b, "slot", e->slot);
                add_string(b, "state", e->state);
                add_string(b, "domain", e->domain);
                add_string(b, "uuid", e->uuid);
                add_string(b, "tenant", e->tenant);
                add_int(b, "pid", e->pid);
                add_string(b, "reason", e->reason);
        } else if (strcmp(e->kind, "refused") == 0) {
                add_string(b, "method", e->method);
                add_string(b, "error", e->error);
                add_string(b, "domain", e->domain);
                add_string(b, "uuid", e->uuid);
                add_string(b, "tenant", e->tenant);
                add_int(b, "uid", e->uid);
                add_string(b, "message", e->message);
        } else
                add_int(b, "dropped", e->dropped);
        json_builder_end_object(b);
        root = json_builder_get_root(b);
        json_generator_set_root(gen, root);
        text = json_generator_to_data(gen, NULL);
        printf("%s\n", text);
}

static void print_line(const RmaEvent *e, const char *when) {
        if (strcmp(e->kind, "slot-changed") == 0)
                printf("%s slot %u %s: domain=%s uuid=%s tenant=%s pid=%u reason=%s\n", when, e->slot, e->state,
                       *e->domain ? e->domain : "-", *e->uuid ? e->uuid : "-", *e->tenant ? e->tenant : "-", e->pid,
                       e->reason);
        else if (strcmp(e->kind, "refused") == 0)
                printf("%s %s refused: domain=%s uuid=%s tenant=%s uid=%u error=%s: %s\n", when, e->method,
                       *e->domain ? e->domain : "-", *e->uuid ? e->uuid : "-", *e->tenant ? e->tenant : "-", e->uid,
                       e->error, e->message);
        else
                printf("%s %u events dropped by the broker's rate bound\n", when, e->dropped);
}

static void on_event(const RmaEvent *e, void *userdata) {
        bool json = *(const bool *) userdata;
        char when[64];

        timestamp(when, sizeof(when));
        if (json)
                print_json(e, when);
        else
                print_line(e, when);
        fflush(stdout);   /* one line per event, at once, also into a pipe */
}

int rmactl_monitor(sd_bus *bus, bool json) {
        struct sigaction sa = { .sa_handler = on_signal };
        int r;

        (void) sigaction(SIGINT, &sa, NULL);
        (void) sigaction(SIGTERM, &sa, NULL);
        r = rma_client_watch_events(bus, on_event, &json);
        if (r < 0) {
                fprintf(stderr, "rmactl: cannot follow the broker's events: %s\n", strerror(-r));
                return 1;
        }
        while (!stop) {
                r = sd_bus_process(bus, NULL);
                if (r < 0) {
                        if (r == -ECONNRESET || r == -ENOTCONN)
                                fprintf(stderr, "rmactl: the system bus went away\n");
                        else
                                fprintf(stderr, "rmactl: %s\n", strerror(-r));
                        return 1;
                }
                if (r > 0)
                        continue;
                r = sd_bus_wait(bus, UINT64_MAX);
                if (r < 0 && r != -EINTR) {
                        fprintf(stderr, "rmactl: %s\n", strerror(-r));
                        return 1;
                }
        }
        return 0;
}
