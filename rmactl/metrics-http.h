/* One HTTP request on stdin/stdout, inetd style: what rma-brokerd-metrics@.service runs
 * for each connection that rma-brokerd-metrics.socket accepts (the broker itself keeps no
 * network listener). */
#pragma once

#include <systemd/sd-bus.h>

/* GET or HEAD /metrics: the broker's GetMetrics. bus NULL (no system bus): 503. 0 when the
 * metrics went out, 1 for any other answer. */
int metrics_http_serve(sd_bus *bus);
