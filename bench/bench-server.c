/* Baseline (b) of the benchmarks: the least an sd-bus peer-to-peer server can do to hand
 * out a region fd. It answers Claim(s) -> (h, t) on the broker's object path and
 * interface, so the same client code measures both, with one memfd, no checks, no
 * policy, no state. One sd-event loop, one sd-bus server per connection, as the broker.
 * Usage: bench-server SOCKET   (runs until SIGTERM) */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "rma-names.h"

static int region_fd = -1;
static sd_event *event;

static int method_claim(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *uuid;
        int r = sd_bus_message_read(m, "s", &uuid);

        if (r < 0)
                return r;
        return sd_bus_reply_method_return(m, "ht", region_fd, (uint64_t) 1 << 20);
}

static const sd_bus_vtable vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("Claim", "s", "ht", method_claim, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

static int on_disconnected(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        sd_bus_unref(sd_bus_message_get_bus(m));   /* drops the reference taken at accept */
        return 0;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        int conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        sd_id128_t id;
        sd_bus *bus = NULL;

        if (conn < 0)
                return 0;
        if (sd_id128_randomize(&id) < 0 || sd_bus_new(&bus) < 0 || sd_bus_set_fd(bus, conn, conn) < 0 ||
            sd_bus_set_server(bus, 1, id) < 0 || sd_bus_negotiate_fds(bus, 1) < 0 ||
            sd_bus_add_object_vtable(bus, NULL, RMA_OBJECT_PATH, RMA_INTERFACE, vtable, NULL) < 0 ||
            sd_bus_match_signal(bus, NULL, "org.freedesktop.DBus.Local", "/org/freedesktop/DBus/Local",
                                "org.freedesktop.DBus.Local", "Disconnected", on_disconnected, NULL) < 0 ||
            sd_bus_start(bus) < 0 || sd_bus_attach_event(bus, event, 0) < 0) {
                sd_bus_close_unref(bus);
                return 0;
        }
        return 0;
}

int main(int argc, char *argv[]) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        if (argc != 2 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "usage: %s SOCKET\n", argv[0]);
                return 2;
        }
        region_fd = memfd_create("bench-region", MFD_CLOEXEC);
        if (region_fd < 0 || ftruncate(region_fd, 1 << 20) < 0)
                return 1;
        strcpy(sa.sun_path, argv[1]);
        (void) unlink(argv[1]);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, SOMAXCONN) < 0) {
                perror("bench-server: listen");
                return 1;
        }
        if (sd_event_default(&event) < 0 || sd_event_add_io(event, NULL, fd, EPOLLIN, on_accept, NULL) < 0 ||
            sd_event_add_signal(event, NULL, SIGTERM | SD_EVENT_SIGNAL_PROCMASK, NULL, NULL) < 0)
                return 1;
        sd_event_loop(event);
        sd_event_unref(event);
        (void) unlink(argv[1]);
        return 0;
}
