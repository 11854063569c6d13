/* core/core_impl.h (private) - what core/ shares with the rest of libdsnn: element-wise loops
 * built for several instruction sets, and configuration helpers for core/keys.c.
 *
 * MULTIVERSION before a function definition compiles it for baseline x86-64, AVX2 and
 * AVX-512 (GCC / clang target_clones); the dynamic loader picks the version for the CPU (ifunc).
 * Only for loops without reductions: ISO C mode (-std=c11) does not contract a * b + c into a
 * fused multiply-add, so every version computes bit-identical results, whatever the vector
 * width. The sparse engine's kernels, whose results differ in rounding between sets, are
 * dispatched explicitly instead (isa.c, DSNN_ISA). */
#ifndef DSNN_CORE_IMPL_H
#define DSNN_CORE_IMPL_H

#if defined(__x86_64__) && defined(__ELF__) && (defined(__GNUC__) || defined(__clang__)) &&       \
    !defined(DSNN_NO_MULTIVERSION)
#define MULTIVERSION __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MULTIVERSION
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "dsnn/config.h"

/* core/config_source.c: a configuration's text with its @includes expanded (the snapshot the
 * host parses, hashes and saves) and the origin of each of its lines. */
struct cfg_origin {
    uint32_t file, line; /* index into files[], 1-based line in that file */
};
struct cfg_source {
    char *text; /* NUL-terminated; no @include left */
    size_t len;
    char **files; /* files[0] is the main file's name */
    size_t n_files;
    struct cfg_origin *lines; /* lines[i]: origin of line i + 1 of text */
    size_t n_lines;
};
/* Reads path (or takes text, named name in messages) and expands its @includes, recursively,
 * into *s. An unreadable main file is DSNN_ERR_IO; an unreadable include, a NUL byte, a cycle
 * (more than 10 levels) or more than 16 MiB is DSNN_ERR_CONFIG naming the file and the line. */
enum dsnn_status cfg_source_from_file(struct cfg_source *s, const char *path,
                                      struct dsnn_error *err);
enum dsnn_status cfg_source_from_text(struct cfg_source *s, const char *text, size_t len,
                                      const char *name, struct dsnn_error *err);
enum dsnn_status cfg_source_copy(struct cfg_source *dst, const struct cfg_source *src);
void cfg_source_free(struct cfg_source *s);
/* The file that line `line` of s->text came from (NULL if unknown) and its line there. */
const char *cfg_source_origin(const struct cfg_source *s, int line, int *orig_line);

/* Number of elements of the array or list `key` of cfg (0 when absent or a scalar). */
size_t cfg_key_count(const struct dsnn_cfg *cfg, const char *key);
/* "FILE:LINE: key 'group.key': what" (DSNN_ERR_CONFIG), the style of every key error. */
enum dsnn_status cfg_key_error(const struct dsnn_cfg *cfg, const char *key,
                               struct dsnn_error *err, const char *what);

#endif
