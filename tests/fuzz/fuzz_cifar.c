/* tests/fuzz/fuzz_cifar.c - the cifar dataset plugin's reader of CIFAR-10 / CIFAR-100 binary
 * files (raw or gzip, through dsnn_read_file).
 *
 * Input: byte 0 chooses options (bit 0: variant cifar100; bit 1: label_mode coarse; bit 2:
 * val_fraction = 0.5, so that the test file is not read; bit 3: augment; bit 4: test_noise), the
 * rest is the file, which every file the variant reads (CIFAR-10: data_batch_1.bin ...
 * data_batch_5.bin and test_batch.bin; CIFAR-100: train.bin, test.bin) links to. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_plugins.h"

static const char *const names[2][6] = {
    {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
     "data_batch_5.bin", "test_batch.bin"},
    {"train.bin", "test.bin", NULL, NULL, NULL, NULL},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const unsigned opt = data[0];
    const int v = opt & 1;
    char file[4096], link_path[4096], text[8192];
    fuzz_write(fuzz_path(file, "input"), data + 1, size - 1);
    bool linked = true;
    for (int i = 0; i < 6 && names[v][i]; i++)
        linked = link(file, fuzz_path(link_path, names[v][i])) == 0 && linked;
    snprintf(text, sizeof text,
             "dataset = { plugin = \"cifar\"; path = \"%s\"; variant = \"%s\";\n"
             "  label_mode = \"%s\"; batch_size_train = 4; batch_size_test = 4;\n"
             "  val_fraction = %s; augment = %s; test_noise = %s; };\n",
             fuzz_dir(), v ? "cifar100" : "cifar10", v && (opt & 2) ? "coarse" : "fine",
             opt & 4 ? "0.5" : "0.0", opt & 8 ? "true" : "false", opt & 16 ? "true" : "false");
    if (linked)
        fuzz_run_dataset("cifar", text);
    for (int i = 0; i < 6 && names[v][i]; i++)
        unlink(fuzz_path(link_path, names[v][i]));
    unlink(file);
    return 0;
}
