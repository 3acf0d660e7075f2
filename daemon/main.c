/* rma-brokerd: hands out PowerPC KVM Real Mode Areas to the QEMUs libvirt starts. */
#include <stdio.h>
#include <systemd/sd-daemon.h>

#include "command-line.h"
#include "log.h"
#include "manager.h"
#include "policy-check.h"

int main(int argc, char *argv[]) {
        g_autoptr(GError) error = NULL;
        g_autoptr(Manager) m = NULL;
        BrokerConfig *config = NULL;
        int r;

        log_setup("rma-brokerd");
        r = command_line_load(&argc, &argv, &config, &error);
        if (r < 0) {
                log_error("%s", error->message);
                return 1;
        }
        if (r > 0)
                return 0;
        if (config->check_policy) {
                r = policy_check_report(config, NULL);
                broker_config_free(config);
                return r < 0 ? 1 : 0;
        }

        r = manager_new(config, &m);   /* consumes config, also on failure */
        if (r < 0)
                return 1;
        r = manager_startup(m);
        if (r < 0)
                return 1;

        (void) sd_notify(0, "READY=1");
        manager_notify_status(m);
        r = sd_event_loop(m->event);
        if (r < 0) {
                log_error_errno(r, "Event loop failed: %m");
                return 1;
        }
        log_event(LOG_INFO, &(LogEvent) { .message_id = RMA_MESSAGE_STOPPING, .slot = -1 },
                  "Stopping; %u QEMUs keep the regions they hold", pool_count(m->broker->pool, SLOT_LEASED));
        return 0;
}
