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

/* One "--name VALUE" / "--name=VALUE" option of a command: *dst is set to
 * the value (it must start NULL; an option given twice is an error). */
typedef struct {
    const char *name; /* "--rule" */
    const char **dst;
} todoctl_opt_t;

/* Flags of todoctl_parse_opts(). */
#define TODOCTL_OPTS_POSITIONAL 1u     /* non-options ("-" too) are arguments, not options */
#define TODOCTL_OPTS_USAGE_ON_VALUE 2u /* print the usage after "option X needs a value" */

/* Returned by todoctl_parse_opts() when -h/--help printed the usage to stdout. */
#define TODOCTL_OPTS_HELP (-1)

/* Parses argv[first..argc) against opts.  -h / --help call print_usage(stdout)
 * and return TODOCTL_OPTS_HELP.  With TODOCTL_OPTS_POSITIONAL a non-option
 * goes to *positional (at most one, and only when positional is not NULL;
 * otherwise "unexpected argument"); without it, it is an unknown option.
 * Errors are printed as "todoctl: CMD: ..." (an unknown option followed by
 * print_usage(stderr)) and return TODOCTL_USAGE; 0 when all parsed. */
int todoctl_parse_opts(const char *cmd, void (*print_usage)(FILE *out), unsigned flags,
                       int argc, char **argv, int first, const todoctl_opt_t *opts,
                       size_t nopts, const char **positional);

#endif
