/* One client connection on broker.sock: credentials, and a peer-to-peer sd-bus server. */
#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bus-object.h"
#include "cleanup.h"
#include "log.h"
#include "peer.h"
#include "rma-util.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

static int on_disconnected(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Peer *p = userdata;

        log_debug("broker.sock peer %u (pid %d uid %u) disconnected", p->id, (int) p->ucred.pid, (unsigned) p->ucred.uid);
        /* The manager's peer set owns the peer; removing it frees it. sd-bus keeps its
         * own reference on the connection until this callback returns. */
        g_hash_table_remove(p->origin.manager->peers, p);
        return 0;
}

static int read_peer_groups(int fd, Peer *p) {
        socklen_t len = 32 * sizeof(gid_t);

        /* Ask once with a guess; the kernel says how much it needs (ERANGE). */
        for (int attempt = 0; attempt < 2; attempt++) {
                g_autofree gid_t *gids = g_malloc0(len + sizeof(gid_t));
                if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, gids, &len) == 0) {
                        p->n_gids = len / sizeof(gid_t);
                        /* The primary group counts too. */
                        gids[p->n_gids++] = p->ucred.gid;
                        p->gids = g_steal_pointer(&gids);
                        return 0;
                }
                if (errno != ERANGE)
                        return -errno;
        }
        return -ERANGE;
}

int peer_new(Manager *m, int fd_consumed, Peer **ret) {
        _cleanup_close_ int fd = fd_consumed;
        g_autofree Peer *p = g_new0(Peer, 1);
        socklen_t len = sizeof(p->ucred);
        sd_id128_t server_id;
        int r;

        p->origin.manager = m;
        p->origin.peer = p;
        p->id = ++m->next_peer_id;
        p->pidfd = -EBADF;
        p->accepted_usec = rma_now_usec(CLOCK_MONOTONIC);

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &p->ucred, &len) < 0)
                return log_error_errno(errno, "SO_PEERCRED on broker.sock connection failed: %m");
        /* A pidfd taken from the socket names the very process that connected, with no
         * window for pid reuse (Linux >= 6.5). Older kernels: open one now, at accept,
         * so a peer cannot connect, exit, and later speak for whoever reuses its pid;
         * a peer that is already gone is refused. */
        len = sizeof(p->pidfd);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &p->pidfd, &len) < 0) {
                p->pidfd = (int) syscall(SYS_pidfd_open, p->ucred.pid, 0);
                if (p->pidfd < 0) {
                        r = -errno;
                        log_debug_errno(r, "broker.sock peer pid %d is gone (%m); refused", (int) p->ucred.pid);
                        return r;
                }
        }

        r = read_peer_groups(fd, p);
        if (r < 0)
                goto fail;

        r = sd_id128_randomize(&server_id);
        if (r < 0)
                goto fail;
        r = sd_bus_new(&p->bus);
        if (r < 0)
                goto fail;
        r = sd_bus_set_fd(p->bus, fd, fd);
        if (r < 0)
                goto fail;
        TAKE_FD(fd); /* the bus owns it now */
        r = sd_bus_set_server(p->bus, 1, server_id);
        if (r < 0)
                goto fail;
        r = sd_bus_negotiate_fds(p->bus, 1);
        if (r < 0)
                goto fail;
        r = bus_object_add(p->bus, &p->origin, true);
        if (r < 0)
                goto fail;
        r = sd_bus_match_signal(p->bus, NULL, "org.freedesktop.DBus.Local", "/org/freedesktop/DBus/Local",
                                "org.freedesktop.DBus.Local", "Disconnected", on_disconnected, p);
        if (r < 0)
                goto fail;
        r = sd_bus_start(p->bus);
        if (r < 0)
                goto fail;
        r = sd_bus_attach_event(p->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                goto fail;

        log_debug("broker.sock peer %u connected: pid %d uid %u", p->id, (int) p->ucred.pid, (unsigned) p->ucred.uid);
        *ret = g_steal_pointer(&p);
        return 0;

fail:
        log_warning_errno(r, "Cannot serve broker.sock connection from pid %d: %m", (int) p->ucred.pid);
        p->bus = sd_bus_flush_close_unref(p->bus);
        p->pidfd = safe_close(p->pidfd);
        g_clear_pointer(&p->gids, g_free);
        return r;
}

Peer *peer_free(Peer *p) {
        if (!p)
                return NULL;
        p->bus = sd_bus_flush_close_unref(p->bus);
        p->pidfd = safe_close(p->pidfd);
        g_free(p->gids);
        g_free(p);
        return NULL;
}

int peer_dup_pidfd(Peer *p, int *ret) {
        int fd = fcntl(p->pidfd, F_DUPFD_CLOEXEC, 3);

        if (fd < 0)
                return -errno;
        *ret = fd;
        return 0;
}
