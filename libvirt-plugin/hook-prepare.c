/* What the hook front may decide alone at prepare (hook-prepare.h). */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "domain-record-trust.h"
#include "hook-prepare.h"
#include "rma-paths.h"
#include "rma-uuid.h"

static bool has(const char *xml, size_t len, const char *needle) {
        return memmem(xml, len, needle, strlen(needle)) != NULL;
}

bool hook_prepare_may_opt_in(const char *xml, size_t len) {
        static const char *const doubts[] = {
                RMA_LIBVIRT_XMLNS, RMA_NOVA_XMLNS_PREFIX, "qemu-rma", "&#", "<!",
        };

        if (memchr(xml, '\0', len))
                return true;
        for (size_t i = 0; i < sizeof(doubts) / sizeof(doubts[0]); i++)
                if (has(xml, len, doubts[i]))
                        return true;
        return false;
}

static bool is_space(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int hook_prepare_find_uuid(const char *xml, size_t len, char out[RMA_UUID_STRING_LEN + 1]) {
        static const char open_tag[] = "<uuid>", close_tag[] = "</uuid>";
        const char *end = xml + len, *at = NULL, *p = xml, *text, *text_end;
        char raw[RMA_UUID_STRING_LEN + 1];

        /* "<uuid" also finds <uuid/>, <uuid attr=...>, <uuidx>: any second one is a doubt. */
        while ((p = memmem(p, (size_t) (end - p), "<uuid", 5))) {
                if (at)
                        return -EINVAL;
                at = p++;
        }
        if (!at || (size_t) (end - at) < sizeof(open_tag) - 1 || memcmp(at, open_tag, sizeof(open_tag) - 1) != 0)
                return -EINVAL;
        text = at + sizeof(open_tag) - 1;
        text_end = memchr(text, '<', (size_t) (end - text));
        if (!text_end || (size_t) (end - text_end) < sizeof(close_tag) - 1 ||
            memcmp(text_end, close_tag, sizeof(close_tag) - 1) != 0)
                return -EINVAL;
        while (text < text_end && is_space(*text))
                text++;
        while (text_end > text && is_space(text_end[-1]))
                text_end--;
        if (text_end - text != RMA_UUID_STRING_LEN)
                return -EINVAL;
        memcpy(raw, text, RMA_UUID_STRING_LEN);
        raw[RMA_UUID_STRING_LEN] = '\0';
        return rma_uuid_canonicalize(raw, out);
}

bool hook_prepare_is_noop(const char *xml, size_t len) {
        char uuid[RMA_UUID_STRING_LEN + 1], dir[PATH_MAX];
        RecordTrust trust;

        /* The record's checks are the wrapper front's: anything at the path, or a domains/
         * that is not root's alone, is the full hook's to handle and to report. */
        return !hook_prepare_may_opt_in(xml, len) && hook_prepare_find_uuid(xml, len, uuid) == 0 &&
               rma_runtime_path(dir, sizeof(dir), RMA_DOMAINS_DIR_NAME, NULL) < sizeof(dir) &&
               record_trust_find(dir, uuid, &trust) == 0;
}
