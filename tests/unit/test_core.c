/*
 * Core files: small ELF cores built here byte by byte (an ET_CORE header, a
 * PT_NOTE with NT_PRSTATUS, NT_PRPSINFO, NT_FILE and NT_AUXV, an anonymous
 * PT_LOAD and one left out of the core, backed by a temporary file), read
 * back through the memory source API; then broken ones: truncated, of the
 * wrong type or machine, with corrupt note sizes, with too many notes, and
 * a mapped file of another build.
 */
#include "profiler/target/core.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/procfs.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"

#include "common/util.h"
#include "profiler/target/mem.h"
#include "profiler/target/task.h"

#define ANON_ADDR 0x10000u
#define FILE_ADDR 0x20000u
#define EXE_ADDR 0x40000u
#define PID 4242
#define TID2 4243

/* ---- building cores ------------------------------------------------------ */

struct bytes {
    unsigned char *p;
    size_t len, cap;
};

static void put(struct bytes *b, const void *data, size_t n)
{
    GROW(b->p, b->cap, b->len + n + 1);
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void pad4(struct bytes *b)
{
    static const char zero[4];
    put(b, zero, (4 - b->len % 4) % 4);
}

static void note(struct bytes *b, const char *name, uint32_t type, const void *desc, size_t n)
{
    uint32_t h[3] = {(uint32_t)strlen(name) + 1, (uint32_t)n, type};
    put(b, h, sizeof(h));
    put(b, name, h[0]);
    pad4(b);
    put(b, desc, n);
    pad4(b);
}

/* An ELF image's first page: a PT_LOAD from offset 0 and a PT_NOTE with build-id id. */
static void elf_page(unsigned char *page, unsigned char id)
{
    memset(page, 0, 4096);
    Elf64_Ehdr eh = {0};
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_type = ET_DYN;
    eh.e_machine = EM_X86_64;
    eh.e_phoff = sizeof(eh);
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = 2;
    Elf64_Phdr ph[2] = {{.p_type = PT_LOAD, .p_offset = 0, .p_vaddr = 0, .p_filesz = 8192,
                         .p_memsz = 8192},
                        {.p_type = PT_NOTE, .p_offset = 0x200, .p_vaddr = 0x200,
                         .p_filesz = 36, .p_memsz = 36, .p_align = 4}};
    memcpy(page, &eh, sizeof(eh));
    memcpy(page + sizeof(eh), ph, sizeof(ph));
    struct bytes n = {0};
    unsigned char desc[20];
    memset(desc, id, sizeof(desc));
    note(&n, "GNU", NT_GNU_BUILD_ID, desc, sizeof(desc));
    memcpy(page + 0x200, n.p, n.len);
    free(n.p);
}

struct spec {
    unsigned machine, type;
    const char *file;          /* NT_FILE path of the second segment */
    uint64_t pgoff;            /* its page offset in that file */
    int header_id;             /* > 0: the core saved its first page, an ELF header of this build-id */
    size_t extra_notes;        /* empty notes added */
    int corrupt_note;          /* a note whose size runs past the segment */
    int exe_apart;             /* the executable is another file, mapped at EXE_ADDR (no segment) */
};

static char tmpdir[64];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/pystrobe-core-XXXXXX");
    REQUIRE(mkdtemp(tmpdir) != NULL);
}

static void write_file(const char *path, const void *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, data, n) == (ssize_t)n);
    close(fd);
}

/* The notes of a two-thread process whose second mapping is s->file. */
static void notes(struct bytes *b, const struct spec *s)
{
    struct elf_prpsinfo ps = {0};
    ps.pr_pid = PID;
    ps.pr_ppid = 1;
    ps.pr_sname = 'S';
    memcpy(ps.pr_fname, "python3", 7);
    memcpy(ps.pr_psargs, "python3 app.py --flag   ", 24);
    note(b, "CORE", NT_PRPSINFO, &ps, sizeof(ps));
    for (int i = 0; i < 2; i++) {
        struct elf_prstatus st = {0};
        st.pr_pid = i == 0 ? PID : TID2;
        st.pr_cursig = i == 0 ? 6 : 0;
        struct user_regs_struct r = {0};
        r.rip = 0x401000u + (unsigned)i;
        r.rsp = 0x7ffe0000u;
        r.orig_rax = i == 0 ? 234 : 202;
        r.rdi = 0x1234;
        memcpy(&st.pr_reg, &r, sizeof(r));
        note(b, "CORE", NT_PRSTATUS, &st, sizeof(st));
    }
    struct bytes f = {0};
    uint64_t head[2] = {s->exe_apart ? 2 : 1, 4096};
    uint64_t ent[3] = {FILE_ADDR, FILE_ADDR + 0x2000, s->pgoff};
    uint64_t exe[3] = {EXE_ADDR, EXE_ADDR + 0x1000, 0};
    put(&f, head, sizeof(head));
    put(&f, ent, sizeof(ent));
    if (s->exe_apart)
        put(&f, exe, sizeof(exe));
    put(&f, s->file, strlen(s->file) + 1);
    if (s->exe_apart)
        put(&f, "/no/such/python", 16);
    note(b, "CORE", NT_FILE, f.p, f.len);
    free(f.p);
    uint64_t auxv[6] = {AT_PHDR, (s->exe_apart ? EXE_ADDR : FILE_ADDR) + 64, AT_PAGESZ, 4096,
                        AT_NULL, 0};
    note(b, "CORE", NT_AUXV, auxv, sizeof(auxv));
    for (size_t i = 0; i < s->extra_notes; i++)
        note(b, "X", 1, NULL, 0);
    if (s->corrupt_note) {
        uint32_t h[3] = {5, 0x7fffffff, NT_PRSTATUS};
        put(b, h, sizeof(h));
        put(b, "CORE\0\0\0", 8);
    }
}

/* Writes the core of spec s to tmpdir/name; returns its path (static). */
static const char *make_core(const struct spec *s, const char *name)
{
    static char path[128];
    struct bytes nb = {0};
    notes(&nb, s);
    size_t phnum = 3;
    size_t notes_off = sizeof(Elf64_Ehdr) + phnum * sizeof(Elf64_Phdr);
    size_t anon_off = (notes_off + nb.len + 4095) & ~(size_t)4095;
    size_t file_off = anon_off + 4096;
    Elf64_Ehdr eh = {0};
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = (Elf64_Half)s->type;
    eh.e_machine = (Elf64_Half)s->machine;
    eh.e_version = EV_CURRENT;
    eh.e_phoff = sizeof(eh);
    eh.e_ehsize = sizeof(eh);
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = (Elf64_Half)phnum;
    Elf64_Phdr ph[3] = {
        {.p_type = PT_NOTE, .p_offset = notes_off, .p_filesz = nb.len, .p_align = 4},
        {.p_type = PT_LOAD, .p_flags = PF_R | PF_W, .p_offset = anon_off, .p_vaddr = ANON_ADDR,
         .p_filesz = 4096, .p_memsz = 4096, .p_align = 4096},
        {.p_type = PT_LOAD, .p_flags = PF_R | PF_X, .p_offset = file_off, .p_vaddr = FILE_ADDR,
         .p_filesz = s->header_id > 0 ? 4096 : 0, .p_memsz = 0x2000, .p_align = 4096},
    };
    struct bytes b = {0};
    put(&b, &eh, sizeof(eh));
    put(&b, ph, sizeof(ph));
    put(&b, nb.p, nb.len);
    while (b.len < anon_off)
        put(&b, "", 1);
    unsigned char page[4096];
    for (size_t i = 0; i < sizeof(page); i++)
        page[i] = (unsigned char)(i * 7);
    put(&b, page, sizeof(page));
    if (s->header_id > 0) {
        elf_page(page, (unsigned char)s->header_id);
        put(&b, page, sizeof(page));
    }
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    write_file(path, b.p, b.len);
    free(b.p);
    free(nb.p);
    return path;
}

/* A mapped file of three pages: page k's byte i is k * 16 + i % 16, after an ELF header of build-id id when id > 0. */
static void make_mapped(const char *path, int id)
{
    unsigned char *data = xmalloc(3 * 4096);
    for (size_t i = 0; i < 3 * 4096; i++)
        data[i] = (unsigned char)((i / 4096) * 16 + i % 16);
    if (id > 0)
        elf_page(data, (unsigned char)id);
    write_file(path, data, 3 * 4096);
    free(data);
}

static struct spec good_spec(const char *file)
{
    return (struct spec){EM_X86_64, ET_CORE, file, 1, 0, 0, 0, 0};
}

static void cleanup(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
}

/* ---- reading a good core ------------------------------------------------- */

TEST(core_reads_saved_and_file_backed_memory)
{
    make_tmpdir();
    char file[128];
    snprintf(file, sizeof(file), "%s/libfoo.so", tmpdir);
    make_mapped(file, 0);
    struct spec s = good_spec(file);
    struct mem *m;
    struct pserr err;
    REQUIRE(mem_open_core(make_core(&s, "core"), NULL, &m, &err) == 0);
    CHECK(mem_core_path(m) != NULL);
    unsigned char buf[32];
    /* Saved in the core. */
    CHECK_INT(mem_read(m, ANON_ADDR + 10, buf, 4), 0);
    CHECK_INT(buf[0], 70);
    CHECK_INT(buf[3], (unsigned char)(13 * 7));
    /* Left out (p_filesz 0): the file, from page 1 on as NT_FILE says. */
    CHECK_INT(mem_read(m, FILE_ADDR + 5, buf, 2), 0);
    CHECK_INT(buf[0], 16 + 5);
    CHECK_INT(buf[1], 16 + 6);
    CHECK_INT(mem_read(m, FILE_ADDR + 0x1000 + 3, buf, 1), 0);
    CHECK_INT(buf[0], 32 + 3);
    /* Across the two pages of the file mapping. */
    CHECK_INT(mem_read(m, FILE_ADDR + 0xfff, buf, 2), 0);
    CHECK_INT(buf[0], 16 + 15);
    CHECK_INT(buf[1], 32 + 0);
    /* Unmapped, and running off a mapping's end. */
    CHECK_INT(mem_read(m, 0x30000, buf, 1), -EFAULT);
    CHECK_INT(mem_read(m, ANON_ADDR + 4090, buf, 8), -EFAULT);
    CHECK_INT(mem_read(m, UINT64_MAX - 2, buf, 8), -EFAULT);
    struct mem_iov iov[3] = {{ANON_ADDR, buf, 4, 0}, {0x30000, buf + 4, 4, 0},
                             {FILE_ADDR, buf + 8, 4, 0}};
    CHECK_INT(mem_readv(m, iov, 3), 2);
    CHECK(iov[0].ok && !iov[1].ok && iov[2].ok);
    mem_free(m);
    cleanup();
}

TEST(core_maps_threads_psinfo_auxv)
{
    make_tmpdir();
    char file[128];
    snprintf(file, sizeof(file), "%s/libfoo.so", tmpdir);
    make_mapped(file, 0);
    struct spec s = good_spec(file);
    struct mem *m;
    struct pserr err;
    REQUIRE(mem_open_core(make_core(&s, "core"), NULL, &m, &err) == 0);
    const struct mem_maps *maps = mem_maps(m);
    REQUIRE(maps->n == 2);
    CHECK_U64(maps->v[0].start, ANON_ADDR);
    CHECK_U64(maps->v[0].end, ANON_ADDR + 4096);
    CHECK_INT(maps->v[0].perms, MEM_R | MEM_W);
    CHECK_STR(maps->v[0].path, "");
    CHECK_U64(maps->v[1].start, FILE_ADDR);
    CHECK_U64(maps->v[1].end, FILE_ADDR + 0x2000);
    CHECK_U64(maps->v[1].offset, 4096);
    CHECK_INT(maps->v[1].perms, MEM_R | MEM_X);
    CHECK_STR(maps->v[1].path, file);
    CHECK(mem_find_region(m, FILE_ADDR + 100) == &maps->v[1]);
    CHECK(mem_readable(m, ANON_ADDR, 16));

    size_t n;
    const struct core_thread *t = core_threads(mem_core(m), &n);
    REQUIRE(n == 2);
    CHECK_INT(t[0].tid, PID);
    CHECK_INT(t[0].signo, 6);
    CHECK_U64(t[0].regs.rip, 0x401000);
    CHECK_U64(t[0].regs.orig_rax, 234);
    CHECK_INT(t[1].tid, TID2);
    CHECK_INT(t[1].signo, 0);
    CHECK_U64(t[1].regs.rip, 0x401001);
    CHECK_U64(t[1].regs.rsp, 0x7ffe0000);
    CHECK_U64(t[1].regs.rdi, 0x1234);

    /* The same threads as walking and sampling see them (task.h). */
    pid_t *tids;
    REQUIRE(mem_tasks(m, &tids) == 2);
    CHECK_INT(tids[0], PID);
    CHECK_INT(tids[1], TID2);
    free(tids);
    CHECK_INT(mem_ns_pid(m), PID);
    CHECK(mem_is_still(m));
    CHECK_U64(mem_boot_ns(m), 0);
    CHECK_INT(mem_check(m), 0);
    pid_t back;
    CHECK_INT(mem_tid_from_ns(m, TID2, &back), 0);
    CHECK_INT(back, TID2);
    CHECK(mem_task_open(m, PID + 100) == NULL);
    struct mem_task *k0 = mem_task_open(m, PID), *k1 = mem_task_open(m, TID2);
    REQUIRE(k0 && k1);
    CHECK_INT(mem_task_signal(k0), 6);
    CHECK_INT(mem_task_signal(k1), 0);
    CHECK_INT(mem_task_started_before(k0, 1), 1);
    /* Both were stopped in a system call (orig_rax): blocked in it, with rdi its argument. */
    uint64_t ticks = 1;
    CHECK_INT(mem_task_state(k1, &ticks), 'S');
    CHECK_U64(ticks, 0);
    long nr;
    uint64_t arg0;
    CHECK_INT(mem_task_syscall(k1, &nr, &arg0), 0);
    CHECK_INT(nr, 202);
    CHECK_U64(arg0, 0x1234);
    uint64_t run, sw;
    CHECK_INT(mem_task_schedstat(k1, &run, &sw), -ENOTSUP);
    char comm[16];
    CHECK_INT(mem_task_comm(k1, comm, sizeof(comm)), -ENOTSUP);
    /* Registers as saved: nothing is held. */
    struct user_regs_struct regs;
    CHECK_INT(mem_task_hold(k1, &regs), 0);
    CHECK_U64(regs.rsp, 0x7ffe0000);
    mem_task_release(k1);
    mem_task_close(k0);
    mem_task_close(k1);

    const struct core_psinfo *ps = mem_core_psinfo(m);
    REQUIRE(ps != NULL);
    CHECK_INT(ps->pid, PID);
    CHECK_INT(ps->ppid, 1);
    CHECK_STR(ps->fname, "python3");
    CHECK_STR(ps->args, "python3 app.py --flag");
    CHECK_INT(mem_pid(m), PID);
    struct strbuf cmd = STRBUF_INIT;
    mem_cmdline(m, &cmd);
    CHECK_STR(sb_str(&cmd), "python3 app.py --flag");
    sb_release(&cmd);

    struct core *c = mem_core(m);
    size_t na;
    CHECK(core_auxv(c, &na) != NULL);
    CHECK_INT(na, 3);
    CHECK_U64(core_auxv_get(c, AT_PAGESZ), 4096);
    /* The executable is the mapping of AT_PHDR. */
    CHECK_STR(core_exe(c), file);
    CHECK(mem_is_exe(m, file));
    CHECK(!mem_is_exe(m, "/usr/bin/python3"));
    /* Not a live process: no pid source, no buffer writes. */
    CHECK_INT(mem_buffer_add(m, 0x90000, "x", 1), -EINVAL);
    mem_free(m);
    cleanup();
}

TEST(core_mapped_file_found_beside_exe)
{
    make_tmpdir();
    char exe[128], lib[128];
    snprintf(exe, sizeof(exe), "%s/python", tmpdir);
    snprintf(lib, sizeof(lib), "%s/libgone.so", tmpdir);
    make_mapped(exe, 0);
    make_mapped(lib, 0);
    struct spec s = good_spec("/no/such/dir/libgone.so (deleted)");
    s.exe_apart = 1;
    struct mem *m;
    struct pserr err;
    const char *core = make_core(&s, "core");
    /* Without --exe, the file is not found: its bytes are unreadable. */
    REQUIRE(mem_open_core(core, NULL, &m, &err) == 0);
    unsigned char b = 0;
    CHECK_INT(mem_read(m, FILE_ADDR, &b, 1), -EFAULT);
    const struct mem_region *r = mem_find_region(m, FILE_ADDR);
    REQUIRE(r != NULL);
    CHECK_INT(mem_open_mapped(m, r), -ENOENT);
    CHECK(mem_mapped_error(m) && strstr(mem_mapped_error(m), "/no/such/dir/libgone.so"));
    mem_free(m);
    /* With it, beside it. */
    REQUIRE(mem_open_core(core, exe, &m, &err) == 0);
    CHECK_INT(mem_read(m, FILE_ADDR + 1, &b, 1), 0);
    CHECK_INT(b, 16 + 1);
    r = mem_find_region(m, FILE_ADDR);
    REQUIRE(r != NULL);
    int fd = mem_open_mapped(m, r);
    CHECK(fd >= 0);
    struct stat a, c;
    CHECK(fd >= 0 && fstat(fd, &a) == 0 && stat(lib, &c) == 0 && a.st_ino == c.st_ino);
    if (fd >= 0)
        close(fd);
    /* The executable is --exe, whatever the core calls it. */
    CHECK_STR(core_exe(mem_core(m)), "/no/such/python");
    CHECK_INT(mem_read(m, EXE_ADDR + 4096 + 2, &b, 1), -EFAULT);
    CHECK_INT(mem_read(m, EXE_ADDR + 2, &b, 1), 0);
    CHECK_INT(b, 2);
    mem_free(m);
    cleanup();
}

TEST(core_build_id_mismatch_is_refused)
{
    make_tmpdir();
    char lib[128], other[128];
    snprintf(lib, sizeof(lib), "%s/libfoo.so", tmpdir);
    snprintf(other, sizeof(other), "%s/other", tmpdir);
    make_mapped(lib, 0x11);
    make_mapped(other, 0x22);
    struct spec s = good_spec(lib);
    s.pgoff = 0;
    s.header_id = 0x11;
    struct mem *m;
    struct pserr err;
    const char *core = make_core(&s, "core");
    REQUIRE(mem_open_core(core, NULL, &m, &err) == 0);
    const struct mem_region *r = mem_find_region(m, FILE_ADDR);
    REQUIRE(r != NULL);
    int fd = mem_open_mapped(m, r);
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
    /* The page the core did not save comes from the file. */
    unsigned char b = 0;
    CHECK_INT(mem_read(m, FILE_ADDR + 0x1000 + 2, &b, 1), 0);
    CHECK_INT(b, 16 + 2);
    mem_free(m);

    /* The same path, now another build: refused, and its bytes unreadable. */
    make_mapped(lib, 0x22);
    REQUIRE(mem_open_core(core, NULL, &m, &err) == 0);
    r = mem_find_region(m, FILE_ADDR);
    REQUIRE(r != NULL);
    CHECK_INT(mem_open_mapped(m, r), -ESTALE);
    const char *why = mem_mapped_error(m);
    CHECK(why && strstr(why, "build-id 1111111111111111111111111111111111111111 in core"));
    CHECK(why && strstr(why, "2222222222222222222222222222222222222222 in the file"));
    CHECK_INT(mem_read(m, FILE_ADDR + 0x1000, &b, 1), -EFAULT);
    /* Saved bytes are still the core's. */
    CHECK_INT(mem_read(m, FILE_ADDR, &b, 1), 0);
    CHECK_INT(b, 0x7f);
    mem_free(m);

    /* --exe stands for the executable (AT_PHDR's mapping, the file here): checked at once. */
    CHECK_INT(mem_open_core(core, other, &m, &err), -ESTALE);
    CHECK(strstr(err.msg, other) != NULL);
    make_mapped(other, 0x11);
    REQUIRE(mem_open_core(core, other, &m, &err) == 0);
    mem_free(m);
    cleanup();
}

/* ---- broken cores -------------------------------------------------------- */

static int open_err(const char *path, struct pserr *err)
{
    struct mem *m = NULL;
    int ret = mem_open_core(path, NULL, &m, err);
    if (ret == 0)
        mem_free(m);
    return ret;
}

TEST(core_truncated)
{
    make_tmpdir();
    struct spec s = good_spec("/lib/x.so");
    const char *path = make_core(&s, "core");
    struct stat st;
    REQUIRE(stat(path, &st) == 0);
    REQUIRE(truncate(path, st.st_size - 100) == 0);
    struct pserr err;
    CHECK_INT(open_err(path, &err), -EIO);
    CHECK(strstr(err.msg, "cut short") && strstr(err.msg, "100 bytes are missing"));
    /* Cut inside the header. */
    REQUIRE(truncate(path, 40) == 0);
    CHECK_INT(open_err(path, &err), -EIO);
    CHECK(strstr(err.msg, "cut short") != NULL);
    cleanup();
}

TEST(core_wrong_type_machine_or_not_elf)
{
    make_tmpdir();
    struct pserr err;
    struct spec s = good_spec("/lib/x.so");
    s.type = ET_EXEC;
    CHECK_INT(open_err(make_core(&s, "exec"), &err), -ENOEXEC);
    CHECK(strstr(err.msg, "not a core") != NULL);
    s = good_spec("/lib/x.so");
    s.machine = EM_AARCH64;
    CHECK_INT(open_err(make_core(&s, "arm"), &err), -EXDEV);
    CHECK(strstr(err.msg, "another architecture (aarch64)") != NULL);
    char path[128];
    snprintf(path, sizeof(path), "%s/text", tmpdir);
    static const char text[] = "hello, this is not a core at all, not even close...................";
    write_file(path, text, sizeof(text));
    CHECK_INT(open_err(path, &err), -ENOEXEC);
    CHECK(strstr(err.msg, "not a core file (not ELF)") != NULL);
    write_file(path, "", 0);
    CHECK_INT(open_err(path, &err), -ENOEXEC);
    CHECK_INT(open_err(tmpdir, &err), -ENOEXEC);
    snprintf(path, sizeof(path), "%s/missing", tmpdir);
    CHECK_INT(open_err(path, &err), -ENOENT);
    cleanup();
}

TEST(core_corrupt_note_size)
{
    make_tmpdir();
    struct pserr err;
    struct spec s = good_spec("/lib/x.so");
    s.corrupt_note = 1;
    CHECK_INT(open_err(make_core(&s, "core"), &err), -EINVAL);
    CHECK(strstr(err.msg, "corrupt") != NULL);
    cleanup();
}

TEST(core_too_many_notes)
{
    make_tmpdir();
    struct pserr err;
    struct spec s = good_spec("/lib/x.so");
    s.extra_notes = CORE_MAX_NOTES;
    CHECK_INT(open_err(make_core(&s, "core"), &err), -EINVAL);
    CHECK(strstr(err.msg, "more than") != NULL);
    s.extra_notes = 1000;
    CHECK_INT(open_err(make_core(&s, "core2"), &err), 0);
    cleanup();
}

/* Every byte of a good core's headers and notes changed in turn: an error or a core, never a crash. */
TEST(core_mutated_headers_never_crash)
{
    make_tmpdir();
    struct spec s = good_spec("/lib/x.so");
    const char *path = make_core(&s, "core");
    int fd = open(path, O_RDONLY);
    REQUIRE(fd >= 0);
    unsigned char orig[2048];
    REQUIRE(read(fd, orig, sizeof(orig)) == (ssize_t)sizeof(orig));
    close(fd);
    char mpath[128];
    snprintf(mpath, sizeof(mpath), "%s/mut", tmpdir);
    struct stat st;
    REQUIRE(stat(path, &st) == 0);
    unsigned char *whole = xmalloc((size_t)st.st_size);
    fd = open(path, O_RDONLY);
    REQUIRE(read(fd, whole, (size_t)st.st_size) == st.st_size);
    close(fd);
    static const unsigned char vals[] = {0x00, 0xff, 0x7f, 0x80, 0x01};
    for (size_t i = 0; i < sizeof(orig); i += 3) {
        for (size_t v = 0; v < sizeof(vals); v++) {
            whole[i] = vals[v];
            write_file(mpath, whole, (size_t)st.st_size);
            struct mem *m = NULL;
            struct pserr err;
            if (mem_open_core(mpath, NULL, &m, &err) == 0) {
                unsigned char b[16];
                mem_maps(m);
                mem_read(m, ANON_ADDR, b, sizeof(b));
                mem_read(m, FILE_ADDR, b, sizeof(b));
                mem_free(m);
            } else {
                CHECK(err.msg[0] != '\0');
            }
        }
        whole[i] = orig[i];
    }
    free(whole);
    cleanup();
}

/* ---- what is not a file ---------------------------------------------------- */

/* A FIFO or a device given as the core, or as --exe, is refused by name and never opened (a FIFO's open blocks). */
TEST(core_fifo_or_device_refused)
{
    make_tmpdir();
    char fifo[128], lib[128];
    snprintf(fifo, sizeof(fifo), "%s/fifo", tmpdir);
    snprintf(lib, sizeof(lib), "%s/libfoo.so", tmpdir);
    REQUIRE(mkfifo(fifo, 0600) == 0);
    struct pserr err;
    CHECK_INT(open_err(fifo, &err), -ENOEXEC);
    CHECK(strstr(err.msg, "not a core file (a FIFO, not a regular file)") != NULL);
    CHECK_INT(open_err("/dev/zero", &err), -ENOEXEC);
    CHECK(strstr(err.msg, "not a core file (a character device, not a regular file)") != NULL);
    make_mapped(lib, 0);
    struct spec s = good_spec(lib);
    const char *core = make_core(&s, "core");
    struct mem *m = NULL;
    CHECK(mem_open_core(core, fifo, &m, &err) < 0);
    CHECK(strstr(err.msg, "--exe") && strstr(err.msg, "is a FIFO, not a regular file"));
    mem_free(m);
    cleanup();
}

/* A file the core names that is now a FIFO: its bytes are unreadable, and nothing waits on it. */
TEST(core_mapped_fifo_never_opened)
{
    make_tmpdir();
    char fifo[128];
    snprintf(fifo, sizeof(fifo), "%s/libfoo.so", tmpdir);
    REQUIRE(mkfifo(fifo, 0600) == 0);
    struct spec s = good_spec(fifo);
    struct mem *m;
    struct pserr err;
    REQUIRE(mem_open_core(make_core(&s, "core"), NULL, &m, &err) == 0);
    unsigned char b = 0;
    CHECK_INT(mem_read(m, ANON_ADDR, &b, 1), 0);
    CHECK_INT(mem_read(m, FILE_ADDR, &b, 1), -EFAULT);
    const struct mem_region *r = mem_find_region(m, FILE_ADDR);
    REQUIRE(r != NULL);
    CHECK(mem_open_mapped(m, r) < 0);
    CHECK(mem_mapped_error(m) && strstr(mem_mapped_error(m), "not a regular file"));
    mem_free(m);
    cleanup();
}

/* A core cut at every length: an error that says so, or a core whose reads stay in bounds. */
TEST(core_truncated_anywhere)
{
    make_tmpdir();
    char lib[128], cut[128];
    snprintf(lib, sizeof(lib), "%s/libfoo.so", tmpdir);
    snprintf(cut, sizeof(cut), "%s/cut", tmpdir);
    make_mapped(lib, 0);
    struct spec s = good_spec(lib);
    const char *path = make_core(&s, "core");
    struct stat st;
    REQUIRE(stat(path, &st) == 0);
    unsigned char *whole = xmalloc((size_t)st.st_size);
    int fd = open(path, O_RDONLY);
    REQUIRE(fd >= 0 && read(fd, whole, (size_t)st.st_size) == st.st_size);
    close(fd);
    size_t opened = 0;
    write_file(cut, whole, (size_t)st.st_size);
    /* Shorter and shorter: one file cut again each time. */
    for (size_t len = (size_t)st.st_size; len-- > 0;) {
        REQUIRE(truncate(cut, (off_t)len) == 0);
        struct mem *m = NULL;
        struct pserr err = {0};
        if (mem_open_core(cut, NULL, &m, &err) == 0) {
            unsigned char b[64];
            opened++;
            mem_maps(m);
            mem_read(m, ANON_ADDR, b, sizeof(b));
            mem_read(m, ANON_ADDR + 4096 - 8, b, 8);
            mem_read(m, FILE_ADDR, b, sizeof(b));
            mem_free(m);
        } else if (len >= SELFMAG && !strstr(err.msg, "cut short")) {
            TEST_FAILF("cut at %zu of %lld: \"%s\"", len, (long long)st.st_size, err.msg);
        }
    }
    /* Every cut that leaves out saved bytes is refused. */
    CHECK_INT(opened, 0);
    free(whole);
    cleanup();
}
