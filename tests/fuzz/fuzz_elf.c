/* tests/fuzz/fuzz_elf.c - the ELF check the host runs on a plugin file before dlopen
 * (host/elf_check.c): any bytes get DSNN_OK or an error with a message, never a read outside
 * them; a file it accepts has its program headers within the file.
 *
 * Input: the bytes of a file in a plugin directory. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "elf_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a private copy of exactly size bytes, so that ASan sees any read past them */
    unsigned char *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    if (size)
        memcpy(copy, data, size);
    struct dsnn_error err = {0};
    enum dsnn_status st = dsnn_elf_check(copy, size, &err);
    if (st != DSNN_OK && !err.msg[0])
        abort(); /* a refusal must say why */
    free(copy);
    return 0;
}
