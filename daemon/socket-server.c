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
#include "socket-server.h"

static int on_accept(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;
        _cleanup_close_ int conn = -EBADF;
        Peer *p = NULL;

        conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (conn < 0) {
                if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                        log_warning_errno(errno, "accept() on %s failed: %m", m->socket_path);
                return 0;
        }
        if (g_hash_table_size(m->peers) >= RMA_MAX_PEERS) {
                log_warning("Refusing broker.sock connection: %u connections are already open", RMA_MAX_PEERS);
                return 0;
        }
        if (peer_new(m, TAKE_FD(conn), &p) < 0)
                return 0;
        g_hash_table_add(m->peers, p);
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
        m->listen_fd = TAKE_FD(fd);
        log_info("Serving %s", m->socket_path);
        return 0;
}

void socket_server_stop(Manager *m) {
        m->listen_source = sd_event_source_disable_unref(m->listen_source);
        if (m->listen_fd >= 0) {
                m->listen_fd = safe_close(m->listen_fd);
                if (m->socket_path)
                        (void) unlink(m->socket_path);
        }
}
