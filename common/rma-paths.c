/* Where clients find the broker's runtime files (rma-paths.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rma-config.h"
#include "rma-names.h"
#include "rma-paths.h"

const char *rma_socket_path(void) {
        const char *env = getenv(RMA_SOCKET_ENV);

        return env && *env ? env : RMA_RUNTIME_DIR "/" RMA_SOCKET_NAME;
}

size_t rma_runtime_path(char *buf, size_t size, const char *name, const char *leaf) {
        const char *sock = rma_socket_path(), *slash = strrchr(sock, '/'), *dir = sock;
        size_t dir_len;

        /* The socket's directory, as dirname(1) gives it: "." without a slash; the
         * slashes before the last component dropped, so "/" becomes "" + "/NAME". */
        if (!slash) {
                dir = ".";
                dir_len = 1;
        } else {
                dir_len = (size_t) (slash - sock);
                while (dir_len > 0 && sock[dir_len - 1] == '/')
                        dir_len--;
        }
        return (size_t) snprintf(buf, size, "%.*s/%s%s%s", (int) dir_len, dir, name, leaf ? "/" : "",
                                 leaf ? leaf : "");
}
