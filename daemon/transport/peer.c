/* One client connection on broker.sock: credentials, limits, and a relay into a
 * peer-to-peer sd-bus server. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "domain-cgroup.h"
#include "log.h"
#include "peer.h"
#include "process-identity.h"
#include "rma-names.h"
#include "rma-util.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

/* The kernel never passes more than SCM_MAX_FD (253) fds with one message. */
#define SCM_MAX_FD 253
/* A relay read. Our clients send calls of a few hundred bytes. */
#define RELAY_CHUNK (64u * 1024u)
/* Messages handled per connection before other event sources get their turn. */
#define PUMP_BATCH 8u

static int on_gone(sd_event_source *s, void *userdata) {
        Peer *p = userdata;

        p->on_gone(p, p->on_gone_userdata);   /* frees p */
        return 0;
}

void peer_drop(Peer *p, const char *reason) {
        if (p->dropping)
                return;
        p->dropping = true;
        p->drop_reason = reason;
        /* Debug only: whatever a client causes must not flood the journal. */
        log_debug("broker.sock peer %u (pid %d uid %u): closing, %s", p->id, (int) p->creds.ucred.pid,
                  (unsigned) p->creds.ucred.uid, reason);
        (void) sd_event_source_set_enabled(p->io_source, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(p->timeout_source, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(p->pump_source, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(p->gone_source, SD_EVENT_ONESHOT);
}

/* Close every fd a message carried; true when there was any. */
static bool close_passed_fds(struct msghdr *mh) {
        bool any = false;

        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        const int *fds = (const int *) (void *) CMSG_DATA(c);
                        for (size_t i = 0; i < n; i++)
                                safe_close(fds[i]);
                        any = true;
                }
        return any;
}

/* Which fd events the peer waits for now: input until the client is done, and output
 * while replies wait for room in the socket. */
static void update_events(Peer *p) {
        uint32_t events = p->input_done ? 0 : EPOLLIN;
        int want = sd_bus_get_events(p->bus);   /* covers authentication replies too */

        if (want > 0 && (want & POLLOUT))
                events |= EPOLLOUT;
        (void) sd_event_source_set_io_events(p->io_source, events);
        (void) sd_event_source_set_enabled(p->io_source, events ? SD_EVENT_ON : SD_EVENT_OFF);
}

/* Let sd-bus read, answer and write, a bounded number of messages at a time. We drive
 * sd-bus ourselves rather than attaching it to the loop: a client that sends its first
 * call together with the end of authentication leaves that call inside sd-bus's buffer,
 * where no fd event would ever announce it; here sd-bus runs until it has nothing left. */
static int pump(sd_event_source *s, void *userdata) {
        Peer *p = userdata;
        int r = 0;

        for (unsigned i = 0; i < PUMP_BATCH && !p->dropping; i++) {
                r = sd_bus_process(p->bus, NULL);
                if (r <= 0)
                        break;
        }
        if (p->dropping)
                return 0;
        if (r < 0) {
                peer_drop(p, "its connection failed");
                return 0;
        }
        if (r > 0)
                /* More to do: let every other source have its turn first. */
                (void) sd_event_source_set_enabled(p->pump_source, SD_EVENT_ONESHOT);
        update_events(p);
        return 0;
}

/* Without SO_PASSRIGHTS in the kernel: read the client's bytes ourselves, close any fd
 * that came with them, and hand sd-bus only the bytes. */
static int relay_input(Peer *p) {
        /* One thread serves every peer, so one buffer does too. */
        static uint8_t buf[RELAY_CHUNK];
        union {
                struct cmsghdr align;
                uint8_t space[CMSG_SPACE(sizeof(int) * SCM_MAX_FD)];
        } control;
        struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof(control) };
        ssize_t n, written;

        n = recvmsg(p->io_fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                        return 0;
                peer_drop(p, "reading from it failed");
                return -EIO;
        }
        if (close_passed_fds(&mh) || (mh.msg_flags & MSG_CTRUNC)) {
                peer_drop(p, "it attached file descriptors, which broker.sock never accepts");
                return -EBADMSG;
        }
        if (n == 0) {
                /* The client is done sending: sd-bus answers what it has, then sees EOF. */
                p->input_done = true;
                (void) shutdown(p->relay_fd, SHUT_WR);
                return 0;
        }
        written = write(p->relay_fd, buf, (size_t) n);
        if (written != n) {
                /* The relay holds about 200 KiB of unanswered calls. */
                peer_drop(p, "it sends calls faster than the broker answers them");
                return -ENOBUFS;
        }
        return 0;
}

/* A reply polkit's callback queued: write it on the next loop iteration, as pump does. */
static void answered_later(BusOrigin *origin) {
        Peer *p = (Peer *) (void *) ((char *) origin - offsetof(Peer, origin));

        if (!p->dropping)
                (void) sd_event_source_set_enabled(p->pump_source, SD_EVENT_ONESHOT);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Peer *p = userdata;

        if ((revents & EPOLLIN) && p->relay_fd >= 0 && relay_input(p) < 0)
                return 0;
        return pump(NULL, p);
}

/* Runs before every call is dispatched: a client that does not read its replies is
 * cut off before the broker queues more for it. */
static int on_message(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Peer *p = userdata;
        uint64_t queued = 0;

        if (p->dropping)
                return 1;
        if (sd_bus_get_n_queued_write(p->bus, &queued) >= 0 &&
            queued >= p->config->max_queued_replies) {
                peer_drop(p, "it does not read its replies (MaxQueuedReplies= reached)");
                return 1;
        }
        /* Anything but Claim: the whole object first (sd-bus dispatches to objects after
         * the filters). */
        if (!p->object_complete && sd_bus_message_is_method_call(msg, NULL, NULL) > 0 &&
            sd_bus_message_is_method_call(msg, RMA_INTERFACE, "Claim") <= 0) {
                if (bus_object_add(p->bus, &p->origin) < 0) {
                        peer_drop(p, "the broker could not serve it (out of memory)");
                        return 1;
                }
                p->object_complete = true;
        }
        return 0;
}

static int on_disconnected(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        peer_drop(userdata, "it disconnected");
        return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        peer_drop(userdata, "it was open longer than ConnectionTimeoutSec=");
        return 0;
}

static int read_peer_groups(int fd, PeerCredentials *c) {
        socklen_t len = 32 * sizeof(gid_t);

        /* Ask once with a guess; the kernel says how much it needs (ERANGE). */
        for (int attempt = 0; attempt < 2; attempt++) {
                g_autofree gid_t *gids = g_malloc0(len + sizeof(gid_t));
                if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, gids, &len) == 0) {
                        c->n_gids = len / sizeof(gid_t);
                        /* The primary group counts too. */
                        gids[c->n_gids++] = c->ucred.gid;
                        c->gids = g_steal_pointer(&gids);
                        return 0;
                }
                if (errno != ERANGE)
                        return -errno;
        }
        return -ERANGE;
}

/* A pidfd taken from the socket names the very process that connected, with no window
 * for pid reuse (Linux >= 6.5). Only where the kernel does not know the option, open one
 * now, at accept; any other failure (a peer already reaped) refuses the connection. */
static int read_peer_pidfd(int fd, PeerCredentials *c) {
        socklen_t len = sizeof(c->pidfd);

        if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &c->pidfd, &len) == 0)
                return 0;
        if (errno != ENOPROTOOPT)
                return -errno;
        c->pidfd = (int) syscall(SYS_pidfd_open, c->ucred.pid, 0);
        return c->pidfd < 0 ? -errno : 0;
}

/* Everything the methods will want to know of the client, read once, now. */
static int read_peer_credentials(int fd, const BrokerConfig *config, PeerCredentials *c) {
        bool may_claim = broker_config_uid_may_claim(config, c->ucred.uid);
        int r;

        r = read_peer_pidfd(fd, c);
        if (r < 0)
                return r;
        r = read_peer_groups(fd, c);
        if (r < 0)
                return r;
        /* Opened now, it stays the connecting process's entry even if its pid is reused,
         * and every Claim then costs one read instead of open, read and close. */
        if (config->check_cgroup && may_claim) {
                c->cgroup_fd = domain_cgroup_open(c->ucred.pid);
                if (c->cgroup_fd < 0)
                        return c->cgroup_fd;
        }
        /* The process's identity beyond its pid, for the lease registry and for polkit
         * ("unix-process": pid and start time): read here, off the Claim's path. */
        if (proc_start_time(c->ucred.pid, &c->start_time) < 0)
                c->start_time = 0;
        return 0;
}

/* The hook's and the wrapper's calls go before anyone else's (a flood of other
 * connections or of bus calls waits instead of them): they start VMs. */
static int64_t peer_priority(PeerClass class) {
        return class == PEER_OTHER ? SD_EVENT_PRIORITY_NORMAL : SD_EVENT_PRIORITY_IMPORTANT;
}

/* Sources first, so that peer_drop() cannot fail later. */
static int peer_add_sources(Peer *p, sd_event *event) {
        int r;

        r = sd_event_add_defer(event, &p->gone_source, on_gone, p);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(p->gone_source, SD_EVENT_OFF);
        r = sd_event_add_defer(event, &p->pump_source, pump, p);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(p->pump_source, SD_EVENT_OFF);
        (void) sd_event_source_set_priority(p->pump_source, peer_priority(p->class));
        return sd_event_add_time_relative(event, &p->timeout_source, CLOCK_MONOTONIC,
                                          p->config->connection_timeout_usec, 0, on_timeout, p);
}

/* Our own view of the connection (io_fd, for the event loop), and what sd-bus reads:
 * the relay's other end, or the connection itself where the kernel refuses fds. */
static int peer_open_fds(Peer *p, int conn, bool relay, int *ret_bus_input) {
        int pair[2];

        p->io_fd = fcntl(conn, F_DUPFD_CLOEXEC, 3);
        if (p->io_fd < 0)
                return -errno;
        if (!relay) {
                *ret_bus_input = fcntl(conn, F_DUPFD_CLOEXEC, 3);
                return *ret_bus_input < 0 ? -errno : 0;
        }
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) < 0)
                return -errno;
        p->relay_fd = pair[1];
        *ret_bus_input = pair[0];
        return 0;
}

static int peer_start_bus(Peer *p, sd_event *event, int fd_consumed, bool relay) {
        _cleanup_close_ int conn = fd_consumed, bus_input = -EBADF;
        sd_id128_t server_id;
        int r;

        r = peer_open_fds(p, conn, relay, &bus_input);
        if (r < 0)
                return r;

        r = sd_bus_new(&p->bus);
        if (r < 0)
                return r;
        r = sd_bus_set_fd(p->bus, bus_input, conn);
        if (r < 0)
                return r;
        TAKE_FD(bus_input); /* the bus owns both now */
        TAKE_FD(conn);
        r = sd_id128_randomize(&server_id);
        if (r < 0)
                return r;
        r = sd_bus_set_server(p->bus, 1, server_id);
        if (r < 0)
                return r;
        /* With the relay sd-bus cannot see the client's uid. We read it at accept
         * (SO_PEERCRED), and every method uses that, on both paths. */
        r = sd_bus_set_anonymous(p->bus, 1);
        if (r < 0)
                return r;
        r = sd_bus_negotiate_fds(p->bus, 1);   /* Claim replies carry an fd */
        if (r < 0)
                return r;
        r = bus_object_add_claim(p->bus, &p->claim_origin);
        if (r < 0)
                return r;
        r = sd_bus_add_filter(p->bus, NULL, on_message, p);
        if (r < 0)
                return r;
        r = sd_bus_match_signal(p->bus, NULL, "org.freedesktop.DBus.Local", "/org/freedesktop/DBus/Local",
                                "org.freedesktop.DBus.Local", "Disconnected", on_disconnected, p);
        if (r < 0)
                return r;
        r = sd_bus_start(p->bus);
        if (r < 0)
                return r;
        r = sd_event_add_io(event, &p->io_source, p->io_fd, EPOLLIN, on_io, p);
        if (r < 0)
                return r;
        return sd_event_source_set_priority(p->io_source, peer_priority(p->class));
}

int peer_new(const PeerHost *host, unsigned id, int fd_consumed, const struct ucred *cred, PeerClass class,
             bool relay, Peer **ret) {
        _cleanup_close_ int fd = fd_consumed;
        g_autoptr(Peer) p = g_new0(Peer, 1);
        int r;

        p->origin = (BusOrigin) { .service = host->service, .peer = &p->creds, .answered_later = answered_later };
        p->claim_origin = p->origin;
        p->id = id;
        p->creds = (PeerCredentials) { .ucred = *cred, .pidfd = -EBADF, .cgroup_fd = -EBADF };
        p->class = class;
        p->config = host->config;
        p->io_fd = p->relay_fd = -EBADF;
        p->on_gone = host->on_gone;
        p->on_gone_userdata = host->userdata;

        r = read_peer_credentials(fd, host->config, &p->creds);
        if (r >= 0)
                r = peer_add_sources(p, host->event);
        if (r >= 0)
                r = peer_start_bus(p, host->event, TAKE_FD(fd), relay);
        if (r < 0)
                return log_debug_errno(r, "Cannot serve broker.sock connection from pid %d uid %u: %m",
                                       (int) cred->pid, (unsigned) cred->uid);
        /* sd_bus_start() may already have read the client's first bytes. */
        (void) pump(NULL, p);

        log_debug("broker.sock peer %u connected: pid %d uid %u", p->id, (int) cred->pid, (unsigned) cred->uid);
        *ret = g_steal_pointer(&p);
        return 0;
}

Peer *peer_free(Peer *p) {
        if (!p)
                return NULL;
        p->io_source = sd_event_source_disable_unref(p->io_source);
        p->timeout_source = sd_event_source_disable_unref(p->timeout_source);
        p->gone_source = sd_event_source_disable_unref(p->gone_source);
        p->pump_source = sd_event_source_disable_unref(p->pump_source);
        /* Its pending polkit checks hold its calls and point at its origin. */
        if (p->bus)
                polkit_checks_cancel(&p->origin.service->polkit, p->bus);
        /* Never flush: a client that does not read must not make the broker wait. */
        p->bus = sd_bus_close_unref(p->bus);
        p->io_fd = safe_close(p->io_fd);
        p->relay_fd = safe_close(p->relay_fd);
        p->creds.pidfd = safe_close(p->creds.pidfd);
        p->creds.cgroup_fd = safe_close(p->creds.cgroup_fd);
        g_free(p->creds.gids);
        g_free(p);
        return NULL;
}
