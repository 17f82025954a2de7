/* todoctl topics — provision the event catalogue's topics on Kafka. */
#include "todoctl.h"
#include "todoctl_kafka.h"

#include <todoevents/event_catalog.h>
#include <todoevents/kafka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- options shared by the Kafka commands -------------------------------- */

te_conf_t *todoctl_kafka_conf_new(void) {
    te_conf_t *c = te_conf_new();
    if (!c) {
        fprintf(stderr, "todoctl: out of memory\n");
        exit(TODOCTL_USAGE);
    }
    const char *b = getenv("TE_KAFKA_BROKERS");
    if (b && *b)
        te_conf_set(c, "bootstrap.servers", b, NULL, 0);
    /* TE_RDKAFKA_<PROPERTY>, as the daemons read them (a Kubernetes Job
     * passes SASL/TLS settings this way): TE_RDKAFKA_SASL_MECHANISM ->
     * sasl.mechanism.  Options on the command line come later and win. */
    extern char **environ;
    static const char prefix[] = "TE_RDKAFKA_";
    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (strncmp(*e, prefix, sizeof prefix - 1) != 0 || !eq || !eq[1])
            continue;
        char key[256];
        size_t n = 0;
        for (const char *p = *e + sizeof prefix - 1; p < eq && n + 1 < sizeof key; p++)
            key[n++] = *p == '_' ? '.' : (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
        key[n] = '\0';
        char err[TE_ERRSTR_SIZE];
        if (n == 0 || te_conf_set(c, key, eq + 1, err, sizeof err) != TE_OK) {
            fprintf(stderr, "todoctl: %.*s: %s\n", (int)(eq - *e), *e, n ? err : "no property name");
            te_conf_destroy(c);
            exit(TODOCTL_USAGE);
        }
    }
    return c;
}

int todoctl_kafka_option(te_conf_t *conf, const char *cmd, int argc, char **argv, int *i) {
    const char *opt = argv[*i];
    char err[TE_ERRSTR_SIZE] = "";
    if (strcmp(opt, "--brokers") == 0) {
        if (*i + 1 >= argc) {
            fprintf(stderr, "todoctl: %s: --brokers needs HOST:PORT\n", cmd);
            return -1;
        }
        if (te_conf_set(conf, "bootstrap.servers", argv[++*i], err, sizeof err) != TE_OK) {
            fprintf(stderr, "todoctl: %s: --brokers: %s\n", cmd, err);
            return -1;
        }
        return 1;
    }
    if (strcmp(opt, "-X") == 0 || strcmp(opt, "--conf") == 0) {
        const char *kv = *i + 1 < argc ? argv[++*i] : NULL;
        const char *eq = kv ? strchr(kv, '=') : NULL;
        if (!eq || eq == kv) {
            fprintf(stderr, "todoctl: %s: %s needs KEY=VALUE\n", cmd, opt);
            return -1;
        }
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)(eq - kv), kv);
        if (te_conf_set(conf, key, eq + 1, err, sizeof err) != TE_OK) {
            fprintf(stderr, "todoctl: %s: %s\n", cmd, err);
            return -1;
        }
        return 1;
    }
    return 0;
}

int todoctl_kafka_ready(const te_conf_t *conf, const char *cmd) {
    size_t n = 0;
    if (te_conf_get(conf, "bootstrap.servers", NULL, &n) == TE_OK)
        return 0;
    fprintf(stderr,
            "todoctl: %s: no Kafka brokers: give --brokers HOST:PORT or set TE_KAFKA_BROKERS\n",
            cmd);
    return -1;
}

/* ---- topics ensure ----------------------------------------------------------- */

static void topics_usage(FILE *out) {
    fprintf(out,
            "usage: todoctl topics ensure [--brokers B] [--replication N] [--timeout SECONDS]\n"
            "                             [-X KEY=VALUE]...\n"
            "\n"
            "Creates the event catalogue's topics that are missing (partitions, retention.ms;\n"
            "replication factor N, default min(3, number of brokers)) and reports existing\n"
            "topics whose partition count or retention.ms differs (they are not changed).\n"
            "One line per topic: created / exists / DIFFERS: what / FAILED: why.\n"
            "\n"
            "options:\n" TODOCTL_KAFKA_OPTIONS_HELP
            "\n"
            "exit status: 0 every topic exists as specified, 1 some topic differs,\n"
            "2 usage error or a topic could not be created / Kafka not reachable\n");
}

static void print_report(const te_topic_report_t *r, void *opaque) {
    (void)opaque;
    switch (r->status) {
    case TE_TOPIC_CREATED:
        printf("%-18s created (partitions=%d replication=%d retention.ms=%lld)\n", r->name,
               r->partitions, r->replication_factor, (long long)r->retention_ms);
        break;
    case TE_TOPIC_EXISTS:
        printf("%-18s exists (partitions=%d replication=%d retention.ms=%lld)\n", r->name,
               r->actual_partitions, r->replication_factor, (long long)r->actual_retention_ms);
        break;
    case TE_TOPIC_DIFFERS:
        printf("%-18s DIFFERS: %s\n", r->name, r->detail);
        break;
    case TE_TOPIC_FAILED:
        printf("%-18s FAILED: %s\n", r->name, r->detail);
        break;
    }
    fflush(stdout);
}

static int topics_ensure(int argc, char **argv) {
    te_conf_t *conf = todoctl_kafka_conf_new();
    int timeout_s = 30, rc = TODOCTL_OK;
    char err[TE_ERRSTR_SIZE] = "";
    for (int i = 1; i < argc; i++) {
        int r = todoctl_kafka_option(conf, "topics ensure", argc, argv, &i);
        if (r < 0) {
            rc = TODOCTL_USAGE;
            break;
        }
        if (r)
            continue;
        if (strcmp(argv[i], "--replication") == 0 && i + 1 < argc) {
            if (te_conf_set(conf, "te.replication.factor", argv[++i], err, sizeof err) != TE_OK ||
                atoi(argv[i]) < 1) {
                fprintf(stderr, "todoctl: topics ensure: --replication needs a number >= 1\n");
                rc = TODOCTL_USAGE;
                break;
            }
        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            timeout_s = atoi(argv[++i]);
            if (timeout_s <= 0) {
                fprintf(stderr, "todoctl: topics ensure: --timeout needs SECONDS > 0\n");
                rc = TODOCTL_USAGE;
                break;
            }
        } else {
            fprintf(stderr, "todoctl: topics ensure: unexpected argument %s\n", argv[i]);
            topics_usage(stderr);
            rc = TODOCTL_USAGE;
            break;
        }
    }
    if (rc == TODOCTL_OK && todoctl_kafka_ready(conf, "topics ensure") != 0)
        rc = TODOCTL_USAGE;
    if (rc == TODOCTL_OK) {
        te_topics_summary_t sum;
        te_err_t e = te_topics_ensure(conf, NULL, 0, timeout_s * 1000, print_report, NULL, &sum,
                                      err, sizeof err);
        if (e) {
            fprintf(stderr, "todoctl: topics ensure: %s\n", err);
            rc = TODOCTL_USAGE;
        } else if (sum.differing) {
            fprintf(stderr,
                    "todoctl: topics ensure: %zu topic(s) differ from the catalogue (not "
                    "changed)\n",
                    sum.differing);
            rc = TODOCTL_INVALID;
        }
    }
    te_conf_destroy(conf);
    return rc;
}

int cmd_topics(int argc, char **argv) {
    if (argc < 2) {
        topics_usage(stderr);
        return TODOCTL_USAGE;
    }
    if (strcmp(argv[1], "ensure") == 0)
        return topics_ensure(argc - 1, argv + 1);
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        topics_usage(stdout);
        return TODOCTL_OK;
    }
    fprintf(stderr, "todoctl: topics: unknown command '%s'\n", argv[1]);
    topics_usage(stderr);
    return TODOCTL_USAGE;
}
