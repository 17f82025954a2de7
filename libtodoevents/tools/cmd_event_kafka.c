/* todoctl event publish / event tail — put one CloudEvent on a topic, and
 * follow a topic printing one JSON line per record. */
#include "todoctl.h"
#include "todoctl_kafka.h"

#include <todoevents/cloudevent.h>
#include <todoevents/event_catalog.h>
#include <todoevents/kafka.h>

#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- publish ------------------------------------------------------------------ */

static void publish_usage(FILE *out) {
    fprintf(out,
            "usage: todoctl event publish [--topic T] [--key K] [--mode binary|structured]\n"
            "                             [--timeout SECONDS] [--brokers B] [-X KEY=VALUE]...\n"
            "                             [FILE|-]\n"
            "\n"
            "Validates one structured-mode CloudEvent (JSON; CloudEvents rules and, for\n"
            "com.todo.* types, the catalogue) and publishes it with the idempotent producer.\n"
            "--topic defaults to the catalogue's topic of the event's type; --key to the\n"
            "event's partitionkey (the user id); --mode to structured.  Prints\n"
            "\"delivered topic=T partition=P offset=O\" once the broker acknowledged it.\n"
            "\n"
            "options:\n" TODOCTL_KAFKA_OPTIONS_HELP
            "\n"
            "exit status: 0 delivered, 1 invalid event, 2 usage error, unreadable input or\n"
            "not delivered (error on stderr)\n");
}

typedef struct pub_result_s {
    int done;
    te_err_t err;
    char errstr[512];
    char topic[256];
    int32_t partition;
    int64_t offset;
    int64_t latency_us;
} pub_result_t;

static void on_published(const te_delivery_t *d, void *opaque) {
    pub_result_t *r = opaque;
    r->err = d->err;
    snprintf(r->errstr, sizeof r->errstr, "%s", d->errstr);
    snprintf(r->topic, sizeof r->topic, "%s", d->topic);
    r->partition = d->partition;
    r->offset = d->offset;
    r->latency_us = d->latency_us;
    r->done = 1; /* read after te_producer_flush() returned: no race */
}

int cmd_event_publish(int argc, char **argv) {
    const char *topic = NULL, *key = NULL, *path = NULL;
    const char *mode = "structured";
    int timeout_s = 30;
    te_conf_t *conf = todoctl_kafka_conf_new();
    int rc = TODOCTL_OK;
    for (int i = 1; i < argc && rc == TODOCTL_OK; i++) {
        int r = todoctl_kafka_option(conf, "event publish", argc, argv, &i);
        if (r < 0)
            rc = TODOCTL_USAGE;
        else if (r)
            continue;
        else if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc)
            topic = argv[++i];
        else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc)
            key = argv[++i];
        else if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc)
            mode = argv[++i];
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
            timeout_s = atoi(argv[++i]);
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            publish_usage(stdout);
            te_conf_destroy(conf);
            return TODOCTL_OK;
        } else if ((argv[i][0] != '-' || strcmp(argv[i], "-") == 0) && !path)
            path = argv[i];
        else {
            fprintf(stderr, "todoctl: event publish: unexpected argument %s\n", argv[i]);
            publish_usage(stderr);
            rc = TODOCTL_USAGE;
        }
    }
    if (rc == TODOCTL_OK && strcmp(mode, "binary") != 0 && strcmp(mode, "structured") != 0) {
        fprintf(stderr, "todoctl: event publish: --mode binary|structured\n");
        rc = TODOCTL_USAGE;
    }
    if (rc == TODOCTL_OK && timeout_s <= 0) {
        fprintf(stderr, "todoctl: event publish: --timeout needs SECONDS > 0\n");
        rc = TODOCTL_USAGE;
    }
    if (rc == TODOCTL_OK && todoctl_kafka_ready(conf, "event publish") != 0)
        rc = TODOCTL_USAGE;
    if (rc != TODOCTL_OK) {
        te_conf_destroy(conf);
        return rc;
    }
    size_t len = 0;
    char *text = todoctl_read_input(path, &len);
    if (!text) {
        te_conf_destroy(conf);
        return TODOCTL_USAGE;
    }
    te_problems_t *probs = te_problems_new();
    te_event_t *ev = NULL;
    char err[TE_ERRSTR_SIZE] = "";
    te_err_t e = te_catalog_event_from_json(text, len, &ev, probs, err, sizeof err);
    free(text);
    if (e == TE_ERR_INVALID) {
        char line[1024];
        for (size_t i = 0; i < te_problems_count(probs); i++)
            printf("%s\n", te_problems_format(probs, i, line, sizeof line));
        rc = TODOCTL_INVALID;
    } else if (e) {
        fprintf(stderr, "todoctl: event publish: %s: %s: %s\n", path ? path : "-", te_err2str(e),
                err);
        rc = TODOCTL_USAGE;
    }
    te_problems_destroy(probs);
    if (rc == TODOCTL_OK && !topic) {
        topic = te_catalog_topic_for(te_event_type(ev));
        if (!topic) {
            fprintf(stderr,
                    "todoctl: event publish: --topic is required (type %s is not in the "
                    "catalogue)\n",
                    te_event_type(ev));
            rc = TODOCTL_USAGE;
        }
    }
    if (rc == TODOCTL_OK && !key && !te_event_partitionkey(ev)) {
        fprintf(stderr, "todoctl: event publish: --key is required (the event has no "
                        "partitionkey); records are keyed by user id\n");
        rc = TODOCTL_USAGE;
    }
    te_producer_t *p = NULL;
    pub_result_t res;
    memset(&res, 0, sizeof res);
    if (rc == TODOCTL_OK) {
        char ms[32];
        snprintf(ms, sizeof ms, "%d", timeout_s * 1000);
        if (te_conf_set(conf, "te.content.mode", mode, err, sizeof err) != TE_OK ||
            te_conf_set(conf, "message.timeout.ms", ms, err, sizeof err) != TE_OK ||
            !(p = te_producer_new(conf, on_published, &res, err, sizeof err))) {
            fprintf(stderr, "todoctl: event publish: %s\n", err);
            rc = TODOCTL_USAGE;
        }
    }
    if (rc == TODOCTL_OK) {
        e = te_producer_prepare(p, topic, timeout_s * 1000, err, sizeof err);
        if (e) {
            fprintf(stderr, "todoctl: event publish: %s\n", err);
            rc = TODOCTL_USAGE;
        }
    }
    if (rc == TODOCTL_OK) {
        e = te_producer_send(p, topic, ev, key, NULL, err, sizeof err);
        if (e) {
            fprintf(stderr, "todoctl: event publish: %s: %s\n", te_err2str(e), err);
            rc = e == TE_ERR_INVALID ? TODOCTL_INVALID : TODOCTL_USAGE;
        } else if (te_producer_flush(p, timeout_s * 1000 + 5000) != TE_OK || !res.done) {
            fprintf(stderr, "todoctl: event publish: no delivery report within %d s\n",
                    timeout_s);
            rc = TODOCTL_USAGE;
        } else if (res.err) {
            fprintf(stderr, "todoctl: event publish: not delivered to %s: %s\n", topic,
                    res.errstr);
            rc = TODOCTL_USAGE;
        } else {
            printf("delivered topic=%s partition=%d offset=%lld key=%s mode=%s "
                   "latency_ms=%.1f\n",
                   res.topic, (int)res.partition, (long long)res.offset,
                   key ? key : te_event_partitionkey(ev), mode, (double)res.latency_us / 1000.0);
        }
    }
    te_producer_destroy(p);
    te_event_destroy(ev);
    te_conf_destroy(conf);
    return rc;
}

/* ---- tail --------------------------------------------------------------------- */

static void tail_usage(FILE *out) {
    fprintf(out,
            "usage: todoctl event tail --topic T [--from-beginning] [--count N] [--group G]\n"
            "                          [--timeout SECONDS] [--brokers B] [-X KEY=VALUE]...\n"
            "\n"
            "Follows topic T and prints one JSON line per record:\n"
            "  {\"key\":K,\"partition\":P,\"offset\":O,\"mode\":\"binary|structured\","
            "\"event\":{...}}\n"
            "with the event in structured form whichever mode it arrived in; a record that\n"
            "is not a CloudEvent prints {\"key\":K,\"partition\":P,\"offset\":O,\"error\":E}.\n"
            "--group G joins consumer group G (offsets committed; default: a new group\n"
            "each run); --from-beginning starts a group without committed offsets at the\n"
            "oldest record (default: only new records); --count stops after N records;\n"
            "--timeout stops after SECONDS.  Ctrl-C stops too.\n"
            "\n"
            "options:\n" TODOCTL_KAFKA_OPTIONS_HELP
            "\n"
            "exit status: 0 ok, 1 --timeout reached before --count records, 2 usage error\n"
            "or Kafka error\n");
}

typedef struct tail_s {
    te_consumer_t *c;
    long count; /* 0 = no limit */
    long seen;
} tail_t;

static te_consumer_t *volatile g_tail_consumer;
static volatile sig_atomic_t g_timed_out;

static void on_signal(int sig) {
    if (sig == SIGALRM)
        g_timed_out = 1;
    if (g_tail_consumer)
        te_consumer_stop(g_tail_consumer); /* only sets an atomic flag */
}

static void print_json_string(const char *s, size_t n) {
    struct json_object *j = json_object_new_string_len(s, (int)n);
    fputs(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
          stdout);
    json_object_put(j);
}

static te_handler_result_t tail_handler(const te_event_t *ev, const te_record_t *rec,
                                        void *opaque, char *errstr, size_t errstr_size) {
    (void)errstr;
    (void)errstr_size;
    tail_t *t = opaque;
    fputs("{\"key\":", stdout);
    if (rec->key)
        print_json_string(rec->key, rec->key_len);
    else
        fputs("null", stdout);
    printf(",\"partition\":%d,\"offset\":%lld,", (int)rec->partition, (long long)rec->offset);
    char *json = NULL;
    char err[TE_ERRSTR_SIZE] = "";
    if (ev && te_event_to_json(ev, 0, &json, NULL, err, sizeof err) == TE_OK) {
        printf("\"mode\":\"%s\",\"event\":%s}\n",
               rec->mode == TE_KAFKA_BINARY ? "binary" : "structured", json);
    } else {
        const char *why = ev ? err : rec->decode_error ? rec->decode_error : "not decodable";
        fputs("\"error\":", stdout);
        print_json_string(why, strlen(why));
        fputs("}\n", stdout);
    }
    te_free(json);
    fflush(stdout);
    t->seen++;
    if (t->count > 0 && t->seen >= t->count)
        te_consumer_stop(t->c);
    return TE_HANDLER_OK;
}

int cmd_event_tail(int argc, char **argv) {
    const char *topic = NULL, *group = NULL;
    int from_beginning = 0, timeout_s = 0;
    tail_t t = {NULL, 0, 0};
    te_conf_t *conf = todoctl_kafka_conf_new();
    int rc = TODOCTL_OK;
    for (int i = 1; i < argc && rc == TODOCTL_OK; i++) {
        int r = todoctl_kafka_option(conf, "event tail", argc, argv, &i);
        if (r < 0)
            rc = TODOCTL_USAGE;
        else if (r)
            continue;
        else if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc)
            topic = argv[++i];
        else if (strcmp(argv[i], "--group") == 0 && i + 1 < argc)
            group = argv[++i];
        else if (strcmp(argv[i], "--from-beginning") == 0)
            from_beginning = 1;
        else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
            t.count = atol(argv[++i]);
            if (t.count <= 0) {
                fprintf(stderr, "todoctl: event tail: --count needs N > 0\n");
                rc = TODOCTL_USAGE;
            }
        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            timeout_s = atoi(argv[++i]);
            if (timeout_s <= 0) {
                fprintf(stderr, "todoctl: event tail: --timeout needs SECONDS > 0\n");
                rc = TODOCTL_USAGE;
            }
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            tail_usage(stdout);
            te_conf_destroy(conf);
            return TODOCTL_OK;
        } else {
            fprintf(stderr, "todoctl: event tail: unexpected argument %s\n", argv[i]);
            tail_usage(stderr);
            rc = TODOCTL_USAGE;
        }
    }
    if (rc == TODOCTL_OK && !topic) {
        fprintf(stderr, "todoctl: event tail: --topic is required\n");
        rc = TODOCTL_USAGE;
    }
    if (rc == TODOCTL_OK && todoctl_kafka_ready(conf, "event tail") != 0)
        rc = TODOCTL_USAGE;
    char err[TE_ERRSTR_SIZE] = "";
    char gbuf[96];
    if (!group) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(gbuf, sizeof gbuf, "todoctl-tail-%d-%lld%03ld", (int)getpid(),
                 (long long)ts.tv_sec, ts.tv_nsec / 1000000);
        group = gbuf;
    }
    /* inspection: never dead-letter, show records that are not CloudEvents,
     * show catalogue-invalid events as they are */
    if (rc == TODOCTL_OK &&
        (te_conf_set(conf, "group.id", group, err, sizeof err) != TE_OK ||
         te_conf_set(conf, "auto.offset.reset", from_beginning ? "earliest" : "latest", err,
                     sizeof err) != TE_OK ||
         te_conf_set(conf, "te.dlq.topic", "", err, sizeof err) != TE_OK ||
         te_conf_set(conf, "te.invalid.events", "handler", err, sizeof err) != TE_OK ||
         te_conf_set(conf, "te.validate", "false", err, sizeof err) != TE_OK)) {
        fprintf(stderr, "todoctl: event tail: %s\n", err);
        rc = TODOCTL_USAGE;
    }
    if (rc != TODOCTL_OK) {
        te_conf_destroy(conf);
        return rc;
    }
    const char *topics[] = {topic};
    t.c = te_consumer_new(conf, topics, 1, tail_handler, &t, err, sizeof err);
    te_conf_destroy(conf);
    if (!t.c) {
        fprintf(stderr, "todoctl: event tail: %s\n", err);
        return TODOCTL_USAGE;
    }
    g_tail_consumer = t.c;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);
    if (timeout_s > 0)
        alarm((unsigned)timeout_s);
    te_err_t e = te_consumer_run(t.c, err, sizeof err);
    alarm(0);
    g_tail_consumer = NULL;
    if (e) {
        fprintf(stderr, "todoctl: event tail: %s\n", err);
        rc = TODOCTL_USAGE;
    } else if (g_timed_out && t.count > 0 && t.seen < t.count) {
        fprintf(stderr, "todoctl: event tail: timed out after %ld of %ld record(s)\n", t.seen,
                t.count);
        rc = TODOCTL_INVALID;
    }
    te_consumer_destroy(t.c);
    return rc;
}
