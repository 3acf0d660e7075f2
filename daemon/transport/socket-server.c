/* broker.sock and broker-priv.sock: the AF_UNIX listening sockets of the broker. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "cleanup.h"
#include "file-acl.h"
#include "log.h"
#include "peer.h"
#include "rma-util.h"
#include "socket-server.h"

/* Connections taken off a backlog per wakeup. */
#define ACCEPT_BATCH 64u

#ifndef SO_PASSRIGHTS
#define SO_PASSRIGHTS 83
#endif

/* broker.sock (anyone) or broker-priv.sock (root and the QemuUsers). Each has its own
 * accept backlog: a flood of broker.sock, which any local account may connect to, never
 * fills the one that VM starts go through. */
typedef struct Listener {
        SocketServer *server;
        char *path;
        bool privileged;
        bool socket_activated;           /* it came from rma-brokerd.socket */
        int fd;
        sd_event_source *source;
} Listener;

struct SocketServer {
        PeerHost host;                   /* what every peer is served with */
        Listener listeners[2];           /* broker.sock, broker-priv.sock */
        sd_event_source *accept_retry_source;  /* re-enables accept after EMFILE */
        bool kernel_refuses_fds;         /* SO_PASSRIGHTS took: no relay needed */
        GHashTable *peers;               /* Peer* set; owns the peers */
        unsigned n_peers[_PEER_CLASS_MAX];
        GHashTable *peers_per_uid;       /* uid -> open connections, PEER_OTHER only */
        GHashTable *peers_per_pid;       /* pid -> open connections, all but root */
        unsigned next_peer_id;
};

static void set_accepting(SocketServer *server, int enabled) {
        for (size_t i = 0; i < G_N_ELEMENTS(server->listeners); i++)
                (void) sd_event_source_set_enabled(server->listeners[i].source, enabled);
}

static int on_accept_retry(sd_event_source *source, uint64_t usec, void *userdata) {
        set_accepting(userdata, SD_EVENT_ON);
        return 0;
}

/* Out of fds: stop accepting for a second instead of spinning on a readable socket. */
static void pause_accepting(SocketServer *server, const char *path, int error) {
        int r;

        log_warning_errno(error, "accept() on %s failed (%m); pausing new connections for 1 s. "
                          "Raise LimitNOFILE= of rma-brokerd.service if this repeats", path);
        set_accepting(server, SD_EVENT_OFF);
        if (!server->accept_retry_source) {
                r = sd_event_add_time_relative(server->host.event, &server->accept_retry_source, CLOCK_MONOTONIC, 1000000, 0,
                                               on_accept_retry, server);
                if (r < 0)
                        set_accepting(server, SD_EVENT_ON);
                return;
        }
        (void) sd_event_source_set_time_relative(server->accept_retry_source, 1000000);
        (void) sd_event_source_set_enabled(server->accept_retry_source, SD_EVENT_ONESHOT);
}

static PeerClass peer_class_of(SocketServer *server, uid_t uid) {
        if (uid == 0)
                return PEER_ROOT;
        return broker_config_uid_may_claim(server->host.config, uid) ? PEER_QEMU : PEER_OTHER;
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

static void account(SocketServer *server, PeerClass class, const struct ucred *cred, int delta) {
        server->n_peers[class] += (unsigned) delta;
        if (class == PEER_ROOT)
                return;
        count_add(server->peers_per_pid, (unsigned) cred->pid, delta);
        if (class == PEER_OTHER)
                count_add(server->peers_per_uid, cred->uid, delta);
}

/* Each class has its own total, so what other uids hold never counts against root (the
 * hook) or the QEMU users. */
static bool peer_admissible(SocketServer *server, PeerClass class, const struct ucred *cred) {
        const BrokerConfig *c = server->host.config;

        if (server->n_peers[class] >= c->max_connections)
                return false;
        if (class == PEER_ROOT)
                return true;
        if (count_of(server->peers_per_pid, (unsigned) cred->pid) >= RMA_MAX_CONNECTIONS_PER_PROCESS)
                return false;
        /* QEMU users are not capped per uid: every VM's wrapper runs as the same one. */
        return class == PEER_QEMU || count_of(server->peers_per_uid, cred->uid) < c->max_connections_per_user;
}

static void on_peer_gone(Peer *p, void *userdata) {
        SocketServer *server = userdata;

        account(server, p->class, &p->creds.ucred, -1);
        g_hash_table_remove(server->peers, p);   /* frees p */
}

/* SO_PASSRIGHTS=0 reaches a connection at connect(), from the listener as it was then.
 * A connection queued before the broker set it (on a socket systemd opened before it
 * started the broker) still takes fds: it gets the relay. */
static bool connection_refuses_fds(const SocketServer *server, int conn) {
        int passrights = 1;
        socklen_t len = sizeof(passrights);

        if (!server->kernel_refuses_fds)
                return false;
        return getsockopt(conn, SOL_SOCKET, SO_PASSRIGHTS, &passrights, &len) == 0 && passrights == 0;
}

/* Takes one connection off the backlog and serves it, or drops it at once when its
 * class, uid or process is at its limit. 0: the backlog is empty (or accept is paused). */
static int accept_one(Listener *l) {
        SocketServer *server = l->server;
        _cleanup_close_ int conn = -EBADF;
        struct ucred cred;
        socklen_t len = sizeof(cred);
        PeerClass class;
        Peer *p = NULL;
        bool relay;

        conn = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (conn < 0) {
                if (errno == EINTR || errno == ECONNABORTED)
                        return 1;
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                        pause_accepting(server, l->path, errno);
                else if (errno != EAGAIN)
                        log_warning_errno(errno, "accept() on %s failed: %m", l->path);
                return 0;
        }
        if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return 1;
        class = peer_class_of(server, cred.uid);
        if (!peer_admissible(server, class, &cred)) {
                /* Debug only: whoever causes this must not also flood the journal. */
                log_debug("Refusing %s connection from pid %d uid %u: connection limit reached", l->path,
                          (int) cred.pid, (unsigned) cred.uid);
                return 1;
        }
        relay = !connection_refuses_fds(server, conn);
        if (peer_new(&server->host, ++server->next_peer_id, TAKE_FD(conn), &cred, class, relay, &p) < 0)
                return 1;
        g_hash_table_add(server->peers, p);
        account(server, class, &cred, +1);
        return 1;
}

/* Drain the backlog eagerly, up to a bound that keeps the loop turning for the other
 * sources: a flood costs one wakeup per batch, not per connection, and what is over a
 * limit is closed before it can hold a place in the backlog. */
static int on_accept(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        for (unsigned i = 0; i < ACCEPT_BATCH && accept_one(userdata) > 0; i++)
                ;
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

static void peer_destroy(gpointer p) {
        peer_free(p);
}

/* The mode comes from the umask at bind: no chmod that could follow a symlink put in the
 * socket's place. broker.sock: anyone may connect (QEMU runs unprivileged, and every
 * method checks the peer's credentials itself). broker-priv.sock: root alone, until
 * grant_privileged() adds the QemuUsers. */
static int bind_socket(const struct sockaddr_un *sa, socklen_t salen, const char *path, mode_t umask_at_bind,
                       int *ret_fd) {
        _cleanup_close_ int fd = -EBADF;
        mode_t old_umask;
        int r;

        r = check_existing_socket(sa, salen, path);
        if (r < 0)
                return r;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return log_error_errno(errno, "socket(AF_UNIX) failed: %m");
        old_umask = umask(umask_at_bind);
        r = bind(fd, (const struct sockaddr *) sa, salen) < 0 ? -errno : 0;
        (void) umask(old_umask);
        if (r < 0)
                return log_error_errno(r, "Cannot bind %s: %m", path);
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* broker-priv.sock is for root (the hook) and the QemuUsers (the wrapper): an ACL entry
 * for each, before listen(), so no one else can even queue a connection on it. The path
 * is safe to use: the runtime dir is the broker's alone (runtime-dir.c). */
static int grant_privileged(const SocketServer *server, const char *path) {
        const BrokerConfig *c = server->host.config;
        int r;

        if (c->n_qemu_uids == 0)
                return 0;
        r = file_acl_grant_users(path, c->qemu_uids, c->n_qemu_uids);
        if (r == -EOPNOTSUPP) {
                log_warning("%s: this filesystem has no POSIX ACLs, so the QemuUsers cannot be let in alone; "
                            "they use broker.sock, which any local account can flood. Put --runtime-dir on "
                            "tmpfs (as /run is)", path);
                return r;
        }
        if (r < 0)
                return log_error_errno(r, "Cannot let the QemuUsers at %s (ACL): %m", path);
        return 0;
}

/* rma-brokerd.socket: systemd holds broker.sock, so a claim made while the broker
 * restarts waits in the backlog instead of failing. */
static int check_activated_socket(int fd) {
        if (sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) <= 0)
                return log_error_errno(EINVAL, "The fd systemd passed as broker.sock is not a listening AF_UNIX "
                                       "stream socket; check rma-brokerd.socket");
        if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
                return log_error_errno(errno, "Cannot make broker.sock non-blocking: %m");
        return 0;
}

static int listener_open(Listener *l, int listen_fd_consumed) {
        _cleanup_close_ int fd = listen_fd_consumed;
        SocketServer *server = l->server;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        socklen_t salen;
        int r;

        if (strlen(l->path) >= sizeof(sa.sun_path))
                return log_error_errno(ENAMETOOLONG, "Socket path %s is too long for AF_UNIX; use a shorter --runtime-dir",
                                       l->path);
        memcpy(sa.sun_path, l->path, strlen(l->path));
        salen = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + strlen(l->path) + 1);

        l->socket_activated = fd >= 0;
        if (l->socket_activated)
                r = check_activated_socket(fd);
        else
                r = bind_socket(&sa, salen, l->path, l->privileged ? 0177 : 0111, &fd);
        if (r < 0)
                return r;
        if (l->privileged) {
                r = grant_privileged(server, l->path);
                if (r == -EOPNOTSUPP) {
                        (void) unlink(l->path);   /* the clients then use broker.sock */
                        return 0;
                }
                if (r < 0)
                        return r;
        }
        /* Linux 6.16+: the kernel refuses any fd a client sends (EPERM at its sendmsg),
         * for every connection, from before accept on. Elsewhere each peer relays. */
        server->kernel_refuses_fds = setsockopt(fd, SOL_SOCKET, SO_PASSRIGHTS, &(int) { 0 }, sizeof(int)) == 0;
        if (listen(fd, SOMAXCONN) < 0)
                return log_error_errno(errno, "listen on %s failed: %m", l->path);
        r = sd_event_add_io(server->host.event, &l->source, fd, EPOLLIN, on_accept, l);
        if (r < 0)
                return log_error_errno(r, "Cannot watch %s: %m", l->path);
        /* VM starts first: the hook's and the wrapper's connections are accepted before
         * anything else the loop has to do. */
        (void) sd_event_source_set_priority(l->source, l->privileged ? SD_EVENT_PRIORITY_IMPORTANT
                                                                      : SD_EVENT_PRIORITY_NORMAL);
        l->fd = TAKE_FD(fd);
        return 0;
}

static void listener_close(Listener *l) {
        l->source = sd_event_source_disable_unref(l->source);
        if (l->fd >= 0) {
                l->fd = safe_close(l->fd);
                /* An activated socket is systemd's: it stays, and queues the next claims. */
                if (!l->socket_activated)
                        (void) unlink(l->path);
        }
        g_clear_pointer(&l->path, g_free);
}

int socket_server_new(sd_event *event, const BrokerConfig *config, BusService *service, int listen_fd_consumed,
                      SocketServer **ret) {
        _cleanup_close_ int listen_fd = listen_fd_consumed;
        g_autoptr(SocketServer) server = g_new0(SocketServer, 1);
        Listener *public = &server->listeners[0], *privileged = &server->listeners[1];
        int r;

        server->host = (PeerHost) { .event = sd_event_ref(event), .config = config, .service = service,
                               .on_gone = on_peer_gone, .userdata = server };
        server->peers = g_hash_table_new_full(g_direct_hash, g_direct_equal, peer_destroy, NULL);
        server->peers_per_uid = g_hash_table_new(g_direct_hash, g_direct_equal);
        server->peers_per_pid = g_hash_table_new(g_direct_hash, g_direct_equal);
        *public = (Listener) { .server = server, .fd = -EBADF,
                               .path = g_build_filename(config->runtime_dir, RMA_SOCKET_NAME, NULL) };
        *privileged = (Listener) { .server = server, .fd = -EBADF, .privileged = true,
                                   .path = g_build_filename(config->runtime_dir, RMA_PRIVILEGED_SOCKET_NAME, NULL) };
        r = listener_open(public, TAKE_FD(listen_fd));
        if (r < 0)
                return r;
        r = listener_open(privileged, -EBADF);
        if (r < 0)
                return r;
        log_info("Serving %s%s and %s (root and QemuUsers) (%s)", public->path,
                 public->socket_activated ? " from rma-brokerd.socket" : "",
                 privileged->fd >= 0 ? privileged->path : "not",
                 server->kernel_refuses_fds ? "the kernel refuses fds from clients: SO_PASSRIGHTS"
                                       : "no SO_PASSRIGHTS in this kernel: fds from clients are stripped by a relay");
        *ret = g_steal_pointer(&server);
        return 0;
}

SocketServer *socket_server_free(SocketServer *server) {
        if (!server)
                return NULL;
        for (size_t i = 0; i < G_N_ELEMENTS(server->listeners); i++)
                listener_close(&server->listeners[i]);
        server->accept_retry_source = sd_event_source_disable_unref(server->accept_retry_source);
        g_clear_pointer(&server->peers, g_hash_table_destroy);
        g_clear_pointer(&server->peers_per_uid, g_hash_table_destroy);
        g_clear_pointer(&server->peers_per_pid, g_hash_table_destroy);
        sd_event_unref(server->host.event);
        g_free(server);
        return NULL;
}

const char *socket_server_path(const SocketServer *server) {
        return server->listeners[0].path;
}
