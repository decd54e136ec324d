/*
 * A process's mappings, as /proc/PID/maps shows them or a core's notes
 * keep them: the types the memory source (mem.h) and its backends share.
 */
#ifndef PYSTROBE_MAPS_H
#define PYSTROBE_MAPS_H

#include <stddef.h>
#include <stdint.h>

#define MEM_R 1u
#define MEM_W 2u
#define MEM_X 4u

struct mem_region {
    uint64_t start, end;   /* [start, end) */
    uint64_t offset;       /* file offset of start */
    unsigned perms;        /* MEM_R | MEM_W | MEM_X */
    uint64_t inode;
    unsigned dev_major, dev_minor;
    char *path;            /* as /proc/PID/maps shows it, "" for anonymous; owned */
};

struct mem_maps {
    struct mem_region *v;
    size_t n;
};

#endif
