#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "profiler/commands/cli.h"

/* Each thread sampled keeps up to three /proc files open (stat, schedstat,
 * syscall): a process of a few hundred threads would pass the usual soft
 * limit of 1024 descriptors, so it is raised to the hard limit. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    raise_fd_limit();
    if (argc < 2)
        return cli_usage("no command given; see 'pystrobe --help'");
    const char *sub = argv[1];
    if (!strcmp(sub, "record"))
        return cmd_record(argc - 1, argv + 1);
    if (!strcmp(sub, "dump"))
        return cmd_dump(argc - 1, argv + 1);
    if (!strcmp(sub, "convert"))
        return cmd_convert(argc - 1, argv + 1);
    if (!strcmp(sub, "diff"))
        return cmd_diff(argc - 1, argv + 1);
    if (!strcmp(sub, "top"))
        return cmd_top(argc - 1, argv + 1);
    if (!strcmp(sub, "locks"))
        return cmd_locks(argc - 1, argv + 1);
    if (!strcmp(sub, "help"))
        return cmd_help(argc > 2 ? argv[2] : NULL);
    if (!strcmp(sub, "-h") || !strcmp(sub, "--help"))
        return cmd_help(NULL);
    if (!strcmp(sub, "--version") || !strcmp(sub, "-V")) {
        printf("pystrobe %s\n", PYSTROBE_VERSION);
        return 0;
    }
    return cli_usage("unknown command '%s'; see 'pystrobe --help'", sub);
}
