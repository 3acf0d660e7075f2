/* The daemon: owner of every object, and the event-loop wiring of expiry and signals. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "cleanup.h"
#include "drain-file.h"
#include "fd-table.h"
#include "log.h"
#include "manager.h"
#include "metrics.h"
#include "restore.h"
#include "rma-names.h"
#include "rma-util.h"
#include "runtime-dir.h"

/* Counts go out at most this long after they changed, after the reply, and a burst of
 * changes in that window in one PropertiesChanged: a signal costs more than a Claim. */
#define PROPERTIES_CHANGED_DELAY_USEC (10 * 1000)

static int on_loop_iteration(sd_event_source *source, void *userdata);
static int on_emit_changes(sd_event_source *source, uint64_t usec, void *userdata);

/* Every change of a slot, before any reply: the registry record, and the fd store. */
static void on_slot_changed(const Slot *s, void *userdata) {
        Manager *m = userdata;

        registry_write_slot(m->registry, s);
        fd_store_sync_slot(m->fd_store, s->index, s->region_fd, s->region_ino);
        bus_events_slot_changed(&m->service.events, m->bus, s, pool_change_reason(m->broker->pool, s));
}

static int on_reload_request(GPtrArray *errors, void *userdata) {
        return manager_reload_policy(userdata, errors);
}

/* Recorded first, so that what clients see is what a restart will find. */
static int on_set_draining(const char *reason, void *userdata) {
        Manager *m = userdata;
        int r;

        r = drain_file_save(m->config->runtime_dir, reason);
        if (r < 0)
                return log_error_errno(r, "Cannot record the drain state in %s: %m", m->config->runtime_dir);
        broker_set_draining(m->broker, reason);
        if (reason)
                log_event(LOG_NOTICE, &(LogEvent) { .message_id = RMA_MESSAGE_DRAINING, .slot = -1, .result = reason },
                          "Draining%s%s: no new RMAs are given out; running domains keep theirs (rmactl undrain "
                          "ends it)", reason[0] ? ": " : "", reason);
        else
                log_event(LOG_NOTICE, &(LogEvent) { .message_id = RMA_MESSAGE_UNDRAINED, .slot = -1 },
                          "Drain ended: new RMAs are given out again");
        bus_object_emit_draining_changed(m->bus);
        manager_notify_status(m);
        return 0;
}

/* A drain outlives a restart and an upgrade of the broker. */
static int manager_load_drain(Manager *m) {
        g_autofree char *reason = NULL;
        int r = drain_file_load(m->config->runtime_dir, &reason);

        if (r <= 0)
                return r;
        broker_set_draining(m->broker, reason);
        log_event(LOG_NOTICE, &(LogEvent) { .message_id = RMA_MESSAGE_DRAINING, .slot = -1, .result = reason },
                  "Draining%s%s, as before this start: no new RMAs are given out (rmactl undrain ends it)",
                  reason[0] ? ": " : "", reason);
        return 0;
}

/* What the last broker left (fd store, registry) is read before the pool is made, and
 * put back before anything is served. */
static int manager_take_over(Manager *m, BrokerConfig *config) {
        g_autoptr(RestorePlan) plan = NULL;
        BrokerTakeover takeover;
        Pool *pool;
        int r;

        (void) fd_store_new(&m->fd_store);
        r = restore_plan_new(config, m->fd_store, &plan);
        if (r < 0) {
                broker_config_free(config);   /* consumed, also on failure */
                return r;
        }
        takeover = restore_plan_takeover(plan);
        r = broker_new(config, &takeover, &m->broker);   /* consumes config, also on failure */
        if (r < 0)
                return r;
        m->config = m->broker->config;
        pool = m->broker->pool;
        /* Before the recycler starts the region worker thread: re-adopted leases (a region
         * each, and two pidfds per process: its holder's and the restore's own) must not
         * grow the fd table under a running thread. */
        (void) fd_table_reserve(3 * pool->n_slots + 256);
        r = recycler_new(m->event, pool, &m->recycler);
        if (r < 0)
                return r;
        r = leases_new(m->event, m->broker, m->recycler, &m->leases);
        if (r < 0)
                return r;
        r = restore_apply(plan, m->broker, m->recycler, m->leases);
        if (r < 0)
                return log_error_errno(r, "Cannot take over from the last rma-brokerd: %m");
        r = registry_open(m->config->runtime_dir, pool, &m->registry);
        if (r < 0)
                return r;
        for (unsigned i = 0; i < pool->n_slots; i++)
                fd_store_sync_slot(m->fd_store, i, pool->slots[i].region_fd, pool->slots[i].region_ino);
        pool->slot_changed = on_slot_changed;
        pool->slot_changed_userdata = m;
        return 0;
}

/* A registry that root truncated, replaced or restored from a copy while nothing changed
 * is written again within this long (a restart before that finds the census instead). */
#define REGISTRY_CHECK_USEC (5 * 1000 * 1000)

static int on_registry_check(sd_event_source *source, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        (void) registry_verify(m->registry, m->broker->pool);
        (void) sd_event_source_set_time_relative(source, REGISTRY_CHECK_USEC);
        return sd_event_source_set_enabled(source, SD_EVENT_ONESHOT);
}

static int manager_add_sources(Manager *m) {
        int r;

        r = sd_event_add_time_relative(m->event, &m->registry_source, CLOCK_MONOTONIC, REGISTRY_CHECK_USEC,
                                       REGISTRY_CHECK_USEC / 5, on_registry_check, m);
        if (r < 0)
                return log_error_errno(r, "Cannot allocate an event source: %m");

        r = sd_event_add_post(m->event, &m->sync_source, on_loop_iteration, m);
        if (r < 0)
                return log_error_errno(r, "Cannot allocate an event source: %m");
        r = sd_event_add_time_relative(m->event, &m->emit_source, CLOCK_MONOTONIC, PROPERTIES_CHANGED_DELAY_USEC,
                                       PROPERTIES_CHANGED_DELAY_USEC / 4, on_emit_changes, m);
        if (r < 0)
                return log_error_errno(r, "Cannot allocate an event source: %m");
        (void) sd_event_source_set_enabled(m->emit_source, SD_EVENT_OFF);   /* armed on change only */
        return 0;
}

int manager_new(BrokerConfig *config_consumed, Manager **ret) {
        g_autoptr(BrokerConfig) config = config_consumed;
        g_autoptr(Manager) m = g_new0(Manager, 1);
        int r;

        /* Nothing in the runtime dir is trusted unless the dir is the broker's alone, and
         * nothing there is touched while another broker runs on it. */
        m->runtime_lock = -EBADF;
        r = runtime_dir_prepare(config->runtime_dir);
        if (r < 0)
                return r;
        m->runtime_lock = r;
        r = sd_event_default(&m->event);
        if (r < 0)
                return log_error_errno(r, "Cannot allocate the event loop: %m");
        r = manager_take_over(m, g_steal_pointer(&config));
        if (r < 0)
                return r;
        m->broker->audit = audit_log_new();
        r = manager_load_drain(m);
        if (r < 0)
                return r;
        m->service = (BusService) { .broker = m->broker, .leases = m->leases, .recycler = m->recycler,
                                    .reload = on_reload_request, .reload_userdata = m,
                                    .set_draining = on_set_draining, .set_draining_userdata = m };
        polkit_checks_init(&m->service.polkit);
        m->bus_origin = (BusOrigin) { .service = &m->service };
        r = manager_add_sources(m);
        if (r < 0)
                return r;
        *ret = g_steal_pointer(&m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        m->socket_server = socket_server_free(m->socket_server);
        m->leases = leases_free(m->leases);
        m->recycler = recycler_free(m->recycler);
        m->registry = registry_free(m->registry);
        m->fd_store = fd_store_free(m->fd_store);
        m->sync_source = sd_event_source_disable_unref(m->sync_source);
        m->expiry_source = sd_event_source_disable_unref(m->expiry_source);
        m->emit_source = sd_event_source_disable_unref(m->emit_source);
        m->registry_source = sd_event_source_disable_unref(m->registry_source);
        polkit_checks_fail_all(&m->service.polkit);   /* answered by the broker's rules, while they can be */
        m->service.polkit.bus = NULL;
        m->bus = sd_bus_flush_close_unref(m->bus);
        bus_service_done(&m->service);
        broker_free(m->broker);
        sd_event_unref(m->event);
        safe_close(m->runtime_lock);   /* last: nothing of ours is in the runtime dir's way now */
        g_free(m);
        return NULL;
}

static void manager_write_metrics(Manager *m) {
        g_autofree char *text = NULL;
        int r;

        if (!m->config->metrics_file)
                return;
        text = metrics_format(m->broker);
        r = metrics_write_file(m->config->metrics_file, text);
        if (r < 0) {
                /* Once per failure streak: a full disk must not fill the journal too. */
                if (!m->metrics_failing)
                        log_warning_errno(r, "Cannot write MetricsFile=%s (%m); will retry on the next change",
                                          m->config->metrics_file);
                m->metrics_failing = true;
                return;
        }
        m->metrics_failing = false;
        m->metrics_generation = m->broker->stats.generation;
}

static int on_emit_changes(sd_event_source *source, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        unsigned changed = pool_take_changes(m->broker->pool);

        bus_object_emit_counts_changed(m->bus, changed);
        if (changed)
                manager_notify_status(m);
        if (changed || m->metrics_generation != m->broker->stats.generation)
                manager_write_metrics(m);
        return 0;
}

static int on_expiry(sd_event_source *source, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        (void) broker_expire(m->broker, rma_now_usec(CLOCK_MONOTONIC));
        return 0;
}

static void manager_arm_expiry(Manager *m) {
        uint64_t next = pool_next_expiry(m->broker->pool);
        int r;

        if (next == UINT64_MAX) {
                if (m->expiry_source)
                        (void) sd_event_source_set_enabled(m->expiry_source, SD_EVENT_OFF);
                return;
        }
        if (!m->expiry_source) {
                r = sd_event_add_time(m->event, &m->expiry_source, CLOCK_MONOTONIC, next, 0, on_expiry, m);
                if (r < 0) {
                        log_error_errno(r, "Cannot arm the reservation expiry timer: %m");
                        return;
                }
        } else
                (void) sd_event_source_set_time(m->expiry_source, next);
        (void) sd_event_source_set_enabled(m->expiry_source, SD_EVENT_ONESHOT);
}

/* The pool or the stats changed since the last look: re-arm the expiry timer, wake the
 * recycler, and schedule the signal and the metrics file after the current replies. */
static void manager_sync(Manager *m) {
        Pool *pool = m->broker->pool;

        if (pool->generation == m->seen_pool_generation && m->broker->stats.generation == m->seen_stats_generation)
                return;
        if (pool->generation != m->seen_pool_generation)
                (void) registry_check(m->registry, pool);   /* what was just written is in the file */
        m->seen_pool_generation = pool->generation;
        m->seen_stats_generation = m->broker->stats.generation;
        recycler_kick(m->recycler);
        manager_arm_expiry(m);
        if (((pool->changed && m->bus) ||
             (m->config->metrics_file && (pool->changed || m->metrics_generation != m->broker->stats.generation))) &&
            sd_event_source_get_enabled(m->emit_source, NULL) == 0) {
                /* Armed once per window: every change in it goes out in one signal, and
                 * in one write of the metrics file. */
                (void) sd_event_source_set_time_relative(m->emit_source, PROPERTIES_CHANGED_DELAY_USEC);
                (void) sd_event_source_set_enabled(m->emit_source, SD_EVENT_ONESHOT);
        }
}

/* After every loop iteration that dispatched anything: whatever a method, a lease's end,
 * the recycler or a timer changed is noticed here, so nobody has to report it. */
static int on_loop_iteration(sd_event_source *source, void *userdata) {
        manager_sync(userdata);
        return 0;
}

int manager_reload_policy(Manager *m, GPtrArray *errors) {
        const Backend *backend = m->broker->backend;
        g_autofree char *pool_change = NULL;
        int r;

        /* systemd shows the unit as reloading, whether SIGHUP or Reload() (rmactl reload,
         * the unit's ExecReload=) asked. */
        (void) sd_notify(0, "RELOADING=1\nSTATUS=Reloading the tenant policy");
        r = broker_reload_policy(m->broker, errors);
        (void) sd_notify(0, "READY=1");
        manager_notify_status(m);
        if (r < 0) {
                for (guint i = 0; i < errors->len; i++)
                        log_error("%s", (char *) g_ptr_array_index(errors, i));
                return r;
        }
        pool_change = broker_config_pool_change(m->config, backend->ops->kind, m->broker->pool->n_slots,
                                                backend->ops->size_from_host ? 0 : backend->region_size);
        if (pool_change)
                log_warning("Tenant policy reloaded, the pool is unchanged: %s", pool_change);
        bus_service_set_pending_pool_change(&m->service, m->bus, g_steal_pointer(&pool_change));
        return 0;
}

void manager_notify_status(Manager *m) {
        Pool *p = m->broker->pool;

        if (!fd_store_enabled(m->fd_store))
                return;
        (void) sd_notifyf(0, "STATUS=%s%u of %u RMAs free, %u leased, %u reserved, %u held elsewhere (backend %s)",
                          m->broker->drain_reason ? "Draining; " : "", pool_count(p, SLOT_FREE), p->n_slots,
                          pool_count(p, SLOT_LEASED), pool_count(p, SLOT_RESERVED), pool_count(p, SLOT_HELD_ELSEWHERE),
                          m->broker->backend->ops->name);
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;
        g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);

        if (manager_reload_policy(m, errors) < 0)
                log_event(LOG_ERR, &(LogEvent) { .message_id = RMA_MESSAGE_POLICY_REFUSED, .slot = -1 },
                          "SIGHUP: the new tenant policy is invalid (problems above); keeping the current one");
        return 0;
}

static int on_sigterm(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        (void) sd_notify(0, "STOPPING=1\nSTATUS=Stopping; QEMUs keep their regions, the next start re-adopts them");
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static int on_bus_disconnected(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        /* Starting VMs goes through broker.sock and does not need the bus, so keep serving. */
        log_warning("Lost the D-Bus system bus connection; still serving %s, restart rma-brokerd to publish "
                    RMA_BUS_NAME " again", socket_server_path(m->socket_server));
        polkit_checks_fail_all(&m->service.polkit);
        m->service.polkit.bus = NULL;
        m->bus = sd_bus_flush_close_unref(m->bus);
        m->service.bus = NULL;
        return 0;
}

/* The system bus, like sd_bus_open_system(), but without fd passing: the broker never
 * sends or takes an fd there, so dbus-daemon refuses to forward any fd to it. */
static int open_system_bus(sd_bus **ret) {
        g_autoptr(sd_bus) bus = NULL;
        const char *address = getenv("DBUS_SYSTEM_BUS_ADDRESS");
        int r;

        r = sd_bus_new(&bus);
        if (r < 0)
                return r;
        r = sd_bus_set_address(bus, address && *address ? address : "unix:path=/run/dbus/system_bus_socket");
        if (r < 0)
                return r;
        r = sd_bus_set_bus_client(bus, 1);
        if (r < 0)
                return r;
        r = sd_bus_negotiate_fds(bus, 0);
        if (r < 0)
                return r;
        r = sd_bus_start(bus);
        if (r < 0)
                return r;
        *ret = g_steal_pointer(&bus);
        return 0;
}

static int manager_connect_bus(Manager *m) {
        g_autoptr(sd_bus) bus = NULL;
        int r;

        r = open_system_bus(&bus);
        if (r < 0) {
                /* Not fatal: starting VMs goes through broker.sock alone. */
                log_warning_errno(r, "Cannot connect to the D-Bus system bus (%m); serving only %s. "
                                  "Start dbus, or set DBUS_SYSTEM_BUS_ADDRESS", socket_server_path(m->socket_server));
                return 0;
        }
        r = bus_object_add(bus, &m->bus_origin);
        if (r < 0)
                return log_error_errno(r, "Cannot register " RMA_OBJECT_PATH ": %m");
        r = sd_bus_match_signal(bus, NULL, "org.freedesktop.DBus.Local", "/org/freedesktop/DBus/Local",
                                "org.freedesktop.DBus.Local", "Disconnected", on_bus_disconnected, m);
        if (r < 0)
                return log_error_errno(r, "Cannot watch the bus connection: %m");
        /* Objects first, then the name: nobody sees the name before the object answers. */
        r = sd_bus_request_name(bus, RMA_BUS_NAME, 0);
        if (r < 0)
                return log_error_errno(r, "Cannot own " RMA_BUS_NAME " on the system bus (%m); is another rma-brokerd "
                                       "running, and does the D-Bus policy (org.rmabroker.Broker1.conf) let root own it?");
        r = sd_bus_attach_event(bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Cannot attach the bus to the event loop: %m");
        m->bus = m->service.bus = m->service.polkit.bus = g_steal_pointer(&bus);
        log_info("Published " RMA_BUS_NAME " on the system bus");
        return 0;
}

int manager_startup(Manager *m) {
        int r;

        r = sd_event_add_signal(m->event, NULL, SIGTERM | SD_EVENT_SIGNAL_PROCMASK, on_sigterm, m);
        if (r < 0)
                return log_error_errno(r, "Cannot handle SIGTERM: %m");
        r = sd_event_add_signal(m->event, NULL, SIGINT | SD_EVENT_SIGNAL_PROCMASK, on_sigterm, m);
        if (r < 0)
                return log_error_errno(r, "Cannot handle SIGINT: %m");
        r = sd_event_add_signal(m->event, NULL, SIGHUP | SD_EVENT_SIGNAL_PROCMASK, on_sighup, m);
        if (r < 0)
                return log_error_errno(r, "Cannot handle SIGHUP: %m");
        /* A peer that hangs up mid-reply must not kill the daemon. */
        (void) signal(SIGPIPE, SIG_IGN);
        /* WatchdogSec=: sd-event pings systemd at half the interval while the loop runs. */
        r = sd_event_set_watchdog(m->event, true);
        if (r < 0)
                log_warning_errno(r, "Cannot set up the systemd watchdog: %m");

        r = socket_server_new(m->event, m->config, &m->service, fd_store_take_listener(m->fd_store),
                              &m->socket_server);
        if (r < 0)
                return r;
        r = manager_connect_bus(m);
        if (r < 0)
                return r;
        manager_write_metrics(m);
        manager_sync(m);   /* what the take-over restored: reservations to expire, slots to refill */

        log_event(LOG_INFO, &(LogEvent) { .message_id = RMA_MESSAGE_POOL_READY, .slot = -1 },
                  "Pool ready: backend %s, %u RMAs of %llu bytes", m->broker->backend->ops->name,
                  m->broker->pool->n_slots, (unsigned long long) m->broker->backend->region_size);
        return 0;
}
