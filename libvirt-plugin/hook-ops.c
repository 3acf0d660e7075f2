/* Which of libvirt's hook calls the hook acts on (hook-ops.h). */
#include <string.h>

#include "hook-ops.h"

static const struct {
        const char *op, *subop;
} acted_on[] = {
        { "prepare", "begin" },
        { "release", "end" },
        { "reconnect", "begin" },
};

bool hook_acts_on(const char *op, const char *subop) {
        for (size_t i = 0; i < sizeof(acted_on) / sizeof(acted_on[0]); i++)
                if (strcmp(op, acted_on[i].op) == 0 && strcmp(subop, acted_on[i].subop) == 0)
                        return true;
        return false;
}
