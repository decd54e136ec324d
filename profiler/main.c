#include <stdio.h>
#include <string.h>

#include "profiler/cli.h"

int main(int argc, char **argv)
{
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
