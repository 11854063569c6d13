/* tests/fuzz/fuzz_idx.c - the idx dataset plugin's reader of IDX files, raw or gzip.
 *
 * Input: byte 0 chooses options (bit 0: val_fraction = 0.5, so that the test files are not read;
 * bit 1: normalize = "none" instead of "dataset"; bit 2: test_noise), bytes 1..4 the length L
 * (little-endian, cut to what follows) of the images file, then L bytes of the images file, then
 * the labels file. The test files are the same two files. The plugin opens them (every check of
 * the reader), and serves a batch of each split. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dsnn/dsnn.h"
#include "fuzz_plugins.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5)
        return 0;
    const unsigned opt = data[0];
    size_t len = (size_t)data[1] | (size_t)data[2] << 8 | (size_t)data[3] << 16 |
                 (size_t)data[4] << 24;
    data += 5;
    size -= 5;
    if (len > size)
        len = size;
    char images[4096], labels[4096], text[12288];
    fuzz_write(fuzz_path(images, "images"), data, len);
    fuzz_write(fuzz_path(labels, "labels"), data + len, size - len);
    snprintf(text, sizeof text,
             "dataset = { plugin = \"idx\"; path = \"%s\"; train_images = \"images\";\n"
             "  train_labels = \"labels\"; test_images = \"images\"; test_labels = \"labels\";\n"
             "  batch_size_train = 8; batch_size_test = 8; val_fraction = %s;\n"
             "  normalize = \"%s\"; test_noise = %s; };\n",
             fuzz_dir(), opt & 1 ? "0.5" : "0.0", opt & 2 ? "none" : "dataset",
             opt & 4 ? "true" : "false");
    fuzz_run_dataset("idx", text);
    unlink(images);
    unlink(labels);
    return 0;
}
