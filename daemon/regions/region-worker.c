/* Region work on a worker thread, reported back to the event loop through an eventfd. */
#include <errno.h>
#include <glib.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "region-worker.h"

/* What the thread is asked: a RegionJob, or to stop. */
#define JOB_STOP ((RegionJob) -1)

typedef struct Job {
        RegionJob kind;
        unsigned slot_index;
        int fd;              /* old region to close, or -EBADF */
        int result;          /* filled in by the worker */
} Job;

struct RegionWorker {
        Backend *backend;    /* not owned */
        GAsyncQueue *jobs;
        GAsyncQueue *results;
        GThread *worker;
        int wake_fd;         /* eventfd: the worker counts results in, the loop drains */
        sd_event_source *wake_source;
        RegionJobDoneFn done;
        void *userdata;
};

static gpointer worker_main(gpointer data) {
        RegionWorker *r = data;

        for (;;) {
                Job *job = g_async_queue_pop(r->jobs);
                uint64_t one = 1;

                if (job->kind == JOB_STOP) {
                        g_free(job);
                        return NULL;
                }
                job->fd = safe_close(job->fd);
                job->result = 0;
                if (job->kind == REGION_JOB_REFILL) {
                        int fd = -EBADF, k = backend_new_region(r->backend, job->slot_index, &fd);
                        job->result = k < 0 ? k : fd;
                }
                g_async_queue_push(r->results, job);
                /* An eventfd write only fails at a counter of 2^64 - 1. */
                if (write(r->wake_fd, &one, sizeof(one)) < 0)
                        log_debug_errno(errno, "Cannot wake the event loop: %m");
        }
}

static int on_wake(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        RegionWorker *r = userdata;
        uint64_t n;
        Job *job;

        if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
                return log_error_errno(errno, "Reading the region worker's eventfd failed: %m");
        while ((job = g_async_queue_try_pop(r->results))) {
                Job done = *job;
                g_free(job);
                r->done(done.slot_index, done.kind, done.result, r->userdata);
        }
        return 0;
}

int region_worker_new(sd_event *event, Backend *backend, RegionJobDoneFn done, void *userdata, RegionWorker **ret) {
        g_autoptr(RegionWorker) r = g_new0(RegionWorker, 1);
        sigset_t all, old;
        int k;

        r->backend = backend;
        r->done = done;
        r->userdata = userdata;
        r->jobs = g_async_queue_new();
        r->results = g_async_queue_new();
        r->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);   /* first: the cleanup closes it */
        if (r->wake_fd < 0)
                return -errno;
        k = sd_event_add_io(event, &r->wake_source, r->wake_fd, EPOLLIN, on_wake, r);
        if (k < 0)
                return k;
        /* The worker inherits a mask that blocks every signal: SIGTERM and SIGHUP must
         * reach the event loop's signalfd, never this thread. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r->worker = g_thread_new("rma-regions", worker_main, r);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        *ret = g_steal_pointer(&r);
        return 0;
}

static void submit(RegionWorker *r, RegionJob kind, unsigned slot_index, int fd) {
        Job *job = g_new0(Job, 1);

        job->kind = kind;
        job->slot_index = slot_index;
        job->fd = fd;
        g_async_queue_push(r->jobs, job);
}

RegionWorker *region_worker_free(RegionWorker *r) {
        Job *job;

        if (!r)
                return NULL;
        if (r->worker) {
                submit(r, JOB_STOP, 0, -EBADF);
                g_thread_join(r->worker);
        }
        /* Results nobody will take: their fresh regions go back to the host. */
        while (r->results && (job = g_async_queue_try_pop(r->results))) {
                if (job->kind == REGION_JOB_REFILL && job->result >= 0)
                        safe_close(job->result);
                g_free(job);
        }
        g_clear_pointer(&r->jobs, g_async_queue_unref);
        g_clear_pointer(&r->results, g_async_queue_unref);
        r->wake_source = sd_event_source_disable_unref(r->wake_source);
        safe_close(r->wake_fd);
        g_free(r);
        return NULL;
}

void region_worker_close(RegionWorker *r, unsigned slot_index, int fd) {
        submit(r, REGION_JOB_CLOSE, slot_index, fd);
}

void region_worker_refill(RegionWorker *r, unsigned slot_index, int old_fd) {
        submit(r, REGION_JOB_REFILL, slot_index, old_fd);
}
