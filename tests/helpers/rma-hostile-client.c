/* A hostile broker.sock client for the integration tests: it speaks raw D-Bus so that it
 * can do what no well-behaved library does.
 *   rma-hostile-client unread SOCKET N        send N Introspect calls, never read a reply
 *   rma-hostile-client fds SOCKET N HDR M     send M Ping calls, each carrying N fds, with
 *                                             a UNIX_FDS header of HDR (-1: none)
 *   rma-hostile-client hold SOCKET            connect, authenticate, say nothing
 *   rma-hostile-client garbage SOCKET         send bytes that are not D-Bus, then close
 *   rma-hostile-client ping SOCKET            a well-behaved Ping, to prove the broker answers
 * Then it waits up to 30 s for the broker to hang up and prints one line:
 *   "sent=K disconnected=0|1 after_ms=T error=E" (E: the errno of a refused send, or none;
 *   EPERM means the kernel refused the fds and nothing was sent). Ping: "pong" or "no-pong". */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define WAIT_FOR_HANGUP_MS 30000

typedef struct Buf {
        uint8_t b[1024];
        size_t n;
} Buf;

static void pad(Buf *b, size_t align) {
        while (b->n % align)
                b->b[b->n++] = 0;
}
static void put_u8(Buf *b, uint8_t v) {
        b->b[b->n++] = v;
}
static void put_u32(Buf *b, uint32_t v) {
        pad(b, 4);
        memcpy(b->b + b->n, &v, 4);   /* little-endian host; the header says 'l' */
        b->n += 4;
}
static void put_string(Buf *b, const char *s) {
        put_u32(b, (uint32_t) strlen(s));
        memcpy(b->b + b->n, s, strlen(s) + 1);
        b->n += strlen(s) + 1;
}
static void put_field(Buf *b, uint8_t code, const char *type, const char *value) {
        pad(b, 8);
        put_u8(b, code);
        put_u8(b, 1);
        put_u8(b, (uint8_t) type[0]);
        put_u8(b, 0);
        put_string(b, value);
}

/* A method call without a body; unix_fds < 0 leaves the UNIX_FDS header out. */
static size_t build_call(Buf *b, uint32_t serial, const char *path, const char *interface, const char *member,
                         long unix_fds) {
        size_t start;
        uint32_t len;

        b->n = 0;
        put_u8(b, 'l');
        put_u8(b, 1);          /* METHOD_CALL */
        put_u8(b, 0);
        put_u8(b, 1);          /* protocol version */
        put_u32(b, 0);         /* body length */
        put_u32(b, serial);
        put_u32(b, 0);         /* header fields length, set below */
        start = b->n;
        put_field(b, 1, "o", path);
        put_field(b, 2, "s", interface);
        put_field(b, 3, "s", member);
        if (unix_fds >= 0) {
                pad(b, 8);
                put_u8(b, 9);
                put_u8(b, 1);
                put_u8(b, 'u');
                put_u8(b, 0);
                put_u32(b, (uint32_t) unix_fds);
        }
        len = (uint32_t) (b->n - start);
        memcpy(b->b + 12, &len, 4);
        pad(b, 8);
        return b->n;
}

static long now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int connect_to(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0 || strlen(path) >= sizeof(sa.sun_path))
                return -1;
        memcpy(sa.sun_path, path, strlen(path));
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                close(fd);
                return -1;
        }
        return fd;
}

static int read_line(int fd, char *line, size_t size) {
        size_t n = 0;
        while (n + 1 < size) {
                if (read(fd, line + n, 1) != 1)
                        return -1;
                if (line[n++] == '\n')
                        break;
        }
        line[n] = 0;
        return 0;
}

static int authenticate(int fd) {
        char uid[32], hex[64] = "", cmd[128], line[256];

        snprintf(uid, sizeof(uid), "%u", (unsigned) getuid());
        for (size_t i = 0; uid[i]; i++)
                snprintf(hex + 2 * i, 3, "%02x", (unsigned char) uid[i]);
        snprintf(cmd, sizeof(cmd), "%cAUTH EXTERNAL %s\r\n", 0, hex);
        if (write(fd, cmd, 1 + strlen(cmd + 1)) < 0 || read_line(fd, line, sizeof(line)) < 0 || strncmp(line, "OK ", 3))
                return -1;
        if (write(fd, "NEGOTIATE_UNIX_FD\r\n", 19) < 0 || read_line(fd, line, sizeof(line)) < 0 ||
            strncmp(line, "AGREE_UNIX_FD", 13))
                return -1;
        return write(fd, "BEGIN\r\n", 7) == 7 ? 0 : -1;
}

static int send_with_fds(int fd, const Buf *b, int n_fds) {
        int fds[253];
        union {
                struct cmsghdr align;
                uint8_t space[CMSG_SPACE(sizeof(fds))];
        } control;
        struct iovec iov = { .iov_base = (void *) b->b, .iov_len = b->n };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        ssize_t k;

        for (int i = 0; i < n_fds; i++)
                fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (n_fds > 0) {
                struct cmsghdr *c;
                mh.msg_control = &control;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t) n_fds);
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t) n_fds);
                memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t) n_fds);
        }
        k = sendmsg(fd, &mh, MSG_NOSIGNAL);
        int saved = errno;
        for (int i = 0; i < n_fds; i++)
                close(fds[i]);
        errno = saved;
        return k == (ssize_t) b->n ? 0 : -1;
}

/* Without reading anything: has the broker closed its side? */
static int wait_for_hangup(int fd, int timeout_ms) {
        struct pollfd p = { .fd = fd, .events = POLLRDHUP };
        long deadline = now_ms() + timeout_ms;

        while (now_ms() < deadline) {
                if (poll(&p, 1, 100) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
                        return 1;
        }
        return 0;
}

int main(int argc, char *argv[]) {
        const char *mode = argc > 2 ? argv[1] : "";
        long sent = 0, started;
        int send_errno = 0;
        Buf b;
        int fd;

        setvbuf(stdout, NULL, _IOLBF, 0);
        signal(SIGPIPE, SIG_IGN);   /* a broker that hangs up is a result, not a crash */
        if (argc < 3) {
                fprintf(stderr, "usage: %s unread|fds|hold|garbage|ping SOCKET [ARGS]\n", argv[0]);
                return 2;
        }
        fd = connect_to(argv[2]);
        if (fd < 0) {
                printf("connect failed: %m\n");
                return 1;
        }
        started = now_ms();
        if (strcmp(mode, "garbage") == 0) {
                static const char junk[] = "GET / HTTP/1.0\r\n\r\n";
                if (write(fd, junk, sizeof(junk)) < 0)
                        return 1;
                close(fd);
                return 0;
        }
        if (authenticate(fd) < 0) {
                printf("authentication failed\n");
                return 1;
        }
        if (strcmp(mode, "ping") == 0) {
                uint8_t reply[256];
                build_call(&b, 1, "/", "org.freedesktop.DBus.Peer", "Ping", -1);
                struct pollfd p = { .fd = fd, .events = POLLIN };
                if (write(fd, b.b, b.n) != (ssize_t) b.n || poll(&p, 1, 10000) <= 0 || read(fd, reply, sizeof(reply)) < 16 ||
                    reply[1] != 2) {
                        printf("no-pong\n");
                        return 1;
                }
                printf("pong\n");
                return 0;
        }
        if (strcmp(mode, "unread") == 0 && argc > 3) {
                long n = atol(argv[3]);
                for (sent = 0; sent < n; sent++) {
                        build_call(&b, (uint32_t) sent + 1, "/org/rmabroker/Broker1", "org.freedesktop.DBus.Introspectable",
                                   "Introspect", -1);
                        if (send(fd, b.b, b.n, MSG_NOSIGNAL) != (ssize_t) b.n) {
                                send_errno = errno;
                                break;
                        }
                }
        } else if (strcmp(mode, "fds") == 0 && argc > 5) {
                int n_fds = atoi(argv[3]);
                long header = atol(argv[4]), m = atol(argv[5]);
                if (n_fds < 0 || n_fds > 253)
                        return 2;
                for (sent = 0; sent < m; sent++) {
                        build_call(&b, (uint32_t) sent + 1, "/", "org.freedesktop.DBus.Peer", "Ping", header);
                        if (send_with_fds(fd, &b, n_fds) < 0) {
                                send_errno = errno;
                                break;
                        }
                }
        } else if (strcmp(mode, "hold") != 0) {
                fprintf(stderr, "unknown mode %s\n", mode);
                return 2;
        }
        /* A send the kernel refused (EPERM: SO_PASSRIGHTS) is the answer itself. */
        int hung_up = send_errno == EPERM ? 0 : wait_for_hangup(fd, WAIT_FOR_HANGUP_MS);
        printf("sent=%ld disconnected=%d after_ms=%ld error=%s\n", sent, hung_up, now_ms() - started,
               send_errno ? strerrorname_np(send_errno) : "none");
        return 0;
}
