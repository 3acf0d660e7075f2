/* The little JSON the wrapper reads and writes: libvirt's "-object {...}" arguments, one
 * flat object each. Members keep their order; a value that is not a string (a number,
 * true, host-nodes' array, ...) is kept as its exact JSON text and written back as is.
 * Glib alone: json-glib would bring gio and eight more libraries into every opted-in
 * start, about 2.8 million instructions of symbol binding (docs/performance.md). */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct QemuObject QemuObject;

/* TEXT if it is exactly one valid JSON object (UTF-8, strings without NUL, nesting at
 * most 32 deep); NULL otherwise. A repeated member keeps its first place and last value. */
QemuObject *qemu_object_parse(const char *text);
void qemu_object_free(QemuObject *obj);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QemuObject, qemu_object_free)

size_t qemu_object_count(const QemuObject *obj);
/* The name and exact JSON text of member I. */
const char *qemu_object_name(const QemuObject *obj, size_t i);
const char *qemu_object_raw(const QemuObject *obj, size_t i);
bool qemu_object_has(const QemuObject *obj, const char *name);
/* The member's value when it is a string, decoded; NULL otherwise. */
const char *qemu_object_string(const QemuObject *obj, const char *name);
/* The member's value when it is an integer that fits int64 (no fraction or exponent). */
bool qemu_object_int(const QemuObject *obj, const char *name, int64_t *ret);

/* Writing: OUT holds "{" and then members; close it with qemu_json_end(). */
GString *qemu_json_begin(void);
void qemu_json_add_raw(GString *out, const char *name, const char *raw);
void qemu_json_add_string(GString *out, const char *name, const char *value);
void qemu_json_add_uint(GString *out, const char *name, uint64_t value);
char *qemu_json_end(GString *out);
