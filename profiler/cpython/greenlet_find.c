/* The greenlet module in the target, and all its greenlets: see greenlet_find.h. */
#include "profiler/cpython/greenlet_find.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profiler/cpython/greenlet_gc.h"
#include "profiler/cpython/pyobj.h"
#include "symbolizer/elfsym.h"

/* Whole walks tried while the lists change under them. */
#define COLLECT_ATTEMPTS 3

/* 1 when the mapping is greenlet's extension module. */
static int is_greenlet_so(const char *path)
{
    const char *base = path_base(path);
    return !strncmp(base, "_greenlet.", 10) && strstr(base, ".so") != NULL;
}

/*
 * The release from the package's metadata: greenlet-X.Y.Z.{dist,egg}-info
 * in the directory that holds the greenlet package (as the target sees it).
 */
static int release_of(pid_t pid, const char *so, char *version, size_t size)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "/proc/%d/root%s", (int)pid, so);
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(dir, '/');
        if (!slash)
            return -ENOENT;
        *slash = '\0';
    }
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    struct dirent *e;
    int ret = -ENOENT;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "greenlet-", 9) || !strstr(e->d_name, "-info"))
            continue;
        const char *v = e->d_name + 9;
        size_t len = strcspn(v, "-");
        if (len == 0 || len >= size)
            continue;
        memcpy(version, v, len);
        version[len] = '\0';
        /* "2.0.2.dist-info" has no dash before its suffix: cut at ".dist"/".egg". */
        char *dot = strstr(version, ".dist");
        if (!dot)
            dot = strstr(version, ".egg");
        if (dot)
            *dot = '\0';
        ret = 0;
        break;
    }
    closedir(d);
    return ret;
}

/* PyGreenlet_Type in the mapped .so r: its load bias from the mapping at file offset 0. */
static int type_address(struct pyrt *rt, const struct mem_region *r, uint64_t *gtype,
                        struct pserr *err)
{
    const struct mem_maps *maps = mem_maps(rt->mem);
    uint64_t map0 = 0, vaddr0 = 0, value = 0;
    for (size_t i = 0; i < maps->n; i++)
        if (!strcmp(maps->v[i].path, r->path) && maps->v[i].offset == 0) {
            map0 = maps->v[i].start;
            break;
        }
    int fd = mem_open_mapped(rt->mem, r);
    if (fd < 0)
        return pserr_set(err, -fd, "cannot open %s: %s", r->path, strerror(-fd));
    struct elf_file *ef;
    int ret = elf_open_fd(fd, &ef, err);
    if (ret < 0)
        return ret;
    if (!map0 || elf_base_vaddr(ef, &vaddr0) < 0 ||
        elf_symbol(ef, "PyGreenlet_Type", ELF_DYNSYM | ELF_SYMTAB, &value, NULL, NULL) < 0)
        ret = pserr_set(err, ENOENT, "%s has no PyGreenlet_Type symbol", r->path);
    else
        *gtype = map0 - vaddr0 + value;
    elf_close(ef);
    return ret;
}

/* The release from `__version__` in the dict of the target's greenlet package. */
static int release_from_module(struct pyrt *rt, char *version, size_t size)
{
    const struct pylayout *l = &rt->layout;
    uint64_t interp, modules, mod, dict, str;
    int ret;
    if ((ret = pyrt_interp(rt, &interp)) < 0 ||
        (ret = mem_read_u64(rt->mem, interp + (uint64_t)l->is_modules, &modules)) < 0 ||
        (ret = pydict_get_str(rt, modules, "greenlet", &mod)) < 0 ||
        (ret = mem_read_u64(rt->mem, mod + (uint64_t)l->md_dict, &dict)) < 0 ||
        (ret = pydict_get_str(rt, dict, "__version__", &str)) < 0)
        return ret;
    struct strbuf sb = STRBUF_INIT;
    ret = pyobj_str(rt, str, &sb);
    if (ret == 0 && (sb.len == 0 || sb.len >= size))
        ret = -EINVAL;
    if (ret == 0) {
        memcpy(version, sb.buf, sb.len);
        version[sb.len] = '\0';
    }
    sb_release(&sb);
    return ret;
}

int greenlet_find_module(struct pyrt *rt, uint64_t *gtype, const struct greenlet_layout **gl,
                         struct pserr *err)
{
    const struct mem_maps *maps = mem_maps(rt->mem);
    for (size_t i = 0; i < maps->n; i++) {
        const struct mem_region *r = &maps->v[i];
        if (!is_greenlet_so(r->path))
            continue;
        char version[32];
        if (release_of(rt->pid, r->path, version, sizeof(version)) < 0 &&
            release_from_module(rt, version, sizeof(version)) < 0)
            return pserr_set(err, ENOTSUP, "cannot tell the greenlet release of %s (no "
                             "greenlet-*-info beside its package, no greenlet.__version__)",
                             r->path);
        if (!(*gl = greenlet_layout_for(version, rt->major, rt->minor))) {
            char known[256];
            greenlet_layout_known(rt->major, rt->minor, known, sizeof(known));
            return pserr_set(err, ENOTSUP, "greenlet %s on Python %d.%d is not supported yet "
                             "(known there: %s)", version, rt->major, rt->minor, known);
        }
        return type_address(rt, r, gtype, err);
    }
    return pserr_set(err, ENOENT, "process %d has not loaded greenlet (no _greenlet module "
                     "mapped)", (int)rt->pid);
}

/* ---- all its greenlets ---- */

int greenlet_collect(struct pyrt *rt, uint64_t interp, struct greenlet_set *gs,
                     struct pserr *err)
{
    const struct pylayout *l = &rt->layout;
    const struct greenlet_layout *gl;
    uint64_t gtype;
    int ret;
    struct greenlet_gc_lists lists;
    if ((ret = greenlet_find_module(rt, &gtype, &gl, err)) < 0)
        return ret;
    if ((ret = greenlet_gc_lists_of(rt, interp, &lists)) < 0)
        return pserr_set(err, -ret, "cannot find the collector's object lists of Python %s "
                         "(on 2.7 and 3.6 they are found by the symbols generations or "
                         "_PyGC_generation0): %s", rt->version, strerror(-ret));
    uint64_t *objs = NULL;
    size_t n = 0;
    for (int attempt = 0; attempt < COLLECT_ATTEMPTS; attempt++) {
        n = 0;
        gs->stats = (struct greenlet_stats){0};
        ret = greenlet_gc_walk_lists(rt->mem, l, &lists, gtype, &objs, &n, &gs->stats);
        if (ret != -EAGAIN && ret != -EFAULT && ret != -ELOOP && ret != -EBUSY)
            break;
    }
    if (ret == 0)
        ret = greenlet_read(rt->mem, l, gl, objs, n, gs);
    free(objs);
    if (ret == -ESRCH)
        return pserr_set(err, ESRCH, "process %d exited while being read", (int)rt->pid);
    if (ret == -EAGAIN || ret == -ELOOP || ret == -EFAULT || ret == -EBUSY)
        return pserr_set(err, -ret, "the object lists of process %d changed under each of %d "
                         "walks (try again)", (int)rt->pid, COLLECT_ATTEMPTS);
    if (ret < 0)
        return pserr_set(err, -ret, "cannot walk the object lists of process %d: %s",
                         (int)rt->pid, strerror(-ret));
    return 0;
}
