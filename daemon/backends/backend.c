/* Backend selection: Backend=auto|kvm|hugetlb|memfd, by walking the backends built in. */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "backend.h"
#include "cleanup.h"
#include "kvm-rma.h"
#include "log.h"
#include "regular-file.h"
#include "rma-util.h"

/* In order of preference for Backend=auto: the kernel's own pool, then boot-reserved
 * huge pages, then the emulated pool that runs anywhere. */
static const BackendOps *const backends[] = {
        &backend_kvm_ops,
        &backend_hugetlb_ops,
        &backend_memfd_ops,
};

static const BackendOps *find_backend(BackendKind kind) {
        for (size_t i = 0; i < G_N_ELEMENTS(backends); i++)
                if (backends[i]->kind == kind)
                        return backends[i];
        return NULL;
}

static const BackendOps *choose_auto(const BrokerConfig *config) {
        for (size_t i = 0; i < G_N_ELEMENTS(backends); i++) {
                g_autofree char *why = NULL;
                if (backends[i]->probe(config, &why) >= 0) {
                        log_info("Backend=auto: using the %s backend%s%s", backends[i]->name, why ? ": " : "",
                                 why ? why : "");
                        return backends[i];
                }
                log_info("Backend=auto: not %s: %s", backends[i]->name, why);
        }
        return NULL;
}

/* fds the broker needs beyond its regions before any client connects (bus, listener,
 * registry, event sources); connections beyond it wait (accept pauses on EMFILE). */
#define FD_RESERVE 256u

/* The broker holds one fd per region for the pool's whole life: a pool larger than the
 * fd limit would fail half-filled, with an EMFILE that names no setting. */
static int check_fd_budget(unsigned regions) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return -errno;
        if (rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;   /* systemd sets both; a shell often only the soft one */
                (void) setrlimit(RLIMIT_NOFILE, &rl);
                (void) getrlimit(RLIMIT_NOFILE, &rl);
        }
        if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t) regions + FD_RESERVE)
                return log_error_errno(EMFILE, "A pool of %u RMAs needs at least %u file descriptors (one per region, "
                                       "plus %u), but the limit is %llu: raise LimitNOFILE= (rma-brokerd.service "
                                       "sets 262144) or ulimit -n, or lower Count=", regions, regions + FD_RESERVE,
                                       FD_RESERVE, (unsigned long long) rl.rlim_cur);
        return 0;
}

/* The key of the user-namespace marks: made once per runtime dir (it survives restarts
 * with the dir), root's alone. Without it regions get no user mark. */
static bool load_mark_key(const char *runtime_dir, guint8 key[REGION_MARK_KEY_SIZE]) {
        g_autofree char *path = g_build_filename(runtime_dir, REGION_MARK_KEY_FILE, NULL);
        _cleanup_close_ int fd = regular_file_open(path);   /* a FIFO there must not hang the start */
        struct stat st;

        if (fd == -ENOENT) {
                fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0 || getrandom(key, REGION_MARK_KEY_SIZE, 0) != REGION_MARK_KEY_SIZE ||
                    write(fd, key, REGION_MARK_KEY_SIZE) != REGION_MARK_KEY_SIZE) {
                        log_warning_errno(errno, "Cannot make %s (%m): regions get no user mark", path);
                        (void) unlink(path);
                        return false;
                }
                return true;
        }
        if (fd < 0 || fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 077) != 0 ||
            read(fd, key, REGION_MARK_KEY_SIZE) != REGION_MARK_KEY_SIZE) {
                log_warning("%s is %s, not the broker's or readable by others: regions get no user mark; remove it "
                            "and restart rma-brokerd", path, fd == -EBADFD ? regular_file_kind(path) : "unreadable");
                return false;
        }
        return true;
}

int backend_open(const BrokerConfig *config, unsigned min_count, uint64_t restart_region_size, Backend **ret) {
        g_autofree Backend *b = g_new0(Backend, 1);
        g_autofree char *why = NULL;
        const BackendOps *ops;
        struct stat st;
        int r;

        (void) kvm_rma_probe(&b->kernel_capability);
        if (config->backend == BACKEND_AUTO) {
                ops = choose_auto(config);
                if (!ops)
                        return log_error_errno(ENODEV, "Backend=auto: no backend can serve this host (reasons above)");
        } else {
                ops = find_backend(config->backend);
                if (!ops)
                        return log_error_errno(EOPNOTSUPP, "Backend=%s is not available in this version of rma-brokerd; "
                                               "use Backend=hugetlb, memfd or auto", backend_kind_to_string(config->backend));
                r = ops->probe(config, &why);
                if (r < 0)
                        return log_error_errno(r, "Backend=%s cannot serve this host: %s", ops->name, why);
                if (why)
                        log_info("Backend=%s: %s", ops->name, why);
        }
        b->ops = ops;
        b->count = broker_config_count(config, ops->kind);
        b->min_count = b->count == RMA_COUNT_AUTO ? min_count : 0;
        b->taking_over = min_count > 0;
        b->restart_region_size = restart_region_size;
        if (stat(config->runtime_dir, &st) == 0)
                snprintf(b->pool_id, sizeof(b->pool_id), "%llu:%llu", (unsigned long long) st.st_dev,
                         (unsigned long long) st.st_ino);
        b->have_mark_key = load_mark_key(config->runtime_dir, b->mark_key);
        if (b->count != RMA_COUNT_AUTO) {
                r = check_fd_budget(MAX(b->count, b->min_count));
                if (r < 0)
                        return r;
        }
        r = ops->init(b, config);
        if (r >= 0)
                r = backend_check_guest_size(b);
        if (r < 0) {
                backend_free(g_steal_pointer(&b));   /* what init took (kvm: RMAs) goes back */
                return r;
        }
        if (b->region_count < b->min_count) {
                log_info("Count=auto: keeping the %u slots of the pool before the restart (the host's pool holds %u "
                         "now, without what running QEMUs hold)", b->min_count, b->region_count);
                b->region_count = b->min_count;
        }
        r = check_fd_budget(b->region_count);
        if (r < 0) {
                backend_free(g_steal_pointer(&b));
                return r;
        }
        *ret = g_steal_pointer(&b);
        return 0;
}

Backend *backend_free(Backend *b) {
        if (!b)
                return NULL;
        if (b->ops && b->ops->destroy)
                b->ops->destroy(b);
        g_free(b);
        return NULL;
}

int backend_new_region(Backend *b, unsigned index, int *ret_fd) {
        return b->ops->new_region(b, index, ret_fd);
}

int backend_check_sealed_region(const Backend *b, int fd, long fs_magic) {
        const int want = F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL;
        struct statfs sfs;
        struct stat st;
        int seals = fcntl(fd, F_GET_SEALS);

        /* A sealed memfd of the right size passes every other test: the filesystem tells
         * a hugetlb region from a plain memfd. */
        if (fstatfs(fd, &sfs) < 0)
                return log_warning_errno(errno, "fstatfs of fd %d failed: %m", fd);
        if ((long) sfs.f_type != fs_magic)
                return log_warning_errno(EINVAL, "fd %d is not a %s region (filesystem 0x%lx)", fd, b->ops->name,
                                         (long) sfs.f_type);
        if (seals < 0)
                return log_warning_errno(errno, "fd %d is not a %s region (%m)", fd, b->ops->name);
        if ((seals & want) != want)
                return log_warning_errno(EINVAL, "fd %d is a %s region without the pool's seals (0x%x)", fd,
                                         b->ops->name, seals);
        if (fstat(fd, &st) < 0)
                return log_warning_errno(errno, "fstat of fd %d failed: %m", fd);
        if ((uint64_t) st.st_size != b->region_size)
                return log_warning_errno(EINVAL, "fd %d is a region of %lld bytes, not of this pool's %llu", fd,
                                         (long long) st.st_size, (unsigned long long) b->region_size);
        return 0;
}

int backend_verify_region(Backend *b, int fd) {
        return b->ops->verify(b, fd);
}

int backend_reopen_region(Backend *b, const RegionHandle *h, int *ret_fd) {
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (!b->ops->reopen || h->len == 0)
                return -EOPNOTSUPP;
        r = b->ops->reopen(b, h, &fd);
        if (r < 0)
                return r;
        r = backend_verify_region(b, fd);
        if (r < 0)
                return r;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

void backend_region_mark_text(const Backend *b, unsigned index, char *buf, size_t size) {
        snprintf(buf, size, "slot=%u pool=%s", index, b->pool_id);
}

/* "TEXT mac=HMAC(key, TEXT dev:ino)" for the region fd: NULL without a key or an inode. */
static char *user_mark_of(const Backend *b, const char *text, int fd) {
        g_autofree char *signed_text = NULL, *mac = NULL;
        struct stat st;

        if (!b->have_mark_key || fstat(fd, &st) < 0)
                return NULL;
        signed_text = g_strdup_printf("%s %llu:%llu", text, (unsigned long long) st.st_dev,
                                      (unsigned long long) st.st_ino);
        mac = g_compute_hmac_for_data(G_CHECKSUM_SHA256, b->mark_key, sizeof(b->mark_key),
                                      (const guchar *) signed_text, strlen(signed_text));
        return g_strdup_printf("%s mac=%s", text, mac);
}

/* The mark as text on the region: trusted where the broker may, else signed. */
static int set_mark(const Backend *b, int fd, const char *text) {
        g_autofree char *mark = NULL;
        int trusted_errno;

        if (fsetxattr(fd, REGION_MARK_XATTR, text, strlen(text), 0) == 0)
                return 0;
        trusted_errno = errno;
        mark = user_mark_of(b, text, fd);
        if (mark && fsetxattr(fd, REGION_MARK_USER_XATTR, mark, strlen(mark), 0) == 0)
                return 0;
        log_debug("Cannot mark a region (trusted: %s; user: %s)", strerror(trusted_errno),
                  mark ? strerror(errno) : "no key");
        return -ENODATA;
}

void backend_mark_region(const Backend *b, unsigned index, int fd) {
        char text[96];

        backend_region_mark_text(b, index, text, sizeof(text));
        if (set_mark(b, fd, text) < 0)
                log_debug("Region %u has no mark: a lost registry record finds it by the fd store and its handle "
                          "only", index);
        /* Nobody else holds it yet; the owner alone may read it (the broker needs no more). */
        (void) fchmod(fd, 0600);
}

void backend_mark_lease(const Backend *b, unsigned index, int fd, const char *uuid, const char *tenant) {
        g_autofree char *escaped = g_uri_escape_string(tenant ? tenant : "", NULL, FALSE);
        g_autofree char *text = g_strdup_printf("slot=%u pool=%s uuid=%s tenant=%s", index, b->pool_id, uuid,
                                                escaped);

        /* A kvm RMA is one anonymous inode shared by all: no mark, and no mode of its own. */
        if (!b->ops->release_is_watchable)
                return;

        /* Before it leaves the broker, while it is the broker's alone (mode 0600). */
        if (set_mark(b, fd, text) < 0)
                log_debug("Region %u: no lease mark; a lost record of its lease cannot name its tenant", index);
        /* Read-write, never executable: QEMU (the QEMU user, not the owner) reopens the
         * region as /proc/self/fd/N for its memory-backend-file, which 0000 refuses (then
         * every claim would depend on librma-qemu-fd.so). Only a holder of the fd (or root)
         * reaches that path at all. Its user mark stays writable by that holder: a forged
         * one fails its MAC; a removed one leaves only the registry and the fd store. */
        (void) fchmod(fd, 0666);
}

/* fgetxattr(), also on an O_PATH fd (which refuses it: EBADF), through its /proc link. */
static ssize_t get_xattr(int fd, const char *name, char *value, size_t size) {
        char path[48];
        ssize_t n = fgetxattr(fd, name, value, size);

        if (n >= 0 || errno != EBADF)
                return n;
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        return getxattr(path, name, value, size);
}

/* "slot=N pool=ID[ uuid=U tenant=T]" with our pool's ID: the mark's fields. */
static int parse_mark(const Backend *b, const char *text, RegionMark *ret) {
        g_auto(GStrv) words = g_strsplit(text, " ", -1);
        unsigned n = g_strv_length(words);
        guint64 slot;
        RegionMark m = { 0 };

        if ((n != 2 && n != 4) || !g_str_has_prefix(words[0], "slot=") ||
            !g_ascii_string_to_unsigned(words[0] + 5, 10, 0, RMA_MAX_COUNT - 1, &slot, NULL) ||
            !g_str_has_prefix(words[1], "pool=") || !g_str_equal(words[1] + 5, b->pool_id))
                return -ENODATA;
        m.slot = (unsigned) slot;
        if (n == 4) {
                g_autofree char *tenant = NULL;
                if (!g_str_has_prefix(words[2], "uuid=") || rma_uuid_canonicalize(words[2] + 5, m.uuid) < 0 ||
                    !g_str_has_prefix(words[3], "tenant=") ||
                    !(tenant = g_uri_unescape_string(words[3] + 7, NULL)) || strlen(tenant) >= sizeof(m.tenant))
                        return -ENODATA;
                g_strlcpy(m.tenant, tenant, sizeof(m.tenant));
                m.leased = true;
        }
        *ret = m;
        return 0;
}

int backend_region_mark_read(const Backend *b, int fd, RegionMark *ret) {
        g_autofree char *user = NULL;
        char value[512];
        char *mac;
        ssize_t n = get_xattr(fd, REGION_MARK_XATTR, value, sizeof(value) - 1);

        if (n >= 0) {
                value[n] = '\0';
                return parse_mark(b, value, ret);   /* only CAP_SYS_ADMIN could set it */
        }
        n = get_xattr(fd, REGION_MARK_USER_XATTR, value, sizeof(value) - 1);
        if (n < 0)
                return -ENODATA;
        value[n] = '\0';
        /* Signed over this very inode: a copy on another file fails. */
        mac = strstr(value, " mac=");
        if (!mac)
                return -ENODATA;
        *mac = '\0';
        user = user_mark_of(b, value, fd);
        *mac = ' ';
        if (!user || strcmp(user, value) != 0)
                return -ENODATA;
        *mac = '\0';
        return parse_mark(b, value, ret);
}

int backend_region_mark(const Backend *b, int fd) {
        RegionMark m;

        return backend_region_mark_read(b, fd, &m) < 0 ? -ENODATA : (int) m.slot;
}
