/* placeholder until the recur command group lands */
#include "todoctl.h"
int cmd_recur(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "todoctl: 'recur' is not available in this build\n");
    return TODOCTL_USAGE;
}
