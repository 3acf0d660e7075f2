/* libFuzzer target: arbitrary bytes as libvirt's -object JSON, through the wrapper's
 * reader (qemu-json.c) and the whole layout of guest memory. Must never crash or leak;
 * whatever the reader accepts, what it writes back reads again alike. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qemu-cmdline.h"
#include "qemu-json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_round_trip(const char *text) {
        g_autoptr(QemuObject) obj = qemu_object_parse(text), again = NULL;
        g_autofree char *written = NULL;
        GString *out;

        if (!obj)
                return;
        out = qemu_json_begin();
        for (size_t i = 0; i < qemu_object_count(obj); i++)
                qemu_json_add_raw(out, qemu_object_name(obj, i), qemu_object_raw(obj, i));
        written = qemu_json_end(out);
        again = qemu_object_parse(written);
        if (!again || qemu_object_count(again) != qemu_object_count(obj))
                abort();
        for (size_t i = 0; i < qemu_object_count(obj); i++)
                if (strcmp(qemu_object_name(obj, i), qemu_object_name(again, i)) != 0 ||
                    strcmp(qemu_object_raw(obj, i), qemu_object_raw(again, i)) != 0)
                        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        g_autofree char *text = NULL;
        g_autoptr(GError) error = NULL;
        g_auto(GStrv) out = NULL;
        g_autofree char *summary = NULL;

        if (size > 64 * 1024)
                return 0;
        text = g_strndup((const char *) data, size);
        check_round_trip(text);
        {
                char *argv[] = { "qemu", "-m", "size=1048576k,slots=2,maxmem=4194304k", "-object", text, "-uuid",
                                 "7b1c2d3e-0000-4000-8000-00000000000a", NULL };
                out = qemu_cmdline_lay_out_rma(argv, 3, 256 << 20, &summary, &error);
        }
        for (size_t i = 0; out && out[i]; i++)
                if (strncmp(out[i], "{\"qom-type\"", 11) == 0 || strncmp(out[i], "{\"driver\"", 9) == 0)
                        check_round_trip(out[i]);
        return 0;
}
