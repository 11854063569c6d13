/* tests/fuzz/elf_seed.c - a small shared object, the seed of fuzz_elf (a valid ELF the host
 * would load). */
int dsnn_fuzz_elf_seed(int x);
int dsnn_fuzz_elf_seed(int x)
{
    return x + 1;
}
