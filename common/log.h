/* Minimal leveled logging to stderr; under systemd (JOURNAL_STREAM set) lines carry
 * the <N> priority prefix so the journal keeps the level. */
#pragma once

#include <errno.h>
#include <syslog.h>

void log_setup(const char *ident);
void log_set_max_level(int level);
int log_get_max_level(void);
void log_internal(int level, int error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* log_*_errno() return -abs(error) so callers can "return log_error_errno(r, ...)".
 * The message may use %m, which expands to strerror(error). */
#define log_full_errno(level, error, ...)                       \
        ({                                                      \
                int _e = (error) < 0 ? -(error) : (error);      \
                if ((level) <= log_get_max_level())             \
                        log_internal((level), _e, __VA_ARGS__); \
                -_e;                                            \
        })
#define log_full(level, ...) ((void) log_full_errno(level, 0, __VA_ARGS__))

#define log_debug(...)   log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)    log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...)  log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...)   log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(e, ...)   log_full_errno(LOG_DEBUG, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...)   log_full_errno(LOG_ERR, e, __VA_ARGS__)
