/* host/elf_check.c - structural check of a shared object before dlopen (see elf_check.h). */
#include "elf_check.h"

#include <elf.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* The ELF flavour of this build. */
#if UINTPTR_MAX > 0xffffffffu
#define EC_CLASS ELFCLASS64
#define EC_BITS 64
typedef Elf64_Ehdr ec_ehdr;
typedef Elf64_Phdr ec_phdr;
typedef Elf64_Shdr ec_shdr;
#else
#define EC_CLASS ELFCLASS32
#define EC_BITS 32
typedef Elf32_Ehdr ec_ehdr;
typedef Elf32_Phdr ec_phdr;
typedef Elf32_Shdr ec_shdr;
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define EC_DATA ELFDATA2MSB
#else
#define EC_DATA ELFDATA2LSB
#endif

#if defined(__x86_64__)
#define EC_MACHINE EM_X86_64
#elif defined(__i386__)
#define EC_MACHINE EM_386
#elif defined(__aarch64__)
#define EC_MACHINE EM_AARCH64
#elif defined(__arm__)
#define EC_MACHINE EM_ARM
#elif defined(__riscv)
#define EC_MACHINE EM_RISCV
#elif defined(__powerpc64__)
#define EC_MACHINE EM_PPC64
#elif defined(__s390x__)
#define EC_MACHINE EM_S390
#endif

static const char *class_name(unsigned c)
{
    return c == ELFCLASS32 ? "32-bit" : c == ELFCLASS64 ? "64-bit" : "unknown class";
}

/* True when [off, off + len) lies within [0, size); no overflow. */
static bool in_file(uint64_t off, uint64_t len, size_t size)
{
    return off <= size && len <= (uint64_t)size - off;
}

/* Table of n entries of ent bytes at off: its byte length into *len, false on overflow. */
static bool table_len(uint64_t n, uint64_t ent, uint64_t *len)
{
    if (ent != 0 && n > UINT64_MAX / ent)
        return false;
    *len = n * ent;
    return true;
}

static enum dsnn_status check_ident(const unsigned char *b, size_t size, struct dsnn_error *err)
{
    if (size < EI_NIDENT || memcmp(b, ELFMAG, SELFMAG) != 0)
        return dsnn_error_set(err, DSNN_ERR_FORMAT, "not an ELF file (%s)",
                              size < SELFMAG ? "shorter than the ELF magic"
                                             : "no ELF magic at its start");
    if (b[EI_CLASS] != EC_CLASS)
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "a %s ELF file, this host is %d-bit (built for another machine?)",
                              class_name(b[EI_CLASS]), EC_BITS);
    if (b[EI_DATA] != EC_DATA)
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "ELF file of the other byte order (%s), this host is %s",
                              b[EI_DATA] == ELFDATA2MSB ? "big-endian" : b[EI_DATA] == ELFDATA2LSB
                                                                          ? "little-endian"
                                                                          : "unknown",
                              EC_DATA == ELFDATA2MSB ? "big-endian" : "little-endian");
    if (b[EI_VERSION] != EV_CURRENT)
        return dsnn_error_set(err, DSNN_ERR_FORMAT, "unknown ELF version %u", b[EI_VERSION]);
    if (size < sizeof(ec_ehdr))
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "truncated ELF file: %zu bytes, the ELF header alone is %zu", size,
                              sizeof(ec_ehdr));
    return DSNN_OK;
}

static enum dsnn_status check_header(const ec_ehdr *h, size_t size, struct dsnn_error *err)
{
    if (h->e_type != ET_DYN)
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "not a shared object (ELF type %u%s; build the plugin as a "
                              "MODULE / with -shared)",
                              (unsigned)h->e_type,
                              h->e_type == ET_EXEC ? ": an executable"
                              : h->e_type == ET_REL ? ": an object file"
                                                    : "");
#ifdef EC_MACHINE
    if (h->e_machine != EC_MACHINE)
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "ELF file for another machine (e_machine %u, this host %u)",
                              (unsigned)h->e_machine, (unsigned)EC_MACHINE);
#endif
    if (h->e_ehsize < sizeof(ec_ehdr))
        return dsnn_error_set(err, DSNN_ERR_FORMAT, "corrupt ELF header (e_ehsize %u < %zu)",
                              (unsigned)h->e_ehsize, sizeof(ec_ehdr));
    if (h->e_phentsize != sizeof(ec_phdr))
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "corrupt ELF header: program header entries of %u bytes, "
                              "expected %zu",
                              (unsigned)h->e_phentsize, sizeof(ec_phdr));
    if (h->e_phnum == 0 || h->e_phnum >= PN_XNUM)
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "corrupt ELF header: %u program headers (a shared object needs "
                              "1 to %u)",
                              (unsigned)h->e_phnum, (unsigned)PN_XNUM - 1);
    uint64_t len = 0;
    if (!table_len(h->e_phnum, h->e_phentsize, &len) || !in_file(h->e_phoff, len, size))
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "truncated or corrupt ELF file: the program header table "
                              "(offset %" PRIu64 ", %" PRIu64 " bytes) ends past the end of "
                              "the file (%zu bytes)",
                              (uint64_t)h->e_phoff, len, size);
    return DSNN_OK;
}

static enum dsnn_status check_load(const ec_phdr *p, unsigned i, size_t size,
                                   struct dsnn_error *err)
{
    if (p->p_filesz > p->p_memsz)
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "corrupt ELF file: segment %u (PT_LOAD) has a file size of %" PRIu64
                              " bytes, more than its memory size %" PRIu64,
                              i, (uint64_t)p->p_filesz, (uint64_t)p->p_memsz);
    if (!in_file(p->p_offset, p->p_filesz, size))
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "truncated ELF file: segment %u (PT_LOAD, offset %" PRIu64
                              ", %" PRIu64 " bytes) ends past the end of the file (%zu bytes)",
                              i, (uint64_t)p->p_offset, (uint64_t)p->p_filesz, size);
    uint64_t align = p->p_align;
    if (align > 1 && ((align & (align - 1)) != 0 || (p->p_vaddr - p->p_offset) % align != 0))
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "corrupt ELF file: segment %u (PT_LOAD) is not properly aligned "
                              "(alignment %" PRIu64 ")",
                              i, align);
    if ((uint64_t)p->p_vaddr > UINT64_MAX - p->p_memsz)
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "corrupt ELF file: segment %u (PT_LOAD) wraps the address space",
                              i);
    return DSNN_OK;
}

static enum dsnn_status check_segments(const unsigned char *b, const ec_ehdr *h, size_t size,
                                       struct dsnn_error *err)
{
    unsigned n_load = 0, n_dyn = 0;
    ec_phdr dyn = {0};
    unsigned dyn_i = 0;
    for (unsigned i = 0; i < h->e_phnum; i++) {
        ec_phdr p;
        memcpy(&p, b + h->e_phoff + (uint64_t)i * sizeof p, sizeof p);
        if (p.p_type == PT_LOAD) {
            enum dsnn_status st = check_load(&p, i, size, err);
            if (st != DSNN_OK)
                return st;
            n_load++;
        } else if (p.p_type == PT_DYNAMIC) {
            if (!in_file(p.p_offset, p.p_filesz, size))
                return dsnn_error_set(err, DSNN_ERR_FORMAT,
                                      "truncated ELF file: segment %u (PT_DYNAMIC, offset "
                                      "%" PRIu64 ", %" PRIu64 " bytes) ends past the end of "
                                      "the file (%zu bytes)",
                                      i, (uint64_t)p.p_offset, (uint64_t)p.p_filesz, size);
            dyn = p;
            dyn_i = i;
            n_dyn++;
        }
    }
    if (n_load == 0)
        return dsnn_error_set(err, DSNN_ERR_FORMAT, "corrupt ELF file: no loadable segment");
    if (n_dyn != 1)
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "corrupt ELF file: %u dynamic segments (PT_DYNAMIC), a shared "
                              "object has one",
                              n_dyn);
    /* The loader reads the dynamic section through the mapping of a PT_LOAD. */
    for (unsigned i = 0; i < h->e_phnum; i++) {
        ec_phdr p;
        memcpy(&p, b + h->e_phoff + (uint64_t)i * sizeof p, sizeof p);
        if (p.p_type == PT_LOAD && dyn.p_vaddr >= p.p_vaddr &&
            dyn.p_memsz <= p.p_memsz && dyn.p_vaddr - p.p_vaddr <= p.p_memsz - dyn.p_memsz)
            return DSNN_OK;
    }
    return dsnn_error_set(err, DSNN_ERR_FORMAT,
                          "corrupt ELF file: segment %u (PT_DYNAMIC) lies outside every "
                          "loadable segment",
                          dyn_i);
}

static enum dsnn_status check_sections(const unsigned char *b, const ec_ehdr *h, size_t size,
                                       struct dsnn_error *err)
{
    if (h->e_shoff == 0)
        return DSNN_OK; /* no section header table: optional for loading */
    if (h->e_shentsize != sizeof(ec_shdr))
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "corrupt ELF header: section header entries of %u bytes, "
                              "expected %zu",
                              (unsigned)h->e_shentsize, sizeof(ec_shdr));
    uint64_t n = h->e_shnum;
    if (n == 0) { /* extended numbering: the count is section 0's sh_size */
        if (!in_file(h->e_shoff, sizeof(ec_shdr), size))
            return dsnn_error_set(err, DSNN_ERR_FORMAT,
                                  "truncated ELF file: the section header table (offset "
                                  "%" PRIu64 ") lies past the end of the file (%zu bytes)",
                                  (uint64_t)h->e_shoff, size);
        ec_shdr s0;
        memcpy(&s0, b + h->e_shoff, sizeof s0);
        n = s0.sh_size;
    }
    uint64_t len = 0;
    if (!table_len(n, sizeof(ec_shdr), &len) || !in_file(h->e_shoff, len, size))
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "truncated or corrupt ELF file: the section header table (offset "
                              "%" PRIu64 ", %" PRIu64 " sections) ends past the end of the file "
                              "(%zu bytes)",
                              (uint64_t)h->e_shoff, n, size);
    for (uint64_t i = 0; i < n; i++) {
        ec_shdr s;
        memcpy(&s, b + h->e_shoff + i * sizeof s, sizeof s);
        if (s.sh_type != SHT_NOBITS && s.sh_type != SHT_NULL &&
            !in_file(s.sh_offset, s.sh_size, size))
            return dsnn_error_set(err, DSNN_ERR_FORMAT,
                                  "truncated ELF file: section %" PRIu64 " (offset %" PRIu64
                                  ", %" PRIu64 " bytes) ends past the end of the file (%zu "
                                  "bytes)",
                                  i, (uint64_t)s.sh_offset, (uint64_t)s.sh_size, size);
    }
    return DSNN_OK;
}

enum dsnn_status dsnn_elf_check(const unsigned char *bytes, size_t size, struct dsnn_error *err)
{
    if (!bytes && size > 0)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "dsnn_elf_check: no bytes");
    if (size == 0)
        return dsnn_error_set(err, DSNN_ERR_FORMAT, "empty file, not a shared object");
    enum dsnn_status st = check_ident(bytes, size, err);
    if (st != DSNN_OK)
        return st;
    ec_ehdr h;
    memcpy(&h, bytes, sizeof h);
    if ((st = check_header(&h, size, err)) != DSNN_OK)
        return st;
    if ((st = check_segments(bytes, &h, size, err)) != DSNN_OK)
        return st;
    return check_sections(bytes, &h, size, err);
}
