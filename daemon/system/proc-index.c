/* One pass over /proc: every region-like fd and mapping of every process, by inode. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "cleanup.h"
#include "proc-index.h"

#define MEMFD_LINK_PREFIX "/memfd:"
#define KVM_RMA_LINK "anon_inode:kvm-rma"

static char *inode_key(uint64_t dev, uint64_t ino) {
        return g_strdup_printf("%" G_GUINT64_FORMAT ":%" G_GUINT64_FORMAT, dev, ino);
}

/* The slot a memfd's name claims ("/memfd:rma-broker-slot-N"), or -1. Anyone can choose
 * a name: it only says where to look for a mark. */
static int named_slot(const char *link) {
        const char *name = strstr(link, MEMFD_LINK_PREFIX "rma-broker-slot-");
        unsigned slot;

        if (!name || sscanf(name + strlen(MEMFD_LINK_PREFIX "rma-broker-slot-"), "%u", &slot) != 1 ||
            slot > INT32_MAX)
                return -1;
        return (int) slot;
}

static void add(ProcIndex *x, const ProcHolder *h) {
        g_autofree char *key = inode_key(h->dev, h->ino);
        GPtrArray *list = g_hash_table_lookup(x->by_inode, key);

        if (!list) {
                list = g_ptr_array_new();
                g_hash_table_insert(x->by_inode, g_steal_pointer(&key), list);
        }
        g_array_append_val(x->holders, *h);
        g_ptr_array_add(list, GUINT_TO_POINTER(x->holders->len - 1));
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
                ssize_t n;

                if (de->d_name[0] == '.')
                        continue;
                n = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
                if (n <= 0)
                        continue;
                link[n] = '\0';
                if (!g_str_has_prefix(link, MEMFD_LINK_PREFIX) && !g_str_equal(link, KVM_RMA_LINK))
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, 0) < 0)
                        continue;   /* closed meanwhile */
                add(x, &(ProcHolder) { .pid = pid, .fdnum = atoi(de->d_name), .dev = st.st_dev, .ino = st.st_ino,
                                       .kvm_rma = g_str_equal(link, KVM_RMA_LINK), .named_slot = named_slot(link) });
        }
        closedir(d);
}

static void scan_maps(ProcIndex *x, int procfd, pid_t pid) {
        char path[32];
        g_autofree char *line = NULL;
        size_t len = 0;
        FILE *f;
        int fd;

        snprintf(path, sizeof(path), "%d/maps", (int) pid);
        fd = openat(procfd, path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return;
        f = fdopen(fd, "re");
        if (!f) {
                safe_close(fd);
                return;
        }
        while (getline(&line, &len, f) > 0) {
                unsigned long long start, end, inode;
                unsigned maj, min;

                if (!strstr(line, " " MEMFD_LINK_PREFIX) ||
                    sscanf(line, "%llx-%llx %*s %*x %x:%x %llu", &start, &end, &maj, &min, &inode) != 5)
                        continue;
                add(x, &(ProcHolder) { .pid = pid, .fdnum = -1, .map_start = start, .map_end = end,
                                       .dev = makedev(maj, min), .ino = inode, .named_slot = named_slot(line) });
        }
        fclose(f);
}

ProcIndex *proc_index_new(pid_t exclude_pid) {
        ProcIndex *x = g_new0(ProcIndex, 1);
        struct dirent *de;
        DIR *d;

        x->holders = g_array_new(FALSE, FALSE, sizeof(ProcHolder));
        x->by_inode = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_ptr_array_unref);
        d = opendir("/proc");
        if (!d)
                return x;
        while ((de = readdir(d))) {
                char *end;
                long pid = strtol(de->d_name, &end, 10);

                if (*end || pid <= 0 || pid == exclude_pid)
                        continue;
                scan_fds(x, dirfd(d), (pid_t) pid);
                scan_maps(x, dirfd(d), (pid_t) pid);
        }
        closedir(d);
        return x;
}

ProcIndex *proc_index_free(ProcIndex *x) {
        if (!x)
                return NULL;
        g_array_free(x->holders, TRUE);
        g_hash_table_destroy(x->by_inode);
        g_free(x);
        return NULL;
}

const ProcHolder *proc_index_find(const ProcIndex *x, uint64_t dev, uint64_t ino, pid_t pid) {
        g_autofree char *key = inode_key(dev, ino);
        GPtrArray *list = g_hash_table_lookup(x->by_inode, key);
        const ProcHolder *mapping = NULL;

        for (guint i = 0; list && i < list->len; i++) {
                const ProcHolder *h = &g_array_index(x->holders, ProcHolder, GPOINTER_TO_UINT(list->pdata[i]));
                if (pid > 0 && h->pid != pid)
                        continue;
                if (h->fdnum >= 0)
                        return h;
                if (!mapping)
                        mapping = h;
        }
        return mapping;
}

char *proc_holder_path(const ProcHolder *h) {
        if (h->fdnum >= 0)
                return g_strdup_printf("/proc/%d/fd/%d", (int) h->pid, h->fdnum);
        return g_strdup_printf("/proc/%d/map_files/%" G_GINT64_MODIFIER "x-%" G_GINT64_MODIFIER "x", (int) h->pid,
                               h->map_start, h->map_end);
}
