/* The access ACL of a file, as the kernel's posix_acl_access xattr. */
#include <endian.h>
#include <errno.h>
#include <glib.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/xattr.h>

#include "file-acl.h"

/* <linux/posix_acl_xattr.h> and <linux/posix_acl.h>, which userspace headers do not ship. */
#define ACL_XATTR_VERSION 0x0002
enum {
        ACL_TAG_USER_OBJ = 0x01,
        ACL_TAG_USER = 0x02,
        ACL_TAG_GROUP_OBJ = 0x04,
        ACL_TAG_MASK = 0x10,
        ACL_TAG_OTHER = 0x20,
};
#define ACL_PERM_RW 06
#define ACL_NO_ID 0xffffffffu

typedef struct __attribute__((packed)) AclEntry {
        uint16_t tag;
        uint16_t perm;
        uint32_t id;
} AclEntry;

static void put_entry(GByteArray *acl, uint16_t tag, uint16_t perm, uint32_t id) {
        AclEntry e = { .tag = htole16(tag), .perm = htole16(perm), .id = htole32(id) };

        g_byte_array_append(acl, (const guint8 *) &e, sizeof(e));
}

static int compare_uid(const void *a, const void *b) {
        uid_t x = *(const uid_t *) a, y = *(const uid_t *) b;

        return x < y ? -1 : x > y;
}

int file_acl_grant_users(const char *path, const uid_t *uids, size_t n_uids) {
        g_autoptr(GByteArray) acl = g_byte_array_new();
        g_autofree uid_t *sorted = g_memdup2(uids, n_uids * sizeof(uid_t));
        uint32_t version = htole32(ACL_XATTR_VERSION);

        /* The kernel takes user entries in ascending order, each uid once. */
        qsort(sorted, n_uids, sizeof(uid_t), compare_uid);
        g_byte_array_append(acl, (const guint8 *) &version, sizeof(version));
        put_entry(acl, ACL_TAG_USER_OBJ, ACL_PERM_RW, ACL_NO_ID);
        for (size_t i = 0; i < n_uids; i++)
                if (i == 0 || sorted[i] != sorted[i - 1])
                        put_entry(acl, ACL_TAG_USER, ACL_PERM_RW, sorted[i]);
        put_entry(acl, ACL_TAG_GROUP_OBJ, 0, ACL_NO_ID);
        put_entry(acl, ACL_TAG_MASK, ACL_PERM_RW, ACL_NO_ID);
        put_entry(acl, ACL_TAG_OTHER, 0, ACL_NO_ID);
        if (lsetxattr(path, "system.posix_acl_access", acl->data, acl->len, 0) < 0)
                return errno == ENOTSUP ? -EOPNOTSUPP : -errno;
        return 0;
}
