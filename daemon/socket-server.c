/* broker.sock: the AF_UNIX listening socket that the hook and the wrapper connect to. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "peer.h"
#include "rma-util.h"
#include "socket-server.h"

#ifndef SO_PASSRIGHTS
#define SO_PASSRIGHTS 83
#endif

static int on_accept_retry(sd_event_source *source, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        (void) sd_event_source_set_enabled(m->listen_source, SD_EVENT_ON);
        return 0;
}

/* Out of fds: stop accepting for a second instead of spinning on a readable socket. */
static void pause_accepting(Manager *m, int error) {
        int r;

        log_warning_errno(error, "accept() on %s failed (%m); pausing new connections for 1 s. "
                          "Raise LimitNOFILE= of rma-brokerd.service if this repeats", m->socket_path);
        (void) sd_event_source_set_enabled(m->listen_source, SD_EVENT_OFF);
        if (!m->accept_retry_source) {
                r = sd_event_add_time_relative(m->event, &m->accept_retry_source, CLOCK_MONOTONIC, 1000000, 0,
                                               on_accept_retry, m);
                if (r < 0)
                        (void) sd_event_source_set_enabled(m->listen_source, SD_EVENT_ON);
                return;
        }
        (void) sd_event_source_set_time_relative(m->accept_retry_source, 1000000);
        (void) sd_event_source_set_enabled(m->accept_retry_source, SD_EVENT_ONESHOT);
}

static PeerClass peer_class_of(Manager *m, uid_t uid) {
        if (uid == 0)
                return PEER_ROOT;
        return broker_config_uid_may_claim(m->config, uid) ? PEER_QEMU : PEER_OTHER;
}

static unsigned count_of(GHashTable *counts, unsigned key) {
        return GPOINTER_TO_UINT(g_hash_table_lookup(counts, GUINT_TO_POINTER(key)));
}

static void count_add(GHashTable *counts, unsigned key, int delta) {
        unsigned n = count_of(counts, key) + (unsigned) delta;

        if (n == 0)
                g_hash_table_remove(counts, GUINT_TO_POINTER(key));
        else
                g_hash_table_insert(counts, GUINT_TO_POINTER(key), GUINT_TO_POINTER(n));
}

static void account(Manager *m, PeerClass class, const struct ucred *cred, int delta) {
        m->n_peers[class] += (unsigned) delta;
        if (class == PEER_ROOT)
                return;
        count_add(m->peers_per_pid, (unsigned) cred->pid, delta);
        if (class == PEER_OTHER)
                count_add(m->peers_per_uid, cred->uid, delta);
}

/* Each class has its own total, so what other uids hold never counts against root (the
 * hook) or the QEMU users. */
static bool peer_admissible(Manager *m, PeerClass class, const struct ucred *cred) {
        const BrokerConfig *c = m->config;

        if (m->n_peers[class] >= c->max_connections)
                return false;
        if (class == PEER_ROOT)
                return true;
        if (count_of(m->peers_per_pid, (unsigned) cred->pid) >= RMA_MAX_CONNECTIONS_PER_PROCESS)
                return false;
        /* QEMU users are not capped per uid: every VM's wrapper runs as the same one. */
        return class == PEER_QEMU || count_of(m->peers_per_uid, cred->uid) < c->max_connections_per_user;
}

static void on_peer_gone(Peer *p, void *userdata) {
        Manager *m = userdata;

        account(m, p->class, &p->ucred, -1);
        g_hash_table_remove(m->peers, p);   /* frees p */
}

/* SO_PASSRIGHTS=0 reaches a connection at connect(), from the listener as it was then.
 * A connection queued before the broker set it (on a socket systemd opened before it
 * started the broker) still takes fds: it gets the relay. */
static bool connection_refuses_fds(const Manager *m, int conn) {
        int passrights = 1;
        socklen_t len = sizeof(passrights);

        if (!m->kernel_refuses_fds)
                return false;
        return getsockopt(conn, SOL_SOCKET, SO_PASSRIGHTS, &passrights, &len) == 0 && passrights == 0;
}

static int on_accept(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;
        _cleanup_close_ int conn = -EBADF;
        struct ucred cred;
        socklen_t len = sizeof(cred);
        PeerClass class;
        Peer *p = NULL;
        bool relay;

        conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (conn < 0) {
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                        pause_accepting(m, errno);
                else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                        log_warning_errno(errno, "accept() on %s failed: %m", m->socket_path);
                return 0;
        }
        if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return 0;
        class = peer_class_of(m, cred.uid);
        if (!peer_admissible(m, class, &cred)) {
                /* Debug only: whoever causes this must not also flood the journal. */
                log_debug("Refusing broker.sock connection from pid %d uid %u: connection limit reached",
                          (int) cred.pid, (unsigned) cred.uid);
                return 0;
        }
        relay = !connection_refuses_fds(m, conn);
        if (peer_new(m, TAKE_FD(conn), &cred, class, relay, on_peer_gone, m, &p) < 0)
                return 0;
        g_hash_table_add(m->peers, p);
        account(m, class, &cred, +1);
        return 0;
}

/* A socket file left by a broker that died is removed; a live one is never stolen. */
static int check_existing_socket(const struct sockaddr_un *sa, socklen_t salen, const char *path) {
        _cleanup_close_ int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (probe < 0)
                return -errno;
        if (connect(probe, (const struct sockaddr *) sa, salen) == 0)
                return log_error_errno(EADDRINUSE, "Another rma-brokerd already serves %s; stop it first "
                                       "or give this one another --runtime-dir", path);
        if (errno == ECONNREFUSED)
                (void) unlink(path);
        return 0;
}

int socket_server_start(Manager *m) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        socklen_t salen;
        int r;

        m->socket_path = g_build_filename(m->config->runtime_dir, RMA_SOCKET_NAME, NULL);
        if (strlen(m->socket_path) >= sizeof(sa.sun_path))
                return log_error_errno(ENAMETOOLONG, "Socket path %s is too long for AF_UNIX; use a shorter --runtime-dir",
                                       m->socket_path);
        memcpy(sa.sun_path, m->socket_path, strlen(m->socket_path));
        salen = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + strlen(m->socket_path) + 1);

        /* rma-brokerd.socket: systemd holds broker.sock, so a claim made while the
         * broker restarts waits in the backlog instead of failing. */
        fd = fd_store_take_listener(m->fd_store);
        if (fd >= 0) {
                m->socket_activated = true;
                if (sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) <= 0)
                        return log_error_errno(EINVAL, "The fd systemd passed as broker.sock is not a listening "
                                               "AF_UNIX stream socket; check rma-brokerd.socket");
                if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
                        return log_error_errno(errno, "Cannot make broker.sock non-blocking: %m");
        } else {
                r = check_existing_socket(&sa, salen, m->socket_path);
                if (r < 0)
                        return r;
                fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                if (fd < 0)
                        return log_error_errno(errno, "socket(AF_UNIX) failed: %m");
                /* Anyone may connect: QEMU runs unprivileged. Every method checks the
                 * peer's credentials itself, so the file mode is not the access control.
                 * The mode comes from the umask at bind: no chmod that could follow a
                 * symlink put in the socket's place. */
                mode_t old_umask = umask(0111);
                r = bind(fd, (struct sockaddr *) &sa, salen) < 0 ? -errno : 0;
                (void) umask(old_umask);
                if (r < 0)
                        return log_error_errno(r, "Cannot bind %s: %m", m->socket_path);
        }
        /* Linux 6.16+: the kernel refuses any fd a client sends (EPERM at its sendmsg),
         * for every connection, from before accept on. Elsewhere each peer relays. */
        m->kernel_refuses_fds = setsockopt(fd, SOL_SOCKET, SO_PASSRIGHTS, &(int) { 0 }, sizeof(int)) == 0;
        if (listen(fd, SOMAXCONN) < 0)
                return log_error_errno(errno, "listen on %s failed: %m", m->socket_path);

        r = sd_event_add_io(m->event, &m->listen_source, fd, EPOLLIN, on_accept, m);
        if (r < 0)
                return log_error_errno(r, "Cannot watch %s: %m", m->socket_path);
        m->listen_fd = TAKE_FD(fd);
        log_info("Serving %s%s (%s)", m->socket_path, m->socket_activated ? " from rma-brokerd.socket" : "",
                 m->kernel_refuses_fds ? "the kernel refuses fds from clients: SO_PASSRIGHTS"
                                       : "no SO_PASSRIGHTS in this kernel: fds from clients are stripped by a relay");
        return 0;
}

void socket_server_stop(Manager *m) {
        m->listen_source = sd_event_source_disable_unref(m->listen_source);
        m->accept_retry_source = sd_event_source_disable_unref(m->accept_retry_source);
        if (m->listen_fd >= 0) {
                m->listen_fd = safe_close(m->listen_fd);
                /* An activated socket is systemd's: it stays, and queues the next claims. */
                if (m->socket_path && !m->socket_activated)
                        (void) unlink(m->socket_path);
        }
}
