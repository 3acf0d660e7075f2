/* The broker's numbers in the Prometheus text exposition format (version 0.0.4), for
 * node_exporter's textfile collector (MetricsFile=) and for GetMetrics(), which the
 * socket-activated HTTP endpoint (rmactl metrics --http) serves. */
#pragma once

#include <glib.h>

#include "broker.h"

/* The whole exposition, newline-terminated. */
char *metrics_format(const Broker *b);
/* Replace path with text atomically (a temporary file in the same directory, renamed
 * over it), world-readable: node_exporter never sees half a file. */
int metrics_write_file(const char *path, const char *text);
