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

/* MESSAGE_ID= of each kind of event (journalctl MESSAGE_ID=...), each made with
 * `systemd-id128 new`. Every one has an entry in common/rma-broker.catalog (what happened,
 * what to do: journalctl -x); tests/integration/test-catalog.sh checks both ways. A new kind
 * gets a new id, never a number next to an old one. */
#define RMA_MESSAGE_RESERVED          "a6f890fe53a94ffb9b3ad644fec061d5"
#define RMA_MESSAGE_REFUSED           "af6eaaed23534156b1083ac8f1f0d507"
#define RMA_MESSAGE_LEASED            "cbf442b1444f40b6808252c9320d183f"
#define RMA_MESSAGE_LEASE_ENDED       "34bf7a99a96546faa35fc93f247eca1f"
#define RMA_MESSAGE_RELEASED          "6693bccb424146c5b61e534206862b3d"
#define RMA_MESSAGE_EXPIRED           "48800353225643aab873ed64aee43161"
#define RMA_MESSAGE_POOL_READY        "2959d9ffb7ce4f2588faf5aff38c8397"
#define RMA_MESSAGE_STOPPING          "692bb69be7504fcd8090b3e3e4d7df04"
#define RMA_MESSAGE_POLICY_LOADED     "e7f00175c23348fe9175ab8f67553254"
#define RMA_MESSAGE_POLICY_REFUSED    "937abc9a93774531b7bd4442f26be5c4"
#define RMA_MESSAGE_READOPTED         "ab54d78be8fa46b9b008916fc76c8c2e"
#define RMA_MESSAGE_LEASE_LOST        "222d1440dbc4481ab48ccc54316cfc0c"
#define RMA_MESSAGE_TAKEN_OVER        "2d62472dcfa14f1094621baa2da03a06"
#define RMA_MESSAGE_REGISTRY_REBUILT  "64e3bc36845548268f766bf3f7d43f94"
#define RMA_MESSAGE_SLOT_PINNED       "5bd076be1d444b91b9c865e84b976cc4"
#define RMA_MESSAGE_REGION_FORGOTTEN  "239c4e32ff134bc79e79bab040975aa7"
#define RMA_MESSAGE_HELD_ELSEWHERE    "cf7eede9e4984752b4ebfb103fc01d67"
#define RMA_MESSAGE_SLOT_RETURNED     "d89a4943f10d435d95df92c242a74d67"
#define RMA_MESSAGE_DRAINING          "96920d45a8ed483c8f8456ca5a910eaf"
#define RMA_MESSAGE_UNDRAINED         "1e79981a25b440a3a841fd8c97653391"
#define RMA_MESSAGE_DENIED            "94a7476f2d6a4892a8015d19a30aa522"

void log_event(int level, const LogEvent *e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* As log_event(), with %m for error; returns -abs(error), as log_error_errno() does. */
int log_event_errno(int level, int error, const LogEvent *e, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

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
