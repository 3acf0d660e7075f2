/* A lease: a slot, the QEMU process that holds it, and the watch on its pidfd. */
#include <errno.h>
#include <poll.h>

#include "cleanup.h"
#include "lease.h"
#include "manager.h"

static int on_process_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Lease *l = userdata;

        manager_end_lease(l->manager, l->slot, LEASE_END_PROCESS_EXITED);   /* frees l */
        return 0;
}

int lease_new(Manager *m, Slot *slot, pid_t pid, int pidfd, Lease **ret) {
        Lease *l = g_new0(Lease, 1);
        int r;

        l->manager = m;
        l->slot = slot;
        l->pid = pid;
        l->pidfd = pidfd;
        r = sd_event_add_io(m->event, &l->exit_source, pidfd, EPOLLIN, on_process_exit, l);
        if (r < 0) {
                lease_free(l);
                return r;
        }
        *ret = l;
        return 0;
}

Lease *lease_free(Lease *l) {
        if (!l)
                return NULL;
        l->exit_source = sd_event_source_disable_unref(l->exit_source);
        l->pidfd = safe_close(l->pidfd);
        g_free(l);
        return NULL;
}

bool lease_holder_exited(const Lease *l) {
        struct pollfd p = { .fd = l->pidfd, .events = POLLIN };

        return poll(&p, 1, 0) > 0;
}
