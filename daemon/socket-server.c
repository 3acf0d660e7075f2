/* broker.sock: the AF_UNIX listening socket that the hook and the wrapper connect to. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "peer.h"
#include "rma-util.h"
#include "socket-server.h"

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

static bool peer_admissible(Manager *m, const struct ucred *cred) {
        unsigned per_uid = 0, per_pid = 0, total = g_hash_table_size(m->peers);
        GHashTableIter it;
        gpointer key;

        if (total >= RMA_MAX_PEERS)
                return false;
        g_hash_table_iter_init(&it, m->peers);
        while (g_hash_table_iter_next(&it, &key, NULL)) {
                const Peer *p = key;
                per_uid += p->ucred.uid == cred->uid;
                per_pid += p->ucred.pid == cred->pid;
        }
        if (cred->uid == 0)
                return true;
        return per_uid < RMA_MAX_PEERS_PER_UID && per_pid < RMA_MAX_PEERS_PER_PID;
}

static int on_accept(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;
        _cleanup_close_ int conn = -EBADF;
        struct ucred cred;
        socklen_t len = sizeof(cred);
        Peer *p = NULL;

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
        if (!peer_admissible(m, &cred)) {
                /* Debug only: whoever causes this must not also flood the journal. */
                log_debug("Refusing broker.sock connection from pid %d uid %u: connection limit reached",
                          (int) cred.pid, (unsigned) cred.uid);
                return 0;
        }
        if (peer_new(m, TAKE_FD(conn), &p) < 0)
                return 0;
        g_hash_table_add(m->peers, p);
        return 0;
}

static gboolean peer_is_too_old(gpointer key, gpointer value, gpointer userdata) {
        const Peer *p = key;
        uint64_t now = *(const uint64_t *) userdata;

        if (p->accepted_usec + RMA_PEER_MAX_AGE_USEC > now)
                return FALSE;
        log_debug("Closing broker.sock peer %u (pid %d): open for longer than %u s", p->id, (int) p->ucred.pid,
                  RMA_PEER_MAX_AGE_USEC / 1000000u);
        return TRUE;
}

static int on_peer_sweep(sd_event_source *source, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        uint64_t now = rma_now_usec(CLOCK_MONOTONIC);

        g_hash_table_foreach_remove(m->peers, peer_is_too_old, &now);
        (void) sd_event_source_set_time(source, usec + RMA_PEER_MAX_AGE_USEC / 4);
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

        if (mkdir(m->config->runtime_dir, 0755) < 0 && errno != EEXIST)
                return log_error_errno(errno, "Cannot create runtime directory %s: %m", m->config->runtime_dir);

        m->socket_path = g_build_filename(m->config->runtime_dir, RMA_SOCKET_NAME, NULL);
        if (strlen(m->socket_path) >= sizeof(sa.sun_path))
                return log_error_errno(ENAMETOOLONG, "Socket path %s is too long for AF_UNIX; use a shorter --runtime-dir",
                                       m->socket_path);
        memcpy(sa.sun_path, m->socket_path, strlen(m->socket_path));
        salen = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + strlen(m->socket_path) + 1);

        r = check_existing_socket(&sa, salen, m->socket_path);
        if (r < 0)
                return r;

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return log_error_errno(errno, "socket(AF_UNIX) failed: %m");
        if (bind(fd, (struct sockaddr *) &sa, salen) < 0)
                return log_error_errno(errno, "Cannot bind %s: %m", m->socket_path);
        /* Anyone may connect: QEMU runs unprivileged. Every method checks the peer's
         * credentials itself, so the file mode is not the access control. */
        if (chmod(m->socket_path, 0666) < 0)
                return log_error_errno(errno, "chmod %s failed: %m", m->socket_path);
        if (listen(fd, SOMAXCONN) < 0)
                return log_error_errno(errno, "listen on %s failed: %m", m->socket_path);

        r = sd_event_add_io(m->event, &m->listen_source, fd, EPOLLIN, on_accept, m);
        if (r < 0)
                return log_error_errno(r, "Cannot watch %s: %m", m->socket_path);
        r = sd_event_add_time_relative(m->event, &m->peer_sweep_source, CLOCK_MONOTONIC, RMA_PEER_MAX_AGE_USEC / 4, 0,
                                       on_peer_sweep, m);
        if (r < 0)
                return log_error_errno(r, "Cannot arm the connection sweep: %m");
        (void) sd_event_source_set_enabled(m->peer_sweep_source, SD_EVENT_ON);
        m->listen_fd = TAKE_FD(fd);
        log_info("Serving %s", m->socket_path);
        return 0;
}

void socket_server_stop(Manager *m) {
        m->listen_source = sd_event_source_disable_unref(m->listen_source);
        m->accept_retry_source = sd_event_source_disable_unref(m->accept_retry_source);
        m->peer_sweep_source = sd_event_source_disable_unref(m->peer_sweep_source);
        if (m->listen_fd >= 0) {
                m->listen_fd = safe_close(m->listen_fd);
                if (m->socket_path)
                        (void) unlink(m->socket_path);
        }
}
