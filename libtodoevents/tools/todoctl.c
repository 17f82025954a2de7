/* todoctl — command-line tool over libtodoevents. */
#include "todoctl.h"

#include <todoevents/todoevents.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out) {
    fprintf(out,
            "usage: todoctl <command> [args]\n"
            "\n"
            "commands:\n"
            "  event validate [--spec-only] [FILE|-]\n"
            "                               check one structured-mode CloudEvent (JSON)\n"
            "  event new|kafka|types|topics|schema|schemas\n"
            "                               build/inspect events, the catalogue, JSON Schemas\n"
            "                               ('todoctl event help' for details)\n"
            "  event publish|tail ...       put events on / follow a Kafka topic\n"
            "  recur --rule RRULE --start RFC3339 --tz ZONE [--after RFC3339] [--count N]\n"
            "                               print occurrences of a recurrence rule\n"
            "  token --user U [--ttl SECONDS] [--secret-file F] [--issuer I] [--audience A]\n"
            "                               mint an HS256 development JWT\n"
            "  token verify [TOKEN|-] [--secret-file F | --public-key F]\n"
            "                               verify a JWT, print its sub and exp\n"
            "                               ('todoctl token help' for details)\n"
            "  topics ensure [--brokers B] [--replication N]\n"
            "                               create the catalogue's missing Kafka topics;\n"
            "                               report topics whose settings differ (exit 1)\n"
            "  version                      print the library version\n"
            "  help                         this text\n"
            "\n"
            "exit status: 0 ok, 1 invalid input, 2 usage or unreadable input\n");
}

char *todoctl_read_input(const char *path, size_t *len) {
    FILE *f = stdin;
    if (path && strcmp(path, "-") != 0) {
        f = fopen(path, "rb");
        if (!f) {
            fprintf(stderr, "todoctl: cannot open %s: %s\n", path, strerror(errno));
            return NULL;
        }
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0)
            break;
    }
    int failed = ferror(f);
    if (f != stdin)
        fclose(f);
    if (!buf || failed) {
        fprintf(stderr, "todoctl: cannot read %s\n", path ? path : "-");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

int todoctl_parse_opts(const char *cmd, void (*print_usage)(FILE *out), unsigned flags,
                       int argc, char **argv, int first, const todoctl_opt_t *opts,
                       size_t nopts, const char **positional) {
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            print_usage(stdout);
            return TODOCTL_OPTS_HELP;
        }
        if ((flags & TODOCTL_OPTS_POSITIONAL) && (a[0] != '-' || strcmp(a, "-") == 0)) {
            if (!positional || *positional) {
                fprintf(stderr, "todoctl: %s: unexpected argument\n", cmd);
                return TODOCTL_USAGE;
            }
            *positional = a;
            continue;
        }
        size_t k;
        const char *value = NULL;
        for (k = 0; k < nopts; k++) {
            size_t n = strlen(opts[k].name);
            if (strncmp(a, opts[k].name, n) == 0 && (a[n] == '\0' || a[n] == '=')) {
                if (a[n] == '=')
                    value = a + n + 1;
                else if (i + 1 < argc)
                    value = argv[++i];
                break;
            }
        }
        if (k == nopts) {
            fprintf(stderr, "todoctl: %s: unknown option '%s'\n", cmd, a);
            print_usage(stderr);
            return TODOCTL_USAGE;
        }
        if (!value) {
            fprintf(stderr, "todoctl: %s: option %s needs a value\n", cmd, opts[k].name);
            if (flags & TODOCTL_OPTS_USAGE_ON_VALUE)
                print_usage(stderr);
            return TODOCTL_USAGE;
        }
        if (*opts[k].dst) {
            fprintf(stderr, "todoctl: %s: option %s given twice\n", cmd, opts[k].name);
            return TODOCTL_USAGE;
        }
        *opts[k].dst = value;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return TODOCTL_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("todoctl %s (libtodoevents %s)\n", te_version_str(), te_version_str());
        return TODOCTL_OK;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return TODOCTL_OK;
    }
    if (strcmp(cmd, "event") == 0)
        return cmd_event(argc - 1, argv + 1);
    if (strcmp(cmd, "topics") == 0)
        return cmd_topics(argc - 1, argv + 1);
    if (strcmp(cmd, "recur") == 0)
        return cmd_recur(argc - 1, argv + 1);
    if (strcmp(cmd, "token") == 0)
        return cmd_token(argc - 1, argv + 1);
    fprintf(stderr, "todoctl: unknown command '%s'\n", cmd);
    usage(stderr);
    return TODOCTL_USAGE;
}
