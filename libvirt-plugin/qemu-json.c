/* A strict reader of one flat JSON object and a writer of them (qemu-json.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu-json.h"

#define MAX_DEPTH 32

typedef struct {
        char *name, *raw, *string; /* string: the decoded value, when it is a string */
} Member;

struct QemuObject {
        GPtrArray *members;
};

static void member_free(Member *m) {
        g_free(m->name);
        g_free(m->raw);
        g_free(m->string);
        g_free(m);
}

void qemu_object_free(QemuObject *obj) {
        if (!obj)
                return;
        g_ptr_array_unref(obj->members);
        g_free(obj);
}

static void skip_ws(const char **p) {
        while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')
                (*p)++;
}

static int hex4(const char *p) {
        int v = 0;

        for (int i = 0; i < 4; i++) {
                int c = g_ascii_xdigit_value(p[i]);
                if (c < 0)
                        return -EINVAL;
                v = v * 16 + c;
        }
        return v;
}

/* A \uXXXX escape (and its low surrogate) at *p, past the backslash-u; 0 is refused:
 * the decoded strings are C strings. */
static int unicode_escape(const char **p, gunichar *ret) {
        int hi = hex4(*p), lo;

        if (hi <= 0 || (hi >= 0xdc00 && hi <= 0xdfff))
                return -EINVAL;
        *p += 4;
        if (hi < 0xd800 || hi > 0xdbff) {
                *ret = (gunichar) hi;
                return 0;
        }
        if ((*p)[0] != '\\' || (*p)[1] != 'u')
                return -EINVAL;
        lo = hex4(*p + 2);
        if (lo < 0xdc00 || lo > 0xdfff)
                return -EINVAL;
        *p += 6;
        *ret = 0x10000 + (((gunichar) hi - 0xd800) << 10) + ((gunichar) lo - 0xdc00);
        return 0;
}

/* A string at *p (on its opening quote); its decoded value appended to OUT if not NULL. */
static int scan_string(const char **p, GString *out) {
        const char *s = *p + 1;

        for (;;) {
                unsigned char c = (unsigned char) *s;
                gunichar u;

                if (c == '"')
                        break;
                if (c < 0x20)
                        return -EINVAL; /* also the end of the text */
                if (c != '\\') {
                        if (out)
                                g_string_append_c(out, (char) c);
                        s++;
                        continue;
                }
                s++;
                switch (*s) {
                case '"': case '\\': case '/': u = (gunichar) *s; break;
                case 'b': u = '\b'; break;
                case 'f': u = '\f'; break;
                case 'n': u = '\n'; break;
                case 'r': u = '\r'; break;
                case 't': u = '\t'; break;
                case 'u':
                        s++;
                        if (unicode_escape(&s, &u) < 0)
                                return -EINVAL;
                        if (out)
                                g_string_append_unichar(out, u);
                        continue;
                default: return -EINVAL;
                }
                if (out)
                        g_string_append_c(out, (char) u);
                s++;
        }
        *p = s + 1;
        return 0;
}

static void skip_digits(const char **p) {
        while (g_ascii_isdigit(**p))
                (*p)++;
}

static int scan_number(const char **p) {
        const char *s = *p;

        if (*s == '-')
                s++;
        if (*s == '0')
                s++;
        else if (*s >= '1' && *s <= '9')
                skip_digits(&s);
        else
                return -EINVAL;
        if (*s == '.') {
                if (!g_ascii_isdigit(*++s))
                        return -EINVAL;
                skip_digits(&s);
        }
        if (*s == 'e' || *s == 'E') {
                s++;
                if (*s == '+' || *s == '-')
                        s++;
                if (!g_ascii_isdigit(*s))
                        return -EINVAL;
                skip_digits(&s);
        }
        *p = s;
        return 0;
}

static int scan_value(const char **p, int depth);

/* The members of an object or the elements of an array, *p just past its opening bracket. */
static int scan_container(const char **p, char close, int depth) {
        skip_ws(p);
        if (**p == close) {
                (*p)++;
                return 0;
        }
        for (;;) {
                if (close == '}') {
                        if (**p != '"' || scan_string(p, NULL) < 0)
                                return -EINVAL;
                        skip_ws(p);
                        if (*(*p)++ != ':')
                                return -EINVAL;
                }
                if (scan_value(p, depth + 1) < 0)
                        return -EINVAL;
                skip_ws(p);
                if (**p == close) {
                        (*p)++;
                        return 0;
                }
                if (*(*p)++ != ',')
                        return -EINVAL;
                skip_ws(p);
        }
}

static int scan_value(const char **p, int depth) {
        static const char *const literals[] = { "true", "false", "null" };

        if (depth > MAX_DEPTH)
                return -EINVAL;
        skip_ws(p);
        switch (**p) {
        case '"': return scan_string(p, NULL);
        case '{': (*p)++; return scan_container(p, '}', depth);
        case '[': (*p)++; return scan_container(p, ']', depth);
        }
        for (size_t i = 0; i < G_N_ELEMENTS(literals); i++)
                if (g_str_has_prefix(*p, literals[i])) {
                        *p += strlen(literals[i]);
                        return 0;
                }
        return scan_number(p);
}

static Member *find(const QemuObject *obj, const char *name) {
        for (size_t i = 0; i < obj->members->len; i++) {
                Member *m = obj->members->pdata[i];
                if (strcmp(m->name, name) == 0)
                        return m;
        }
        return NULL;
}

/* One "name": value at *p into OBJ. */
static int parse_member(QemuObject *obj, const char **p) {
        g_autoptr(GString) name = g_string_new(NULL), string = NULL;
        const char *start;
        Member *m;

        if (**p != '"' || scan_string(p, name) < 0)
                return -EINVAL;
        skip_ws(p);
        if (*(*p)++ != ':')
                return -EINVAL;
        skip_ws(p);
        start = *p;
        if (*start == '"') {
                string = g_string_new(NULL);
                if (scan_string(p, string) < 0)
                        return -EINVAL;
        } else if (scan_value(p, 1) < 0)
                return -EINVAL;
        m = find(obj, name->str);
        if (!m) {
                m = g_new0(Member, 1);
                m->name = g_string_free(g_steal_pointer(&name), FALSE);
                g_ptr_array_add(obj->members, m);
        }
        g_free(m->raw);
        g_free(m->string);
        m->raw = g_strndup(start, (gsize) (*p - start));
        m->string = string ? g_string_free(g_steal_pointer(&string), FALSE) : NULL;
        return 0;
}

QemuObject *qemu_object_parse(const char *text) {
        g_autoptr(QemuObject) obj = g_new0(QemuObject, 1);
        const char *p = text;

        obj->members = g_ptr_array_new_with_free_func((GDestroyNotify) member_free);
        if (!g_utf8_validate(text, -1, NULL))
                return NULL;
        skip_ws(&p);
        if (*p++ != '{')
                return NULL;
        skip_ws(&p);
        if (*p == '}')
                p++;
        else
                for (;;) {
                        if (parse_member(obj, &p) < 0)
                                return NULL;
                        skip_ws(&p);
                        if (*p == '}') {
                                p++;
                                break;
                        }
                        if (*p++ != ',')
                                return NULL;
                        skip_ws(&p);
                }
        skip_ws(&p);
        return *p ? NULL : g_steal_pointer(&obj);
}

size_t qemu_object_count(const QemuObject *obj) {
        return obj->members->len;
}

const char *qemu_object_name(const QemuObject *obj, size_t i) {
        return ((Member *) obj->members->pdata[i])->name;
}

const char *qemu_object_raw(const QemuObject *obj, size_t i) {
        return ((Member *) obj->members->pdata[i])->raw;
}

bool qemu_object_has(const QemuObject *obj, const char *name) {
        return find(obj, name) != NULL;
}

const char *qemu_object_string(const QemuObject *obj, const char *name) {
        Member *m = find(obj, name);

        return m ? m->string : NULL;
}

bool qemu_object_int(const QemuObject *obj, const char *name, int64_t *ret) {
        Member *m = find(obj, name);
        char *end;
        long long v;

        if (!m || strpbrk(m->raw, ".eE") || !(m->raw[0] == '-' || g_ascii_isdigit(m->raw[0])))
                return false;
        errno = 0;
        v = strtoll(m->raw, &end, 10);
        if (errno || *end)
                return false;
        *ret = v;
        return true;
}

GString *qemu_json_begin(void) {
        return g_string_new("{");
}

static void append_string(GString *out, const char *s) {
        g_string_append_c(out, '"');
        for (; *s; s++) {
                unsigned char c = (unsigned char) *s;
                if (c == '"' || c == '\\')
                        g_string_append_printf(out, "\\%c", c);
                else if (c < 0x20)
                        g_string_append_printf(out, "\\u%04x", c);
                else
                        g_string_append_c(out, (char) c);
        }
        g_string_append_c(out, '"');
}

void qemu_json_add_raw(GString *out, const char *name, const char *raw) {
        if (out->len > 1)
                g_string_append_c(out, ',');
        append_string(out, name);
        g_string_append_c(out, ':');
        g_string_append(out, raw);
}

void qemu_json_add_string(GString *out, const char *name, const char *value) {
        g_autoptr(GString) s = g_string_new(NULL);

        append_string(s, value);
        qemu_json_add_raw(out, name, s->str);
}

void qemu_json_add_uint(GString *out, const char *name, uint64_t value) {
        char s[24];

        snprintf(s, sizeof(s), "%" PRIu64, value);
        qemu_json_add_raw(out, name, s);
}

char *qemu_json_end(GString *out) {
        g_string_append_c(out, '}');
        return g_string_free(out, FALSE);
}
