/* placeholder until the event command group lands */
#include "todoctl.h"
int cmd_event(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "todoctl: 'event' is not available in this build\n");
    return TODOCTL_USAGE;
}
