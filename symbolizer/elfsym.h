/*
 * Symbols, sections and program headers of an ELF file, read with libelf.
 * Addresses are as the file states them (link-time virtual addresses); the
 * caller adds the load bias of the mapping.
 */
#ifndef PYSTROBE_ELFSYM_H
#define PYSTROBE_ELFSYM_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

struct elf_file; /* opaque */

struct elf_section {
    uint64_t addr;   /* sh_addr */
    uint64_t size;   /* sh_size */
    uint64_t offset; /* sh_offset in the file */
    int nobits;      /* SHT_NOBITS (.bss): no bytes in the file */
};

/* Where elf_symbol may look. */
#define ELF_DYNSYM 1u
#define ELF_SYMTAB 2u

/*
 * Opens the ELF file on fd.  Takes ownership of fd: closes it on failure,
 * and otherwise in elf_close.  Returns 0, or a negative errno with err filled
 * (-ENOEXEC: not an ELF file, or not a 64-bit x86_64 one).
 */
int elf_open_fd(int fd, struct elf_file **out, struct pserr *err);
/* Opens path read-only, then as elf_open_fd. */
int elf_open_path(const char *path, struct elf_file **out, struct pserr *err);
/* Closes the file and frees everything; elf_close(NULL) does nothing. */
void elf_close(struct elf_file *ef);

/* ET_EXEC or ET_DYN (or another e_type). */
int elf_type(const struct elf_file *ef);
/* 1 when the file has a .symtab section, 0 when it was stripped. */
int elf_has_symtab(const struct elf_file *ef);

/*
 * Looks up a defined symbol (st_shndx != SHN_UNDEF) by exact name: .dynsym
 * first, then .symtab, among the tables named in `tables`.  On success sets
 * *value to st_value and, if size is not NULL, *size to st_size, and returns
 * 0 with *found_in set to ELF_DYNSYM or ELF_SYMTAB (found_in may be NULL).
 * Returns -ENOENT when no table has it.  Versioned names ("foo@@V") match
 * "foo".
 */
int elf_symbol(struct elf_file *ef, const char *name, unsigned tables, uint64_t *value,
               uint64_t *size, unsigned *found_in);

/* Finds a section by name (".bss", ".PyRuntime").  0, or -ENOENT. */
int elf_section(struct elf_file *ef, const char *name, struct elf_section *out);

/*
 * The link-time address at which the file's first byte is mapped: the p_vaddr
 * of the PT_LOAD segment with p_offset 0, rounded down to the page (4096).
 * The load bias of a live mapping is then map_start - this value
 * (0 for a non-PIE executable).  Returns 0, or -ENOENT when no such segment.
 */
int elf_base_vaddr(struct elf_file *ef, uint64_t *vaddr);

/*
 * Copies len bytes of the file's initialised contents at link-time address
 * vaddr (found through the PT_LOAD segments) into buf.  Returns 0, or -EFAULT
 * when the range is not wholly backed by file bytes.
 */
int elf_read_vaddr(struct elf_file *ef, uint64_t vaddr, void *buf, size_t len);

#endif
