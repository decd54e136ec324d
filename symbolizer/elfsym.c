#include "symbolizer/elfsym.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * The file comes from another process and may be hostile or truncated, so
 * every offset, size and index read from it is checked against the file's
 * size (taken once with fstat) and the section it points into before use.
 * libelf is used with ELF_C_READ, which reads headers and section data with
 * pread on demand: a file truncated under us gives a short read, not the
 * SIGBUS a mapping would.
 */

#define PAGE_MASK_4K (~(uint64_t)0xfff)

/* A string table: bytes owned by libelf, valid until elf_end. */
struct strtab {
    const char *buf;
    size_t size;
};

struct symtab {
    int present;
    Elf_Data *data; /* ELF_T_SYM, owned by libelf */
    size_t count;
    struct strtab str;
};

struct sect {
    uint32_t name; /* offset into shstr */
    uint32_t type;
    uint64_t addr;
    uint64_t size;
    uint64_t offset;
};

struct elf_file {
    int fd;
    Elf *elf;
    uint64_t file_size;
    int type;
    struct sect *sects;
    size_t nsects;
    struct strtab shstr; /* section names; empty when the file has none */
    GElf_Phdr *phdrs;
    size_t nphdrs;
    struct symtab dynsym;
    struct symtab symtab;
};

static pthread_once_t libelf_once = PTHREAD_ONCE_INIT;
static int libelf_ok;

static void libelf_init_once(void)
{
    libelf_ok = elf_version(EV_CURRENT) != EV_NONE;
}

static int libelf_init(struct pserr *err)
{
    pthread_once(&libelf_once, libelf_init_once);
    if (!libelf_ok)
        return pserr_set(err, ENOSYS, "libelf does not support ELF version %d; "
                         "install a current libelf", EV_CURRENT);
    return 0;
}

/* Does [off, off+len) lie inside a file of `size` bytes?  Overflow-safe. */
static int range_in_file(uint64_t off, uint64_t len, uint64_t size)
{
    return off <= size && len <= size - off;
}

/* The NUL-terminated string at off, or NULL when it does not end inside t. */
static const char *str_at(const struct strtab *t, uint64_t off)
{
    if (!t->buf || off >= t->size)
        return NULL;
    if (!memchr(t->buf + off, '\0', t->size - (size_t)off))
        return NULL;
    return t->buf + off;
}

static int check_header(struct elf_file *ef, GElf_Ehdr *eh, struct pserr *err)
{
    if (elf_kind(ef->elf) != ELF_K_ELF)
        return pserr_set(err, ENOEXEC, "not an ELF file");
    if (gelf_getclass(ef->elf) != ELFCLASS64)
        return pserr_set(err, ENOEXEC, "32-bit ELF file; only 64-bit x86_64 files "
                         "are supported");
    if (!gelf_getehdr(ef->elf, eh))
        return pserr_set(err, ENOEXEC, "unreadable ELF header: %s", elf_errmsg(-1));
    if (eh->e_ident[EI_DATA] != ELFDATA2LSB)
        return pserr_set(err, ENOEXEC, "big-endian ELF file; only x86_64 is supported");
    if (eh->e_machine != EM_X86_64)
        return pserr_set(err, ENOEXEC, "ELF file is for machine %u, not x86_64; "
                         "only x86_64 is supported", (unsigned)eh->e_machine);
    ef->type = eh->e_type;
    return 0;
}

static int load_phdrs(struct elf_file *ef, const GElf_Ehdr *eh, struct pserr *err)
{
    size_t n;

    if (elf_getphdrnum(ef->elf, &n) != 0)
        return pserr_set(err, ENOEXEC, "bad program header count: %s", elf_errmsg(-1));
    if (n == 0)
        return 0;
    if (n > INT_MAX || eh->e_phentsize != sizeof(Elf64_Phdr) ||
        eh->e_phoff > ef->file_size ||
        n > (ef->file_size - eh->e_phoff) / sizeof(Elf64_Phdr))
        return pserr_set(err, ENOEXEC, "program headers (%zu at offset %llu) lie outside "
                         "the file; it is corrupt or truncated",
                         n, (unsigned long long)eh->e_phoff);
    ef->phdrs = xcalloc(n, sizeof(*ef->phdrs));
    for (size_t i = 0; i < n; i++) {
        GElf_Phdr *ph = &ef->phdrs[i];
        if (!gelf_getphdr(ef->elf, (int)i, ph))
            return pserr_set(err, ENOEXEC, "unreadable program header %zu: %s", i,
                             elf_errmsg(-1));
        if (ph->p_type == PT_LOAD && !range_in_file(ph->p_offset, ph->p_filesz, ef->file_size))
            return pserr_set(err, ENOEXEC, "segment %zu lies past the end of the file; "
                             "it is corrupt or truncated", i);
        ef->nphdrs = i + 1;
    }
    return 0;
}

/* Fetches the bytes of section idx, which must all be in the file. */
static int section_data(struct elf_file *ef, size_t idx, Elf_Data **out, struct pserr *err)
{
    Elf_Scn *scn = elf_getscn(ef->elf, idx);
    Elf_Data *d = scn ? elf_getdata(scn, NULL) : NULL;

    if (!d)
        return pserr_set(err, ENOEXEC, "unreadable section %zu: %s", idx, elf_errmsg(-1));
    if (d->d_size != ef->sects[idx].size || (d->d_size && !d->d_buf))
        return pserr_set(err, ENOEXEC, "section %zu: libelf returned %zu bytes, expected "
                         "%llu", idx, d->d_size, (unsigned long long)ef->sects[idx].size);
    *out = d;
    return 0;
}

static int load_strtab(struct elf_file *ef, size_t idx, struct strtab *t, struct pserr *err)
{
    Elf_Data *d;
    int ret;

    if (idx == 0 || idx >= ef->nsects || ef->sects[idx].type != SHT_STRTAB)
        return pserr_set(err, ENOEXEC, "section %zu is not a string table; the file is "
                         "corrupt", idx);
    ret = section_data(ef, idx, &d, err);
    if (ret)
        return ret;
    t->buf = d->d_buf;
    t->size = d->d_size;
    return 0;
}

static int load_symtab(struct elf_file *ef, size_t idx, struct symtab *st, const char *what,
                       struct pserr *err)
{
    Elf_Scn *scn = elf_getscn(ef->elf, idx);
    GElf_Shdr sh;
    int ret;

    if (!scn || !gelf_getshdr(scn, &sh))
        return pserr_set(err, ENOEXEC, "%s: unreadable section header: %s", what,
                         elf_errmsg(-1));
    if (sh.sh_entsize != sizeof(Elf64_Sym) || sh.sh_size % sizeof(Elf64_Sym) != 0)
        return pserr_set(err, ENOEXEC, "%s: entry size %llu, table size %llu: the file is "
                         "corrupt", what, (unsigned long long)sh.sh_entsize,
                         (unsigned long long)sh.sh_size);
    ret = load_strtab(ef, sh.sh_link, &st->str, err);
    if (ret)
        return ret;
    ret = section_data(ef, idx, &st->data, err);
    if (ret)
        return ret;
    st->count = st->data->d_size / sizeof(Elf64_Sym);
    if (st->count > INT_MAX) /* gelf_getsym takes an int index */
        return pserr_set(err, ENOEXEC, "%s: %zu symbols is too many", what, st->count);
    st->present = 1;
    return 0;
}

/*
 * libelf reports no sections at all when the section header table does not
 * fit in the file.  A truncated file would then pass for a stripped one, so
 * tell "there is no table" (e_shoff 0, or an extended count of 0) from "the
 * table is cut off".
 */
static int check_no_sections(struct elf_file *ef, const GElf_Ehdr *eh, struct pserr *err)
{
    Elf64_Shdr sh0;

    if (eh->e_shoff == 0)
        return 0;
    if (eh->e_shnum == 0 && range_in_file(eh->e_shoff, sizeof(sh0), ef->file_size) &&
        pread(ef->fd, &sh0, sizeof(sh0), (off_t)eh->e_shoff) == (ssize_t)sizeof(sh0) &&
        sh0.sh_size == 0)
        return 0;
    return pserr_set(err, ENOEXEC, "section headers at offset %llu lie outside the file; "
                     "it is corrupt or truncated", (unsigned long long)eh->e_shoff);
}

static int load_sections(struct elf_file *ef, const GElf_Ehdr *eh, struct pserr *err)
{
    size_t n, shstrndx;
    size_t dyn_idx = 0, sym_idx = 0;
    int ret;

    if (elf_getshdrnum(ef->elf, &n) != 0)
        return pserr_set(err, ENOEXEC, "bad section count: %s", elf_errmsg(-1));
    if (n == 0)
        return check_no_sections(ef, eh, err);
    if (eh->e_shentsize != sizeof(Elf64_Shdr) ||
        eh->e_shoff > ef->file_size ||
        n > (ef->file_size - eh->e_shoff) / sizeof(Elf64_Shdr))
        return pserr_set(err, ENOEXEC, "section headers (%zu at offset %llu) lie outside "
                         "the file; it is corrupt or truncated",
                         n, (unsigned long long)eh->e_shoff);
    ef->sects = xcalloc(n, sizeof(*ef->sects));
    for (size_t i = 0; i < n; i++) {
        Elf_Scn *scn = elf_getscn(ef->elf, i);
        GElf_Shdr sh;
        if (!scn || !gelf_getshdr(scn, &sh))
            return pserr_set(err, ENOEXEC, "unreadable section header %zu: %s", i,
                             elf_errmsg(-1));
        if (sh.sh_type != SHT_NOBITS && sh.sh_type != SHT_NULL &&
            !range_in_file(sh.sh_offset, sh.sh_size, ef->file_size))
            return pserr_set(err, ENOEXEC, "section %zu lies past the end of the file; "
                             "it is corrupt or truncated", i);
        ef->sects[i] = (struct sect){sh.sh_name, sh.sh_type, sh.sh_addr, sh.sh_size,
                                     sh.sh_offset};
        ef->nsects = i + 1;
        if (sh.sh_type == SHT_DYNSYM && !dyn_idx)
            dyn_idx = i;
        if (sh.sh_type == SHT_SYMTAB && !sym_idx)
            sym_idx = i;
    }

    if (elf_getshdrstrndx(ef->elf, &shstrndx) != 0)
        return pserr_set(err, ENOEXEC, "bad section name table index: %s", elf_errmsg(-1));
    if (shstrndx != SHN_UNDEF) {
        ret = load_strtab(ef, shstrndx, &ef->shstr, err);
        if (ret)
            return ret;
    }
    if (dyn_idx) {
        ret = load_symtab(ef, dyn_idx, &ef->dynsym, ".dynsym", err);
        if (ret)
            return ret;
    }
    if (sym_idx) {
        ret = load_symtab(ef, sym_idx, &ef->symtab, ".symtab", err);
        if (ret)
            return ret;
    }
    return 0;
}

int elf_open_fd(int fd, struct elf_file **out, struct pserr *err)
{
    struct elf_file *ef;
    struct stat stbuf;
    GElf_Ehdr eh;
    int ret;

    *out = NULL;
    if (fd < 0)
        return pserr_set(err, EBADF, "elf_open_fd: invalid file descriptor %d", fd);
    ef = xcalloc(1, sizeof(*ef));
    ef->fd = fd;
    ret = libelf_init(err);
    if (ret)
        goto fail;
    if (fstat(fd, &stbuf) != 0) {
        ret = pserr_set(err, errno, "cannot stat the ELF file: %s", strerror(errno));
        goto fail;
    }
    if (!S_ISREG(stbuf.st_mode)) {
        ret = pserr_set(err, ENOEXEC, "not a regular file, so not an ELF file");
        goto fail;
    }
    ef->file_size = (uint64_t)stbuf.st_size;
    if (ef->file_size < sizeof(Elf64_Ehdr)) {
        ret = pserr_set(err, ENOEXEC, "not an ELF file: only %llu bytes long",
                        (unsigned long long)ef->file_size);
        goto fail;
    }
    ef->elf = elf_begin(fd, ELF_C_READ, NULL);
    if (!ef->elf) {
        ret = pserr_set(err, ENOEXEC, "not a readable ELF file: %s", elf_errmsg(-1));
        goto fail;
    }
    ret = check_header(ef, &eh, err);
    if (!ret)
        ret = load_phdrs(ef, &eh, err);
    if (!ret)
        ret = load_sections(ef, &eh, err);
    if (ret)
        goto fail;
    *out = ef;
    return 0;
fail:
    elf_close(ef);
    return ret;
}

int elf_open_path(const char *path, struct elf_file **out, struct pserr *err)
{
    int fd, ret;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return pserr_set(err, e, "cannot open %s: %s", path, strerror(e));
    }
    ret = elf_open_fd(fd, out, err);
    if (ret && err) {
        /* Name the file: elf_open_fd only knows the descriptor. */
        char msg[sizeof(err->msg)];
        memcpy(msg, err->msg, sizeof(msg));
        msg[sizeof(msg) - 1] = '\0';
        pserr_set(err, ret, "%s: %s", path, msg);
    }
    return ret;
}

void elf_close(struct elf_file *ef)
{
    if (!ef)
        return;
    if (ef->elf)
        elf_end(ef->elf);
    if (ef->fd >= 0)
        close(ef->fd);
    free(ef->sects);
    free(ef->phdrs);
    free(ef);
}

int elf_type(const struct elf_file *ef)
{
    return ef->type;
}

int elf_has_symtab(const struct elf_file *ef)
{
    return ef->symtab.present;
}

/* Is sym_name `name`, or `name` followed by a version ("@V", "@@V")? */
static int name_matches(const char *sym_name, const char *name, size_t len)
{
    return strncmp(sym_name, name, len) == 0 && (sym_name[len] == '\0' || sym_name[len] == '@');
}

/*
 * Scans one table.  A global or weak definition wins over a local one of the
 * same name (several files may each have a static of that name); among
 * equals the first in table order wins.
 */
static int symtab_find(const struct symtab *st, const char *name, GElf_Sym *out)
{
    size_t len = strlen(name);
    int have_local = 0;

    if (!st->present)
        return -ENOENT;
    for (size_t i = 1; i < st->count; i++) {
        GElf_Sym sym;
        const char *s;
        if (!gelf_getsym(st->data, (int)i, &sym) || sym.st_shndx == SHN_UNDEF)
            continue;
        s = str_at(&st->str, sym.st_name);
        if (!s || !name_matches(s, name, len))
            continue;
        if (GELF_ST_BIND(sym.st_info) != STB_LOCAL) {
            *out = sym;
            return 0;
        }
        if (!have_local) {
            *out = sym;
            have_local = 1;
        }
    }
    return have_local ? 0 : -ENOENT;
}

int elf_symbol(struct elf_file *ef, const char *name, unsigned tables, uint64_t *value,
               uint64_t *size, unsigned *found_in)
{
    static const unsigned order[] = {ELF_DYNSYM, ELF_SYMTAB};
    GElf_Sym sym = {0};

    if (!name || !*name)
        return -ENOENT;
    for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
        const struct symtab *st = order[i] == ELF_DYNSYM ? &ef->dynsym : &ef->symtab;
        if (!(tables & order[i]) || symtab_find(st, name, &sym) != 0)
            continue;
        *value = sym.st_value;
        if (size)
            *size = sym.st_size;
        if (found_in)
            *found_in = order[i];
        return 0;
    }
    return -ENOENT;
}

int elf_section(struct elf_file *ef, const char *name, struct elf_section *out)
{
    for (size_t i = 1; i < ef->nsects; i++) {
        const struct sect *s = &ef->sects[i];
        const char *sn = str_at(&ef->shstr, s->name);
        if (!sn || strcmp(sn, name) != 0)
            continue;
        out->addr = s->addr;
        out->size = s->size;
        out->offset = s->offset;
        out->nobits = s->type == SHT_NOBITS;
        return 0;
    }
    return -ENOENT;
}

int elf_base_vaddr(struct elf_file *ef, uint64_t *vaddr)
{
    /*
     * The segment whose first page starts at file offset 0 is what the loader
     * maps at the lowest address; a p_offset inside that first page (rare,
     * older linkers) is handled the same way as p_offset 0.
     */
    for (size_t i = 0; i < ef->nphdrs; i++) {
        const GElf_Phdr *ph = &ef->phdrs[i];
        if (ph->p_type != PT_LOAD || ph->p_offset > 0xfff || ph->p_vaddr < ph->p_offset)
            continue;
        *vaddr = (ph->p_vaddr - ph->p_offset) & PAGE_MASK_4K;
        return 0;
    }
    return -ENOENT;
}

static int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EFAULT; /* the file shrank since it was opened */
        done += (size_t)n;
    }
    return 0;
}

int elf_read_vaddr(struct elf_file *ef, uint64_t vaddr, void *buf, size_t len)
{
    for (size_t i = 0; i < ef->nphdrs; i++) {
        const GElf_Phdr *ph = &ef->phdrs[i];
        uint64_t delta;
        if (ph->p_type != PT_LOAD || vaddr < ph->p_vaddr)
            continue;
        delta = vaddr - ph->p_vaddr;
        if (delta > ph->p_filesz || len > ph->p_filesz - delta)
            continue;
        /* Checked at open, but cheap enough to keep the read self-evidently safe. */
        if (!range_in_file(ph->p_offset + delta, len, ef->file_size) ||
            ph->p_offset + delta < ph->p_offset)
            return -EFAULT;
        return pread_full(ef->fd, buf, len, ph->p_offset + delta);
    }
    return -EFAULT;
}
