/* plugins/datasets/gsc/npz.h - a minimal, validating reader of NumPy .npz files (private to the
 * gsc plugin).
 *
 * An .npz file (numpy.savez / numpy.savez_compressed) is a ZIP archive whose members are .npy
 * files, one per array ("arr_0.npy", "arr_1.npy" for positional arguments, "<name>.npy" for
 * keyword arguments). Supported:
 *   ZIP: members stored (method 0, numpy.savez) or deflated (method 8, numpy.savez_compressed;
 *        inflated with zlib), ZIP64 extra fields (numpy writes them with force_zip64) and ZIP64
 *        end records, an archive comment; the CRC-32 of every member read is checked. Refused with
 *        a message naming the file and member: encryption, other compression methods, archives on
 *        several disks, members whose data lies outside the file, deflated members claiming more
 *        than deflate can expand (1032 times their compressed size).
 *   NPY: format versions 1.0, 2.0 and 3.0; the header dict {'descr', 'fortran_order', 'shape'};
 *        descr of a plain number type: floats of 4 and 8 bytes ('<f4', '<f8'), signed and
 *        unsigned integers of 1, 2, 4 and 8 bytes ('|u1', '<i8' ...), bool ('|b1'), in either
 *        byte order ('<', '>', '|', '='); structured and other types are refused;
 *        fortran_order False (True only for arrays of at most one dimension, where it changes
 *        nothing); at most NPZ_MAX_DIMS dimensions. The data must fill the member exactly.
 * Data are streamed from the file: an array is never held twice in memory. */
#ifndef DSNN_GSC_NPZ_H
#define DSNN_GSC_NPZ_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "dsnn/status.h"

#define NPZ_PATH_MAX 4096
#define NPZ_NAME_MAX 256
#define NPZ_MAX_DIMS 8

struct npz_member {
    char name[NPZ_NAME_MAX];
    uint16_t flags, method;
    uint32_t crc;
    uint64_t csize, size;   /* compressed and uncompressed sizes */
    uint64_t local_offset;  /* of the local header */
};

struct npz {
    char path[NPZ_PATH_MAX];
    FILE *f;
    uint64_t file_size;
    uint64_t cd_offset; /* where the central directory starts: member data must end before it */
    struct npz_member *members;
    size_t n_members;
};

/* The header of one array. */
struct npy_header {
    char descr[64];
    char kind;         /* 'f' float, 'i' signed, 'u' unsigned, 'b' bool */
    int itemsize;      /* bytes per element */
    bool big_endian;
    int ndim;
    uint64_t shape[NPZ_MAX_DIMS];
    uint64_t count;    /* product of shape (1 for a scalar) */
    uint64_t data_offset; /* bytes of the member before the data */
};

/* Opens path and reads its central directory. On failure z holds nothing to free. */
enum dsnn_status npz_open(const char *path, struct npz *z, struct dsnn_error *err);
void npz_close(struct npz *z);

/* The member of array `name` ("x" finds "x.npy" or "x"), or NULL. */
const struct npz_member *npz_find(const struct npz *z, const char *name);
/* "arr_0, arr_1" (the names of the arrays, without .npy) into buf, for messages. */
const char *npz_list(const struct npz *z, char *buf, size_t size);

/* Reads and checks the .npy header of member m. */
enum dsnn_status npz_header(struct npz *z, const struct npz_member *m, struct npy_header *h,
                            struct dsnn_error *err);
/* Reads all h->count elements of member m (of header h) converted to float into out, checking
 * that nothing follows and the CRC-32. Integers and bools convert exactly when they fit. */
enum dsnn_status npz_read_f32(struct npz *z, const struct npz_member *m,
                              const struct npy_header *h, float *out, struct dsnn_error *err);
/* The same for an integer (or bool) array into int64; a float array is refused. */
enum dsnn_status npz_read_i64(struct npz *z, const struct npz_member *m,
                              const struct npy_header *h, int64_t *out, struct dsnn_error *err);

#endif
