/* cmd_tail.c - `kgmon tail` (placeholder until implemented). */
#include <stdio.h>

#include "cli.h"

int cmd_tail(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "kgmon tail: not implemented yet\n");
    return KGMON_FAILED;
}
