/* Leveled logging: to the journal's native protocol, with structured fields, when stderr
 * is connected to journald (JOURNAL_STREAM names it); plain lines on stderr otherwise. */
#pragma once

#include <errno.h>
#include <syslog.h>

void log_setup(const char *ident);
void log_set_max_level(int level);
int log_get_max_level(void);
void log_internal(int level, int error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The fields of one broker event, so that an admin finds every line of a domain with
 * `journalctl RMA_DOMAIN=web-01`. Unset members are left out (slot < 0, pid 0, NULL). */
typedef struct LogEvent {
        const char *message_id;   /* one of the RMA_MESSAGE_* below */
        int slot;
        const char *uuid;
        const char *domain;
        const char *tenant;
        int pid;
        const char *result;
} LogEvent;

/* MESSAGE_ID= of each kind of event (journalctl MESSAGE_ID=...). */
#define RMA_MESSAGE_RESERVED      "5f0c3b6a1d2e4c8f9a7b6c5d4e3f2a10"
#define RMA_MESSAGE_REFUSED       "5f0c3b6a1d2e4c8f9a7b6c5d4e3f2a11"
#define RMA_MESSAGE_LEASED        "5f0c3b6a1d2e4c8f9a7b6c5d4e3f2a12"
#define RMA_MESSAGE_LEASE_ENDED   "5f0c3b6a1d2e4c8f9a7b6c5d4e3f2a13"
#define RMA_MESSAGE_RELEASED      "5f0c3b6a1d2e4c8f9a7b6c5d4e3f2a14"
#define RMA_MESSAGE_EXPIRED       "5f0c3b6a1d2e4c8f9a7b6c5d4e3f2a15"

void log_event(int level, const LogEvent *e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

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
