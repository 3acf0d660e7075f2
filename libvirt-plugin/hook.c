/* The libvirt qemu hook. libvirt runs its front (hook-front.c, plain libc), installed as
 * /etc/libvirt/hooks/qemu.d/50-rma-broker, which execs this program for the calls below
 * (hook-ops.h) and exits 0 at once for every other; at prepare it also exits 0 alone for
 * a domain it can prove does not opt in and has nothing at its record's path
 * (hook-prepare.h): what opts a domain in here must stay visible to that check.
 *
 * libvirt runs it as root with "NAME OP SUBOP EXTRA" and the domain XML on stdin.
 *   prepare begin: reserve an RMA and write the domain's record for the wrapper
 *                  (rma_domain_record_write); on refusal print one line to stderr and
 *                  exit 1, which makes `virsh start` fail with that line. A domain that
 *                  does not opt in (any more) loses a record left from an earlier start,
 *                  so that its QEMU starts as without rma-broker.
 *   release end:   remove the record whatever the policy says now, give the domain's RMA
 *                  back (harmless for a domain that holds none).
 *   reconnect begin: report only; a failing reconnect hook would make libvirt kill the guest.
 * Domains that did not opt in and have no record are otherwise left alone: the broker is
 * never asked about them. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "broker-config.h"
#include "cleanup.h"
#include "domain-record.h"
#include "domain-xml.h"
#include "hook-ops.h"
#include "policy-load.h"
#include "rma-client.h"
#include "rma-names.h"
#include "rma-util.h"

static char *read_stdin(size_t *ret_len) {
        GString *s = g_string_new(NULL);
        char buf[65536];
        ssize_t n;

        while ((n = read(STDIN_FILENO, buf, sizeof(buf))) > 0) {
                g_string_append_len(s, buf, n);
                if (s->len > HOOK_MAX_XML_BYTES)
                        break;
        }
        *ret_len = s->len;
        return g_string_free(s, FALSE);
}

/* A domain Nova defined (it writes no <emulator> and no rma metadata): opted in when the
 * tenant policy's NovaFlavors= matches its flavor, for the tenant NovaProjects= names
 * (rma-broker-policy(5)). Read from the admin's files, not from the broker: a domain that
 * did not opt in must start as without rma-broker even while the broker is down. An
 * unreadable policy opts nothing in (rma-brokerd refuses to run on it anyway). */
static bool nova_opted_in(DomainInfo *d) {
        g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(Policy) policy = NULL;
        const PolicyTenant *t;

        if (!d->nova_flavor || d->has_rma_metadata)
                return false;
        /* The environment only tests set (libvirt runs hooks with a clean one). */
        const char *config_file = getenv("RMA_BROKER_CONFIG"), *policy_dir = getenv("RMA_BROKER_POLICY_DIR");
        char *dirs[] = { (char *) policy_dir, NULL };

        if (broker_config_load_policy(config_file && *config_file ? config_file : NULL,
                                      policy_dir && *policy_dir ? dirs : NULL, POLICY_MAX_RMAS, &policy, errors) < 0)
                return false;
        t = policy_tenant_for_nova(policy, d->nova_flavor, d->nova_project);
        if (!t)
                return false;
        g_free(d->tenant);
        d->tenant = g_strdup(t->name);
        return true;
}

/* A pool no pseries guest can use (a POWER kernel's 64 or 128 MiB RMAs) is served, so
 * every refusal also says that, the admin's real problem, and what to boot with: in the
 * same line, as virsh shows one. NULL when the pool is usable (or cannot be asked). */
static char *size_note(sd_bus *bus) {
        g_auto(sd_bus_error) e = SD_BUS_ERROR_NULL;
        g_autofree char *backend = NULL;
        uint64_t size;

        if (rma_client_get_u64(bus, "RmaSize", &size, &e) < 0 || rma_client_get_string(bus, "Backend", &backend, &e) < 0)
                return NULL;
        return rma_size_unusable_why(size, strcmp(backend, "kvm") == 0);
}

static int do_prepare(const DomainInfo *d, const char *uuid) {
        g_autoptr(sd_bus) bus = NULL;
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        g_autofree char *why = NULL;
        int r;

        /* The wrapper trusts no record in a domains/ that others can write: refuse before
         * reserving what its QEMU would never claim. */
        r = domain_record_dir_check(&why);
        if (r < 0) {
                fprintf(stderr, "rma-broker: no RMA for domain %s: %s\n", d->name, why ? why : strerror(-r));
                return 1;
        }
        if (rma_client_open(NULL, &bus, &error) < 0) {
                fprintf(stderr, "rma-broker: no RMA for domain %s: %s\n", d->name, error.message);
                return 1;
        }
        /* The broker's refusals name the domain, the tenant and the numbers already. */
        if (rma_client_reserve(bus, uuid, d->name, d->tenant, NULL, &error) < 0) {
                g_autofree char *note = size_note(bus);
                fprintf(stderr, "rma-broker: %s%s%s\n", error.message ? error.message : "Reserve failed",
                        note ? "; besides, " : "", note ? note : "");
                return 1;
        }
        /* The wrapper claims only for a domain with this record: without it, this domain's
         * QEMU would run without its RMA, so no record, no start. */
        r = rma_domain_record_write(uuid, d->name, d->tenant);
        if (r < 0) {
                g_autofree char *path = rma_domain_record_path(uuid);
                sd_bus_error_free(&error);
                (void) rma_client_release(bus, uuid, &error);
                fprintf(stderr, "rma-broker: no RMA for domain %s: cannot write %s (%s); free space in /run and "
                        "start the domain again\n", d->name, path, strerror(-r));
                return 1;
        }
        return 0;
}

/* A record of the hook's (root's, in a domains/ only root can write) names the domain. */
static bool has_record(const char *uuid) {
        g_autofree char *why = NULL;

        return domain_record_find(uuid, &why) > 0;
}

/* A domain that does not opt in at this start: a record left from an earlier one (the
 * policy changed, or release never ran) would make its QEMU ask for an RMA nobody
 * reserved, so it goes. Never fails the start. */
static int forget_record(const DomainInfo *d, const char *uuid) {
        int r = domain_record_unlink(uuid);

        if (r < 0)
                fprintf(stderr, "rma-broker: warning: cannot remove the record of domain %s, which no longer asks for "
                        "an RMA: %s\n", d->name, strerror(-r));
        return 0;
}

/* The record goes whatever the policy says now (or when it does not load): a domain
 * opted out meanwhile must not keep asking for an RMA at its next start. The broker is
 * asked to release when the domain is opted in now or the hook had recorded it. */
static int do_release(const DomainInfo *d, const char *uuid, bool opted_in) {
        g_autoptr(sd_bus) bus = NULL;
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        bool recorded = has_record(uuid);
        int r = domain_record_unlink(uuid);

        if (r < 0)
                fprintf(stderr, "rma-broker: warning: cannot remove the record of domain %s: %s\n", d->name,
                        strerror(-r));
        if (!opted_in && !recorded)
                return 0;

        if (rma_client_open(NULL, &bus, &error) < 0 || rma_client_release(bus, uuid, &error) < 0)
                fprintf(stderr, "rma-broker: warning: could not release the RMA of domain %s: %s\n", d->name,
                        error.message ? error.message : "unknown error");
        /* libvirt ignores release failures; the broker also ends the lease when QEMU exits. */
        return 0;
}

/* libvirt discards the stderr of a hook that succeeds, so what reconnect finds also goes
 * to the journal (with the domain and uuid as fields), or to syslog where no journald
 * runs: where an admin looks. */
static void report(int priority, const DomainInfo *d, const char *uuid, const char *format, ...) G_GNUC_PRINTF(4, 5);
static void report(int priority, const DomainInfo *d, const char *uuid, const char *format, ...) {
        g_autofree char *message = NULL;
        va_list ap;

        va_start(ap, format);
        message = g_strdup_vprintf(format, ap);
        va_end(ap);
        fprintf(stderr, "rma-broker: %s%s\n", priority <= LOG_WARNING ? "warning: " : "", message);
        if (sd_journal_send("MESSAGE=%s", message, "PRIORITY=%i", priority, "SYSLOG_IDENTIFIER=rma-broker-hook",
                            "RMA_DOMAIN=%s", d->name, "RMA_UUID=%s", uuid, NULL) < 0) {
                openlog("rma-broker-hook", LOG_PID, LOG_DAEMON);
                syslog(priority, "%s", message);
                closelog();
        }
}

/* libvirtd restarted and found the domain running. Confirm its lease; never fail, since
 * a failing reconnect hook makes libvirt kill the guest. */
static int do_reconnect(const DomainInfo *d, const char *uuid) {
        g_autoptr(sd_bus) bus = NULL;
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        g_autofree char *state = NULL;
        uint32_t slot = 0, pid = 0;

        if (rma_client_open(NULL, &bus, &error) < 0 || rma_client_find(bus, uuid, &slot, &state, &pid, NULL, &error) < 0) {
                report(LOG_WARNING, d, uuid, "domain %s keeps running, but its RMA cannot be checked: %s", d->name,
                       error.message ? error.message : "ListRmas failed");
                return 0;
        }
        if (!state)
                report(LOG_WARNING, d, uuid, "domain %s is running but rma-brokerd holds no RMA for it (was "
                       "rma-brokerd's runtime directory lost?); its QEMU keeps the region it has", d->name);
        else
                report(LOG_INFO, d, uuid, "domain %s holds RMA slot %u (%s, pid %u)", d->name, slot, state, pid);
        return 0;
}

int main(int argc, char *argv[]) {
        g_autoptr(DomainInfo) d = NULL;
        g_autoptr(GError) gerror = NULL;
        g_autofree char *xml = NULL;
        char uuid[RMA_UUID_STRING_LEN + 1];
        const char *op, *subop;
        bool opted_in;
        size_t len;

        if (argc < 3) {
                fprintf(stderr, "usage: %s DOMAIN OPERATION SUB-OPERATION [EXTRA] < domain.xml\n"
                                "This is a libvirt qemu hook; libvirtd runs it.\n", argv[0]);
                return 2;
        }
        op = argv[2];
        subop = argc > 3 ? argv[3] : "-";
        if (!hook_acts_on(op, subop))
                return 0;

        xml = read_stdin(&len);
        if (domain_info_parse(xml, len, &d, &gerror) < 0) {
                /* Only refuse to start a domain we are sure asked for an RMA. */
                bool ours = strstr(xml, RMA_LIBVIRT_XMLNS) || strstr(xml, "qemu-rma");
                fprintf(stderr, "rma-broker: %s: cannot read the domain XML of %s: %s\n",
                        ours && strcmp(op, "prepare") == 0 ? "error" : "warning", argv[1], gerror->message);
                return ours && strcmp(op, "prepare") == 0 ? 1 : 0;
        }
        opted_in = domain_info_wants_rma(d) || nova_opted_in(d);
        if (rma_uuid_canonicalize(d->uuid, uuid) < 0) {
                if (!opted_in)
                        return 0;   /* no record can exist under a name that is not a uuid */
                fprintf(stderr, "rma-broker: domain %s has an invalid <uuid> '%s'\n", d->name, d->uuid);
                return strcmp(op, "prepare") == 0 ? 1 : 0;
        }

        if (strcmp(op, "release") == 0)
                return do_release(d, uuid, opted_in);
        if (strcmp(op, "prepare") == 0)
                return opted_in ? do_prepare(d, uuid) : forget_record(d, uuid);
        /* Running with the hook's record: ours, whatever the policy says now. */
        if (!opted_in && !has_record(uuid))
                return 0;
        return do_reconnect(d, uuid);
}
