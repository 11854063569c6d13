/* gen_cifar - writes a small CIFAR-10 binary data set (data_batch_1..5.bin, test_batch.bin:
 * records of 1 label byte + 3072 pixel bytes, 3 planes of 32x32) for blackbox runs of the cifar
 * plugin; the real CIFAR-10 cannot be downloaded on the project's machines.
 *
 *   gen_cifar DIR [per_batch (100)] [n_test (200)]
 *
 * Record i has label i % 10; its pixels are a class pattern (one bright quadrant per class and
 * channel, a class-dependent mean) plus uniform noise, from a fixed-seed generator: learnable, so
 * a run can be checked to beat chance, and the same bytes on every machine. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define REC (1 + 3 * 32 * 32)

static uint64_t g_state = 0x9e3779b97f4a7c15ull;

static uint32_t next_u32(void)
{
    g_state = g_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(g_state >> 33);
}

static void record(unsigned char *r, int label)
{
    r[0] = (unsigned char)label;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++) {
                const int quadrant = (y >= 16) * 2 + (x >= 16);
                const int bright = (label + c) % 4 == quadrant;
                const int v = 40 + 12 * label + (bright ? 90 : 0) + (int)(next_u32() % 60);
                r[1 + (c * 32 + y) * 32 + x] = (unsigned char)(v > 255 ? 255 : v);
            }
}

static int write_batch(const char *dir, const char *name, int n, int first)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return fprintf(stderr, "gen_cifar: path too long\n"), 1;
    FILE *f = fopen(path, "wb");
    if (!f)
        return fprintf(stderr, "gen_cifar: %s: %s\n", path, strerror(errno)), 1;
    unsigned char r[REC];
    for (int i = 0; i < n; i++) {
        record(r, (first + i) % 10);
        if (fwrite(r, 1, sizeof r, f) != sizeof r) {
            fclose(f);
            return fprintf(stderr, "gen_cifar: %s: write failed\n", path), 1;
        }
    }
    return fclose(f) == 0 ? 0 : (fprintf(stderr, "gen_cifar: %s: close failed\n", path), 1);
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4)
        return fprintf(stderr, "usage: gen_cifar DIR [per_batch] [n_test]\n"), 2;
    const int per = argc > 2 ? atoi(argv[2]) : 100, n_test = argc > 3 ? atoi(argv[3]) : 200;
    if (per < 1 || per > 10000 || n_test < 1 || n_test > 10000)
        return fprintf(stderr, "gen_cifar: counts must be in [1, 10000]\n"), 2;
    if (mkdir(argv[1], 0755) != 0 && errno != EEXIST)
        return fprintf(stderr, "gen_cifar: %s: %s\n", argv[1], strerror(errno)), 1;
    int bad = 0;
    for (int k = 1; k <= 5; k++) {
        char name[32];
        snprintf(name, sizeof name, "data_batch_%d.bin", k);
        bad |= write_batch(argv[1], name, per, (k - 1) * per);
    }
    bad |= write_batch(argv[1], "test_batch.bin", n_test, 0);
    return bad;
}
