/* Minimal leveled logging to stderr, journal-aware. */
#include <glib.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "log.h"

static const char *log_ident = "rma-broker";
static int log_max_level = LOG_INFO;
static int log_prefix_priority = -1;

static bool log_to_journal;

/* JOURNAL_STREAM=DEV:INO names the stream journald gave us; if it is still our stderr,
 * journald is there and takes the native protocol (systemd.exec(5)). */
static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

void log_setup(const char *ident) {
        const char *level = getenv("RMA_LOG_LEVEL");

        log_ident = ident;
        log_to_journal = stderr_is_journal();
        log_prefix_priority = getenv("JOURNAL_STREAM") != NULL;
        if (level && strcmp(level, "debug") == 0)
                log_max_level = LOG_DEBUG;
}

void log_set_max_level(int level) {
        log_max_level = level;
}

int log_get_max_level(void) {
        return log_max_level;
}

/* The native journal protocol: one datagram of FIELD=value items (sd_journal_sendv). */
static void journal_send(int level, const LogEvent *e, const char *message) {
        char fields[9][320];
        struct iovec iov[9];
        size_t n = 0;

#define FIELD(...)                                                                        \
        do {                                                                              \
                int _k = snprintf(fields[n], sizeof(fields[n]), __VA_ARGS__);             \
                iov[n].iov_base = fields[n];                                              \
                iov[n].iov_len = _k < 0 ? 0 : (size_t) _k < sizeof(fields[n]) ? (size_t) _k : sizeof(fields[n]) - 1; \
                n++;                                                                      \
        } while (0)
        FIELD("PRIORITY=%d", level & 7);
        FIELD("SYSLOG_IDENTIFIER=%s", log_ident);
        if (e) {
                if (e->message_id)
                        FIELD("MESSAGE_ID=%s", e->message_id);
                if (e->slot >= 0)
                        FIELD("RMA_SLOT=%d", e->slot);
                if (e->uuid)
                        FIELD("RMA_UUID=%s", e->uuid);
                if (e->domain)
                        FIELD("RMA_DOMAIN=%.255s", e->domain);
                if (e->tenant)
                        FIELD("RMA_TENANT=%.255s", e->tenant);
                if (e->pid > 0)
                        FIELD("RMA_PID=%d", e->pid);
                if (e->result)
                        FIELD("RMA_RESULT=%s", e->result);
        }
#undef FIELD
        {
                struct iovec all[10];
                g_autofree char *m = g_strconcat("MESSAGE=", message, NULL);
                memcpy(all, iov, n * sizeof(struct iovec));
                all[n].iov_base = m;
                all[n].iov_len = strlen(m);
                if (sd_journal_sendv(all, (int) n + 1) >= 0)
                        return;
        }
        /* journald went away: say it on stderr after all. */
        (void) !write(STDERR_FILENO, message, strlen(message));
        (void) !write(STDERR_FILENO, "\n", 1);
}

static void log_emit(int level, int error, const LogEvent *e, const char *fmt, va_list ap)
        __attribute__((format(printf, 4, 0)));
static void log_emit(int level, int error, const LogEvent *e, const char *fmt, va_list ap) {
        char buf[2048];
        size_t n, ident = strlen(log_ident);
        int k;

        if (log_to_journal) {
                errno = error;
                vsnprintf(buf, sizeof(buf), fmt, ap);
                journal_send(level, e, buf);
                return;
        }
        /* One line, one write(): lines of concurrent writers never interleave, and no
         * stdio buffering sits between the daemon and the journal. */
        if (log_prefix_priority > 0) {
                buf[0] = '<';
                buf[1] = (char) ('0' + (level & 7));
                buf[2] = '>';
                n = 3;
        } else {
                n = ident < 64 ? ident : 64;
                memcpy(buf, log_ident, n);
                buf[n++] = ':';
                buf[n++] = ' ';
        }
        /* %m in fmt must expand to the error we were given, not the current errno. */
        errno = error;
        k = vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
        if (k > 0)
                n += (size_t) k < sizeof(buf) - n - 1 ? (size_t) k : sizeof(buf) - n - 2;
        buf[n++] = '\n';
        (void) !write(STDERR_FILENO, buf, n);
}

void log_event(int level, const LogEvent *e, const char *fmt, ...) {
        va_list ap;

        if (level > log_max_level)
                return;
        va_start(ap, fmt);
        log_emit(level, 0, e, fmt, ap);
        va_end(ap);
}

void log_internal(int level, int error, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        log_emit(level, error, NULL, fmt, ap);
        va_end(ap);
}


int log_event_errno(int level, int error, const LogEvent *e, const char *fmt, ...) {
        va_list ap;

        error = error < 0 ? -error : error;
        if (level > log_max_level)
                return -error;
        va_start(ap, fmt);
        log_emit(level, error, e, fmt, ap);
        va_end(ap);
        return -error;
}
