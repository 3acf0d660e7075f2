/* Region teardown on a worker thread, reported back to the event loop through a pipe. */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "reclaim.h"

typedef struct Job {
        unsigned slot_index;
        int fd;              /* -1: stop the worker */
} Job;

struct Reclaimer {
        GAsyncQueue *jobs;
        GThread *worker;
        int done_pipe[2];    /* worker writes slot indices, the loop reads them */
        sd_event_source *done_source;
        ReclaimDoneFn done;
        void *userdata;
};

static gpointer worker_main(gpointer data) {
        Reclaimer *r = data;

        for (;;) {
                Job *job = g_async_queue_pop(r->jobs);
                uint32_t index = job->slot_index;
                bool stop = job->fd < 0;

                if (!stop)
                        safe_close(job->fd);
                g_free(job);
                if (stop)
                        return NULL;
                /* A pipe write of 4 bytes is atomic; the pipe holds 16k of them, more
                 * than the largest pool, so this never blocks for long. */
                while (write(r->done_pipe[1], &index, sizeof(index)) < 0 && errno == EINTR)
                        ;
        }
}

static int on_done(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Reclaimer *r = userdata;
        uint32_t indices[256];
        ssize_t n = read(fd, indices, sizeof(indices));

        for (ssize_t i = 0; i < n / (ssize_t) sizeof(uint32_t); i++)
                r->done(indices[i], r->userdata);
        return 0;
}

int reclaimer_new(sd_event *event, ReclaimDoneFn done, void *userdata, Reclaimer **ret) {
        Reclaimer *r = g_new0(Reclaimer, 1);
        sigset_t all, old;
        int k;

        r->done = done;
        r->userdata = userdata;
        r->done_pipe[0] = r->done_pipe[1] = -EBADF;
        if (pipe2(r->done_pipe, O_CLOEXEC) < 0) {
                k = -errno;
                goto fail;
        }
        (void) fcntl(r->done_pipe[0], F_SETFL, O_NONBLOCK);
        k = sd_event_add_io(event, &r->done_source, r->done_pipe[0], EPOLLIN, on_done, r);
        if (k < 0)
                goto fail;
        r->jobs = g_async_queue_new();
        /* The worker inherits a mask that blocks every signal: SIGTERM and SIGHUP must
         * reach the event loop's signalfd, never this thread. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r->worker = g_thread_new("rma-reclaim", worker_main, r);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        *ret = r;
        return 0;
fail:
        reclaimer_free(r);
        return k;
}

Reclaimer *reclaimer_free(Reclaimer *r) {
        if (!r)
                return NULL;
        if (r->worker) {
                Job *stop = g_new0(Job, 1);
                stop->fd = -1;
                g_async_queue_push(r->jobs, stop);
                g_thread_join(r->worker);
        }
        if (r->jobs)
                g_async_queue_unref(r->jobs);
        r->done_source = sd_event_source_disable_unref(r->done_source);
        safe_close(r->done_pipe[0]);
        safe_close(r->done_pipe[1]);
        g_free(r);
        return NULL;
}

void reclaimer_submit(Reclaimer *r, unsigned slot_index, int fd) {
        Job *job = g_new0(Job, 1);

        job->slot_index = slot_index;
        job->fd = fd;
        g_async_queue_push(r->jobs, job);
}
