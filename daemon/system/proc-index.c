/* One pass over /proc: every region-like fd and mapping of every process, by inode. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cleanup.h"
#include "proc-index.h"

/* Every region of the broker's is a memfd it named so (memfd, hugetlb), or a kvm RMA:
 * anything else in /proc is passed over without a stat. The name is anyone's to give. */
#define REGION_LINK_PREFIX "/memfd:rma-broker-slot-"
#define KVM_RMA_LINK "anon_inode:kvm-rma"
/* Room for many lines of /proc/PID/maps at once (its read size sets how many syscalls the
 * kernel's text takes), and for the longest line: a path of PATH_MAX and the fields. */
#define MAPS_BUFFER_SIZE (64 * 1024)

/* The slot a region's name claims (path: "/memfd:rma-broker-slot-N (deleted)"), or -1. */
static int named_slot(const char *path) {
        const char *digits = path + strlen(REGION_LINK_PREFIX);
        unsigned long slot;
        char *end;

        if (!g_str_has_prefix(path, REGION_LINK_PREFIX) || !g_ascii_isdigit(*digits))
                return -1;
        errno = 0;
        slot = strtoul(digits, &end, 10);
        if (errno != 0 || slot > INT32_MAX)
                return -1;
        return (int) slot;
}

static void scan_fds(ProcIndex *x, int procfd, pid_t pid) {
        char path[32];
        _cleanup_close_ int fd = -EBADF;
        struct dirent *de;
        DIR *d;

        snprintf(path, sizeof(path), "%d/fd", (int) pid);
        fd = openat(procfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return;
        d = fdopendir(fd);
        if (!d)
                return;
        fd = -EBADF;   /* d's now */
        while ((de = readdir(d))) {
                char link[128];
                struct stat st;
                bool kvm_rma;
                ssize_t n;

                if (de->d_name[0] == '.')
                        continue;
                n = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
                if (n <= 0)
                        continue;
                link[n] = '\0';
                kvm_rma = g_str_equal(link, KVM_RMA_LINK);
                if (!kvm_rma && !g_str_has_prefix(link, REGION_LINK_PREFIX))
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, 0) < 0)
                        continue;   /* closed meanwhile */
                g_array_append_val(x->holders, ((ProcHolder) { .pid = pid, .fdnum = atoi(de->d_name),
                                                               .dev = st.st_dev, .ino = st.st_ino, .kvm_rma = kvm_rma,
                                                               .named_slot = kvm_rma ? -1 : named_slot(link) }));
        }
        closedir(d);
}

/* One line of /proc/PID/maps (NUL-terminated), if it maps a region-like memfd. Its path
 * is at its first '/' (the fields before it have none); most lines are passed over there. */
static void add_mapping(ProcIndex *x, pid_t pid, const char *line) {
        const char *path = strchr(line, '/');
        unsigned long long start, end, inode;
        unsigned maj, min;

        if (!path || !g_str_has_prefix(path, REGION_LINK_PREFIX) ||
            sscanf(line, "%llx-%llx %*s %*x %x:%x %llu", &start, &end, &maj, &min, &inode) != 5)
                return;
        g_array_append_val(x->holders, ((ProcHolder) { .pid = pid, .fdnum = -1, .map_start = start, .map_end = end,
                                                       .dev = makedev(maj, min), .ino = inode,
                                                       .named_slot = named_slot(path) }));
}

/* /proc/PID/maps in large reads (a FILE reads /proc in 1 KiB steps), line by line. */
static void scan_maps(ProcIndex *x, int procfd, pid_t pid, char *buf) {
        char path[32];
        _cleanup_close_ int fd = -EBADF;
        size_t have = 0;

        snprintf(path, sizeof(path), "%d/maps", (int) pid);
        fd = openat(procfd, path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return;
        for (;;) {
                ssize_t n = read(fd, buf + have, MAPS_BUFFER_SIZE - 1 - have);
                char *line = buf, *nl;

                if (n <= 0)
                        return;   /* the end (a last line has its '\n'), or the process is gone */
                have += (size_t) n;
                buf[have] = '\0';
                while ((nl = memchr(line, '\n', have - (size_t) (line - buf)))) {
                        *nl = '\0';
                        add_mapping(x, pid, line);
                        line = nl + 1;
                }
                have -= (size_t) (line - buf);
                if (have == MAPS_BUFFER_SIZE - 1)
                        return;   /* no line is that long */
                memmove(buf, line, have);
        }
}

/* Holders ordered by inode (an fd before a mapping, then /proc order), for lookups. */
static int compare_by_inode(const void *a, const void *b, void *userdata) {
        const ProcHolder *holders = userdata;
        const ProcHolder *x = &holders[*(const guint *) a], *y = &holders[*(const guint *) b];

        if (x->dev != y->dev)
                return x->dev < y->dev ? -1 : 1;
        if (x->ino != y->ino)
                return x->ino < y->ino ? -1 : 1;
        if ((x->fdnum >= 0) != (y->fdnum >= 0))
                return x->fdnum >= 0 ? -1 : 1;
        return *(const guint *) a < *(const guint *) b ? -1 : 1;
}

ProcIndex *proc_index_new(pid_t exclude_pid) {
        ProcIndex *x = g_new0(ProcIndex, 1);
        g_autofree char *buf = g_malloc(MAPS_BUFFER_SIZE);
        struct dirent *de;
        DIR *d;

        x->holders = g_array_new(FALSE, FALSE, sizeof(ProcHolder));
        x->by_inode = g_array_new(FALSE, FALSE, sizeof(guint));
        d = opendir("/proc");
        if (!d)
                return x;
        while ((de = readdir(d))) {
                char *end;
                long pid = strtol(de->d_name, &end, 10);

                if (*end || pid <= 0 || pid == exclude_pid)
                        continue;
                scan_fds(x, dirfd(d), (pid_t) pid);
                scan_maps(x, dirfd(d), (pid_t) pid, buf);
        }
        closedir(d);
        for (guint i = 0; i < x->holders->len; i++)
                g_array_append_val(x->by_inode, i);
        g_qsort_with_data(x->by_inode->data, (gint) x->by_inode->len, sizeof(guint), compare_by_inode,
                          x->holders->data);
        return x;
}

ProcIndex *proc_index_free(ProcIndex *x) {
        if (!x)
                return NULL;
        g_array_free(x->holders, TRUE);
        g_array_free(x->by_inode, TRUE);
        g_free(x);
        return NULL;
}

/* The first position in by_inode of a holder of dev:ino (or where it would be). */
static guint first_of_inode(const ProcIndex *x, uint64_t dev, uint64_t ino) {
        guint lo = 0, hi = x->by_inode->len;

        while (lo < hi) {
                guint mid = lo + (hi - lo) / 2;
                const ProcHolder *h = &g_array_index(x->holders, ProcHolder, g_array_index(x->by_inode, guint, mid));
                if (h->dev < dev || (h->dev == dev && h->ino < ino))
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

const ProcHolder *proc_index_find(const ProcIndex *x, uint64_t dev, uint64_t ino, pid_t pid) {
        for (guint k = first_of_inode(x, dev, ino); k < x->by_inode->len; k++) {
                const ProcHolder *h = &g_array_index(x->holders, ProcHolder, g_array_index(x->by_inode, guint, k));
                if (h->dev != dev || h->ino != ino)
                        break;
                if (pid <= 0 || h->pid == pid)
                        return h;   /* fds come first: one can be taken with pidfd_getfd */
        }
        return NULL;
}

char *proc_holder_path(const ProcHolder *h) {
        if (h->fdnum >= 0)
                return g_strdup_printf("/proc/%d/fd/%d", (int) h->pid, h->fdnum);
        return g_strdup_printf("/proc/%d/map_files/%" G_GINT64_MODIFIER "x-%" G_GINT64_MODIFIER "x", (int) h->pid,
                               h->map_start, h->map_end);
}
