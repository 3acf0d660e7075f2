/* The names of an enum's values: one table per enum, indexed by value, and one macro for
 * the lookups (systemd's DEFINE_STRING_TABLE_LOOKUP), so that no lookup is written by hand. */
#pragma once

#include <errno.h>
#include <string.h>

#define STRING_TABLE_SIZE(name) (sizeof(name##_table) / sizeof(name##_table[0]))

/* const char *name_to_string(type value): the table's entry, or fallback. */
#define DEFINE_STRING_TABLE_TO_STRING(name, type, fallback)                                            \
        const char *name##_to_string(type value) {                                                    \
                return (size_t) value < STRING_TABLE_SIZE(name) && name##_table[value] ? name##_table[value] \
                                                                                        : (fallback); \
        }

/* int name_from_string(const char *s, type *ret): 0, or -EINVAL for a name not in the table. */
#define DEFINE_STRING_TABLE_FROM_STRING(name, type)                                                    \
        int name##_from_string(const char *s, type *ret) {                                            \
                for (size_t i = 0; s && i < STRING_TABLE_SIZE(name); i++)                              \
                        if (name##_table[i] && strcmp(s, name##_table[i]) == 0) {                      \
                                *ret = (type) i;                                                       \
                                return 0;                                                              \
                        }                                                                              \
                return -EINVAL;                                                                        \
        }
