/* Kafka layer: configuration (librdkafka properties passed through by
 * name, plus our te.* keys), logging, and the per-role librdkafka
 * configuration builder. */
#include "kafka_internal.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- the configuration object ------------------------------------------ */

typedef struct kv_s {
    char *key;
    char *value;
} kv_t;

struct te_conf_s {
    kv_t *kv; /* every key set, in the order first set */
    size_t n, cap;
    rd_kafka_conf_t *scratch; /* validates librdkafka properties as they are set */
    te_log_cb log_cb;
    void *log_opaque;
};

/* ---- te.* keys ------------------------------------------------------------ */

typedef enum { K_INT, K_BOOL, K_ENUM, K_STRING, K_ALIAS } kind_t;

typedef struct te_key_s {
    const char *name;
    kind_t kind;
    long long min, max;  /* K_INT */
    const char *choices; /* K_ENUM: "a|b" */
    const char *def;
} te_key_t;

static const te_key_t te_keys[] = {
    {"te.content.mode", K_ENUM, 0, 0, "structured|binary", "structured"},
    {"te.validate", K_BOOL, 0, 0, NULL, "true"},
    {"te.send.timeout.ms", K_INT, 0, INT_MAX, NULL, "0"},
    {"te.queue.max.messages", K_ALIAS, 0, 0, NULL, "100000"},
    {"te.flush.timeout.ms", K_INT, 0, INT_MAX, NULL, "10000"},
    {"te.allow.unsafe.producer", K_BOOL, 0, 0, NULL, "false"},
    {"te.max.attempts", K_INT, 1, 100, NULL, "3"},
    {"te.retry.backoff.ms", K_INT, 0, 3600000, NULL, "200"},
    {"te.retry.backoff.max.ms", K_INT, 0, 3600000, NULL, "10000"},
    {"te.dlq.topic", K_STRING, 0, 0, NULL, TE_TOPIC_NOTIFICATION_DLQ},
    {"te.dlq.source", K_STRING, 0, 0, NULL, "/todoevents/consumer"},
    {"te.invalid.events", K_ENUM, 0, 0, "dlq|handler", "dlq"},
    {"te.replication.factor", K_INT, -1, 32767, NULL, "-1"},
    {"te.log.level", K_INT, 0, 7, NULL, "5"},
};
#define TE_NKEYS (sizeof te_keys / sizeof te_keys[0])

static const te_key_t *te_key_find(const char *name) {
    for (size_t i = 0; i < TE_NKEYS; i++)
        if (strcmp(te_keys[i].name, name) == 0)
            return &te_keys[i];
    return NULL;
}

static int parse_bool(const char *v, int *out) {
    if (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0) {
        *out = 1;
        return 0;
    }
    if (strcasecmp(v, "false") == 0 || strcmp(v, "0") == 0) {
        *out = 0;
        return 0;
    }
    return -1;
}

static int parse_ll(const char *v, long long *out) {
    if (!*v)
        return -1;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || *end)
        return -1;
    *out = x;
    return 0;
}

static int enum_index(const char *choices, const char *v) {
    int i = 0;
    size_t vl = strlen(v);
    for (const char *p = choices;; i++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == vl && strncmp(p, v, n) == 0)
            return i;
        if (!bar)
            return -1;
        p = bar + 1;
    }
}

/* ---- sensitive keys ------------------------------------------------------ */

int te_conf_is_sensitive(const char *key) {
    if (!key)
        return 0;
    static const char *const parts[] = {"password", "secret", "ssl.key.pem", "oauthbearer.config",
                                        "token",    "jaas",   "credential",  "private"};
    char low[256];
    size_t n = strlen(key);
    if (n >= sizeof low)
        n = sizeof low - 1;
    for (size_t i = 0; i < n; i++)
        low[i] = (char)tolower((unsigned char)key[i]);
    low[n] = '\0';
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        if (strstr(low, parts[i]))
            return 1;
    return 0;
}

/* ---- librdkafka property scopes (C = consumer, P = producer, * = both) ----
 * Parsed once from rd_kafka_conf_properties_show(), so the table always
 * matches the linked librdkafka. */

typedef struct scope_s {
    char *name;
    char scope;
} scope_t;

static scope_t *scopes;
static size_t nscopes;
static pthread_once_t scopes_once = PTHREAD_ONCE_INIT;

static void scopes_load(void) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return;
    rd_kafka_conf_properties_show(f);
    fclose(f);
    size_t cap = 0;
    for (char *line = buf; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        char *bar1 = strchr(line, '|');
        char *bar2 = bar1 ? strchr(bar1 + 1, '|') : NULL;
        if (bar1 && bar2 && line[0] != '-' && strncmp(line, "Property", 8) != 0) {
            char *e = bar1;
            while (e > line && e[-1] == ' ')
                e--;
            char sc = 0;
            for (char *p = bar1 + 1; p < bar2; p++)
                if (*p == 'C' || *p == 'P' || *p == '*')
                    sc = *p;
            if (sc && e > line) {
                if (nscopes == cap) {
                    size_t nc = cap ? cap * 2 : 256;
                    scope_t *ns = realloc(scopes, nc * sizeof *ns);
                    if (!ns)
                        break;
                    scopes = ns;
                    cap = nc;
                }
                scopes[nscopes].name = strndup(line, (size_t)(e - line));
                if (!scopes[nscopes].name)
                    break;
                scopes[nscopes++].scope = sc;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    free(buf);
}

/* 'C', 'P', '*', or '*' when unknown. */
static char prop_scope(const char *name) {
    pthread_once(&scopes_once, scopes_load);
    for (size_t i = 0; i < nscopes; i++)
        if (strcmp(scopes[i].name, name) == 0)
            return scopes[i].scope;
    return '*';
}

/* ---- life cycle ------------------------------------------------------------- */

te_conf_t *te_conf_new(void) {
    te_conf_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->scratch = rd_kafka_conf_new();
    if (!c->scratch) {
        free(c);
        return NULL;
    }
    return c;
}

void te_conf_destroy(te_conf_t *c) {
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        free(c->kv[i].key);
        if (c->kv[i].value) {
            /* do not leave secrets in freed memory */
            memset(c->kv[i].value, 0, strlen(c->kv[i].value));
            free(c->kv[i].value);
        }
    }
    free(c->kv);
    if (c->scratch)
        rd_kafka_conf_destroy(c->scratch);
    free(c);
}

te_conf_t *te_conf_dup(const te_conf_t *c) {
    if (!c)
        return NULL;
    te_conf_t *d = te_conf_new();
    if (!d)
        return NULL;
    for (size_t i = 0; i < c->n; i++)
        if (te_conf_set(d, c->kv[i].key, c->kv[i].value, NULL, 0) != TE_OK) {
            te_conf_destroy(d);
            return NULL;
        }
    d->log_cb = c->log_cb;
    d->log_opaque = c->log_opaque;
    return d;
}

void te_conf_set_log_cb(te_conf_t *c, te_log_cb cb, void *opaque) {
    if (!c)
        return;
    c->log_cb = cb;
    c->log_opaque = opaque;
}

const char *te_kafka_librdkafka_version(void) { return rd_kafka_version_str(); }

static kv_t *kv_find(const te_conf_t *c, const char *key) {
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->kv[i].key, key) == 0)
            return &c->kv[i];
    return NULL;
}

const char *te__conf_value(const te_conf_t *c, const char *key) {
    kv_t *kv = c ? kv_find(c, key) : NULL;
    return kv ? kv->value : NULL;
}

static te_err_t kv_put(te_conf_t *c, const char *key, const char *value) {
    kv_t *kv = kv_find(c, key);
    if (!value) {
        if (kv) {
            size_t i = (size_t)(kv - c->kv);
            free(kv->key);
            free(kv->value);
            memmove(&c->kv[i], &c->kv[i + 1], (c->n - i - 1) * sizeof *kv);
            c->n--;
        }
        return TE_OK;
    }
    char *v = strdup(value);
    if (!v)
        return TE_ERR_NOMEM;
    if (kv) {
        memset(kv->value, 0, strlen(kv->value));
        free(kv->value);
        kv->value = v;
        return TE_OK;
    }
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 16;
        kv_t *nk = realloc(c->kv, nc * sizeof *nk);
        if (!nk) {
            free(v);
            return TE_ERR_NOMEM;
        }
        c->kv = nk;
        c->cap = nc;
    }
    c->kv[c->n].key = strdup(key);
    if (!c->kv[c->n].key) {
        free(v);
        return TE_ERR_NOMEM;
    }
    c->kv[c->n++].value = v;
    return TE_OK;
}

static te_err_t check_te_value(const te_key_t *k, const char *value, char *errstr,
                               size_t errstr_size, rd_kafka_conf_t *scratch) {
    long long x;
    int b;
    switch (k->kind) {
    case K_INT:
        if (parse_ll(value, &x) != 0 || x < k->min || x > k->max)
            return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG,
                              "%s: \"%s\" is not an integer in %lld..%lld", k->name, value,
                              k->min, k->max);
        return TE_OK;
    case K_BOOL:
        if (parse_bool(value, &b) != 0)
            return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG,
                              "%s: \"%s\" is not true or false", k->name, value);
        return TE_OK;
    case K_ENUM:
        if (enum_index(k->choices, value) < 0)
            return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG,
                              "%s: \"%s\" is not one of %s", k->name, value, k->choices);
        return TE_OK;
    case K_STRING:
        if (strcmp(k->name, "te.dlq.source") == 0) {
            te_event_t *ev = te_event_new();
            char e[TE_ERRSTR_SIZE] = "";
            te_err_t err = ev ? te_event_set_source(ev, value, e, sizeof e) : TE_ERR_NOMEM;
            te_event_destroy(ev);
            if (err)
                return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "%s: %s", k->name, e);
        }
        return TE_OK;
    case K_ALIAS: {
        char e[512] = "";
        if (rd_kafka_conf_set(scratch, "queue.buffering.max.messages", value, e, sizeof e) !=
            RD_KAFKA_CONF_OK)
            return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "%s: %s", k->name, e);
        return TE_OK;
    }
    }
    return TE_ERR_INTERNAL;
}

te_err_t te_conf_set(te_conf_t *c, const char *key, const char *value, char *errstr,
                     size_t errstr_size) {
    if (!c || !key || !*key)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "NULL or empty key");
    if (strncmp(key, "te.", 3) == 0) {
        const te_key_t *k = te_key_find(key);
        if (!k)
            return te__seterr(errstr, errstr_size, TE_ERR_UNKNOWN_KEY,
                              "unknown configuration key '%s' (not one of the te.* keys)", key);
        if (value) {
            te_err_t e = check_te_value(k, value, errstr, errstr_size, c->scratch);
            if (e)
                return e;
        }
        te_err_t e = kv_put(c, key, value);
        return e ? te__seterr(errstr, errstr_size, e, "out of memory") : TE_OK;
    }
    if (value) {
        char e[512] = "";
        rd_kafka_conf_res_t r = rd_kafka_conf_set(c->scratch, key, value, e, sizeof e);
        if (r == RD_KAFKA_CONF_UNKNOWN)
            return te__seterr(errstr, errstr_size, TE_ERR_UNKNOWN_KEY,
                              "unknown configuration key '%s' (neither a librdkafka property "
                              "nor a te.* key)",
                              key);
        if (r != RD_KAFKA_CONF_OK) {
            if (te_conf_is_sensitive(key))
                return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG,
                                  "invalid value for %s (value not shown)", key);
            return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "%s", e);
        }
    }
    te_err_t err = kv_put(c, key, value);
    return err ? te__seterr(errstr, errstr_size, err, "out of memory") : TE_OK;
}

te_err_t te_conf_get(const te_conf_t *c, const char *key, char *buf, size_t *size) {
    if (!c || !key || !size)
        return TE_ERR_INVALID_ARG;
    const char *v = te__conf_value(c, key);
    if (!v) {
        const te_key_t *k = strncmp(key, "te.", 3) == 0 ? te_key_find(key) : NULL;
        if (strncmp(key, "te.", 3) == 0 && !k)
            return TE_ERR_UNKNOWN_KEY;
        if (!k)
            return TE_ERR_NOT_FOUND;
        v = k->def;
    }
    size_t need = strlen(v) + 1, have = *size;
    *size = need;
    if (!buf)
        return TE_OK;
    if (have < need)
        return TE_ERR_BUFFER_TOO_SMALL;
    memcpy(buf, v, need);
    return TE_OK;
}

void te_conf_foreach(const te_conf_t *c,
                     void (*cb)(const char *key, const char *value, void *opaque), void *opaque) {
    if (!c || !cb)
        return;
    for (size_t i = 0; i < c->n; i++)
        cb(c->kv[i].key, te_conf_is_sensitive(c->kv[i].key) ? "[redacted]" : c->kv[i].value,
           opaque);
}

/* ---- settings ----------------------------------------------------------------- */

static const char *te_value(const te_conf_t *c, const char *key) {
    const char *v = te__conf_value(c, key);
    return v ? v : te_key_find(key)->def;
}

static long long te_int(const te_conf_t *c, const char *key) {
    long long x = 0;
    (void)parse_ll(te_value(c, key), &x);
    return x;
}

static int te_bool(const te_conf_t *c, const char *key) {
    int b = 0;
    (void)parse_bool(te_value(c, key), &b);
    return b;
}

te_err_t te__conf_settings(const te_conf_t *c, te_settings_t *s) {
    memset(s, 0, sizeof *s);
    s->mode = enum_index("structured|binary", te_value(c, "te.content.mode")) == 1
                  ? TE_KAFKA_BINARY
                  : TE_KAFKA_STRUCTURED;
    s->validate = te_bool(c, "te.validate");
    s->send_timeout_ms = (int)te_int(c, "te.send.timeout.ms");
    s->flush_timeout_ms = (int)te_int(c, "te.flush.timeout.ms");
    s->allow_unsafe = te_bool(c, "te.allow.unsafe.producer");
    s->max_attempts = (int)te_int(c, "te.max.attempts");
    s->backoff_ms = te_int(c, "te.retry.backoff.ms");
    s->backoff_max_ms = te_int(c, "te.retry.backoff.max.ms");
    if (s->backoff_max_ms < s->backoff_ms)
        s->backoff_max_ms = s->backoff_ms;
    s->invalid_to_handler = enum_index("dlq|handler", te_value(c, "te.invalid.events")) == 1;
    s->replication_factor = (int)te_int(c, "te.replication.factor");
    s->log_level = (int)te_int(c, "te.log.level");
    s->dlq_topic = strdup(te_value(c, "te.dlq.topic"));
    s->dlq_source = strdup(te_value(c, "te.dlq.source"));
    if (!s->dlq_topic || !s->dlq_source) {
        te__settings_free(s);
        return TE_ERR_NOMEM;
    }
    return TE_OK;
}

void te__settings_free(te_settings_t *s) {
    free(s->dlq_topic);
    free(s->dlq_source);
    s->dlq_topic = s->dlq_source = NULL;
}

void te__conf_klog(const te_conf_t *c, te_klog_t *out, const char *name) {
    memset(out, 0, sizeof *out);
    out->cb = c->log_cb;
    out->opaque = c->log_opaque;
    out->level = (int)te_int(c, "te.log.level");
    snprintf(out->name, sizeof out->name, "%s", name);
}

/* ---- logging ------------------------------------------------------------------- */

static void vlog(const te_klog_t *l, int level, const char *facility, const char *fmt,
                 va_list ap) {
    if (l && level > l->level)
        return;
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (l && l->cb) {
        l->cb(l->opaque, level, facility, msg);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    fprintf(stderr, "%%%d|%lld.%03ld|%s|te-%s| %s\n", level, (long long)ts.tv_sec,
            ts.tv_nsec / 1000000, facility, l ? l->name : "kafka", msg);
}

void te__klog(const te_klog_t *l, int level, const char *facility, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog(l, level, facility, fmt, ap);
    va_end(ap);
}

void te__rd_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    const te_klog_t *l = rk ? rd_kafka_opaque(rk) : NULL;
    te__klog(l, level, fac, "%s", buf);
}

/* ---- errors and time ---------------------------------------------------------- */

te_err_t te__rd_err(rd_kafka_resp_err_t err) {
    switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return TE_OK;
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
        return TE_ERR_TIMEOUT;
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
        return TE_ERR_QUEUE_FULL;
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
    case RD_KAFKA_RESP_ERR__DESTROY:
        return TE_ERR_CLOSED;
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        return TE_ERR_INVALID_ARG;
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        return TE_ERR_NOT_FOUND;
    default:
        return TE_ERR_KAFKA;
    }
}

int64_t te__mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- building a librdkafka configuration for a role ---------------------------- */

static int rd_set(rd_kafka_conf_t *rc, const char *key, const char *value, char *errstr,
                  size_t errstr_size) {
    char e[512] = "";
    if (rd_kafka_conf_set(rc, key, value, e, sizeof e) == RD_KAFKA_CONF_OK)
        return 0;
    if (te_conf_is_sensitive(key))
        te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "invalid value for %s", key);
    else
        te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "%s", e);
    return -1;
}

static int rd_get_is(rd_kafka_conf_t *rc, const char *key, const char *want) {
    char v[64];
    size_t n = sizeof v;
    if (rd_kafka_conf_get(rc, key, v, &n) != RD_KAFKA_CONF_OK)
        return 0;
    return strcasecmp(v, want) == 0;
}

/* Producer defaults.  linger.ms 0: measured with bench_kafka (docs/kafka.md):
 * at 1000 msg/s the delivery latency is about linger + a round trip (p99
 * 1.2 ms at 0, 4.5 ms at 1 over 100 s), and under load batches form anyway
 * while requests are in flight (no measurable throughput loss). */
static const char *const producer_defaults[][2] = {
    {"enable.idempotence", "true"},
    {"acks", "all"},
    {"linger.ms", "0"},
    {"partitioner", "murmur2_random"},
    {"client.id", "todoevents"},
};

static const char *const consumer_defaults[][2] = {
    {"enable.auto.commit", "true"},
    {"enable.auto.offset.store", "false"},
    {"auto.commit.interval.ms", "1000"},
    {"auto.offset.reset", "earliest"},
    {"partition.assignment.strategy", "cooperative-sticky"},
    {"enable.partition.eof", "false"},
    /* a paused partition (retry back-off, dead-letter acknowledgement) is
     * fetched again at most this long after it is resumed */
    {"fetch.wait.max.ms", "100"},
    {"client.id", "todoevents"},
};

rd_kafka_conf_t *te__conf_build(const te_conf_t *c, te_role_t role, void *opaque, char *errstr,
                                size_t errstr_size) {
    if (!c) {
        te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "NULL configuration");
        return NULL;
    }
    if (!te__conf_value(c, "bootstrap.servers") && !te__conf_value(c, "metadata.broker.list")) {
        te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG,
                   "bootstrap.servers is not set (e.g. from TE_KAFKA_BROKERS)");
        return NULL;
    }
    rd_kafka_conf_t *rc = rd_kafka_conf_new();
    if (!rc) {
        te__seterr(errstr, errstr_size, TE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (role == TE_ROLE_PRODUCER) {
        for (size_t i = 0; i < sizeof producer_defaults / sizeof producer_defaults[0]; i++)
            if (rd_set(rc, producer_defaults[i][0], producer_defaults[i][1], errstr, errstr_size))
                goto fail;
    } else if (role == TE_ROLE_CONSUMER) {
        for (size_t i = 0; i < sizeof consumer_defaults / sizeof consumer_defaults[0]; i++)
            if (rd_set(rc, consumer_defaults[i][0], consumer_defaults[i][1], errstr, errstr_size))
                goto fail;
    } else {
        if (rd_set(rc, "client.id", "todoevents-admin", errstr, errstr_size))
            goto fail;
    }
    for (size_t i = 0; i < c->n; i++) {
        const char *key = c->kv[i].key, *value = c->kv[i].value;
        if (strcmp(key, "te.queue.max.messages") == 0) {
            if (role == TE_ROLE_PRODUCER &&
                rd_set(rc, "queue.buffering.max.messages", value, errstr, errstr_size))
                goto fail;
            continue;
        }
        if (strncmp(key, "te.", 3) == 0)
            continue;
        char sc = prop_scope(key);
        if ((sc == 'C' && role != TE_ROLE_CONSUMER) || (sc == 'P' && role != TE_ROLE_PRODUCER))
            continue;
        if (rd_set(rc, key, value, errstr, errstr_size))
            goto fail;
    }
    if (role == TE_ROLE_PRODUCER) {
        int b = 0;
        (void)parse_bool(te_value(c, "te.allow.unsafe.producer"), &b);
        if (!rd_get_is(rc, "enable.idempotence", "true") && !b) {
            te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG,
                       "enable.idempotence=false is refused: it gives up the no-duplicate, "
                       "in-order delivery the outbox relay relies on (set "
                       "te.allow.unsafe.producer=true to allow it)");
            goto fail;
        }
    } else if (role == TE_ROLE_CONSUMER) {
        const char *g = te__conf_value(c, "group.id");
        if (!g || !*g) {
            te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG,
                       "group.id is required for a consumer");
            goto fail;
        }
        if (!rd_get_is(rc, "enable.auto.commit", "true") ||
            !rd_get_is(rc, "enable.auto.offset.store", "false")) {
            te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG,
                       "enable.auto.commit and enable.auto.offset.store are fixed by the "
                       "consumer's commit policy (offsets are stored only after the handler "
                       "succeeded or the record was dead-lettered); do not set them");
            goto fail;
        }
    }
    rd_kafka_conf_set_opaque(rc, opaque);
    rd_kafka_conf_set_log_cb(rc, te__rd_log_cb);
    return rc;
fail:
    rd_kafka_conf_destroy(rc);
    return NULL;
}
