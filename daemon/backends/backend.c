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
        _cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;

        if (fd < 0 && errno == ENOENT) {
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
                log_warning("%s is missing, not the broker's or readable by others: regions get no user mark; remove it "
                            "and restart rma-brokerd", path);
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
static char *user_mark(const Backend *b, unsigned index, int fd) {
        g_autofree char *text = NULL, *mac = NULL;
        char base[96];
        struct stat st;

        if (!b->have_mark_key || fstat(fd, &st) < 0)
                return NULL;
        backend_region_mark_text(b, index, base, sizeof(base));
        text = g_strdup_printf("%s %llu:%llu", base, (unsigned long long) st.st_dev, (unsigned long long) st.st_ino);
        mac = g_compute_hmac_for_data(G_CHECKSUM_SHA256, b->mark_key, sizeof(b->mark_key), (const guchar *) text,
                                      strlen(text));
        return g_strdup_printf("%s mac=%s", base, mac);
}

void backend_mark_region(const Backend *b, unsigned index, int fd) {
        g_autofree char *mark = NULL;
        char text[96];
        int trusted_errno;

        backend_region_mark_text(b, index, text, sizeof(text));
        if (fsetxattr(fd, REGION_MARK_XATTR, text, strlen(text), 0) == 0)
                return;
        trusted_errno = errno;
        mark = user_mark(b, index, fd);
        if (mark && fsetxattr(fd, REGION_MARK_USER_XATTR, mark, strlen(mark), 0) == 0)
                return;
        log_debug("Cannot mark region %u (trusted: %s; user: %s): a lost registry record finds it by the fd store "
                  "and its handle only", index, strerror(trusted_errno), mark ? strerror(errno) : "no key");
}

int backend_region_mark(const Backend *b, int fd) {
        g_autofree char *user = NULL;
        char value[192], want[96];
        bool trusted = true;
        ssize_t n = fgetxattr(fd, REGION_MARK_XATTR, value, sizeof(value) - 1);
        unsigned slot;

        if (n < 0) {
                trusted = false;
                n = fgetxattr(fd, REGION_MARK_USER_XATTR, value, sizeof(value) - 1);
        }
        if (n < 0)
                return -ENODATA;
        value[n] = '\0';
        if (sscanf(value, "slot=%u", &slot) != 1 || slot >= RMA_MAX_COUNT)
                return -ENODATA;
        /* The whole mark, pool included: a region of another broker of this host (another
         * runtime dir) proves nothing about ours; a user mark, its MAC over this inode too. */
        if (trusted) {
                backend_region_mark_text(b, slot, want, sizeof(want));
                return strcmp(value, want) == 0 ? (int) slot : -ENODATA;
        }
        user = user_mark(b, slot, fd);
        return user && strcmp(value, user) == 0 ? (int) slot : -ENODATA;
}


