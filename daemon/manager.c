/* The broker's single owner of state, and the event-loop wiring of leases and expiry. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "bus-object.h"
#include "cleanup.h"
#include "lease.h"
#include "log.h"
#include "metrics.h"
#include "manager.h"
#include "peer.h"
#include "policy-load.h"
#include "restore.h"
#include "runtime-dir.h"
#include "rma-names.h"
#include "rma-util.h"
#include "socket-server.h"

/* Counts go out at most this long after they changed, after the reply, and a burst of
 * changes in that window in one PropertiesChanged: a signal costs more than a Claim. */
#define PROPERTIES_CHANGED_DELAY_USEC (10 * 1000)

static void on_regions_changed(void *userdata);
static int on_emit_changes(sd_event_source *source, uint64_t usec, void *userdata);

static void peer_destroy(gpointer p) {
        peer_free(p);
}

/* Every change of a slot, before any reply: the registry record, and the fd store. */
static void on_slot_changed(const Slot *s, void *userdata) {
        Manager *m = userdata;

        registry_write_slot(m->registry, s);
        fd_store_sync_slot(m->fd_store, s->index, s->region_fd, s->region_ino);
}

int manager_new(BrokerConfig *config, Manager **ret) {
        g_autoptr(Manager) m = g_new0(Manager, 1);
        RestorePlan *plan = NULL;
        BrokerTakeover takeover;
        Pool *pool;
        int r;

        m->listen_fd = -EBADF;
        m->bus_origin.manager = m;
        m->peers = g_hash_table_new_full(g_direct_hash, g_direct_equal, peer_destroy, NULL);
        m->peers_per_uid = g_hash_table_new(g_direct_hash, g_direct_equal);
        m->peers_per_pid = g_hash_table_new(g_direct_hash, g_direct_equal);

        /* Nothing in the runtime dir is trusted unless the dir is the broker's alone. */
        r = runtime_dir_prepare(config->runtime_dir);
        if (r < 0) {
                broker_config_free(config);
                return r;
        }
        /* What the last broker left (fd store, registry) is read before the pool is
         * made, and put back before anything is served. */
        (void) fd_store_new(&m->fd_store);
        (void) restore_plan_new(config, m->fd_store, &plan);
        takeover = restore_plan_takeover(plan);
        r = broker_new(config, &takeover, &m->broker);   /* consumes config, also on failure */
        if (r < 0) {
                restore_plan_free(plan);
                return r;
        }
        m->config = m->broker->config;
        pool = m->broker->pool;
        r = sd_event_default(&m->event);
        if (r >= 0)
                r = recycler_new(m->event, pool, on_regions_changed, m, &m->recycler);
        if (r >= 0)
                r = restore_apply(plan, m);
        restore_plan_free(plan);
        if (r < 0)
                return log_error_errno(r, "Cannot take over from the last rma-brokerd: %m");
        r = registry_open(m->config->runtime_dir, pool, &m->registry);
        if (r < 0)
                return r;
        for (unsigned i = 0; i < pool->n_slots; i++)
                fd_store_sync_slot(m->fd_store, i, pool->slots[i].region_fd, pool->slots[i].region_ino);
        pool->slot_changed = on_slot_changed;
        pool->slot_changed_userdata = m;
        r = sd_event_add_time_relative(m->event, &m->emit_source, CLOCK_MONOTONIC, PROPERTIES_CHANGED_DELAY_USEC,
                                       PROPERTIES_CHANGED_DELAY_USEC / 4, on_emit_changes, m);
        if (r < 0)
                return log_error_errno(r, "Cannot allocate an event source: %m");
        (void) sd_event_source_set_enabled(m->emit_source, SD_EVENT_OFF);   /* armed on change only */

        *ret = g_steal_pointer(&m);
        return 0;
}

Manager *manager_free(Manager *m) {
        Pool *pool = m && m->broker ? m->broker->pool : NULL;

        if (!m)
                return NULL;
        socket_server_stop(m);
        g_clear_pointer(&m->peers, g_hash_table_destroy);
        g_clear_pointer(&m->peers_per_uid, g_hash_table_destroy);
        g_clear_pointer(&m->peers_per_pid, g_hash_table_destroy);
        if (pool)
                for (unsigned i = 0; i < pool->n_slots; i++)
                        pool->slots[i].lease = lease_free(pool->slots[i].lease);
        m->recycler = recycler_free(m->recycler);
        m->registry = registry_free(m->registry);
        m->fd_store = fd_store_free(m->fd_store);
        m->expiry_source = sd_event_source_disable_unref(m->expiry_source);
        m->emit_source = sd_event_source_disable_unref(m->emit_source);
        m->bus = sd_bus_flush_close_unref(m->bus);
        broker_free(m->broker);
        g_free(m->socket_path);
        g_free(m->pending_pool_change);
        sd_event_unref(m->event);
        g_free(m);
        return NULL;
}

int manager_start_lease(Manager *m, Slot *s, pid_t pid, uint64_t pid_start, int pidfd) {
        Lease *l = NULL;
        int r;

        r = lease_new(m, s, pid, pidfd, &l);
        if (r < 0)
                return r;
        r = broker_start_lease(m->broker, s, pid, pid_start);
        if (r < 0) {
                lease_free(l);
                return r;
        }
        s->lease = l;
        manager_pool_changed(m);
        return 0;
}

void manager_end_lease(Manager *m, Slot *s, LeaseEnd why) {
        int old_fd = -EBADF;

        lease_free(s->lease);
        broker_end_lease(m->broker, s, why, &old_fd);
        recycler_lease_ended(m->recycler, s, old_fd);
        manager_pool_changed(m);
}

static void on_regions_changed(void *userdata) {
        manager_pool_changed(userdata);
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

        bus_object_emit_counts_changed(m, changed);
        if (changed)
                manager_notify_status(m);
        if (changed || m->metrics_generation != m->broker->stats.generation)
                manager_write_metrics(m);
        return 0;
}

static int on_expiry(sd_event_source *source, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        (void) broker_expire(m->broker, rma_now_usec(CLOCK_MONOTONIC));
        manager_pool_changed(m);
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

void manager_pool_changed(Manager *m) {
        Pool *pool = m->broker->pool;

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

int manager_reload_policy(Manager *m, GPtrArray *errors) {
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
        pool_change = broker_config_pool_change(m->config, m->broker->backend->ops->kind, m->broker->pool->n_slots,
                                                m->broker->backend->region_size);
        if (pool_change)
                log_warning("Tenant policy reloaded, the pool is unchanged: %s", pool_change);
        if (g_strcmp0(pool_change, m->pending_pool_change) != 0) {
                g_free(m->pending_pool_change);
                m->pending_pool_change = TAKE_PTR(pool_change);
                if (m->bus)
                        (void) sd_bus_emit_properties_changed(m->bus, RMA_OBJECT_PATH, RMA_INTERFACE, "PendingPoolChange",
                                                              NULL);
        }
        manager_pool_changed(m);   /* tenant limits are in the metrics */
        return 0;
}

int manager_forget_region(Manager *m, unsigned slot, char **message) {
        Pool *pool = m->broker->pool;
        Slot *s;

        if (slot >= pool->n_slots) {
                *message = g_strdup_printf("There is no RMA slot %u; the pool has %u", slot, pool->n_slots);
                return -EINVAL;
        }
        s = &pool->slots[slot];
        if (recycler_forget_pinned(m->recycler, s) < 0) {
                *message = g_strdup_printf("RMA slot %u is %s%s; only a slot whose old region rma-brokerd cannot prove "
                                           "gone can be forgotten", slot, slot_state_to_string(s->state),
                                           s->state == SLOT_HELD_ELSEWHERE ? ", watched: it frees itself when the "
                                           "last holder of its old region lets go" : "");
                return -EBUSY;
        }
        log_warning("RMA slot %u: root says its old region (inode %llu) is gone (ForgetRegion); refilling it. If a "
                    "process still holds that region, the pool has one region more than Count= until it lets go",
                    slot, (unsigned long long) s->old_region_ino);
        manager_pool_changed(m);
        return 0;
}

int manager_check_policy(const BrokerConfig *config, const char *pool_source) {
        g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(Policy) p = NULL;
        unsigned count = broker_config_count(config, config->backend);

        if (policy_load(config->config_file, config->policy_dirs, count, &p, errors) < 0) {
                for (guint i = 0; i < errors->len; i++)
                        fprintf(stderr, "%s\n", (char *) g_ptr_array_index(errors, i));
                fprintf(stderr, "Policy invalid: %u problem%s; nothing was changed\n", errors->len,
                        errors->len == 1 ? "" : "s");
                return -EINVAL;
        }
        printf("Policy valid for %s of %u RMAs: %u tenants, default tenant %s\n", pool_source ? pool_source : "a pool",
               count, p->tenants->len, p->default_tenant ? p->default_tenant : "(none)");
        for (guint i = 0; i < p->tenants->len; i++) {
                const PolicyTenant *t = g_ptr_array_index(p->tenants, i);
                if (t->max_rmas == POLICY_UNLIMITED)
                        printf("  %-20s MaxRmas=(pool) GuaranteedRmas=%u  %s:%u\n", t->name, t->guaranteed_rmas, t->file, t->line);
                else
                        printf("  %-20s MaxRmas=%u GuaranteedRmas=%u  %s:%u\n", t->name, t->max_rmas, t->guaranteed_rmas, t->file, t->line);
        }
        return 0;
}

void manager_notify_status(Manager *m) {
        Pool *p = m->broker->pool;

        if (!fd_store_enabled(m->fd_store))
                return;
        (void) sd_notifyf(0, "STATUS=%u of %u RMAs free, %u leased, %u reserved, %u held elsewhere (backend %s)",
                          pool_count(p, SLOT_FREE), p->n_slots, pool_count(p, SLOT_LEASED), pool_count(p, SLOT_RESERVED),
                          pool_count(p, SLOT_HELD_ELSEWHERE), m->broker->backend->ops->name);
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;
        g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);

        if (manager_reload_policy(m, errors) < 0)
                log_error("SIGHUP: the new tenant policy is invalid (problems above); keeping the current one");
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
                    RMA_BUS_NAME " again", m->socket_path);
        m->bus = sd_bus_flush_close_unref(m->bus);
        return 0;
}

/* The system bus, like sd_bus_open_system(), but without fd passing: the broker never
 * sends or takes an fd there, so dbus-daemon refuses to forward any fd to it. */
static int open_system_bus(sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
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
        *ret = TAKE_PTR(bus);
        return 0;
}

static int manager_connect_bus(Manager *m) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        r = open_system_bus(&bus);
        if (r < 0) {
                /* Not fatal: starting VMs goes through broker.sock alone. */
                log_warning_errno(r, "Cannot connect to the D-Bus system bus (%m); serving only %s. "
                                  "Start dbus, or set DBUS_SYSTEM_BUS_ADDRESS", m->socket_path);
                return 0;
        }
        r = bus_object_add(bus, &m->bus_origin, false);
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
        m->bus = TAKE_PTR(bus);
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

        r = socket_server_start(m);
        if (r < 0)
                return r;
        r = manager_connect_bus(m);
        if (r < 0)
                return r;
        manager_write_metrics(m);

        log_info("Pool ready: backend %s, %u RMAs of %llu bytes", m->broker->backend->ops->name,
                 m->broker->pool->n_slots, (unsigned long long) m->broker->backend->region_size);
        return 0;
}
