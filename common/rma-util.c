/* Input validation and parsing shared by the daemon, the client tools and the plugin. */
#include <ctype.h>
#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "rma-util.h"

/* On every call of every method: one pass, no library round trips. */
int rma_parse_size(const char *s, uint64_t *ret) {
        static const struct {
                char suffix;
                unsigned shift;
        } units[] = {
                { 'K', 10 }, { 'M', 20 }, { 'G', 30 }, { 'T', 40 },
        };
        const char *p = s;
        uint64_t value = 0;
        unsigned shift = 0;

        if (!s)
                return -EINVAL;
        while (*p == ' ')
                p++;
        if (!g_ascii_isdigit(*p))
                return -EINVAL;
        for (; g_ascii_isdigit(*p); p++) {
                unsigned digit = (unsigned) (*p - '0');
                if (value > (UINT64_MAX - digit) / 10)
                        return -ERANGE;
                value = value * 10 + digit;
        }
        if (*p) {
                char c = (char) g_ascii_toupper(*p);
                bool found = false;
                for (size_t i = 0; i < G_N_ELEMENTS(units); i++)
                        if (units[i].suffix == c) {
                                shift = units[i].shift;
                                found = true;
                        }
                if (!found)
                        return -EINVAL;
                p++;
                if (g_ascii_strcasecmp(p, "iB") == 0 || g_ascii_strcasecmp(p, "B") == 0)
                        p += strlen(p);
        }
        while (*p == ' ')
                p++;
        if (*p)
                return -EINVAL;
        if (shift > 0 && value > (UINT64_MAX >> shift))
                return -ERANGE;
        *ret = value << shift;
        return 0;
}

const char *rma_format_size(uint64_t bytes, char *buf, size_t len) {
        static const char *const names[] = { "B", "KiB", "MiB", "GiB", "TiB" };
        size_t i = 0;

        while (i + 1 < G_N_ELEMENTS(names) && bytes >= 1024 && bytes % 1024 == 0) {
                bytes /= 1024;
                i++;
        }
        snprintf(buf, len, "%llu %s", (unsigned long long) bytes, names[i]);
        return buf;
}

bool rma_name_is_valid(const char *name) {
        size_t n;

        if (!name)
                return false;
        n = strlen(name);
        if (n == 0 || n > RMA_NAME_MAX)
                return false;
        if (!g_utf8_validate(name, (gssize) n, NULL))
                return false;
        for (const char *p = name; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        return false;
        return true;
}

uint64_t rma_now_usec(clockid_t clock) {
        struct timespec ts;

        clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

bool rma_value_has_inline_comment(const char *value) {
        return value && (strstr(value, " #") || strstr(value, "\t#"));
}

bool rma_project_id_is_valid(const char *id) {
        unsigned digits = 0;

        for (const char *c = id; *c; c++) {
                if (*c == '-')
                        continue;
                if (!g_ascii_isxdigit(*c))
                        return false;
                digits++;
        }
        return digits == 32;
}

uint64_t rma_fnv1a(const char *data, size_t n) {
        uint64_t h = UINT64_C(0xcbf29ce484222325);

        for (size_t i = 0; i < n; i++) {
                h ^= (unsigned char) data[i];
                h *= UINT64_C(0x100000001b3);
        }
        return h;
}

/* As Python's shlex.quote: what only ever is one plain word stays as it is. */
static bool shell_word_is_plain(const char *word) {
        if (!*word)
                return false;
        for (const char *c = word; *c; c++)
                if (!g_ascii_isalnum(*c) && !strchr("@%+=:,./_-", *c))
                        return false;
        return true;
}

char *rma_shell_quote(const char *word) {
        GString *s;

        if (shell_word_is_plain(word))
                return g_strdup(word);
        /* Inside '...' only ' itself is special: close the quote, write \', open it again. */
        s = g_string_new("'");
        for (const char *c = word; *c; c++)
                if (*c == '\'')
                        g_string_append(s, "'\\''");
                else
                        g_string_append_c(s, *c);
        g_string_append_c(s, '\'');
        return g_string_free(s, FALSE);
}

char *rma_size_unusable_why(uint64_t size, bool from_kernel) {
        char sz[32];

        if (size != 0 && size % RMA_PSERIES_STEP == 0)
                return NULL;
        rma_format_size(size, sz, sizeof(sz));
        return g_strdup_printf("no pseries guest can use an RMA of %s: QEMU and libvirt size pseries boot memory in "
                               "steps of 256 MiB (and SLOF needs 128 MiB); %s", sz,
                               from_kernel ? "boot the host with kvm_rma_size=256M (or 1G, 16G)"
                                           : "set Size= to 256M, 512M, 1G or a bigger power of two");
}
