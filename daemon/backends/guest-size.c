/* Whether a pseries guest can use the pool's region size, checked once at start. */
#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "log.h"
#include "rma-util.h"

int backend_check_guest_size(const Backend *b) {
        g_autofree char *why = rma_size_unusable_why(b->region_size, b->ops->size_from_host);
        const char *test = getenv(RMA_TEST_SMALL_RMAS_ENV);

        if (!why)
                return 0;
        /* The kernel's RMAs are what the host has: served, with what to boot with. */
        if (b->ops->size_from_host) {
                log_warning("The kernel's RMAs are served, but %s", why);
                return 0;
        }
        if (test && strcmp(test, "1") == 0) {
                log_notice("Served for a test (%s=1), but %s", RMA_TEST_SMALL_RMAS_ENV, why);
                return 0;
        }
        return log_error_errno(EINVAL, "Refusing Size=: %s", why);
}
