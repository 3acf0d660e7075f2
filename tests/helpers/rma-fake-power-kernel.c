/* Play a 2011 POWER kernel's pool of Real Mode Areas (KVM_CAP_PPC_RMA, KVM_ALLOCATE_RMA,
 * Linux 3.0-3.18) on x86_64, for an unmodified program such as the real rma-brokerd:
 *   rma-fake-power-kernel --count N --size SIZE [--capability 0|1|2]
 *                         [--dev-kvm present|absent|denied] [--status-file PATH]
 *                         [--verbose] -- PROGRAM [ARGS...]
 *
 * PROGRAM runs under a seccomp filter that hands the whole boundary the kvm backend
 * touches to this tool (seccomp user notification), so that a run is the same whether
 * this host has KVM or not; the real /dev/kvm is never opened:
 *   - open/openat/openat2 of exactly "/dev/kvm" (the path is read from the caller's
 *     memory): answered with a stand-in fd, or ENOENT (--dev-kvm absent: the module is
 *     not loaded) or EACCES (--dev-kvm denied: permissions, or the unit's DeviceAllow=);
 *   - KVM_CHECK_EXTENSION on the stand-in or a VM fd: the capability for
 *     KVM_CAP_PPC_RMA, 0 for every other;
 *   - KVM_CREATE_VM on the stand-in: a VM stand-in fd (O_CLOEXEC, as the kernel gives);
 *   - KVM_ALLOCATE_RMA on a VM stand-in, answered the way the old book3s_hv code did:
 *     rma_size written into the caller's struct and a new fd (O_RDWR, no O_CLOEXEC) as
 *     the return value, or ENOMEM once the pool is empty.
 * Every other path and every other fd goes to the real kernel unchanged.
 *
 * Like the real pool, the N regions exist from the start, a region returns to the pool
 * only when no fd and no mapping of it is left in any process, and a region is never
 * zeroed: the next tenant sees what the last one left. "Left" is asked of the kernel (a
 * write lease is refused while another open file of the region exists, which also sees
 * fds in flight in SCM_RIGHTS messages) and of /proc (every process's fds and maps).
 *
 * Limits: a region is a sealed memfd (F_SEAL_GROW|SHRINK|SEAL) with mode 0000, not an
 * anonymous inode. A non-root holder cannot reopen it as /proc/self/fd/N (EACCES where a
 * real RMA gives ENXIO), but root can; each region has its own inode number (all anon
 * inodes share one); /proc shows it as "/memfd:kvm-rma (deleted)", not "anon_inode:kvm-rma".
 * The /dev/kvm and VM stand-ins are memfds too ("/memfd:fake-power-kvm"), so any other
 * ioctl on them fails with ENOTTY. Only the literal path "/dev/kvm" is caught, not a
 * symlink or "/dev/./kvm" to it. A region held only by a KVM memslot (the real kernel
 * kept a reference from KVM_SET_USER_MEMORY_REGION) is not seen as held. Release is found
 * when the pool is empty and by polling every 100 ms, not at the moment of the last close.
 * Where leases are off (fs.leases-enable=0) only /proc is asked, and an fd in flight is
 * missed; as non-root, so is a holder whose /proc entries this tool may not read. x86_64
 * only. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"

#if !defined(__x86_64__)
#error "rma-fake-power-kernel plays the POWER ioctls for x86_64 programs only"
#endif

/* Only powerpc's uapi headers define these. */
struct fake_kvm_allocate_rma {
        __u64 rma_size;
};
#define FAKE_KVM_ALLOCATE_RMA _IOR(KVMIO, 0xa9, struct fake_kvm_allocate_rma)
#define FAKE_KVM_CAP_PPC_RMA 65
_Static_assert(FAKE_KVM_ALLOCATE_RMA == 0x8008aea9u, "KVM_ALLOCATE_RMA as POWER numbers it");
_Static_assert(KVM_CHECK_EXTENSION == 0xae03u, "KVM_CHECK_EXTENSION");

#define PREFIX "fake-power-kernel: "
#define REGION_NAME "kvm-rma"
#define RESCAN_MSEC 100
#define MAX_COUNT 4096
#define DEV_KVM "/dev/kvm"
#define STANDIN_NAME "fake-power-kvm"

typedef enum DevKvm {
        DEV_KVM_PRESENT,
        DEV_KVM_ABSENT,   /* open: ENOENT, the module is not loaded */
        DEV_KVM_DENIED,   /* open: EACCES, permissions or the unit's DeviceAllow= */
} DevKvm;

/* A file of this tool's that stands in for one of the kernel's: its inode tells it apart
 * in any process that holds it. */
typedef struct Standin {
        int fd;
        dev_t dev;
        ino_t ino;
} Standin;

typedef struct Region {
        int fd;               /* this tool's own fd: the region lives as long as the tool */
        dev_t dev;
        ino_t ino;
        bool in_use;
        uint64_t freed_seq;   /* the pool hands out the longest-free region first */
        pid_t tenant;         /* the last caller it went to, for the log */
} Region;

typedef struct Tool {
        Region *regions;
        unsigned count;
        uint64_t size;
        unsigned capability;
        DevKvm dev_kvm;
        Standin kvm;          /* what open("/dev/kvm") gives */
        Standin vm;           /* what KVM_CREATE_VM gives */
        const char *status_path;
        bool verbose;
        pid_t self;
        unsigned in_use;
        uint64_t allocations;
        uint64_t enomem;
        uint64_t seq;
        bool leases;          /* F_SETLEASE answers here (fs.leases-enable=1) */
        bool dirty;           /* the status file is behind */
        unsigned unreadable;  /* /proc entries the last scan could not read */
} Tool;

#define log_verbose(t, fmt, ...)                                                    \
        do {                                                                    \
                if ((t)->verbose)                                               \
                        fprintf(stderr, PREFIX fmt "\n", ##__VA_ARGS__);        \
        } while (0)

static int parse_size(const char *s, uint64_t *ret) {
        unsigned long long v;
        uint64_t mult = 1;
        char *end;

        if (*s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0)
                return -errno;
        switch (*end) {
        case '\0':
                break;
        case 'K': case 'k':
                mult = UINT64_C(1) << 10;
                end++;
                break;
        case 'M': case 'm':
                mult = UINT64_C(1) << 20;
                end++;
                break;
        case 'G': case 'g':
                mult = UINT64_C(1) << 30;
                end++;
                break;
        default:
                return -EINVAL;
        }
        if (*end != '\0' || __builtin_mul_overflow((uint64_t) v, mult, ret) || *ret == 0 || *ret > (uint64_t) INT64_MAX)
                return -EINVAL;
        return 0;
}

static int parse_unsigned(const char *s, unsigned max, unsigned *ret) {
        unsigned long v;
        char *end;

        if (*s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || *end != '\0' || v > max)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

static uint64_t now_msec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* A new open file of a region; mode 0000 keeps everyone but root out, so open it up for
 * the moment. Only a free region (or one being made) is reopened, so no holder slips in. */
static int reopen_region_fd(int fd) {
        char path[64];
        int r, saved;

        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        if (fchmod(fd, 0600) < 0)
                return -errno;
        r = open(path, O_RDWR | O_CLOEXEC);
        saved = errno;
        (void) fchmod(fd, 0);
        return r < 0 ? -saved : r;
}

static int region_create(Region *r, uint64_t size) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        int master;

        fd = memfd_create(REGION_NAME, MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return -errno;
        if (ftruncate(fd, (off_t) size) < 0)
                return -errno;
        /* As with a real RMA, a holder can neither resize it nor seal it. */
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0)
                return -errno;
        /* A real RMA cannot be reopened by path; mode 0000 keeps non-root holders out. */
        if (fchmod(fd, 0) < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        /* The file memfd_create() makes is not counted as open for write (no open() ran),
         * so the lease test could not tell it from none: the tool keeps a reopened one. */
        master = reopen_region_fd(fd);
        if (master < 0)
                return master;
        r->dev = st.st_dev;
        r->ino = st.st_ino;
        r->fd = master;
        return 0;
}

static int standin_create(Standin *s, const char *name) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        fd = memfd_create(name, MFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        s->dev = st.st_dev;
        s->ino = st.st_ino;
        s->fd = TAKE_FD(fd);
        return 0;
}

static int write_status(Tool *t) {
        g_autofree char *tmp = NULL;
        FILE *f;
        int r = 0;

        if (!t->status_path)
                return 0;
        if (asprintf(&tmp, "%s.tmp", t->status_path) < 0)
                return -ENOMEM;
        f = fopen(tmp, "we");
        if (!f)
                return -errno;
        fprintf(f, "capability %u\nsize %" PRIu64 "\ntotal %u\nfree %u\nin_use %u\nallocations %" PRIu64
                "\nenomem %" PRIu64 "\n", t->capability, t->size, t->count, t->count - t->in_use, t->in_use,
                t->allocations, t->enomem);
        if (ferror(f))
                r = -EIO;
        if (fclose(f) != 0 && r == 0)
                r = -errno;
        if (r == 0 && rename(tmp, t->status_path) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlink(tmp);
                fprintf(stderr, PREFIX "cannot write %s: %s\n", t->status_path, strerror(-r));
        }
        t->dirty = false;
        return r;
}

/* The kernel's own count: a write lease is refused while any other open file of the
 * inode exists, and that includes files kept by a mapping and fds in flight in an
 * SCM_RIGHTS message, which no /proc scan sees. 1 held, 0 not, <0 cannot tell. */
static int region_lease_held(Tool *t, const Region *r) {
        if (!t->leases)
                return -EOPNOTSUPP;
        if (fcntl(r->fd, F_SETLEASE, F_WRLCK) < 0) {
                if (errno == EAGAIN)
                        return 1;
                fprintf(stderr, PREFIX "F_SETLEASE: %m; asking /proc alone whether a region is held\n");
                t->leases = false;
                return -EOPNOTSUPP;
        }
        (void) fcntl(r->fd, F_SETLEASE, F_UNLCK);
        return 0;
}

/* The lease test leans on how the kernel counts open files (i_writecount), so check once
 * that it sees a second file of a region come and go, rather than trust it. */
static void leases_calibrate(Tool *t) {
        _cleanup_close_ int other = -EBADF;
        Region *r = &t->regions[0];

        if (t->count == 0 || region_lease_held(t, r) != 0)
                goto off;
        other = reopen_region_fd(r->fd);
        if (other < 0 || region_lease_held(t, r) != 1)
                goto off;
        other = safe_close(other);
        if (region_lease_held(t, r) != 0)
                goto off;
        return;
off:
        if (t->count > 0 && t->leases)
                fprintf(stderr, PREFIX "write leases do not count a region's open files here; "
                        "asking /proc alone whether a region is held\n");
        t->leases = false;
}

static Region *region_by_inode(Tool *t, dev_t dev, ino_t ino) {
        for (unsigned i = 0; i < t->count; i++)
                if (t->regions[i].ino == ino && t->regions[i].dev == dev)
                        return &t->regions[i];
        return NULL;
}

static void mark_held(Tool *t, bool *held, dev_t dev, ino_t ino) {
        Region *r = region_by_inode(t, dev, ino);

        if (r)
                held[r - t->regions] = true;
}

/* Every fd of PID naming a region. Only fds whose link names one are stat()ed, so a
 * hung FUSE file elsewhere cannot block the tool. */
static int scan_fds(Tool *t, int procfd, long pid, bool *held) {
        _cleanup_close_ int fdfd = -EBADF;
        char link[256], path[64];
        struct dirent *de;
        DIR *d;

        snprintf(path, sizeof(path), "%ld/fd", pid);
        fdfd = openat(procfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fdfd < 0)
                return -errno;
        d = fdopendir(fdfd);
        if (!d)
                return -errno;
        fdfd = -EBADF;   /* now d's */
        while ((de = readdir(d))) {
                struct stat st;
                ssize_t n;

                if (de->d_name[0] == '.')
                        continue;
                n = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
                if (n < 0)
                        continue;   /* closed meanwhile */
                link[n] = '\0';
                if (strncmp(link, "/memfd:" REGION_NAME, strlen("/memfd:" REGION_NAME)) != 0)
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, 0) == 0)
                        mark_held(t, held, st.st_dev, st.st_ino);
        }
        closedir(d);
        return 0;
}

/* Every mapping of a region in PID: the maps line's dev column is major:minor in hex. */
static int scan_maps(Tool *t, int procfd, long pid, bool *held) {
        g_autofree char *line = NULL;
        char path[64];
        size_t len = 0;
        FILE *f;
        int fd;

        snprintf(path, sizeof(path), "%ld/maps", pid);
        fd = openat(procfd, path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        f = fdopen(fd, "r");
        if (!f) {
                safe_close(fd);
                return -ENOMEM;
        }
        while (getline(&line, &len, f) > 0) {
                unsigned maj, min;
                unsigned long long ino;

                if (!strstr(line, "/memfd:" REGION_NAME))
                        continue;
                if (sscanf(line, "%*x-%*x %*s %*x %x:%x %llu", &maj, &min, &ino) == 3)
                        mark_held(t, held, makedev(maj, min), (ino_t) ino);
        }
        fclose(f);
        return 0;
}

/* Marks in held[] every region some process other than this tool has open or mapped.
 * Processes that exit mid-scan are skipped; ones this tool may not read are counted. */
static void scan_proc(Tool *t, bool *held) {
        struct dirent *de;
        unsigned unreadable = 0;
        DIR *d;

        d = opendir("/proc");
        if (!d) {
                fprintf(stderr, PREFIX "cannot read /proc: %m\n");
                return;
        }
        while ((de = readdir(d))) {
                char *end;
                long pid = strtol(de->d_name, &end, 10);
                int r;

                if (*end != '\0' || pid <= 0 || pid == t->self)
                        continue;
                r = scan_fds(t, dirfd(d), pid, held);
                if (r == -EACCES || r == -EPERM)
                        unreadable++;
                r = scan_maps(t, dirfd(d), pid, held);
                if (r == -EACCES || r == -EPERM)
                        unreadable++;
        }
        closedir(d);
        if (unreadable != t->unreadable)
                log_verbose(t, "%u /proc entries unreadable: a holder there is missed", unreadable);
        t->unreadable = unreadable;
}

static void region_release(Tool *t, Region *r) {
        r->in_use = false;
        r->freed_seq = ++t->seq;
        t->in_use--;
        t->dirty = true;
        log_verbose(t, "region %td back in the pool (last tenant pid %d); %u free", r - t->regions, (int) r->tenant,
                t->count - t->in_use);
}

/* Return to the pool every region in use that nobody else holds any more. */
static void reclaim(Tool *t) {
        g_autofree bool *held = NULL;
        bool any = false;

        if (t->in_use == 0)
                return;
        held = calloc(t->count, sizeof(bool));
        if (!held)
                return;
        /* The lease test is cheap and sees more than /proc; scan only if it lets one go. */
        for (unsigned i = 0; i < t->count; i++) {
                if (!t->regions[i].in_use)
                        held[i] = true;   /* not a candidate */
                else if (region_lease_held(t, &t->regions[i]) == 1)
                        held[i] = true;
                else
                        any = true;
        }
        if (!any)
                return;
        scan_proc(t, held);
        for (unsigned i = 0; i < t->count; i++)
                if (!held[i])
                        region_release(t, &t->regions[i]);
}

static Region *pick_free(Tool *t) {
        Region *best = NULL;

        for (unsigned i = 0; i < t->count; i++)
                if (!t->regions[i].in_use && (!best || t->regions[i].freed_seq < best->freed_seq))
                        best = &t->regions[i];
        return best;
}

typedef enum FdKind {
        FD_OTHER,
        FD_KVM_SYSTEM,   /* the /dev/kvm stand-in */
        FD_KVM_VM,       /* the KVM_CREATE_VM stand-in */
} FdKind;

/* Which stand-in, if any, the caller's fd is: told by its inode, not its name. */
static FdKind caller_fd_kind(const Tool *t, pid_t pid, uint64_t fd) {
        char path[64];
        struct stat st;

        if (fd > INT_MAX)
                return FD_OTHER;
        snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int) pid, (int) fd);
        if (stat(path, &st) < 0)
                return FD_OTHER;
        if (st.st_dev == t->kvm.dev && st.st_ino == t->kvm.ino)
                return FD_KVM_SYSTEM;
        if (st.st_dev == t->vm.dev && st.st_ino == t->vm.ino)
                return FD_KVM_VM;
        return FD_OTHER;
}

static bool notif_valid(int listener, uint64_t id) {
        return ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

static void respond(int listener, struct seccomp_notif_resp *resp) {
        /* ENOENT: the caller died or a signal took it out of the syscall. */
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, resp) < 0 && errno != ENOENT)
                fprintf(stderr, PREFIX "SECCOMP_IOCTL_NOTIF_SEND: %m\n");
}

/* Read up to size bytes at addr in the blocked caller: the number read, or -errno.
 * -ENOENT: the caller is no longer the one that made the request. */
static ssize_t read_caller(int listener, const struct seccomp_notif *req, uint64_t addr, void *buf, size_t size) {
        _cleanup_close_ int mem = -EBADF;
        char path[64];
        ssize_t n;
        int saved;

        if (addr > (uint64_t) INT64_MAX - size)
                return -EFAULT;
        snprintf(path, sizeof(path), "/proc/%d/mem", (int) req->pid);
        mem = open(path, O_RDONLY | O_CLOEXEC);
        saved = errno;
        if (!notif_valid(listener, req->id))
                return -ENOENT;
        if (mem < 0)
                return -saved;
        n = pread(mem, buf, size, (off_t) addr);
        return n < 0 ? -errno : n;
}

/* Is the path the caller asked to open exactly "/dev/kvm"? 1, 0, or -ENOENT. */
static int caller_opens_dev_kvm(int listener, const struct seccomp_notif *req, uint64_t addr) {
        char path[sizeof(DEV_KVM) + 1];
        ssize_t n = read_caller(listener, req, addr, path, sizeof(path));

        if (n == -ENOENT)
                return -ENOENT;
        /* A string that ends at a page boundary reads short: it is not "/dev/kvm" then
         * unless all of it came back, NUL included. */
        if (n < (ssize_t) sizeof(DEV_KVM))
                return 0;
        return memcmp(path, DEV_KVM, sizeof(DEV_KVM)) == 0;
}

/* Write rma_size into the caller's struct; *old keeps what was there, to put back if no
 * fd can be installed (the kernel wrote the struct only with an fd). */
static int write_rma_size(int listener, const struct seccomp_notif *req, uint64_t size, uint64_t *old) {
        _cleanup_close_ int mem = -EBADF;
        char path[64];
        off_t addr;
        int saved;

        if (req->data.args[2] > (uint64_t) INT64_MAX - sizeof(size))
                return -EFAULT;
        addr = (off_t) req->data.args[2];
        snprintf(path, sizeof(path), "/proc/%d/mem", (int) req->pid);
        mem = open(path, O_RDWR | O_CLOEXEC);
        saved = errno;
        /* The pid may have been reused between RECV and open: the id says whether it is
         * still the same blocked caller. */
        if (!notif_valid(listener, req->id))
                return -ENOENT;
        if (mem < 0)
                return -saved;
        if (pread(mem, old, sizeof(*old), addr) != (ssize_t) sizeof(*old))
                return -EFAULT;
        if (pwrite(mem, &size, sizeof(size), addr) != (ssize_t) sizeof(size))
                return -EFAULT;
        return 0;
}

static void restore_rma_size(const struct seccomp_notif *req, uint64_t old) {
        _cleanup_close_ int mem = -EBADF;
        char path[64];

        snprintf(path, sizeof(path), "/proc/%d/mem", (int) req->pid);
        mem = open(path, O_RDWR | O_CLOEXEC);
        /* Best effort: the caller gets an error anyway. */
        if (mem >= 0 && pwrite(mem, &old, sizeof(old), (off_t) req->data.args[2]) != (ssize_t) sizeof(old))
                fprintf(stderr, PREFIX "cannot restore rma_size in pid %d: %m\n", (int) req->pid);
}

/* Install srcfd in the caller and answer its syscall with the new number, atomically.
 * The new fd, or -errno (-ENOENT: the caller is gone, nothing left to answer; any other:
 * the notification is still the caller's to answer). */
static int answer_with_fd(int listener, const struct seccomp_notif *req, int srcfd, unsigned flags) {
        struct seccomp_notif_addfd addfd = {
                .id = req->id,
                .flags = SECCOMP_ADDFD_FLAG_SEND,
                .srcfd = (__u32) srcfd,
                .newfd = 0,
                .newfd_flags = flags,
        };
        int newfd = ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &addfd);

        return newfd < 0 ? -errno : newfd;
}

static void answer_error(int listener, struct seccomp_notif_resp *resp, int error) {
        resp->error = -error;
        respond(listener, resp);
}

static void answer_continue(int listener, struct seccomp_notif_resp *resp) {
        resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        respond(listener, resp);
}

/* open(2), openat(2), openat2(2): only "/dev/kvm" is this tool's; the path and flags
 * are read from the caller. The CONTINUE for every other path is safe here: the caller
 * is the program under test, not an adversary racing its own memory. */
static void handle_open(Tool *t, int listener, const struct seccomp_notif *req, struct seccomp_notif_resp *resp) {
        uint64_t path_addr, flags;
        int r, newfd;

        if (req->data.nr == __NR_open) {
                path_addr = req->data.args[0];
                flags = req->data.args[1];
        } else {
                path_addr = req->data.args[1];
                flags = req->data.args[2];
        }
        r = caller_opens_dev_kvm(listener, req, path_addr);
        if (r == -ENOENT)
                return;
        if (r == 0) {
                answer_continue(listener, resp);
                return;
        }
        if (req->data.nr == __NR_openat2) {
                struct open_how_head { uint64_t flags; } how;   /* open_how starts with flags */
                if (read_caller(listener, req, req->data.args[2], &how, sizeof(how)) != (ssize_t) sizeof(how)) {
                        answer_error(listener, resp, EFAULT);
                        return;
                }
                flags = how.flags;
        }
        switch (t->dev_kvm) {
        case DEV_KVM_ABSENT:
                log_verbose(t, "pid %d: open(" DEV_KVM ") -> ENOENT (--dev-kvm absent)", (int) req->pid);
                answer_error(listener, resp, ENOENT);
                return;
        case DEV_KVM_DENIED:
                log_verbose(t, "pid %d: open(" DEV_KVM ") -> EACCES (--dev-kvm denied)", (int) req->pid);
                answer_error(listener, resp, EACCES);
                return;
        case DEV_KVM_PRESENT:
                break;
        }
        newfd = answer_with_fd(listener, req, t->kvm.fd, (flags & O_CLOEXEC) ? O_CLOEXEC : 0);
        if (newfd == -ENOENT)
                return;
        if (newfd < 0) {
                answer_error(listener, resp, -newfd);
                return;
        }
        log_verbose(t, "pid %d: open(" DEV_KVM ") -> fd %d (the stand-in)", (int) req->pid, newfd);
}

/* KVM_CREATE_VM on the /dev/kvm stand-in: a VM stand-in, close-on-exec as the kernel's. */
static void handle_create_vm(Tool *t, int listener, const struct seccomp_notif *req, struct seccomp_notif_resp *resp) {
        int newfd = answer_with_fd(listener, req, t->vm.fd, O_CLOEXEC);

        if (newfd == -ENOENT)
                return;
        if (newfd < 0) {
                answer_error(listener, resp, -newfd);
                return;
        }
        log_verbose(t, "pid %d: KVM_CREATE_VM -> fd %d (the stand-in)", (int) req->pid, newfd);
}

static void handle_allocate(Tool *t, int listener, const struct seccomp_notif *req, struct seccomp_notif_resp *resp) {
        _cleanup_close_ int fd = -EBADF;
        Region *region;
        uint64_t old = 0;
        int r, newfd;

        region = pick_free(t);
        if (!region) {
                /* A tenant may have let one go since the last scan. */
                reclaim(t);
                region = pick_free(t);
        }
        if (!region) {
                t->enomem++;
                t->dirty = true;
                resp->error = -ENOMEM;
                log_verbose(t, "pid %d: KVM_ALLOCATE_RMA -> ENOMEM (all %u in use)", (int) req->pid, t->count);
                respond(listener, resp);
                return;
        }
        r = write_rma_size(listener, req, t->size, &old);
        if (r == -ENOENT)
                return;   /* the caller is gone; nothing to answer */
        if (r < 0) {
                resp->error = -EFAULT;
                log_verbose(t, "pid %d: KVM_ALLOCATE_RMA -> EFAULT (struct at 0x%llx: %s)", (int) req->pid,
                        (unsigned long long) req->data.args[2], strerror(-r));
                respond(listener, resp);
                return;
        }
        /* A file of its own per tenant, as anon_inode_getfd() made one per call: no
         * shared offset or status flags, and the lease test can count it. */
        fd = reopen_region_fd(region->fd);
        if (fd < 0) {
                fprintf(stderr, PREFIX "cannot reopen region %td: %s\n", region - t->regions, strerror(-fd));
                restore_rma_size(req, old);
                resp->error = -ENOMEM;
                respond(listener, resp);
                return;
        }
        /* No O_CLOEXEC: the 2011 kernel used anon_inode_getfd(..., O_RDWR). */
        newfd = answer_with_fd(listener, req, fd, 0);
        if (newfd < 0) {
                r = newfd;
                if (r == -ENOENT)
                        return;
                /* e.g. EMFILE in the caller: the notification is still ours to answer. */
                restore_rma_size(req, old);
                resp->error = r;
                log_verbose(t, "pid %d: KVM_ALLOCATE_RMA -> %s (installing the fd)", (int) req->pid, strerror(-r));
                respond(listener, resp);
                return;
        }
        region->in_use = true;
        region->tenant = req->pid;
        t->in_use++;
        t->allocations++;
        t->dirty = true;
        log_verbose(t, "pid %d: KVM_ALLOCATE_RMA -> fd %d, rma_size %" PRIu64 " (region %td; %u free)", (int) req->pid,
                newfd, t->size, region - t->regions, t->count - t->in_use);
}

static void handle_ioctl(Tool *t, int listener, const struct seccomp_notif *req, struct seccomp_notif_resp *resp) {
        uint32_t cmd = (uint32_t) req->data.args[1];
        FdKind kind = caller_fd_kind(t, req->pid, req->data.args[0]);

        if (!notif_valid(listener, req->id))
                return;
        if (cmd == KVM_CHECK_EXTENSION && kind != FD_OTHER) {
                resp->val = req->data.args[2] == FAKE_KVM_CAP_PPC_RMA ? t->capability : 0;
                log_verbose(t, "pid %d: KVM_CHECK_EXTENSION(%llu) -> %lld", (int) req->pid,
                        (unsigned long long) req->data.args[2], (long long) resp->val);
                respond(listener, resp);
        } else if (cmd == KVM_CREATE_VM && kind == FD_KVM_SYSTEM) {
                handle_create_vm(t, listener, req, resp);
        } else if (cmd == FAKE_KVM_ALLOCATE_RMA && kind == FD_KVM_VM) {
                handle_allocate(t, listener, req, resp);
        } else {
                /* Not one of ours: the real kernel answers (EBADF, ENOTTY, ...). */
                log_verbose(t, "pid %d: ioctl 0x%x on fd %lld: left to the real kernel", (int) req->pid, cmd,
                        (long long) req->data.args[0]);
                answer_continue(listener, resp);
        }
}

static void handle_notification(Tool *t, int listener) {
        struct seccomp_notif req;
        struct seccomp_notif_resp resp;

        memset(&req, 0, sizeof(req));
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) {
                /* ENOENT: the caller was interrupted before we got to it. */
                if (errno != ENOENT && errno != EINTR)
                        fprintf(stderr, PREFIX "SECCOMP_IOCTL_NOTIF_RECV: %m\n");
                return;
        }
        memset(&resp, 0, sizeof(resp));
        resp.id = req.id;

        if (req.data.nr == __NR_ioctl)
                handle_ioctl(t, listener, &req, &resp);
        else
                handle_open(t, listener, &req, &resp);
}

/* Every open(2), openat(2) and openat2(2) (to catch "/dev/kvm"), and ioctl(2) with
 * KVM_CHECK_EXTENSION, KVM_CREATE_VM or KVM_ALLOCATE_RMA go to the listener; everything
 * else runs. The kernel reads cmd as an unsigned int, hence the low word. */
static int install_filter(void) {
        struct sock_filter prog[] = {
                /* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
                /* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 10),
                /* 2 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                /* 3 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_open, 7, 0),
                /* 4 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat, 6, 0),
                /* 5 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat2, 5, 0),
                /* 6 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 0, 5),
                /* 7 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
                /* 8 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, FAKE_KVM_ALLOCATE_RMA, 2, 0),
                /* 9 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, KVM_CHECK_EXTENSION, 1, 0),
                /* 10 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, KVM_CREATE_VM, 0, 1),
                /* 11 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
                /* 12 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog fprog = { .len = (unsigned short) ELEMENTSOF(prog), .filter = prog };
        long fd;

        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -errno;
        fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &fprog);
        return fd < 0 ? -errno : (int) fd;
}

static int send_fd(int sock, int fd) {
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int))];
        } control;
        char byte = 0;
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                             .msg_controllen = sizeof(control.buf) };
        struct cmsghdr *c;

        memset(&control, 0, sizeof(control));
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
        return sendmsg(sock, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

static int recv_fd(int sock) {
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int))];
        } control;
        char byte;
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                             .msg_controllen = sizeof(control.buf) };
        struct cmsghdr *c;
        ssize_t n;
        int fd;

        do
                n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        c = CMSG_FIRSTHDR(&mh);
        if (n == 0 || !c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
            c->cmsg_len != CMSG_LEN(sizeof(int)))
                return -EBADMSG;   /* the child failed before sending it */
        memcpy(&fd, CMSG_DATA(c), sizeof(int));
        return fd;
}

static _Noreturn void run_child(int sock, const sigset_t *oldmask, char **argv) {
        int listener, r;

        listener = install_filter();
        if (listener < 0) {
                fprintf(stderr, PREFIX "installing the seccomp filter: %s\n", strerror(-listener));
                _exit(126);
        }
        r = send_fd(sock, listener);
        if (r < 0) {
                fprintf(stderr, PREFIX "passing the listener: %s\n", strerror(-r));
                _exit(126);
        }
        /* PROGRAM must not hold the listener it is judged by. */
        safe_close(listener);
        safe_close(sock);
        (void) signal(SIGIO, SIG_DFL);   /* an ignored signal would stay ignored across exec */
        (void) sigprocmask(SIG_SETMASK, oldmask, NULL);
        execvp(argv[0], argv);
        fprintf(stderr, PREFIX "exec %s: %m\n", argv[0]);
        _exit(127);
}

static int exit_status(int status) {
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        if (WIFSIGNALED(status))
                return 128 + WTERMSIG(status);
        return 1;
}

static _Noreturn void usage(const char *argv0, int code) {
        fprintf(code == 0 ? stdout : stderr,
                "usage: %s --count N --size SIZE[K|M|G] [--capability 0|1|2] [--dev-kvm present|absent|denied]\n"
                "       [--status-file PATH] [--verbose] -- PROGRAM [ARGS...]\n"
                "Runs PROGRAM with open(\"/dev/kvm\"), KVM_CHECK_EXTENSION, KVM_CREATE_VM and KVM_ALLOCATE_RMA\n"
                "answered as a POWER kernel with a pool of N RMAs of SIZE bytes would answer them, whether\n"
                "or not this host has KVM.\n", argv0);
        exit(code);
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "count", required_argument, NULL, 'n' },
                { "size", required_argument, NULL, 's' },
                { "capability", required_argument, NULL, 'c' },
                { "dev-kvm", required_argument, NULL, 'd' },
                { "status-file", required_argument, NULL, 'f' },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        Tool tool = { .capability = 2, .leases = true };
        Tool *t = &tool;
        _cleanup_close_ int listener = -EBADF, sigfd = -EBADF;
        g_autofree Region *regions = NULL;   /* their fds die with the tool */
        int sv[2], c, r, status;
        bool have_count = false;
        sigset_t mask, oldmask;
        uint64_t next_scan = 0;
        pid_t child;

        while ((c = getopt_long(argc, argv, "+n:s:c:d:f:vh", options, NULL)) >= 0) {
                switch (c) {
                case 'n':
                        if (parse_unsigned(optarg, MAX_COUNT, &t->count) < 0)
                                usage(argv[0], 2);
                        have_count = true;
                        break;
                case 's':
                        if (parse_size(optarg, &t->size) < 0)
                                usage(argv[0], 2);
                        break;
                case 'c':
                        if (parse_unsigned(optarg, 2, &t->capability) < 0)
                                usage(argv[0], 2);
                        break;
                case 'd':
                        if (strcmp(optarg, "present") == 0)
                                t->dev_kvm = DEV_KVM_PRESENT;
                        else if (strcmp(optarg, "absent") == 0)
                                t->dev_kvm = DEV_KVM_ABSENT;
                        else if (strcmp(optarg, "denied") == 0)
                                t->dev_kvm = DEV_KVM_DENIED;
                        else
                                usage(argv[0], 2);
                        break;
                case 'f':
                        t->status_path = optarg;
                        break;
                case 'v':
                        t->verbose = true;
                        break;
                case 'h':
                        usage(argv[0], 0);
                default:
                        usage(argv[0], 2);
                }
        }
        if (!have_count || t->size == 0 || optind >= argc)
                usage(argv[0], 2);

        t->self = getpid();
        if (standin_create(&t->kvm, STANDIN_NAME) < 0 || standin_create(&t->vm, STANDIN_NAME "-vm") < 0) {
                fprintf(stderr, PREFIX "creating the /dev/kvm stand-ins: %m\n");
                return 1;
        }
        regions = calloc(t->count ? t->count : 1, sizeof(Region));
        if (!regions)
                return 1;
        t->regions = regions;
        for (unsigned i = 0; i < t->count; i++) {
                r = region_create(&t->regions[i], t->size);
                if (r < 0) {
                        fprintf(stderr, PREFIX "creating region %u of %" PRIu64 " bytes: %s\n", i, t->size, strerror(-r));
                        return 1;
                }
                t->regions[i].freed_seq = ++t->seq;
        }
        /* A lease break (someone opening a region while we test it) signals SIGIO. */
        (void) signal(SIGIO, SIG_IGN);
        leases_calibrate(t);
        (void) write_status(t);

        /* Signals arrive through the signalfd; the child gets the old mask back. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &mask, &oldmask) < 0)
                return 1;
        sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (sigfd < 0 || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
                fprintf(stderr, PREFIX "setup: %m\n");
                return 1;
        }
        child = fork();
        if (child < 0) {
                fprintf(stderr, PREFIX "fork: %m\n");
                return 1;
        }
        if (child == 0) {
                safe_close(sv[0]);
                run_child(sv[1], &oldmask, argv + optind);
        }
        safe_close(sv[1]);
        listener = recv_fd(sv[0]);
        safe_close(sv[0]);
        if (listener < 0) {
                while (waitpid(child, &status, 0) < 0)
                        if (errno != EINTR)
                                return 1;
                return exit_status(status);
        }

        for (;;) {
                struct pollfd p[2] = {
                        { .fd = sigfd, .events = POLLIN },
                        { .fd = listener, .events = POLLIN },
                };
                int timeout = -1;

                if (t->in_use > 0) {
                        uint64_t now = now_msec();

                        if (now >= next_scan) {
                                reclaim(t);
                                next_scan = now + RESCAN_MSEC;
                        }
                        timeout = t->in_use > 0 ? (int) (next_scan - now) : -1;
                }
                if (t->dirty)
                        (void) write_status(t);

                r = poll(p, 2, timeout);
                if (r < 0 && errno != EINTR) {
                        fprintf(stderr, PREFIX "poll: %m\n");
                        (void) kill(child, SIGKILL);
                        (void) waitpid(child, NULL, 0);
                        return 1;
                }
                if (p[0].revents & POLLIN) {
                        struct signalfd_siginfo si;

                        while (read(sigfd, &si, sizeof(si)) == (ssize_t) sizeof(si)) {
                                if (si.ssi_signo != SIGCHLD) {
                                        log_verbose(t, "forwarding signal %u to pid %d", si.ssi_signo, (int) child);
                                        (void) kill(child, (int) si.ssi_signo);
                                        continue;
                                }
                                if (waitpid(child, &status, WNOHANG) == child) {
                                        /* Its fds closed before it was reaped: the count is final. */
                                        reclaim(t);
                                        (void) write_status(t);
                                        log_verbose(t, "pid %d exited with %d", (int) child, exit_status(status));
                                        return exit_status(status);
                                }
                        }
                }
                if (p[1].revents & POLLIN)
                        handle_notification(t, listener);
                else if (p[1].revents & (POLLHUP | POLLERR))
                        listener = safe_close(listener);   /* no filtered task left; poll ignores -1 */
        }
}
