/* The Kafka layer against the real broker started by scripts/services
 * (TE_KAFKA_BROKERS): configuration errors, structured and binary round
 * trips, per-user order over 10 000 records, retry then dead-letter,
 * poison records, redelivery after a kill before commit, cooperative
 * rebalance without loss or duplicates, the bounded queue, fatal producer
 * errors and topic provisioning.  Every test uses its own random topics
 * and groups (deleted afterwards), so tests are independent and the file
 * can be re-run against the same broker. */
#include <check.h>
#include <json-c/json.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <todoevents/cloudevent.h>
#include <todoevents/datetime.h>
#include <todoevents/event_catalog.h>
#include <todoevents/kafka.h>
#include <unistd.h>

#include "kafka_internal.h"
#include "it_main.h"

/* ---- helpers -------------------------------------------------------------- */

static const char *brokers(void) {
    const char *b = getenv("TE_KAFKA_BROKERS");
    ck_assert_msg(b && *b, "TE_KAFKA_BROKERS is not set: run scripts/services start and "
                           "eval \"$(scripts/services env)\"");
    return b;
}

static void set(te_conf_t *c, const char *k, const char *v) {
    char e[TE_ERRSTR_SIZE] = "";
    te_err_t err = te_conf_set(c, k, v, e, sizeof e);
    ck_assert_msg(err == TE_OK, "te_conf_set(%s): %s", k, e);
}

static te_conf_t *conf_new(void) {
    te_conf_t *c = te_conf_new();
    ck_assert_ptr_nonnull(c);
    set(c, "bootstrap.servers", brokers());
    set(c, "te.log.level", "4");
    return c;
}

static char *unique(const char *what) {
    static atomic_int seq;
    char buf[128];
    unsigned r = (unsigned)rand() ^ (unsigned)time(NULL) ^ (unsigned)getpid() << 8;
    snprintf(buf, sizeof buf, "te-it-%s-%d-%08x-%d", what, (int)getpid(), r,
             atomic_fetch_add(&seq, 1));
    return strdup(buf);
}

/* topics created by the current test, deleted in the teardown */
static char *created[64];
static int ncreated;

static char *make_topic(const char *what, int partitions) {
    char *name = unique(what);
    te_conf_t *c = conf_new();
    te_topic_info_t spec = {name, partitions, 3600000, "test"};
    te_topics_summary_t sum;
    char e[TE_ERRSTR_SIZE] = "";
    te_err_t err = te_topics_ensure(c, &spec, 1, 30000, NULL, NULL, &sum, e, sizeof e);
    ck_assert_msg(err == TE_OK, "create %s: %s", name, e);
    ck_assert_uint_eq(sum.created, 1);
    te_conf_destroy(c);
    if (ncreated < 64)
        created[ncreated++] = name;
    return name;
}

static void setup(void) { ncreated = 0; }

static void teardown(void) {
    if (ncreated == 0)
        return;
    te_conf_t *c = conf_new();
    char e[TE_ERRSTR_SIZE] = "";
    if (te_topics_delete(c, (const char *const *)created, (size_t)ncreated, 30000, e, sizeof e))
        fprintf(stderr, "warning: cannot delete test topics: %s\n", e);
    te_conf_destroy(c);
    for (int i = 0; i < ncreated; i++)
        free(created[i]);
    ncreated = 0;
}

/* A test event of a type outside the catalogue: data {user, seq, pad}. */
static te_event_t *test_event(const char *user, int seq, size_t pad) {
    te_event_t *ev = NULL;
    char e[TE_ERRSTR_SIZE] = "";
    ck_assert_int_eq(te_event_create(&ev, "org.example.kafka.test", "/tests/kafka", e, sizeof e),
                     TE_OK);
    ck_assert_int_eq(te_event_set_partitionkey(ev, user, e, sizeof e), TE_OK);
    ck_assert_int_eq(te_event_set_subject(ev, "task/42", e, sizeof e), TE_OK);
    ck_assert_int_eq(te_event_set_string(ev, "myext", "ext value", e, sizeof e), TE_OK);
    struct json_object *d = json_object_new_object();
    json_object_object_add(d, "user", json_object_new_string(user));
    json_object_object_add(d, "seq", json_object_new_int(seq));
    if (pad) {
        char *p = malloc(pad + 1);
        memset(p, 'x', pad);
        p[pad] = '\0';
        json_object_object_add(d, "pad", json_object_new_string(p));
        free(p);
    }
    ck_assert_int_eq(te_event_set_data_object(ev, d), TE_OK);
    ck_assert_int_eq(te_event_set_datacontenttype(ev, "application/json", e, sizeof e), TE_OK);
    return ev;
}

/* A valid catalogue event: com.todo.task.created. */
static te_event_t *task_created(const char *user) {
    char json[2048];
    snprintf(json, sizeof json,
             "{\"specversion\":\"1.0\",\"id\":\"6f1c1f0e-2a7e-4d43-9c1e-1a2b3c4d5e6f\","
             "\"source\":\"/todo-api\",\"type\":\"com.todo.task.created\","
             "\"time\":\"2025-01-02T03:04:05.678Z\",\"datacontenttype\":\"application/json\","
             "\"partitionkey\":\"%s\",\"data\":{\"task_id\":"
             "\"0b0e8f5c-1f1d-4c1a-8f7e-2d3c4b5a6978\",\"user_id\":\"%s\",\"task\":{\"id\":"
             "\"0b0e8f5c-1f1d-4c1a-8f7e-2d3c4b5a6978\",\"user_id\":\"%s\",\"title\":\"Buy "
             "milk\",\"priority\":\"high\",\"status\":\"pending\",\"tags\":[\"home\"],"
             "\"created_at\":\"2025-01-02T03:04:05.678Z\",\"updated_at\":"
             "\"2025-01-02T03:04:05.678Z\"}}}",
             user, user, user);
    te_event_t *ev = NULL;
    char e[TE_ERRSTR_SIZE] = "";
    te_err_t err = te_catalog_event_from_json(json, strlen(json), &ev, NULL, e, sizeof e);
    ck_assert_msg(err == TE_OK, "task event: %s", e);
    return ev;
}

/* ---- delivery collection ---------------------------------------------------- */

typedef struct dl_s {
    pthread_mutex_t mu;
    size_t n, ok;
    int32_t *partition; /* indexed by msg_opaque - 1 when set */
    int64_t *offset;
    size_t cap;
    te_err_t last_err;
    char last_errstr[512];
    int64_t max_latency_us;
    int wrong_thread;
    pthread_t sender;
} dl_t;

static void dl_init(dl_t *d, size_t cap) {
    memset(d, 0, sizeof *d);
    pthread_mutex_init(&d->mu, NULL);
    d->cap = cap;
    d->partition = calloc(cap ? cap : 1, sizeof *d->partition);
    d->offset = calloc(cap ? cap : 1, sizeof *d->offset);
    d->sender = pthread_self();
}

static void dl_free(dl_t *d) {
    free(d->partition);
    free(d->offset);
    pthread_mutex_destroy(&d->mu);
}

static void on_delivery(const te_delivery_t *r, void *opaque) {
    dl_t *d = opaque;
    pthread_mutex_lock(&d->mu);
    d->n++;
    if (pthread_equal(pthread_self(), d->sender))
        d->wrong_thread = 1;
    if (r->err == TE_OK) {
        d->ok++;
        size_t i = (size_t)(uintptr_t)r->msg_opaque;
        if (i >= 1 && i <= d->cap) {
            d->partition[i - 1] = r->partition;
            d->offset[i - 1] = r->offset;
        }
        if (r->latency_us > d->max_latency_us)
            d->max_latency_us = r->latency_us;
    } else {
        d->last_err = r->err;
        snprintf(d->last_errstr, sizeof d->last_errstr, "%s", r->errstr);
    }
    pthread_mutex_unlock(&d->mu);
}

/* ---- consumption ------------------------------------------------------------- */

typedef struct got_s {
    te_event_t *ev;
    char key[64];
    int32_t partition;
    int64_t offset;
    te_kafka_mode_t mode;
    int attempt;
} got_t;

typedef struct sink_s {
    te_consumer_t *c;
    got_t *got;
    size_t n, cap;
    size_t stop_at; /* stop after this many OK records (0 = never) */
    /* retry tests: records whose data.seq == fail_seq get RETRY/FAIL */
    int fail_seq;
    te_handler_result_t fail_with;
    int fail_calls;
    int fail_attempts[8];
    int seen_after_fail; /* an OK record was handled while fail_seq was unsettled */
    int fail_settled;
    int die_at; /* > 0: _exit(42) when the die_at-th record arrives (forked child) */
} sink_t;

static int event_seq(const te_event_t *ev) {
    const struct json_object *d = te_event_data_object(ev);
    struct json_object *s = NULL;
    if (!d || !json_object_object_get_ex((struct json_object *)d, "seq", &s))
        return -1;
    return json_object_get_int(s);
}

static te_handler_result_t sink_handler(const te_event_t *ev, const te_record_t *rec,
                                        void *opaque, char *errstr, size_t errstr_size) {
    sink_t *s = opaque;
    if (s->die_at > 0 && (int)s->n + 1 == s->die_at)
        _exit(42);
    if (ev && s->fail_with != TE_HANDLER_OK && event_seq(ev) == s->fail_seq) {
        if (s->fail_calls < 8)
            s->fail_attempts[s->fail_calls] = rec->attempt;
        s->fail_calls++;
        snprintf(errstr, errstr_size, "downstream unavailable (attempt %d)", rec->attempt);
        if (s->fail_with == TE_HANDLER_FAIL || rec->attempt >= 3)
            s->fail_settled = 1;
        return s->fail_with;
    }
    if (s->fail_with != TE_HANDLER_OK && !s->fail_settled && s->fail_calls > 0)
        s->seen_after_fail = 1;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->got = realloc(s->got, s->cap * sizeof *s->got);
    }
    got_t *g = &s->got[s->n++];
    memset(g, 0, sizeof *g);
    g->ev = ev ? te_event_dup(ev) : NULL;
    snprintf(g->key, sizeof g->key, "%s", rec->key ? rec->key : "");
    g->partition = rec->partition;
    g->offset = rec->offset;
    g->mode = rec->mode;
    g->attempt = rec->attempt;
    if (s->stop_at && s->n >= s->stop_at)
        te_consumer_stop(s->c);
    return TE_HANDLER_OK;
}

static void sink_free(sink_t *s) {
    for (size_t i = 0; i < s->n; i++)
        te_event_destroy(s->got[i].ev);
    free(s->got);
}

typedef struct watch_s {
    te_consumer_t *c;
    int timeout_ms;
    atomic_int done;
    /* optional: stop once the stats reach these */
    uint64_t want_ok, want_dead, want_poison;
} watch_t;

static void *watchdog(void *arg) {
    watch_t *w = arg;
    int64_t deadline = te__mono_us() + (int64_t)w->timeout_ms * 1000;
    while (!atomic_load(&w->done) && te__mono_us() < deadline) {
        if (w->want_ok || w->want_dead || w->want_poison) {
            te_consumer_stats_t st;
            te_consumer_stats(w->c, &st);
            if (st.handled_ok >= w->want_ok && st.dead_lettered >= w->want_dead &&
                st.poison >= w->want_poison)
                break;
        }
        usleep(20000);
    }
    te_consumer_stop(w->c);
    return NULL;
}

/* Runs a consumer until the sink says stop, the stats reach w's targets,
 * or timeout_ms. */
static void consume(te_conf_t *conf, const char *topic, sink_t *s, watch_t *w, int timeout_ms,
                    te_consumer_stats_t *stats) {
    char e[TE_ERRSTR_SIZE] = "";
    const char *topics[] = {topic};
    s->c = te_consumer_new(conf, topics, 1, sink_handler, s, e, sizeof e);
    ck_assert_msg(s->c != NULL, "consumer: %s", e);
    watch_t local = {0};
    if (!w)
        w = &local;
    w->c = s->c;
    w->timeout_ms = timeout_ms;
    atomic_init(&w->done, 0);
    pthread_t t;
    pthread_create(&t, NULL, watchdog, w);
    te_err_t err = te_consumer_run(s->c, e, sizeof e);
    atomic_store(&w->done, 1);
    pthread_join(t, NULL);
    ck_assert_msg(err == TE_OK, "run: %s", e);
    ck_assert_int_eq(te_consumer_run(s->c, e, sizeof e), TE_ERR_CLOSED);
    if (stats)
        te_consumer_stats(s->c, stats);
    te_consumer_destroy(s->c);
    s->c = NULL;
}

static te_conf_t *consumer_conf(const char *dlq) {
    te_conf_t *c = conf_new();
    char *g = unique("group");
    set(c, "group.id", g);
    free(g);
    set(c, "te.dlq.topic", dlq ? dlq : "");
    return c;
}

static void produce_events(te_conf_t *conf, const char *topic, te_event_t **evs, size_t n,
                           const te_kafka_mode_t *modes) {
    dl_t d;
    dl_init(&d, n);
    char e[TE_ERRSTR_SIZE] = "";
    te_producer_t *p = te_producer_new(conf, on_delivery, &d, e, sizeof e);
    ck_assert_msg(p != NULL, "producer: %s", e);
    for (size_t i = 0; i < n; i++) {
        te_err_t err = modes ? te_producer_send_mode(p, topic, evs[i], modes[i], NULL,
                                                     (void *)(uintptr_t)(i + 1), e, sizeof e)
                             : te_producer_send(p, topic, evs[i], NULL,
                                                (void *)(uintptr_t)(i + 1), e, sizeof e);
        ck_assert_msg(err == TE_OK, "send %zu: %s", i, e);
    }
    ck_assert_int_eq(te_producer_flush(p, 30000), TE_OK);
    ck_assert_msg(d.ok == n, "delivered %zu of %zu: %s", d.ok, n, d.last_errstr);
    ck_assert_int_eq(d.wrong_thread, 0);
    te_producer_destroy(p);
    dl_free(&d);
}

/* Reads the DLQ topic: every record, decoded (structured) */
static void read_dlq(const char *dlq, size_t n, sink_t *s) {
    te_conf_t *c = consumer_conf(NULL);
    memset(s, 0, sizeof *s);
    s->stop_at = n;
    consume(c, dlq, s, NULL, 30000, NULL);
    te_conf_destroy(c);
    ck_assert_uint_eq(s->n, n);
}

static struct json_object *dget(const te_event_t *ev, const char *member) {
    const struct json_object *d = te_event_data_object(ev);
    struct json_object *v = NULL;
    ck_assert_ptr_nonnull(d);
    ck_assert_msg(json_object_object_get_ex((struct json_object *)d, member, &v),
                  "DLQ data has no %s", member);
    return v;
}

/* ---- configuration --------------------------------------------------------------- */

START_TEST(conf_errors) {
    te_conf_t *c = te_conf_new();
    char e[TE_ERRSTR_SIZE] = "";
    ck_assert_int_eq(te_conf_set(c, "no.such.property", "1", e, sizeof e), TE_ERR_UNKNOWN_KEY);
    ck_assert_ptr_nonnull(strstr(e, "no.such.property"));
    ck_assert_int_eq(te_conf_set(c, "te.no.such.key", "1", e, sizeof e), TE_ERR_UNKNOWN_KEY);
    ck_assert_ptr_nonnull(strstr(e, "te.no.such.key"));
    ck_assert_int_eq(te_conf_set(c, "te.max.attempts", "0", e, sizeof e), TE_ERR_INVALID_ARG);
    ck_assert_int_eq(te_conf_set(c, "te.content.mode", "xml", e, sizeof e), TE_ERR_INVALID_ARG);
    ck_assert_int_eq(te_conf_set(c, "linger.ms", "soon", e, sizeof e), TE_ERR_INVALID_ARG);
    ck_assert_int_eq(te_conf_set(c, "te.dlq.source", "", e, sizeof e), TE_ERR_INVALID_ARG);
    /* librdkafka properties and te.* keys; secrets are never shown */
    ck_assert_int_eq(te_conf_set(c, "security.protocol", "SASL_SSL", e, sizeof e), TE_OK);
    ck_assert_int_eq(te_conf_set(c, "sasl.mechanisms", "SCRAM-SHA-256", e, sizeof e), TE_OK);
    ck_assert_int_eq(te_conf_set(c, "sasl.username", "todo", e, sizeof e), TE_OK);
    ck_assert_int_eq(te_conf_set(c, "sasl.password", "s3cr3t-pw", e, sizeof e), TE_OK);
    ck_assert_int_eq(te_conf_is_sensitive("sasl.password"), 1);
    ck_assert_int_eq(te_conf_is_sensitive("ssl.key.password"), 1);
    ck_assert_int_eq(te_conf_is_sensitive("sasl.username"), 0);
    char buf[64];
    size_t n = sizeof buf;
    ck_assert_int_eq(te_conf_get(c, "te.max.attempts", buf, &n), TE_OK);
    ck_assert_str_eq(buf, "3");
    n = sizeof buf;
    ck_assert_int_eq(te_conf_get(c, "te.dlq.topic", buf, &n), TE_OK);
    ck_assert_str_eq(buf, "notification.dlq");
    n = sizeof buf;
    ck_assert_int_eq(te_conf_get(c, "linger.ms", buf, &n), TE_ERR_NOT_FOUND);
    n = 2;
    ck_assert_int_eq(te_conf_get(c, "sasl.username", buf, &n), TE_ERR_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(n, 5);
    te_conf_t *d = te_conf_dup(c);
    ck_assert_ptr_nonnull(d);
    n = sizeof buf;
    ck_assert_int_eq(te_conf_get(d, "sasl.password", buf, &n), TE_OK);
    ck_assert_str_eq(buf, "s3cr3t-pw");
    te_conf_destroy(d);
    te_conf_destroy(c);

    /* no bootstrap.servers */
    c = te_conf_new();
    ck_assert_ptr_null(te_producer_new(c, NULL, NULL, e, sizeof e));
    ck_assert_ptr_nonnull(strstr(e, "bootstrap.servers"));
    te_conf_destroy(c);

    /* idempotence may not be weakened silently */
    c = conf_new();
    set(c, "enable.idempotence", "false");
    ck_assert_ptr_null(te_producer_new(c, NULL, NULL, e, sizeof e));
    ck_assert_ptr_nonnull(strstr(e, "enable.idempotence"));
    set(c, "te.allow.unsafe.producer", "true");
    te_producer_t *p = te_producer_new(c, NULL, NULL, e, sizeof e);
    ck_assert_msg(p != NULL, "%s", e);
    te_producer_destroy(p);
    te_conf_destroy(c);

    /* acks=1 with idempotence: librdkafka refuses */
    c = conf_new();
    set(c, "acks", "1");
    ck_assert_ptr_null(te_producer_new(c, NULL, NULL, e, sizeof e));
    te_conf_destroy(c);

    /* consumer: group.id required, commit policy fixed, topics must exist */
    const char *topics[] = {"te-it-does-not-exist-at-all"};
    c = conf_new();
    set(c, "te.dlq.topic", "");
    ck_assert_ptr_null(te_consumer_new(c, topics, 1, sink_handler, NULL, e, sizeof e));
    ck_assert_ptr_nonnull(strstr(e, "group.id"));
    set(c, "group.id", "te-it-g");
    set(c, "enable.auto.offset.store", "true");
    ck_assert_ptr_null(te_consumer_new(c, topics, 1, sink_handler, NULL, e, sizeof e));
    ck_assert_ptr_nonnull(strstr(e, "enable.auto.offset.store"));
    set(c, "enable.auto.offset.store", NULL);
    ck_assert_ptr_null(te_consumer_new(c, topics, 1, sink_handler, NULL, e, sizeof e));
    ck_assert_ptr_nonnull(strstr(e, "te-it-does-not-exist-at-all"));
    /* a missing dead-letter topic is caught up front too */
    const char *real[] = {make_topic("conf", 1)};
    set(c, "te.dlq.topic", "te-it-no-such-dlq");
    ck_assert_ptr_null(te_consumer_new(c, real, 1, sink_handler, NULL, e, sizeof e));
    ck_assert_ptr_nonnull(strstr(e, "te-it-no-such-dlq"));
    te_conf_destroy(c);
}
END_TEST

/* ---- round trips -------------------------------------------------------------------- */

static void round_trip(te_kafka_mode_t mode) {
    char *topic = make_topic("rt", 3);
    te_conf_t *c = conf_new();
    set(c, "te.content.mode", mode == TE_KAFKA_BINARY ? "binary" : "structured");
    te_event_t *evs[3];
    evs[0] = task_created("user-rt-1");
    evs[1] = test_event("user-rt-2", 7, 100);
    /* binary data (data_base64 in structured mode, raw bytes in binary mode) */
    char e[TE_ERRSTR_SIZE] = "";
    te_event_create(&evs[2], "org.example.kafka.blob", "/tests/kafka", e, sizeof e);
    te_event_set_partitionkey(evs[2], "user-rt-3", e, sizeof e);
    te_event_set_datacontenttype(evs[2], "application/octet-stream", e, sizeof e);
    const unsigned char bytes[] = {0, 1, 2, 0xff, 0xfe, 'a'};
    te_event_set_data_binary(evs[2], bytes, sizeof bytes);

    dl_t d;
    dl_init(&d, 3);
    te_producer_t *p = te_producer_new(c, on_delivery, &d, e, sizeof e);
    ck_assert_msg(p != NULL, "%s", e);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(te_producer_send(p, topic, evs[i], NULL, (void *)(uintptr_t)(i + 1), e,
                                          sizeof e),
                         TE_OK);
    ck_assert_int_eq(te_producer_flush(p, 30000), TE_OK);
    ck_assert_uint_eq(te_producer_outstanding(p), 0);
    ck_assert_msg(d.ok == 3, "%s", d.last_errstr);
    ck_assert_int_eq(d.wrong_thread, 0);
    ck_assert_int_ge(d.max_latency_us, 0);
    ck_assert_int_eq(te_producer_fatal_error(p, e, sizeof e), TE_OK);
    te_producer_destroy(p);

    te_conf_t *cc = consumer_conf(NULL);
    sink_t s = {0};
    s.stop_at = 3;
    consume(cc, topic, &s, NULL, 30000, NULL);
    ck_assert_uint_eq(s.n, 3);
    for (size_t i = 0; i < s.n; i++) {
        const char *id = te_event_id(s.got[i].ev);
        int k = -1;
        for (int j = 0; j < 3; j++)
            if (strcmp(te_event_id(evs[j]), id) == 0)
                k = j;
        ck_assert_int_ge(k, 0);
        ck_assert_msg(te_event_equal(s.got[i].ev, evs[k]), "event %d differs after the trip", k);
        ck_assert_int_eq(s.got[i].mode, mode);
        ck_assert_str_eq(s.got[i].key, te_event_partitionkey(evs[k]));
        ck_assert_int_eq(s.got[i].partition, d.partition[k]);
        ck_assert_int_eq(s.got[i].offset, d.offset[k]);
        ck_assert_int_eq(s.got[i].attempt, 1);
    }
    sink_free(&s);
    dl_free(&d);
    for (int i = 0; i < 3; i++)
        te_event_destroy(evs[i]);
    te_conf_destroy(cc);
    te_conf_destroy(c);
}

START_TEST(round_trip_structured) { round_trip(TE_KAFKA_STRUCTURED); }
END_TEST

START_TEST(round_trip_binary) { round_trip(TE_KAFKA_BINARY); }
END_TEST

/* ---- per-user order ---------------------------------------------------------------------- */

#define USERS 20
#define PER_USER 500

START_TEST(per_user_order_10000) {
    char *topic = make_topic("order", 6);
    te_conf_t *c = conf_new();
    const size_t n = USERS * PER_USER;
    te_event_t **evs = calloc(n, sizeof *evs);
    te_kafka_mode_t *modes = calloc(n, sizeof *modes);
    char user[32];
    for (size_t i = 0; i < n; i++) {
        snprintf(user, sizeof user, "user-%02zu", i % USERS);
        evs[i] = test_event(user, (int)(i / USERS), 0);
        modes[i] = i % 3 == 0 ? TE_KAFKA_BINARY : TE_KAFKA_STRUCTURED; /* mixed modes */
    }
    produce_events(c, topic, evs, n, modes);
    for (size_t i = 0; i < n; i++)
        te_event_destroy(evs[i]);
    free(evs);
    free(modes);

    te_conf_t *cc = consumer_conf(NULL);
    sink_t s = {0};
    s.stop_at = n;
    consume(cc, topic, &s, NULL, 60000, NULL);
    ck_assert_uint_eq(s.n, n);
    int next[USERS], part[USERS];
    int partitions_used[6] = {0};
    for (int u = 0; u < USERS; u++)
        next[u] = 0, part[u] = -1;
    for (size_t i = 0; i < s.n; i++) {
        int u = atoi(s.got[i].key + 5);
        ck_assert_int_lt(u, USERS);
        if (part[u] < 0)
            part[u] = s.got[i].partition;
        ck_assert_msg(part[u] == s.got[i].partition, "user %d on partitions %d and %d", u, part[u],
                      s.got[i].partition);
        int seq = event_seq(s.got[i].ev);
        ck_assert_msg(seq == next[u], "user %d: got seq %d, expected %d", u, seq, next[u]);
        next[u]++;
        partitions_used[s.got[i].partition] = 1;
    }
    int used = 0;
    for (int u = 0; u < USERS; u++)
        ck_assert_int_eq(next[u], PER_USER);
    for (int i = 0; i < 6; i++)
        used += partitions_used[i];
    ck_assert_int_ge(used, 3); /* 20 users spread over the partitions */
    sink_free(&s);
    te_conf_destroy(cc);
    te_conf_destroy(c);
}
END_TEST

/* ---- retry, then dead-letter ---------------------------------------------------------------- */

START_TEST(retry_then_dead_letter) {
    char *topic = make_topic("retry", 1);
    char *dlq = make_topic("retry-dlq", 1);
    te_conf_t *c = conf_new();
    te_event_t *evs[4];
    for (int i = 0; i < 4; i++)
        evs[i] = test_event("user-retry", i, 0);
    produce_events(c, topic, evs, 4, NULL);

    te_conf_t *cc = consumer_conf(dlq);
    set(cc, "te.retry.backoff.ms", "100");
    sink_t s = {0};
    s.fail_seq = 1; /* the second record keeps failing */
    s.fail_with = TE_HANDLER_RETRY;
    watch_t w = {0};
    w.want_ok = 3;
    w.want_dead = 1;
    te_consumer_stats_t st;
    int64_t t0 = te__mono_us();
    consume(cc, topic, &s, &w, 30000, &st);
    int64_t took_ms = (te__mono_us() - t0) / 1000;
    ck_assert_int_eq(s.fail_calls, 3);
    ck_assert_int_eq(s.fail_attempts[0], 1);
    ck_assert_int_eq(s.fail_attempts[1], 2);
    ck_assert_int_eq(s.fail_attempts[2], 3);
    ck_assert_int_ge(took_ms, 100 + 200); /* back-off 100 ms, then 200 ms */
    ck_assert_int_eq(s.seen_after_fail, 0); /* the partition waited for it */
    ck_assert_uint_eq(s.n, 3);
    ck_assert_int_eq(event_seq(s.got[0].ev), 0);
    ck_assert_int_eq(event_seq(s.got[1].ev), 2);
    ck_assert_int_eq(event_seq(s.got[2].ev), 3);
    ck_assert_uint_eq(st.dead_lettered, 1);
    ck_assert_uint_eq(st.retries, 2);
    ck_assert_uint_eq(st.handled_ok, 3);

    sink_t q;
    read_dlq(dlq, 1, &q);
    const te_event_t *r = q.got[0].ev;
    ck_assert_str_eq(te_event_type(r), TE_EVENT_NOTIFICATION_DLQ);
    ck_assert_str_eq(q.got[0].key, "user-retry");
    ck_assert_str_eq(te_event_partitionkey(r), "user-retry");
    ck_assert_int_eq(q.got[0].mode, TE_KAFKA_STRUCTURED);
    ck_assert_int_eq(te_catalog_validate_event(r, NULL), TE_OK);
    ck_assert_str_eq(json_object_get_string(dget(r, "original_topic")), topic);
    struct json_object *orig = dget(r, "original_event");
    ck_assert(json_object_is_type(orig, json_type_object));
    const char *otext = json_object_to_json_string_ext(orig, JSON_C_TO_STRING_PLAIN);
    te_event_t *back = NULL;
    char e[TE_ERRSTR_SIZE] = "";
    ck_assert_int_eq(te_event_from_json(otext, strlen(otext), &back, NULL, e, sizeof e), TE_OK);
    ck_assert_msg(te_event_equal(back, evs[1]), "original_event differs from what was sent");
    te_event_destroy(back);
    ck_assert_str_eq(json_object_get_string(dget(r, "error")), "downstream unavailable (attempt 3)");
    ck_assert_int_eq(json_object_get_int(dget(r, "attempt_count")), 3);
    te_time_t when = 0;
    ck_assert_int_eq(te_time_parse(json_object_get_string(dget(r, "last_attempt_at")), &when, NULL,
                                   e, sizeof e),
                     TE_OK);
    te_time_t now = te_time_now();
    ck_assert_int_le(when, now);
    ck_assert_int_ge(when, now - 60 * TE_USEC_PER_SEC);
    sink_free(&q);
    sink_free(&s);
    for (int i = 0; i < 4; i++)
        te_event_destroy(evs[i]);
    te_conf_destroy(cc);
    te_conf_destroy(c);
}
END_TEST

START_TEST(fail_dead_letters_at_once) {
    char *topic = make_topic("fail", 1);
    char *dlq = make_topic("fail-dlq", 1);
    te_conf_t *c = conf_new();
    te_event_t *evs[2];
    for (int i = 0; i < 2; i++)
        evs[i] = test_event("user-fail", i, 0);
    produce_events(c, topic, evs, 2, NULL);
    te_conf_t *cc = consumer_conf(dlq);
    sink_t s = {0};
    s.fail_seq = 0;
    s.fail_with = TE_HANDLER_FAIL;
    watch_t w = {0};
    w.want_ok = 1;
    w.want_dead = 1;
    consume(cc, topic, &s, &w, 30000, NULL);
    ck_assert_int_eq(s.fail_calls, 1);
    ck_assert_uint_eq(s.n, 1);
    sink_t q;
    read_dlq(dlq, 1, &q);
    ck_assert_int_eq(json_object_get_int(dget(q.got[0].ev, "attempt_count")), 1);
    ck_assert_str_eq(json_object_get_string(dget(q.got[0].ev, "error")),
                     "downstream unavailable (attempt 1)");
    sink_free(&q);
    sink_free(&s);
    for (int i = 0; i < 2; i++)
        te_event_destroy(evs[i]);
    te_conf_destroy(cc);
    te_conf_destroy(c);
}
END_TEST

START_TEST(dead_letter_of_a_large_event) {
    char *topic = make_topic("large", 1);
    char *dlq = make_topic("large-dlq", 1);
    te_conf_t *c = conf_new();
    te_event_t *ev = test_event("user-large", 0, 600 * 1024); /* over the 512 KiB cap */
    produce_events(c, topic, &ev, 1, NULL);
    te_conf_t *cc = consumer_conf(dlq);
    sink_t s = {0};
    s.fail_seq = 0;
    s.fail_with = TE_HANDLER_FAIL;
    watch_t w = {0};
    w.want_dead = 1;
    consume(cc, topic, &s, &w, 30000, NULL);
    sink_t q;
    read_dlq(dlq, 1, &q);
    struct json_object *orig = dget(q.got[0].ev, "original_event");
    ck_assert(json_object_is_type(orig, json_type_string));
    ck_assert_ptr_nonnull(strstr(json_object_get_string(orig), "omitted"));
    ck_assert_int_eq(json_object_get_int(dget(q.got[0].ev, "original_offset")), 0);
    sink_free(&q);
    sink_free(&s);
    te_event_destroy(ev);
    te_conf_destroy(cc);
    te_conf_destroy(c);
}
END_TEST

/* ---- poison records ------------------------------------------------------------------------------ */

START_TEST(poison_dead_lettered_at_once) {
    char *topic = make_topic("poison", 1);
    char *dlq = make_topic("poison-dlq", 1);
    te_conf_t *c = conf_new();
    set(c, "te.validate", "false"); /* let the producer send a catalogue-invalid event */
    dl_t d;
    dl_init(&d, 8);
    char e[TE_ERRSTR_SIZE] = "";
    te_producer_t *p = te_producer_new(c, on_delivery, &d, e, sizeof e);
    ck_assert_ptr_nonnull(p);
    /* 1: not a CloudEvent at all */
    const char *junk = "not json at all";
    ck_assert_int_eq(te_producer_send_raw(p, topic, "user-p", 6, junk, strlen(junk), NULL, NULL, e,
                                          sizeof e),
                     TE_OK);
    /* 2: structured mode, malformed JSON */
    te_headers_t *h = te_headers_new();
    te_headers_add(h, "content-type", TE_CE_JSON_CONTENT_TYPE, strlen(TE_CE_JSON_CONTENT_TYPE));
    ck_assert_int_eq(te_producer_send_raw(p, topic, "user-p", 6, "{\"specversion\":", 15, h, NULL,
                                          e, sizeof e),
                     TE_OK);
    te_headers_destroy(h);
    /* 3: a valid envelope that breaks the catalogue (task.created without data fields) */
    te_event_t *bad = NULL;
    te_event_create(&bad, TE_EVENT_TASK_CREATED, "/tests", e, sizeof e);
    te_event_set_data_json(bad, "{\"nope\":1}", 10, e, sizeof e);
    ck_assert_int_eq(te_producer_send(p, topic, bad, "user-p", NULL, e, sizeof e), TE_OK);
    /* 4: binary junk (not UTF-8 text) */
    ck_assert_int_eq(te_producer_send_raw(p, topic, "user-p", 6, "\xff\xfe\x00\x01", 4, NULL, NULL,
                                          e, sizeof e),
                     TE_OK);
    /* 5: a good one behind them on the same partition */
    te_event_t *good = test_event("user-p", 99, 0);
    ck_assert_int_eq(te_producer_send(p, topic, good, NULL, NULL, e, sizeof e), TE_OK);
    ck_assert_int_eq(te_producer_flush(p, 30000), TE_OK);
    ck_assert_uint_eq(d.ok, 5);
    te_producer_destroy(p);

    te_conf_t *cc = consumer_conf(dlq);
    sink_t s = {0};
    watch_t w = {0};
    w.want_ok = 1;
    w.want_dead = 4;
    te_consumer_stats_t st;
    consume(cc, topic, &s, &w, 30000, &st);
    ck_assert_uint_eq(s.n, 1);
    ck_assert_int_eq(event_seq(s.got[0].ev), 99);
    ck_assert_uint_eq(st.poison, 4);
    ck_assert_uint_eq(st.dead_lettered, 4);
    ck_assert_uint_eq(st.retries, 0);

    sink_t q;
    read_dlq(dlq, 4, &q);
    ck_assert_str_eq(json_object_get_string(dget(q.got[0].ev, "original_event")), junk);
    ck_assert_ptr_nonnull(strstr(json_object_get_string(dget(q.got[0].ev, "error")),
                                 "not a CloudEvent"));
    ck_assert_str_eq(json_object_get_string(dget(q.got[1].ev, "original_event")),
                     "{\"specversion\":");
    ck_assert(json_object_is_type(dget(q.got[2].ev, "original_event"), json_type_object));
    ck_assert_ptr_nonnull(strstr(json_object_get_string(dget(q.got[2].ev, "error")), "catalogue"));
    ck_assert_str_eq(json_object_get_string(dget(q.got[3].ev, "original_event")), "base64://4AAQ==");
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(json_object_get_int(dget(q.got[i].ev, "attempt_count")), 1);
        ck_assert_str_eq(q.got[i].key, "user-p");
        ck_assert_int_eq(json_object_get_int(dget(q.got[i].ev, "original_offset")), i);
    }
    sink_free(&q);
    sink_free(&s);
    te_event_destroy(bad);
    te_event_destroy(good);
    dl_free(&d);
    te_conf_destroy(cc);
    te_conf_destroy(c);
}
END_TEST

/* ---- redelivery: killed before commit vs committed ------------------------------------------------ */

START_TEST(killed_before_commit_redelivers) {
    char *topic = make_topic("kill", 1);
    te_conf_t *c = conf_new();
    te_event_t *evs[10];
    for (int i = 0; i < 10; i++)
        evs[i] = test_event("user-kill", i, 0);
    produce_events(c, topic, evs, 10, NULL); /* producer gone before the fork */
    for (int i = 0; i < 10; i++)
        te_event_destroy(evs[i]);
    char *group = unique("kill-group");

    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* the child handles 5 records OK (offsets stored, never committed:
         * the commit interval is a minute) and dies in the 6th handler call */
        te_conf_t *k = conf_new();
        set(k, "group.id", group);
        set(k, "te.dlq.topic", "");
        set(k, "auto.commit.interval.ms", "60000");
        set(k, "session.timeout.ms", "6000");
        set(k, "max.poll.interval.ms", "6000");
        set(k, "heartbeat.interval.ms", "500");
        sink_t s = {0};
        s.die_at = 6;
        const char *topics[] = {topic};
        char e[TE_ERRSTR_SIZE];
        s.c = te_consumer_new(k, topics, 1, sink_handler, &s, e, sizeof e);
        if (!s.c)
            _exit(3);
        te_consumer_run(s.c, e, sizeof e);
        _exit(4); /* never reached */
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 42,
                  "child did not die in the handler (status %d)", status);

    /* same group: every record again, from offset 0 */
    te_conf_t *cc = conf_new();
    set(cc, "group.id", group);
    set(cc, "te.dlq.topic", "");
    sink_t s = {0};
    s.stop_at = 10;
    consume(cc, topic, &s, NULL, 40000, NULL);
    ck_assert_uint_eq(s.n, 10);
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(s.got[i].offset, i);
        ck_assert_int_eq(event_seq(s.got[i].ev), i);
    }
    sink_free(&s);

    /* that run committed on close: a new consumer in the group gets only
     * what was produced afterwards */
    te_event_t *late = test_event("user-kill", 10, 0);
    produce_events(c, topic, &late, 1, NULL);
    te_event_destroy(late);
    sink_t s2 = {0};
    s2.stop_at = 1;
    consume(cc, topic, &s2, NULL, 30000, NULL);
    ck_assert_uint_eq(s2.n, 1);
    ck_assert_int_eq(s2.got[0].offset, 10);
    ck_assert_int_eq(event_seq(s2.got[0].ev), 10);
    sink_free(&s2);
    free(group);
    te_conf_destroy(cc);
    te_conf_destroy(c);
}
END_TEST

/* ---- rebalance: two consumers share the work, nothing lost or repeated ------------------------- */

typedef struct shared_s {
    pthread_mutex_t mu;
    int *seen; /* per seq: how often handled */
    size_t n;
    size_t total;
    te_consumer_t *c[2];
    int per[2];
    atomic_int stop_all;
} shared_t;

typedef struct member_s {
    shared_t *sh;
    int idx;
    te_conf_t *conf;
    const char *topic;
    te_err_t err;
    te_consumer_stats_t st;
} member_t;

static te_handler_result_t shared_handler(const te_event_t *ev, const te_record_t *rec,
                                          void *opaque, char *errstr, size_t errstr_size) {
    (void)rec;
    (void)errstr;
    (void)errstr_size;
    member_t *m = opaque;
    shared_t *sh = m->sh;
    int seq = event_seq(ev);
    pthread_mutex_lock(&sh->mu);
    if (seq >= 0 && (size_t)seq < sh->total) {
        if (sh->seen[seq]++ == 0)
            sh->n++;
    }
    sh->per[m->idx]++;
    int alone = sh->per[1] == 0;
    pthread_mutex_unlock(&sh->mu);
    /* slow while the first member is alone (up to 6 s for everything), so
     * the second one joins while there is work left */
    usleep(alone ? 2000 : 200);
    return TE_HANDLER_OK;
}

static void *member_main(void *arg) {
    member_t *m = arg;
    char e[TE_ERRSTR_SIZE] = "";
    m->err = te_consumer_run(m->sh->c[m->idx], e, sizeof e);
    te_consumer_stats(m->sh->c[m->idx], &m->st);
    return NULL;
}

START_TEST(rebalance_no_loss_no_duplicates) {
    char *topic = make_topic("rebal", 6);
    te_conf_t *c = conf_new();
    const size_t total = 3000;
    te_event_t **evs = calloc(total, sizeof *evs);
    char user[32];
    for (size_t i = 0; i < total; i++) {
        snprintf(user, sizeof user, "user-%02zu", i % 12);
        evs[i] = test_event(user, (int)i, 0);
    }
    produce_events(c, topic, evs, total, NULL);
    for (size_t i = 0; i < total; i++)
        te_event_destroy(evs[i]);
    free(evs);

    shared_t sh;
    memset(&sh, 0, sizeof sh);
    pthread_mutex_init(&sh.mu, NULL);
    sh.seen = calloc(total, sizeof *sh.seen);
    sh.total = total;
    char *group = unique("rebal-group");
    member_t m[2];
    pthread_t t[2];
    const char *topics[] = {topic};
    for (int i = 0; i < 2; i++) {
        memset(&m[i], 0, sizeof m[i]);
        m[i].sh = &sh;
        m[i].idx = i;
        m[i].conf = conf_new();
        set(m[i].conf, "group.id", group);
        set(m[i].conf, "te.dlq.topic", "");
        char e[TE_ERRSTR_SIZE] = "";
        sh.c[i] = te_consumer_new(m[i].conf, topics, 1, shared_handler, &m[i], e, sizeof e);
        ck_assert_msg(sh.c[i] != NULL, "%s", e);
    }
    pthread_create(&t[0], NULL, member_main, &m[0]);
    /* the second member joins once the first one is busy: a rebalance
     * moves partitions while records are being handled */
    int64_t deadline = te__mono_us() + 30000000;
    for (;;) {
        pthread_mutex_lock(&sh.mu);
        size_t n = sh.n;
        pthread_mutex_unlock(&sh.mu);
        if (n >= 200 || te__mono_us() > deadline)
            break;
        usleep(5000);
    }
    pthread_create(&t[1], NULL, member_main, &m[1]);
    for (;;) {
        pthread_mutex_lock(&sh.mu);
        size_t n = sh.n;
        pthread_mutex_unlock(&sh.mu);
        if (n >= total || te__mono_us() > deadline + 30000000)
            break;
        usleep(10000);
    }
    usleep(300000); /* a duplicate would show up now */
    te_consumer_stop(sh.c[0]);
    te_consumer_stop(sh.c[1]);
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(m[i].err, TE_OK);
    }
    ck_assert_uint_eq(sh.n, total);
    int dups = 0;
    for (size_t i = 0; i < total; i++)
        dups += sh.seen[i] > 1;
    ck_assert_msg(dups == 0, "%d records handled twice", dups);
    ck_assert_int_gt(sh.per[1], 0); /* the second member got partitions */
    ck_assert_uint_ge(m[0].st.rebalances, 2); /* assigned, then (partly) revoked */
    for (int i = 0; i < 2; i++) {
        te_consumer_destroy(sh.c[i]);
        te_conf_destroy(m[i].conf);
    }
    free(sh.seen);
    free(group);
    pthread_mutex_destroy(&sh.mu);
    te_conf_destroy(c);
}
END_TEST

/* ---- producer: bounded queue, fatal errors, keys ------------------------------------------------ */

START_TEST(queue_full) {
    char *topic = make_topic("qfull", 1);
    te_conf_t *c = conf_new();
    set(c, "te.queue.max.messages", "5");
    set(c, "linger.ms", "1000"); /* nothing leaves for a second */
    dl_t d;
    dl_init(&d, 8);
    char e[TE_ERRSTR_SIZE] = "";
    te_producer_t *p = te_producer_new(c, on_delivery, &d, e, sizeof e);
    ck_assert_ptr_nonnull(p);
    te_event_t *ev = test_event("user-q", 0, 0);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(te_producer_send(p, topic, ev, NULL, NULL, e, sizeof e), TE_OK);
    int64_t t0 = te__mono_us();
    ck_assert_int_eq(te_producer_send(p, topic, ev, NULL, NULL, e, sizeof e), TE_ERR_QUEUE_FULL);
    ck_assert_int_lt(te__mono_us() - t0, 100000); /* at once, not blocking */
    ck_assert_ptr_nonnull(strstr(e, "queue is full"));
    ck_assert_ptr_nonnull(strstr(e, "5"));
    ck_assert_uint_eq(te_producer_outstanding(p), 5);
    te_producer_destroy(p); /* flushes: the 5 are delivered */
    ck_assert_uint_eq(d.n, 5);
    ck_assert_uint_eq(d.ok, 5);
    dl_free(&d);

    /* te.send.timeout.ms: wait for room, then fail */
    set(c, "te.send.timeout.ms", "300");
    dl_init(&d, 8);
    p = te_producer_new(c, on_delivery, &d, e, sizeof e);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(te_producer_send(p, topic, ev, NULL, NULL, e, sizeof e), TE_OK);
    t0 = te__mono_us();
    ck_assert_int_eq(te_producer_send(p, topic, ev, NULL, NULL, e, sizeof e), TE_ERR_QUEUE_FULL);
    ck_assert_int_ge(te__mono_us() - t0, 290000);
    te_producer_destroy(p);
    ck_assert_uint_eq(d.ok, 5);
    dl_free(&d);
    te_event_destroy(ev);
    te_conf_destroy(c);
}
END_TEST

/* A delivery callback that sends again must not wait for queue space:
 * that space is freed only after the callback returns. */
typedef struct {
    te_producer_t *p;
    const char *topic;
    te_event_t *ev;
    int64_t slowest_us;
    int tries, resent, refused;
} resend_t;

static void resend_on_delivery(const te_delivery_t *d, void *opaque) {
    (void)d;
    resend_t *r = opaque;
    if (!r->p || r->tries >= 5) /* bounded, so the flush below can finish */
        return;
    r->tries++;
    int64_t t0 = te__mono_us();
    te_err_t err = te_producer_send(r->p, r->topic, r->ev, NULL, NULL, NULL, 0);
    int64_t took = te__mono_us() - t0;
    if (took > r->slowest_us)
        r->slowest_us = took;
    if (err == TE_OK)
        r->resent++;
    else if (err == TE_ERR_QUEUE_FULL)
        r->refused++;
}

START_TEST(send_from_delivery_callback) {
    char *topic = make_topic("cbsend", 1);
    te_conf_t *c = conf_new();
    set(c, "te.queue.max.messages", "5");
    set(c, "te.send.timeout.ms", "3000");
    set(c, "linger.ms", "200");
    resend_t r = {NULL, topic, test_event("user-cb", 0, 0), 0, 0, 0, 0};
    char e[TE_ERRSTR_SIZE] = "";
    te_producer_t *p = te_producer_new(c, resend_on_delivery, &r, e, sizeof e);
    ck_assert_ptr_nonnull(p);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(te_producer_send(p, topic, r.ev, NULL, NULL, e, sizeof e), TE_OK);
    r.p = p; /* from now on every delivery sends one more, into a full queue */
    int64_t t0 = te__mono_us();
    ck_assert_int_eq(te_producer_flush(p, 10000), TE_OK);
    r.p = NULL;
    ck_assert_int_lt(te__mono_us() - t0, 2500000); /* no 3 s waits inside callbacks */
    ck_assert_int_lt(r.slowest_us, 100000);
    ck_assert_int_ge(r.refused, 1);
    te_producer_destroy(p);
    te_event_destroy(r.ev);
    te_conf_destroy(c);
}
END_TEST

START_TEST(producer_refusals_and_fatal) {
    char *topic = make_topic("fatal", 1);
    te_conf_t *c = conf_new();
    dl_t d;
    dl_init(&d, 8);
    char e[TE_ERRSTR_SIZE] = "";
    te_producer_t *p = te_producer_new(c, on_delivery, &d, e, sizeof e);
    ck_assert_ptr_nonnull(p);
    /* no key and no partitionkey */
    te_event_t *ev = NULL;
    te_event_create(&ev, "org.example.kafka.test", "/tests", e, sizeof e);
    ck_assert_int_eq(te_producer_send(p, topic, ev, NULL, NULL, e, sizeof e), TE_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(e, "key"));
    ck_assert_int_eq(te_producer_send(p, topic, ev, "explicit-key", NULL, e, sizeof e), TE_OK);
    /* catalogue validation on send */
    te_event_t *bad = NULL;
    te_event_create(&bad, TE_EVENT_TASK_CREATED, "/tests", e, sizeof e);
    te_event_set_partitionkey(bad, "u", e, sizeof e);
    te_event_set_data_json(bad, "{}", 2, e, sizeof e);
    ck_assert_int_eq(te_producer_send(p, topic, bad, NULL, NULL, e, sizeof e), TE_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(e, "data.task_id"));
    ck_assert_int_eq(te_producer_flush(p, 30000), TE_OK);
    ck_assert_uint_eq(d.ok, 1);
    /* a fatal idempotence error is surfaced and sticks */
    ck_assert_int_eq(te__producer_test_fatal(p, "test: simulated sequence error"), TE_OK);
    int64_t deadline = te__mono_us() + 5000000;
    while (te_producer_fatal_error(p, e, sizeof e) == TE_OK && te__mono_us() < deadline)
        usleep(10000);
    ck_assert_int_eq(te_producer_fatal_error(p, e, sizeof e), TE_ERR_KAFKA);
    ck_assert_ptr_nonnull(strstr(e, "fatal"));
    ck_assert_ptr_nonnull(strstr(e, "simulated sequence error"));
    ck_assert_int_eq(te_producer_send(p, topic, ev, "k", NULL, e, sizeof e), TE_ERR_KAFKA);
    ck_assert_ptr_nonnull(strstr(e, "fatal"));
    te_producer_destroy(p);
    te_event_destroy(ev);
    te_event_destroy(bad);
    dl_free(&d);
    te_conf_destroy(c);
}
END_TEST

/* ---- topics ---------------------------------------------------------------------------------------- */

typedef struct reports_s {
    int n;
    char names[8][64];
    te_topic_status_t status[8];
    char detail[8][256];
} reports_t;

static void on_report(const te_topic_report_t *r, void *opaque) {
    reports_t *rs = opaque;
    if (rs->n < 8) {
        snprintf(rs->names[rs->n], 64, "%s", r->name);
        rs->status[rs->n] = r->status;
        snprintf(rs->detail[rs->n], 256, "%s", r->detail);
    }
    rs->n++;
}

START_TEST(topics_ensure_twice_is_noop) {
    te_conf_t *c = conf_new();
    char e[TE_ERRSTR_SIZE] = "";
    te_topics_summary_t s1, s2;
    reports_t r1 = {0}, r2 = {0};
    ck_assert_int_eq(te_topics_ensure(c, NULL, 0, 30000, on_report, &r1, &s1, e, sizeof e), TE_OK);
    ck_assert_int_eq(r1.n, 6);
    ck_assert_uint_eq(s1.created + s1.existing, 6);
    ck_assert_uint_eq(s1.differing, 0);
    ck_assert_uint_eq(s1.failed, 0);
    ck_assert_int_eq(te_topics_ensure(c, NULL, 0, 30000, on_report, &r2, &s2, e, sizeof e), TE_OK);
    ck_assert_uint_eq(s2.created, 0);
    ck_assert_uint_eq(s2.differing, 0);
    ck_assert_uint_eq(s2.failed, 0);
    ck_assert_uint_eq(s2.existing, 6);
    for (int i = 0; i < 6; i++) {
        ck_assert_str_eq(r2.names[i], te_catalog_topic_at((size_t)i)->name);
        ck_assert_int_eq(r2.status[i], TE_TOPIC_EXISTS);
    }
    te_conf_destroy(c);
}
END_TEST

START_TEST(topics_ensure_reports_differences) {
    char *name = make_topic("differs", 2); /* 2 partitions, retention 1 h */
    te_conf_t *c = conf_new();
    char e[TE_ERRSTR_SIZE] = "";
    te_topic_info_t want = {name, 3, 7200000, "test"};
    reports_t r = {0};
    te_topics_summary_t s;
    ck_assert_int_eq(te_topics_ensure(c, &want, 1, 30000, on_report, &r, &s, e, sizeof e), TE_OK);
    ck_assert_uint_eq(s.differing, 1);
    ck_assert_int_eq(r.status[0], TE_TOPIC_DIFFERS);
    ck_assert_ptr_nonnull(strstr(r.detail[0], "partitions 2 (want 3)"));
    ck_assert_ptr_nonnull(strstr(r.detail[0], "retention.ms 3600000 (want 7200000)"));
    /* nothing was changed */
    te_topic_info_t same = {name, 2, 3600000, "test"};
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(te_topics_ensure(c, &same, 1, 30000, on_report, &r, &s, e, sizeof e), TE_OK);
    ck_assert_int_eq(r.status[0], TE_TOPIC_EXISTS);
    ck_assert_uint_eq(s.existing, 1);
    te_conf_destroy(c);
}
END_TEST

/* ---- suite ----------------------------------------------------------------------------------------- */

/* te_consumer_lag(): unknown before and after running; while the handler
 * holds the last record of a first batch, a second batch produced meanwhile
 * shows as exactly that many records behind; 0 once everything was taken. */
typedef struct lag_s {
    te_consumer_t *c;
    te_conf_t *pconf;
    const char *topic;
    int n;
    int64_t lag_first_batch_end, lag_behind, lag_at_end;
} lag_t;

static te_handler_result_t lag_handler(const te_event_t *ev, const te_record_t *rec, void *opaque,
                                       char *errstr, size_t errstr_size) {
    (void)ev, (void)rec, (void)errstr, (void)errstr_size;
    lag_t *l = opaque;
    l->n++;
    if (l->n == 10) {
        l->lag_first_batch_end = te_consumer_lag(l->c);
        te_event_t *evs[10];
        for (int i = 0; i < 10; i++)
            evs[i] = test_event("lag-user", 100 + i, 0);
        produce_events(l->pconf, l->topic, evs, 10, NULL);
        for (int i = 0; i < 10; i++)
            te_event_destroy(evs[i]);
        /* the background fetcher learns the new high watermark */
        int64_t deadline = te__mono_us() + 10 * 1000000;
        while ((l->lag_behind = te_consumer_lag(l->c)) < 10 && te__mono_us() < deadline)
            usleep(20000);
    }
    if (l->n == 20) {
        l->lag_at_end = te_consumer_lag(l->c);
        te_consumer_stop(l->c);
    }
    return TE_HANDLER_OK;
}

START_TEST(consumer_lag) {
    char *topic = make_topic("lag", 1);
    te_conf_t *pc = conf_new();
    te_event_t *evs[10];
    for (int i = 0; i < 10; i++)
        evs[i] = test_event("lag-user", i, 0);
    produce_events(pc, topic, evs, 10, NULL);
    for (int i = 0; i < 10; i++)
        te_event_destroy(evs[i]);
    te_conf_t *cc = consumer_conf(NULL);
    lag_t l = {.pconf = pc, .topic = topic, .lag_first_batch_end = -2, .lag_behind = -2, .lag_at_end = -2};
    const char *topics[] = {topic};
    char e[TE_ERRSTR_SIZE] = "";
    l.c = te_consumer_new(cc, topics, 1, lag_handler, &l, e, sizeof e);
    ck_assert_msg(l.c != NULL, "consumer: %s", e);
    ck_assert_int_eq(te_consumer_lag(l.c), -1); /* nothing assigned yet */
    watch_t w = {.c = l.c, .timeout_ms = 60000};
    atomic_init(&w.done, 0);
    pthread_t t;
    pthread_create(&t, NULL, watchdog, &w);
    ck_assert_int_eq(te_consumer_run(l.c, e, sizeof e), TE_OK);
    atomic_store(&w.done, 1);
    pthread_join(t, NULL);
    ck_assert_int_eq(l.n, 20);
    ck_assert_int_eq(l.lag_first_batch_end, 0);
    ck_assert_int_eq(l.lag_behind, 10);
    ck_assert_int_eq(l.lag_at_end, 0);
    ck_assert_int_eq(te_consumer_lag(l.c), -1); /* closed */
    ck_assert_int_eq(te_consumer_lag(NULL), -1);
    te_consumer_destroy(l.c);
    te_conf_destroy(cc);
    te_conf_destroy(pc);
}
END_TEST

static Suite *suite(void) {
    const it_test_t tests[] = {
        {"conf", conf_errors},
        {"round_trip_structured", round_trip_structured},
        {"round_trip_binary", round_trip_binary},
        {"order", per_user_order_10000},
        {"retry", retry_then_dead_letter},
        {"fail", fail_dead_letters_at_once},
        {"large", dead_letter_of_a_large_event},
        {"poison", poison_dead_lettered_at_once},
        {"kill", killed_before_commit_redelivers},
        {"rebalance", rebalance_no_loss_no_duplicates},
        {"queue_full", queue_full},
        {"send_from_callback", send_from_delivery_callback},
        {"fatal", producer_refusals_and_fatal},
        {"topics_twice", topics_ensure_twice_is_noop},
        {"topics_differ", topics_ensure_reports_differences},
        {"lag", consumer_lag},
    };
    return it_suite("kafka", tests, sizeof tests / sizeof tests[0], 120, setup, teardown);
}

int main(void) {
    return it_run(suite);
}
