/* tests/fuzz/fuzz_npz.c - the gsc dataset plugin's .npz / .npy reader (npz.c), through its own
 * interface (every member's header and data) and through the plugin (Google Speech Commands
 * files: arrays arr_0 and arr_1).
 *
 * Input: byte 0 chooses options (bit 0: normalize = "dataset"; bit 1: read the samples as
 * int64 too), the rest is the .npz file, which is the train and the test file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_plugins.h"
#include "npz.h"

/* Every member: header, then the data as float (and as int64). */
static void read_members(const char *path, unsigned opt)
{
    struct npz z;
    struct dsnn_error err = {0};
    if (fuzz_report("npz", npz_open(path, &z, &err), &err) != DSNN_OK)
        return;
    char names[512];
    (void)npz_list(&z, names, sizeof names);
    (void)npz_find(&z, "arr_0");
    for (size_t i = 0; i < z.n_members; i++) {
        const struct npz_member *m = &z.members[i];
        struct npy_header h;
        if (fuzz_report(m->name, npz_header(&z, m, &h, &err), &err) != DSNN_OK)
            continue;
        /* the header announced what the member holds (checked against its size) */
        float *f = malloc(h.count ? (size_t)h.count * sizeof *f : 1);
        int64_t *v = malloc(h.count ? (size_t)h.count * sizeof *v : 1);
        if (f)
            (void)fuzz_report("f32", npz_read_f32(&z, m, &h, f, &err), &err);
        if (v && (opt & 2))
            (void)npz_read_i64(&z, m, &h, v, &err);
        free(f);
        free(v);
    }
    npz_close(&z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const unsigned opt = data[0];
    char path[4096], text[8192];
    fuzz_write(fuzz_path(path, "gsc.npz"), data + 1, size - 1);
    read_members(path, opt);
    snprintf(text, sizeof text,
             "dataset = { plugin = \"gsc\"; path = \"%s\"; train_file = \"gsc.npz\";\n"
             "  test_file = \"gsc.npz\"; batch_size_train = 4; batch_size_test = 4;\n"
             "  normalize = \"%s\"; };\n",
             fuzz_dir(), opt & 1 ? "dataset" : "none");
    fuzz_run_dataset("gsc", text);
    unlink(path);
    return 0;
}
