/* todoctl event — validate, build and inspect CloudEvents; print the
 * event catalogue and its JSON Schemas. */
#include "todoctl.h"

#include <todoevents/cloudevent.h>
#include <todoevents/event_catalog.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void event_usage(FILE *out) {
    fprintf(out,
            "usage: todoctl event <command> [args]\n"
            "\n"
            "commands:\n"
            "  validate [--spec-only] [FILE|-]\n"
            "        check one structured-mode CloudEvent (JSON): prints \"valid\", or one\n"
            "        line \"<attribute>: <reason>\" per problem (CloudEvents 1.0 rules, and\n"
            "        for com.todo.* types the event catalogue's data rules unless\n"
            "        --spec-only); long attribute names get a warning on stderr\n"
            "  new --type TYPE --source URI [--subject S] [--id ID] [--time RFC3339]\n"
            "      [--data JSON | --data-file FILE] [--datacontenttype MT]\n"
            "      [--partitionkey KEY] [--traceparent TP] [--ext NAME=VALUE]... [--pretty]\n"
            "        print a new event (id = random UUID, time = now unless given);\n"
            "        com.todo.* events are checked against the catalogue\n"
            "  kafka [--mode binary|structured] [FILE|-]\n"
            "        show the Kafka record (key, headers, value) for an event\n"
            "  publish [--topic T] [--key K] [--mode binary|structured] [--timeout S]\n"
            "          [--brokers B] [-X KEY=VALUE]... [FILE|-]\n"
            "        validate one event and publish it to Kafka (exit 0 delivered, 1 invalid,\n"
            "        2 usage error or not delivered)\n"
            "  tail --topic T [--from-beginning] [--count N] [--group G] [--timeout S]\n"
            "        print a topic's records as JSON lines (exit 1: --timeout before --count)\n"
            "  types                   list the catalogue's event types and topics\n"
            "  topics                  list the topics (partitions, retention)\n"
            "  schema [TYPE]           print the JSON Schema of TYPE's data\n"
            "                          (no TYPE or \"cloudevent\": the envelope schema)\n"
            "  schemas --out DIR       write every schema as DIR/<type>.json and\n"
            "                          DIR/cloudevent.json\n"
            "\n"
            "exit status: 0 valid/ok, 1 invalid event, 2 usage error, unreadable input or\n"
            "malformed JSON (not a JSON object, bad syntax, not UTF-8)\n");
}

static void print_problems(const te_problems_t *p, FILE *out) {
    char line[1024];
    for (size_t i = 0; i < te_problems_count(p); i++)
        fprintf(out, "%s\n", te_problems_format(p, i, line, sizeof line));
}

static void warn_long_names(const te_event_t *ev) {
    for (size_t i = 0; i < te_event_attr_count(ev); i++) {
        te_ce_attr_t a;
        if (te_event_attr_at(ev, i, &a) == TE_OK && strlen(a.name) > TE_CE_NAME_RECOMMENDED_MAX)
            fprintf(stderr,
                    "todoctl: warning: %s: attribute names longer than %d characters are "
                    "discouraged (allowed)\n",
                    a.name, TE_CE_NAME_RECOMMENDED_MAX);
    }
}

static int cmd_validate(int argc, char **argv) {
    const char *path = NULL;
    int spec_only = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--spec-only") == 0) {
            spec_only = 1;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "todoctl: event validate: unknown option %s\n", argv[i]);
            return TODOCTL_USAGE;
        } else if (!path) {
            path = argv[i];
        } else {
            fprintf(stderr, "todoctl: event validate: one input at most\n");
            return TODOCTL_USAGE;
        }
    }
    size_t len;
    char *text = todoctl_read_input(path, &len);
    if (!text)
        return TODOCTL_USAGE;
    te_problems_t *p = te_problems_new();
    te_event_t *ev = NULL;
    char err[TE_ERRSTR_SIZE] = "";
    te_err_t e = spec_only ? te_event_from_json(text, len, &ev, p, err, sizeof err)
                           : te_catalog_event_from_json(text, len, &ev, p, err, sizeof err);
    int rc;
    if (e == TE_OK) {
        warn_long_names(ev);
        printf("valid\n");
        rc = TODOCTL_OK;
    } else if (e == TE_ERR_INVALID) {
        print_problems(p, stdout);
        rc = TODOCTL_INVALID;
    } else {
        fprintf(stderr, "todoctl: %s: %s: %s\n", path ? path : "-", te_err2str(e),
                err[0] ? err : te_err_name(e));
        rc = TODOCTL_USAGE;
    }
    te_event_destroy(ev);
    te_problems_destroy(p);
    free(text);
    return rc;
}

static int set_or_fail(te_err_t e, const char *what, const char *err) {
    if (e == TE_OK)
        return 0;
    fprintf(stderr, "todoctl: event new: %s: %s\n", what, err[0] ? err : te_err2str(e));
    return 1;
}

static int cmd_new(int argc, char **argv) {
    const char *type = NULL, *source = NULL, *data = NULL, *data_file = NULL;
    int pretty = 0;
    /* first pass: required options */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--type") == 0 && i + 1 < argc)
            type = argv[++i];
        else if (strcmp(argv[i], "--source") == 0 && i + 1 < argc)
            source = argv[++i];
        else if (strcmp(argv[i], "--pretty") == 0)
            pretty = 1;
        else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc)
            data = argv[++i];
        else if (strcmp(argv[i], "--data-file") == 0 && i + 1 < argc)
            data_file = argv[++i];
        else if (argv[i][0] == '-' && i + 1 < argc)
            i++; /* handled in the second pass */
        else {
            fprintf(stderr, "todoctl: event new: unexpected argument %s\n", argv[i]);
            return TODOCTL_USAGE;
        }
    }
    if (!type || !source) {
        fprintf(stderr, "todoctl: event new: --type and --source are required\n");
        return TODOCTL_USAGE;
    }
    if (data && data_file) {
        fprintf(stderr, "todoctl: event new: give --data or --data-file, not both\n");
        return TODOCTL_USAGE;
    }
    char err[TE_ERRSTR_SIZE] = "";
    te_event_t *ev = NULL;
    if (set_or_fail(te_event_create(&ev, type, source, err, sizeof err), "create", err))
        return TODOCTL_USAGE;
    int rc = TODOCTL_OK;
    for (int i = 1; i < argc && rc == TODOCTL_OK; i++) {
        const char *opt = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        te_err_t e = TE_OK;
        err[0] = '\0';
        if (strcmp(opt, "--type") == 0 || strcmp(opt, "--source") == 0 ||
            strcmp(opt, "--data") == 0 || strcmp(opt, "--data-file") == 0) {
            i++;
            continue;
        }
        if (strcmp(opt, "--pretty") == 0)
            continue;
        i++;
        if (strcmp(opt, "--subject") == 0)
            e = te_event_set_subject(ev, val, err, sizeof err);
        else if (strcmp(opt, "--id") == 0)
            e = te_event_set_id(ev, val, err, sizeof err);
        else if (strcmp(opt, "--time") == 0)
            e = te_event_set_string(ev, "time", val, err, sizeof err);
        else if (strcmp(opt, "--datacontenttype") == 0)
            e = te_event_set_datacontenttype(ev, val, err, sizeof err);
        else if (strcmp(opt, "--dataschema") == 0)
            e = te_event_set_dataschema(ev, val, err, sizeof err);
        else if (strcmp(opt, "--partitionkey") == 0)
            e = te_event_set_partitionkey(ev, val, err, sizeof err);
        else if (strcmp(opt, "--traceparent") == 0)
            e = te_event_set_traceparent(ev, val, err, sizeof err);
        else if (strcmp(opt, "--ext") == 0) {
            const char *eq = val ? strchr(val, '=') : NULL;
            if (!eq) {
                fprintf(stderr, "todoctl: event new: --ext needs NAME=VALUE\n");
                rc = TODOCTL_USAGE;
                break;
            }
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)(eq - val), val);
            e = te_event_set_string(ev, name, eq + 1, err, sizeof err);
        } else {
            fprintf(stderr, "todoctl: event new: unknown option %s\n", opt);
            rc = TODOCTL_USAGE;
            break;
        }
        if (set_or_fail(e, opt, err))
            rc = TODOCTL_USAGE;
    }
    if (rc == TODOCTL_OK && (data || data_file)) {
        size_t len = 0;
        char *text = data_file ? todoctl_read_input(data_file, &len) : NULL;
        if (data_file && !text) {
            rc = TODOCTL_USAGE;
        } else {
            const char *d = data ? data : text;
            if (set_or_fail(te_event_set_data_json(ev, d, data ? strlen(data) : len, err,
                                                   sizeof err),
                            "data", err))
                rc = TODOCTL_USAGE;
        }
        free(text);
    }
    if (rc == TODOCTL_OK) {
        te_problems_t *p = te_problems_new();
        if (te_catalog_validate_event(ev, p) != TE_OK) {
            print_problems(p, stderr);
            rc = TODOCTL_INVALID;
        }
        te_problems_destroy(p);
    }
    if (rc == TODOCTL_OK) {
        char *json = NULL;
        te_err_t e = te_event_to_json(ev, pretty ? TE_JSON_PRETTY : 0, &json, NULL, err, sizeof err);
        if (e) {
            fprintf(stderr, "todoctl: event new: %s\n", err);
            rc = TODOCTL_USAGE;
        } else {
            printf("%s\n", json);
        }
        te_free(json);
    }
    te_event_destroy(ev);
    return rc;
}

static void print_bytes(const void *p, size_t n) {
    fwrite(p, 1, n, stdout);
    printf("\n");
}

static int cmd_kafka(int argc, char **argv) {
    te_kafka_mode_t mode = TE_KAFKA_BINARY;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc) {
            const char *m = argv[++i];
            if (strcmp(m, "binary") == 0)
                mode = TE_KAFKA_BINARY;
            else if (strcmp(m, "structured") == 0)
                mode = TE_KAFKA_STRUCTURED;
            else {
                fprintf(stderr, "todoctl: event kafka: --mode binary|structured\n");
                return TODOCTL_USAGE;
            }
        } else if (!path) {
            path = argv[i];
        } else {
            fprintf(stderr, "todoctl: event kafka: unexpected argument %s\n", argv[i]);
            return TODOCTL_USAGE;
        }
    }
    size_t len;
    char *text = todoctl_read_input(path, &len);
    if (!text)
        return TODOCTL_USAGE;
    te_problems_t *p = te_problems_new();
    te_event_t *ev = NULL;
    char err[TE_ERRSTR_SIZE] = "";
    te_err_t e = te_event_from_json(text, len, &ev, p, err, sizeof err);
    free(text);
    int rc = TODOCTL_OK;
    if (e == TE_ERR_INVALID) {
        print_problems(p, stdout);
        rc = TODOCTL_INVALID;
    } else if (e) {
        fprintf(stderr, "todoctl: %s: %s: %s\n", path ? path : "-", te_err2str(e), err);
        rc = TODOCTL_USAGE;
    } else {
        te_headers_t *h = te_headers_new();
        void *value = NULL;
        size_t vlen = 0;
        e = te_event_to_kafka(ev, mode, h, &value, &vlen, err, sizeof err);
        if (e) {
            fprintf(stderr, "todoctl: event kafka: %s\n", err);
            rc = TODOCTL_USAGE;
        } else {
            const char *key = te_event_kafka_key(ev);
            printf("key: %s\n", key ? key : "(none)");
            for (size_t i = 0; i < te_headers_count(h); i++) {
                size_t n;
                const void *v = te_headers_value(h, i, &n);
                printf("header %s: ", te_headers_name(h, i));
                print_bytes(v ? v : "", v ? n : 0);
            }
            if (value) {
                printf("value (%zu bytes):\n", vlen);
                print_bytes(value, vlen);
            } else {
                printf("value: (none)\n");
            }
        }
        te_free(value);
        te_headers_destroy(h);
    }
    te_event_destroy(ev);
    te_problems_destroy(p);
    return rc;
}

static int cmd_types(void) {
    for (size_t i = 0; i < te_catalog_type_count(); i++) {
        const te_event_type_info_t *t = te_catalog_type_at(i);
        printf("%-30s %-18s %s\n", t->type, t->topic, t->description);
    }
    return TODOCTL_OK;
}

static void print_retention(int64_t ms) {
    if (ms % (24 * 3600000LL) == 0)
        printf("%lldd", (long long)(ms / (24 * 3600000LL)));
    else if (ms % 3600000LL == 0)
        printf("%lldh", (long long)(ms / 3600000LL));
    else
        printf("%lldms", (long long)ms);
}

static int cmd_list_topics(void) {
    for (size_t i = 0; i < te_catalog_topic_count(); i++) {
        const te_topic_info_t *t = te_catalog_topic_at(i);
        printf("%-18s partitions=%-3d retention.ms=%-11lld retention=", t->name, t->partitions,
               (long long)t->retention_ms);
        print_retention(t->retention_ms);
        printf("\n");
    }
    return TODOCTL_OK;
}

static int cmd_schema(int argc, char **argv) {
    if (argc > 2) {
        fprintf(stderr, "todoctl: event schema: one TYPE at most\n");
        return TODOCTL_USAGE;
    }
    const char *type = argc == 2 ? argv[1] : NULL;
    char *s = NULL;
    te_err_t e = te_catalog_schema_json(type, &s, NULL);
    if (e) {
        fprintf(stderr, "todoctl: event schema: %s: %s (see 'todoctl event types')\n",
                type ? type : TE_SCHEMA_ENVELOPE_NAME, te_err2str(e));
        return TODOCTL_USAGE;
    }
    fputs(s, stdout);
    te_free(s);
    return TODOCTL_OK;
}

static int write_schema(const char *dir, const char *type) {
    char *s = NULL;
    size_t len = 0;
    if (te_catalog_schema_json(type, &s, &len) != TE_OK) {
        fprintf(stderr, "todoctl: event schemas: cannot generate %s\n", type);
        return -1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.json", dir, type);
    FILE *f = fopen(path, "wb");
    int rc = 0;
    if (!f || fwrite(s, 1, len, f) != len) {
        fprintf(stderr, "todoctl: cannot write %s: %s\n", path, strerror(errno));
        rc = -1;
    }
    if (f && fclose(f) != 0 && rc == 0) {
        fprintf(stderr, "todoctl: cannot write %s: %s\n", path, strerror(errno));
        rc = -1;
    }
    te_free(s);
    return rc;
}

static int cmd_schemas(int argc, char **argv) {
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
            dir = argv[++i];
        else {
            fprintf(stderr, "todoctl: event schemas: unexpected argument %s\n", argv[i]);
            return TODOCTL_USAGE;
        }
    }
    if (!dir) {
        fprintf(stderr, "todoctl: event schemas: --out DIR is required\n");
        return TODOCTL_USAGE;
    }
    if (write_schema(dir, TE_SCHEMA_ENVELOPE_NAME) != 0)
        return TODOCTL_USAGE;
    for (size_t i = 0; i < te_catalog_type_count(); i++)
        if (write_schema(dir, te_catalog_type_at(i)->type) != 0)
            return TODOCTL_USAGE;
    return TODOCTL_OK;
}

int cmd_event(int argc, char **argv) {
    if (argc < 2) {
        event_usage(stderr);
        return TODOCTL_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "validate") == 0)
        return cmd_validate(argc - 1, argv + 1);
    if (strcmp(sub, "new") == 0)
        return cmd_new(argc - 1, argv + 1);
    if (strcmp(sub, "publish") == 0)
        return cmd_event_publish(argc - 1, argv + 1);
    if (strcmp(sub, "tail") == 0)
        return cmd_event_tail(argc - 1, argv + 1);
    if (strcmp(sub, "kafka") == 0)
        return cmd_kafka(argc - 1, argv + 1);
    if (strcmp(sub, "types") == 0 && argc == 2)
        return cmd_types();
    if (strcmp(sub, "topics") == 0 && argc == 2)
        return cmd_list_topics();
    if (strcmp(sub, "schema") == 0)
        return cmd_schema(argc - 1, argv + 1);
    if (strcmp(sub, "schemas") == 0)
        return cmd_schemas(argc - 1, argv + 1);
    if (strcmp(sub, "help") == 0 || strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        event_usage(stdout);
        return TODOCTL_OK;
    }
    fprintf(stderr, "todoctl: event: unknown command '%s'\n", sub);
    event_usage(stderr);
    return TODOCTL_USAGE;
}
