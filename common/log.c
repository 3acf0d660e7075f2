/* Minimal leveled logging to stderr, journal-aware. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        va_list ap;

        /* %m in fmt must expand to the error we were given, not the current errno. */
        errno = error;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);

        if (log_prefix_priority > 0)
                fprintf(stderr, "<%d>%s\n", level, buf);
        else
                fprintf(stderr, "%s: %s\n", log_ident, buf);
}
