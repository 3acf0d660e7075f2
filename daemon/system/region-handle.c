/* Kernel file handles of regions: get, reopen, and their text form in the registry. */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "region-handle.h"

typedef struct HandleBuffer {
        struct file_handle fh;
        unsigned char bytes[REGION_HANDLE_MAX];
} HandleBuffer;

int region_handle_get(int fd, RegionHandle *ret) {
        HandleBuffer b = { .fh.handle_bytes = REGION_HANDLE_MAX };
        int mount_id;

        *ret = (RegionHandle) { 0 };
        if (name_to_handle_at(fd, "", &b.fh, &mount_id, AT_EMPTY_PATH) < 0)
                return errno == EOVERFLOW ? -EOPNOTSUPP : -errno;
        if (b.fh.handle_bytes == 0 || b.fh.handle_bytes > REGION_HANDLE_MAX)
                return -EOPNOTSUPP;
        ret->type = b.fh.handle_type;
        ret->len = (uint8_t) b.fh.handle_bytes;
        memcpy(ret->bytes, b.fh.f_handle, b.fh.handle_bytes);
        return 0;
}

int region_handle_open(int anchor_fd, const RegionHandle *h, int *ret_fd) {
        HandleBuffer b = { .fh.handle_bytes = h->len, .fh.handle_type = h->type };
        int fd;

        if (h->len == 0 || h->len > REGION_HANDLE_MAX)
                return -EINVAL;
        memcpy(b.fh.f_handle, h->bytes, h->len);
        fd = open_by_handle_at(anchor_fd, &b.fh, O_RDWR | O_CLOEXEC);
        /* A leased region is mode 0000: without CAP_DAC_OVERRIDE (the unit) only reading
         * is allowed, which is all a watch and a check need. */
        if (fd < 0 && errno == EACCES)
                fd = open_by_handle_at(anchor_fd, &b.fh, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        *ret_fd = fd;
        return 0;
}

/* Written on every change of a slot (the registry record): a table, not a printf a byte. */
char *region_handle_format(const RegionHandle *h) {
        static const char hex[] = "0123456789abcdef";
        char type[16], *t = type + sizeof(type);
        unsigned v = h->type < 0 ? -(unsigned) h->type : (unsigned) h->type;
        char *s, *p;

        if (h->len == 0)
                return g_strdup("-");
        *--t = ':';
        do
                *--t = (char) ('0' + v % 10);
        while ((v /= 10) != 0);
        if (h->type < 0)
                *--t = '-';
        s = g_malloc((size_t) (type + sizeof(type) - t) + 2 * h->len + 1);
        p = mempcpy(s, t, (size_t) (type + sizeof(type) - t));
        for (unsigned i = 0; i < h->len; i++) {
                *p++ = hex[h->bytes[i] >> 4];
                *p++ = hex[h->bytes[i] & 15];
        }
        *p = '\0';
        return s;
}

bool region_handle_parse(const char *s, RegionHandle *ret) {
        const char *colon, *hex;
        size_t n;
        gint64 type;
        char *end;

        *ret = (RegionHandle) { 0 };
        if (!s)
                return false;
        if (g_str_equal(s, "-"))
                return true;
        colon = strchr(s, ':');
        if (!colon)
                return false;
        type = g_ascii_strtoll(s, &end, 10);
        if (end != colon || type < 0 || type > 255)
                return false;
        hex = colon + 1;
        n = strlen(hex);
        if (n == 0 || n % 2 != 0 || n / 2 > REGION_HANDLE_MAX)
                return false;
        for (size_t i = 0; i < n / 2; i++) {
                int hi = g_ascii_xdigit_value(hex[2 * i]), lo = g_ascii_xdigit_value(hex[2 * i + 1]);
                if (hi < 0 || lo < 0)
                        return false;
                ret->bytes[i] = (uint8_t) (hi << 4 | lo);
        }
        ret->type = (int) type;
        ret->len = (uint8_t) (n / 2);
        return true;
}
