/* Minimal leveled logging to stderr, journal-aware. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static const char *log_ident = "rma-broker";
static int log_max_level = LOG_INFO;
static int log_prefix_priority = -1;

void log_setup(const char *ident) {
        const char *level = getenv("RMA_LOG_LEVEL");

        log_ident = ident;
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

void log_internal(int level, int error, const char *fmt, ...) {
        char buf[2048];
        size_t n, ident = strlen(log_ident);
        va_list ap;
        int k;

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
        va_start(ap, fmt);
        k = vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
        va_end(ap);
        if (k > 0)
                n += (size_t) k < sizeof(buf) - n - 1 ? (size_t) k : sizeof(buf) - n - 2;
        buf[n++] = '\n';
        (void) !write(STDERR_FILENO, buf, n);
}
