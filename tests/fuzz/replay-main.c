/* Runs a fuzz target over files or directories of inputs, for builds without libFuzzer:
 * every corpus entry and past crash stays a regression test. */
#include <glib.h>
#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
        g_autofree char *data = NULL;
        gsize len;

        if (!g_file_get_contents(path, &data, &len, NULL)) {
                fprintf(stderr, "cannot read %s\n", path);
                return 1;
        }
        LLVMFuzzerTestOneInput((const uint8_t *) data, len);
        return 0;
}

int main(int argc, char *argv[]) {
        unsigned n = 0;
        int failed = 0;

        for (int i = 1; i < argc; i++) {
                g_autoptr(GDir) dir = g_dir_open(argv[i], 0, NULL);
                const char *name;
                if (!dir) {
                        failed |= run_file(argv[i]);
                        n++;
                        continue;
                }
                while ((name = g_dir_read_name(dir))) {
                        g_autofree char *path = g_build_filename(argv[i], name, NULL);
                        failed |= run_file(path);
                        n++;
                }
        }
        printf("ok 1 - replayed %u inputs without a crash\n1..1\n", n);
        return failed;
}
