/* Textual UUIDs (rma-uuid.h). */
#include <errno.h>
#include <stddef.h>

#include "rma-uuid.h"

int rma_uuid_canonicalize(const char *in, char out[RMA_UUID_STRING_LEN + 1]) {
        if (!in)
                return -EINVAL;
        for (size_t i = 0; i < RMA_UUID_STRING_LEN; i++) {
                char c = in[i];
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (c != '-')
                                return -EINVAL;
                } else if (c >= 'A' && c <= 'F')
                        c = (char) (c - 'A' + 'a');
                else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
                        return -EINVAL;   /* also stops at the NUL of a short string */
                out[i] = c;
        }
        if (in[RMA_UUID_STRING_LEN] != '\0')
                return -EINVAL;
        out[RMA_UUID_STRING_LEN] = '\0';
        return 0;
}
