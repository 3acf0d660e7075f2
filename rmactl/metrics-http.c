/* The metrics endpoint: one request a process, its head read with a bound on size and time. */
#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "metrics-http.h"
#include "rma-client.h"

/* Longest HTTP request head we read; a scraper sends a few hundred bytes. */
#define HTTP_HEAD_MAX 8192
#define HTTP_TIMEOUT_SEC 10

static void http_reply(const char *status, const char *type, const char *body, bool head_only) {
        printf("HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s", status, type,
               strlen(body), head_only ? "" : body);
        fflush(stdout);
}

int metrics_http_serve(sd_bus *bus) {
        g_auto(sd_bus_error) e = SD_BUS_ERROR_NULL;
        g_autofree char *text = NULL, *body = NULL;
        char head[HTTP_HEAD_MAX + 1], method[16], path[256];
        size_t len = 0;
        bool head_only;
        int r;

        /* A scraper that connects and says nothing must not keep this process. */
        alarm(HTTP_TIMEOUT_SEC);
        while (len < HTTP_HEAD_MAX) {
                ssize_t k = read(STDIN_FILENO, head + len, HTTP_HEAD_MAX - len);
                if (k <= 0)
                        break;
                len += (size_t) k;
                head[len] = '\0';
                if (strstr(head, "\r\n\r\n") || strstr(head, "\n\n"))
                        break;
        }
        head[len] = '\0';
        if (sscanf(head, "%15s %255s HTTP/", method, path) != 2) {
                http_reply("400 Bad Request", "text/plain; charset=utf-8", "Bad request\n", false);
                return 1;
        }
        head_only = strcmp(method, "HEAD") == 0;
        if (strcmp(method, "GET") != 0 && !head_only) {
                http_reply("405 Method Not Allowed", "text/plain; charset=utf-8", "Only GET and HEAD\n", false);
                return 1;
        }
        if (strcmp(path, "/metrics") != 0 && strncmp(path, "/metrics?", 9) != 0) {
                http_reply("404 Not Found", "text/plain; charset=utf-8", "The metrics are at /metrics\n", head_only);
                return 1;
        }
        r = bus ? rma_client_get_metrics(bus, &text, &e) : -ENOTCONN;
        if (r < 0) {
                body = g_strdup_printf("rma-brokerd did not answer GetMetrics: %s\n", e.message ? e.message : strerror(-r));
                http_reply("503 Service Unavailable", "text/plain; charset=utf-8", body, head_only);
                return 1;
        }
        http_reply("200 OK", "text/plain; version=0.0.4; charset=utf-8", text, head_only);
        return 0;
}
