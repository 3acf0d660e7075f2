/* Small client of broker.sock: a peer-to-peer sd-bus connection to rma-brokerd. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "rma-client.h"
#include "rma-config.h"
#include "rma-names.h"

/* A VM start waits at most this long for the broker. */
#define RMA_CLIENT_TIMEOUT_USEC (30ULL * 1000 * 1000)

const char *rma_client_socket_path(void) {
        const char *env = getenv(RMA_SOCKET_ENV);

        return env && *env ? env : RMA_RUNTIME_DIR "/" RMA_SOCKET_NAME;
}

int rma_client_open(const char *path, sd_bus **ret, sd_bus_error *error) {
        g_autoptr(sd_bus) bus = NULL;
        g_autofree char *address = NULL;
        int r;

        if (!path)
                path = rma_client_socket_path();
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
        r = sd_bus_set_method_call_timeout(bus, RMA_CLIENT_TIMEOUT_USEC);
        if (r < 0)
                return r;
        r = sd_bus_start(bus);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r,
                                               "cannot reach rma-brokerd at %s (%m); is rma-brokerd.service running?",
                                               path);
        *ret = g_steal_pointer(&bus);
        return 0;
}

static int call(sd_bus *bus, const char *method, sd_bus_error *error, sd_bus_message **reply, const char *types, ...) {
        g_autoptr(sd_bus_message) m = NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, NULL, RMA_OBJECT_PATH, RMA_INTERFACE, method);
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
                    sd_bus_error *error) {
        g_autoptr(sd_bus_message) reply = NULL;
        const char *state, *u, *domain, *tenant;
        uint32_t slot, pid;
        int r;

        *ret_state = NULL;
        r = call(bus, "ListRmas", error, &reply, "");
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(ussssu)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(reply, "(ussssu)", &slot, &state, &u, &domain, &tenant, &pid)) > 0)
                if (strcmp(u, uuid) == 0) {
                        *ret_slot = slot;
                        *ret_pid = pid;
                        *ret_state = strdup(state);
                        return *ret_state ? 0 : -ENOMEM;
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
