/* A flooding local user, for the hostile-peer tests and the flood benchmark.
 *   rma-flood connect SOCKET SECONDS   nonblocking connect()s to SOCKET as fast as they go,
 *                                      keeping the newest 256 open: what fills a listening
 *                                      socket's accept backlog
 *   rma-flood bus SECONDS              method calls of org.rmabroker.Broker1 on the system
 *                                      bus (DBUS_SYSTEM_BUS_ADDRESS), 64 in flight at a time:
 *                                      ListRmas, GetMetrics and Reserve (refused), in turn
 * It prints one line when the time is up: "connects=N eagain=M" or "calls=N replies=M". */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include "rma-names.h"

#define KEEP_OPEN 256
#define BUS_IN_FLIGHT 64

static double now_sec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int flood_connect(const char *path, double seconds) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int open_fds[KEEP_OPEN];
        unsigned long connects = 0, eagain = 0, next = 0;
        double end = now_sec() + seconds;

        if (strlen(path) >= sizeof(sa.sun_path))
                return 2;
        memcpy(sa.sun_path, path, strlen(path));
        for (int i = 0; i < KEEP_OPEN; i++)
                open_fds[i] = -1;
        while (now_sec() < end) {
                for (int burst = 0; burst < 256; burst++) {
                        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

                        if (fd < 0)
                                break;
                        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
                                if (errno == EAGAIN)
                                        eagain++;
                                close(fd);
                                continue;
                        }
                        connects++;
                        if (open_fds[next] >= 0)
                                close(open_fds[next]);
                        open_fds[next] = fd;
                        next = (next + 1) % KEEP_OPEN;
                }
        }
        printf("connects=%lu eagain=%lu\n", connects, eagain);
        return 0;
}

static unsigned long replies;
static unsigned in_flight;

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        replies++;
        in_flight--;
        return 0;
}

static int send_one(sd_bus *bus, unsigned long n) {
        static const char *const methods[] = { "ListRmas", "GetMetrics", "Reserve" };
        const char *method = methods[n % 3];
        sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, RMA_BUS_NAME, RMA_OBJECT_PATH, RMA_INTERFACE, method);
        if (r >= 0 && strcmp(method, "Reserve") == 0)
                r = sd_bus_message_append(m, "sss", "00000000-0000-4000-8000-00000000f100", "flood", "");
        if (r >= 0)
                r = sd_bus_call_async(bus, NULL, m, on_reply, NULL, 0);
        sd_bus_message_unref(m);
        if (r >= 0)
                in_flight++;
        return r;
}

static int flood_bus(double seconds) {
        sd_bus *bus = NULL;
        unsigned long calls = 0;
        double end = now_sec() + seconds;
        int r;

        r = sd_bus_open_system(&bus);
        if (r < 0) {
                fprintf(stderr, "cannot connect to the system bus: %s\n", strerror(-r));
                return 1;
        }
        while (now_sec() < end) {
                while (in_flight < BUS_IN_FLIGHT && send_one(bus, calls) >= 0)
                        calls++;
                while ((r = sd_bus_process(bus, NULL)) > 0)
                        ;
                if (r < 0)
                        break;
                (void) sd_bus_wait(bus, 100000);
        }
        printf("calls=%lu replies=%lu\n", calls, replies);
        sd_bus_flush_close_unref(bus);
        return 0;
}

int main(int argc, char *argv[]) {
        setvbuf(stdout, NULL, _IOLBF, 0);
        signal(SIGPIPE, SIG_IGN);
        if (argc == 4 && strcmp(argv[1], "connect") == 0)
                return flood_connect(argv[2], atof(argv[3]));
        if (argc == 3 && strcmp(argv[1], "bus") == 0)
                return flood_bus(atof(argv[2]));
        fprintf(stderr, "usage: %s connect SOCKET SECONDS | bus SECONDS\n", argv[0]);
        return 2;
}
