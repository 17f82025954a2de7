/* todoctl — shared declarations of the command groups. */
#ifndef TODOCTL_H
#define TODOCTL_H

#include <stdio.h>

/* Exit codes shared by every command. */
#define TODOCTL_OK 0
#define TODOCTL_INVALID 1 /* input read fine but is not valid */
#define TODOCTL_USAGE 2   /* bad arguments, unreadable input, bad rule/time/zone */

/* Each command group: argv[0] is the group name ("event", "recur", ...). */
int cmd_event(int argc, char **argv);
int cmd_recur(int argc, char **argv);
int cmd_topics(int argc, char **argv);        /* cmd_topics.c, argv[0] = "topics" */
int cmd_token(int argc, char **argv);         /* cmd_token.c, argv[0] = "token" */
int cmd_event_publish(int argc, char **argv); /* cmd_event_kafka.c, argv[0] = "publish" */
int cmd_event_tail(int argc, char **argv);    /* cmd_event_kafka.c, argv[0] = "tail" */

/* Reads all of FILE ("-" or NULL = stdin) into a NUL-terminated buffer the
 * caller frees; NULL on error (message printed to stderr). */
char *todoctl_read_input(const char *path, size_t *len);

#endif
