/* host/elf_check.h - is a byte buffer a shared object that this build's dynamic loader can map
 * without touching memory beyond the end of the file?
 *
 * dlopen() maps a plugin's PT_LOAD segments with mmap(); a segment whose file range ends past
 * the end of the file (a truncated or corrupt .so) maps fine but kills the process with SIGBUS
 * at the first access, inside the loader, before any error can be reported. The registry
 * therefore reads the plugin file and checks it with dsnn_elf_check() before calling dlopen.
 *
 *     unsigned char *bytes = ...; size_t size = ...;     // the whole file
 *     struct dsnn_error err = {0};
 *     if (dsnn_elf_check(bytes, size, &err) != DSNN_OK)
 *         fprintf(stderr, "%s: %s\n", path, err.msg);    // e.g. "truncated ELF file: ..."
 *
 * Checks, in order (the first failure is reported):
 *   - at least an ELF header; magic "\x7fELF"; class (32/64-bit), byte order and ELF version of
 *     this build; e_type ET_DYN; e_machine of this build (where the build knows its machine);
 *     e_ehsize at least the header;
 *   - a program header table: e_phentsize == sizeof(Phdr), 1 <= e_phnum < PN_XNUM, and the
 *     table within the file;
 *   - every PT_LOAD: p_filesz <= p_memsz, file range [p_offset, p_offset + p_filesz) within the
 *     file, p_align 0 or a power of two with p_vaddr == p_offset modulo p_align, no overflow of
 *     p_vaddr + p_memsz; at least one PT_LOAD;
 *   - exactly one PT_DYNAMIC, its file range within the file and its address range inside a
 *     PT_LOAD (the loader reads it through that mapping);
 *   - the section header table (when e_shoff != 0): e_shentsize == sizeof(Shdr), the table
 *     within the file (extended numbering, e_shnum == 0, through section 0's sh_size), and the
 *     file range of every section but SHT_NOBITS within the file.
 * All offset + size sums are overflow-checked. The message (in err, status DSNN_ERR_FORMAT)
 * says what is wrong but does not name the file: the caller prefixes the path.
 *
 * This catches broken files (truncated, bit-flipped headers, not a shared object, another
 * architecture); it does not make a deliberately crafted .so safe to load: a plugin is code that
 * runs in the host, so which files are loaded at all is decided by the ownership and permission
 * checks of the registry (registry.h).
 *
 * A pure function over (bytes, size): no I/O, no allocation; bytes may be any alignment.
 * Suitable for a fuzz harness. */
#ifndef DSNN_HOST_ELF_CHECK_H
#define DSNN_HOST_ELF_CHECK_H

#include <stddef.h>
#include "dsnn/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* DSNN_OK when bytes[0, size) pass every check above, else DSNN_ERR_FORMAT (DSNN_ERR_INVALID
 * for bytes == NULL with size > 0) with the reason in err (may be NULL). */
enum dsnn_status dsnn_elf_check(const unsigned char *bytes, size_t size, struct dsnn_error *err);

#ifdef __cplusplus
}
#endif
#endif
