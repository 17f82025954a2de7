/* bench_kafka — the producer wrapper (te_producer_send: CloudEvent encoding
 * + idempotent librdkafka producer) beside raw librdkafka with the same
 * settings sending the same bytes and headers, and beside Kafka's own
 * ProducerPerformance (the seed's load test), in one run on a fresh topic:
 *   (a) unthrottled: N records of ~1000 bytes -> msg/s, MB/s, ratios;
 *   (b) at RATE msg/s: delivery latency p50/p99/max (send call -> delivery
 *       report) for wrapper and raw, and Java's own percentiles.
 * Environment: TE_KAFKA_BROKERS (required), TE_KAFKA_LIBS (Kafka jars; Java
 * is skipped without them), TE_BENCH_RECORDS (100000), TE_BENCH_THROTTLED_RECORDS
 * (100000: 100 s per client at 1000/s), TE_BENCH_RATE (1000),
 * TE_BENCH_REPEAT (3: unthrottled runs per client, median reported),
 * TE_BENCH_PARTITIONS (6), TE_BENCH_LINGER_MS (the library's default),
 * TE_BENCH_SKIP_JAVA=1, TE_BENCH_SWEEP=1 (also a linger.ms 0..5 sweep; 2: only
 * the sweep).  A third client, "wrapper, pre-encoded", sends the same bytes
 * through te_producer_send_raw: the layer's own cost without the CloudEvent
 * encoding (what the outbox relay does with already-serialised events). */
#include <librdkafka/rdkafka.h>
#include <todoevents/cloudevent.h>
#include <todoevents/kafka.h>

#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define USERS 20

static const char *brokers;
static char topic[128];
static int partitions = 6;
static const char *linger = "0"; /* the library default (kafka_conf.c) */

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t cpu_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double last_cpu_per_msg; /* µs of process CPU per record, last unthrottled run */
static double last_enqueue_s;   /* time spent in the send loop, last unthrottled run */

static void sleep_until(int64_t t_us) {
    struct timespec ts = {(time_t)(t_us / 1000000), (long)(t_us % 1000000) * 1000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0)
        ;
}

static long env_long(const char *name, long def) {
    const char *v = getenv(name);
    return v && *v ? atol(v) : def;
}

static void die(const char *what, const char *detail) {
    fprintf(stderr, "bench_kafka: %s: %s\n", what, detail);
    exit(1);
}

/* ---- the payload ----------------------------------------------------------- */

static te_event_t *event;  /* ~1000 bytes in structured mode */
static te_headers_t *hdrs; /* its encoding, for the raw baseline */
static void *value;
static size_t value_len, header_bytes;
static char keys[USERS][16];

static void build_payload(void) {
    char e[TE_ERRSTR_SIZE];
    if (te_event_create(&event, "com.example.bench.recorded", "/bench/kafka", e, sizeof e))
        die("event", e);
    te_event_set_subject(event, "task/0b0e8f5c-1f1d-4c1a-8f7e-2d3c4b5a6978", e, sizeof e);
    te_event_set_datacontenttype(event, "application/json", e, sizeof e);
    size_t pad = 700;
    for (int round = 0; round < 8; round++) {
        struct json_object *d = json_object_new_object();
        json_object_object_add(d, "task_id",
                               json_object_new_string("0b0e8f5c-1f1d-4c1a-8f7e-2d3c4b5a6978"));
        json_object_object_add(d, "user_id", json_object_new_string("user-00"));
        json_object_object_add(d, "title", json_object_new_string("Benchmark task"));
        char *p = malloc(pad + 1);
        memset(p, 'x', pad);
        p[pad] = '\0';
        json_object_object_add(d, "notes", json_object_new_string(p));
        free(p);
        te_event_set_data_object(event, d);
        char *json = NULL;
        size_t len = 0;
        te_event_to_json(event, 0, &json, &len, NULL, 0);
        te_free(json);
        if (len == 1000)
            break;
        pad = pad + 1000 - len;
    }
    hdrs = te_headers_new();
    if (te_event_to_kafka(event, TE_KAFKA_STRUCTURED, hdrs, &value, &value_len, e, sizeof e))
        die("encode", e);
    for (size_t i = 0; i < te_headers_count(hdrs); i++) {
        size_t n = 0;
        te_headers_value(hdrs, i, &n);
        header_bytes += strlen(te_headers_name(hdrs, i)) + n;
    }
    for (int u = 0; u < USERS; u++)
        snprintf(keys[u], sizeof keys[u], "user-%02d", u);
}

static double record_bytes(void) { return (double)(value_len + header_bytes + 7); }

/* ---- latency bookkeeping ---------------------------------------------------- */

typedef struct lat_s {
    int64_t *sent; /* send start per record (µs) */
    int64_t *lat;  /* delivery latency per record (µs) */
    long n;
    atomic_long done, failed;
} lat_t;

static void lat_init(lat_t *l, long n) {
    l->sent = calloc((size_t)n, sizeof *l->sent);
    l->lat = calloc((size_t)n, sizeof *l->lat);
    l->n = n;
    atomic_init(&l->done, 0);
    atomic_init(&l->failed, 0);
}

static void lat_free(lat_t *l) {
    free(l->sent);
    free(l->lat);
}

static void lat_record(lat_t *l, long i, int ok) {
    if (!ok)
        atomic_fetch_add(&l->failed, 1);
    if (l->lat && i >= 0 && i < l->n)
        l->lat[i] = now_us() - l->sent[i];
    atomic_fetch_add(&l->done, 1);
}

static int cmp64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct result_s {
    double msgs, mbs;                /* unthrottled */
    double p50, p99, max, achieved;  /* throttled (ms, msg/s) */
    long failed;
    int have;
} result_t;

static void percentiles(lat_t *l, result_t *r) {
    qsort(l->lat, (size_t)l->n, sizeof *l->lat, cmp64);
    r->p50 = (double)l->lat[l->n / 2] / 1000.0;
    r->p99 = (double)l->lat[(size_t)((double)l->n * 0.99)] / 1000.0;
    r->max = (double)l->lat[l->n - 1] / 1000.0;
}

/* ---- wrapper -------------------------------------------------------------------- */

static void wrapper_dr(const te_delivery_t *d, void *opaque) {
    lat_record(opaque, (long)(uintptr_t)d->msg_opaque - 1, d->err == TE_OK);
}

static te_producer_t *wrapper_new(lat_t *l, const char *lg) {
    te_conf_t *c = te_conf_new();
    char e[TE_ERRSTR_SIZE];
    if (te_conf_set(c, "bootstrap.servers", brokers, e, sizeof e) ||
        te_conf_set(c, "linger.ms", lg, e, sizeof e) ||
        te_conf_set(c, "te.send.timeout.ms", "600000", e, sizeof e))
        die("conf", e);
    te_producer_t *p = te_producer_new(c, wrapper_dr, l, e, sizeof e);
    te_conf_destroy(c);
    if (!p)
        die("producer", e);
    if (te_producer_prepare(p, topic, 10000, e, sizeof e))
        die("prepare", e);
    return p;
}

static int send_preencoded; /* wrapper runs use te_producer_send_raw with the bytes */

static void wrapper_send(te_producer_t *p, lat_t *l, long i) {
    if (send_preencoded) {
        char e[TE_ERRSTR_SIZE];
        if (te_producer_send_raw(p, topic, keys[i % USERS], strlen(keys[i % USERS]), value,
                                 value_len, hdrs, (void *)(uintptr_t)(i + 1), e, sizeof e))
            die("send_raw", e);
        return;
    }
    char e[TE_ERRSTR_SIZE];
    if (l->sent)
        l->sent[i] = now_us();
    if (te_producer_send(p, topic, event, keys[i % USERS], (void *)(uintptr_t)(i + 1), e,
                         sizeof e))
        die("send", e);
}

static double wrapper_unthrottled(long n, const char *lg) {
    lat_t l;
    memset(&l, 0, sizeof l);
    atomic_init(&l.done, 0);
    atomic_init(&l.failed, 0);
    te_producer_t *p = wrapper_new(&l, lg);
    int64_t t0 = now_us(), c0 = cpu_us();
    for (long i = 0; i < n; i++)
        wrapper_send(p, &l, i);
    last_enqueue_s = (double)(now_us() - t0) / 1e6;
    if (te_producer_flush(p, 600000))
        die("flush", "timed out");
    int64_t t1 = now_us();
    last_cpu_per_msg = (double)(cpu_us() - c0) / (double)n;
    te_producer_destroy(p);
    if (atomic_load(&l.failed))
        die("wrapper", "deliveries failed");
    return (double)n / ((double)(t1 - t0) / 1e6);
}

static void wrapper_throttled(long n, double rate, const char *lg, result_t *r) {
    lat_t l;
    lat_init(&l, n);
    te_producer_t *p = wrapper_new(&l, lg);
    int64_t t0 = now_us() + 10000;
    for (long i = 0; i < n; i++) {
        sleep_until(t0 + (int64_t)((double)i * 1e6 / rate));
        wrapper_send(p, &l, i);
    }
    te_producer_flush(p, 600000);
    int64_t t1 = now_us();
    te_producer_destroy(p);
    r->achieved = (double)n / ((double)(t1 - t0) / 1e6);
    r->failed = atomic_load(&l.failed);
    percentiles(&l, r);
    lat_free(&l);
}

/* ---- raw librdkafka ----------------------------------------------------------------- */

static void raw_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    lat_record(opaque, (long)(uintptr_t)m->_private - 1, m->err == 0);
}

static rd_kafka_t *raw_new(lat_t *l, const char *lg, rd_kafka_headers_t **rh) {
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    char e[512];
    const char *kv[][2] = {{"bootstrap.servers", brokers}, {"enable.idempotence", "true"},
                           {"acks", "all"},               {"linger.ms", lg},
                           {"partitioner", "murmur2_random"}, {"client.id", "bench-raw"}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        if (rd_kafka_conf_set(c, kv[i][0], kv[i][1], e, sizeof e) != RD_KAFKA_CONF_OK)
            die("raw conf", e);
    rd_kafka_conf_set_dr_msg_cb(c, raw_dr);
    rd_kafka_conf_set_opaque(c, l);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, e, sizeof e);
    if (!rk)
        die("raw producer", e);
    /* same warm-up as te_producer_prepare: topic metadata up front */
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == 0)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    *rh = rd_kafka_headers_new(te_headers_count(hdrs));
    for (size_t i = 0; i < te_headers_count(hdrs); i++) {
        size_t n = 0;
        const void *v = te_headers_value(hdrs, i, &n);
        rd_kafka_header_add(*rh, te_headers_name(hdrs, i), -1, v, (ssize_t)n);
    }
    return rk;
}

/* the same record the wrapper sends: value + headers copied, key */
static void raw_send(rd_kafka_t *rk, const rd_kafka_headers_t *rh, lat_t *l, long i) {
    if (l->sent)
        l->sent[i] = now_us();
    for (;;) {
        rd_kafka_headers_t *h = rd_kafka_headers_copy(rh);
        rd_kafka_resp_err_t err = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(keys[i % USERS], strlen(keys[i % USERS])),
            RD_KAFKA_V_VALUE(value, value_len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE((void *)(uintptr_t)(i + 1)),
            RD_KAFKA_V_END);
        if (!err)
            break;
        rd_kafka_headers_destroy(h);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            die("raw produce", rd_kafka_err2str(err));
        rd_kafka_poll(rk, 10);
    }
    rd_kafka_poll(rk, 0);
}

static double raw_unthrottled(long n, const char *lg) {
    lat_t l;
    memset(&l, 0, sizeof l);
    atomic_init(&l.done, 0);
    atomic_init(&l.failed, 0);
    rd_kafka_headers_t *rh;
    rd_kafka_t *rk = raw_new(&l, lg, &rh);
    int64_t t0 = now_us(), c0 = cpu_us();
    for (long i = 0; i < n; i++)
        raw_send(rk, rh, &l, i);
    last_enqueue_s = (double)(now_us() - t0) / 1e6;
    rd_kafka_flush(rk, 600000);
    int64_t t1 = now_us();
    last_cpu_per_msg = (double)(cpu_us() - c0) / (double)n;
    rd_kafka_headers_destroy(rh);
    rd_kafka_destroy(rk);
    if (atomic_load(&l.failed))
        die("raw", "deliveries failed");
    return (double)n / ((double)(t1 - t0) / 1e6);
}

typedef struct poller_s {
    rd_kafka_t *rk;
    atomic_int stop;
} poller_t;

static void *raw_poller(void *arg) {
    poller_t *p = arg;
    while (!atomic_load(&p->stop))
        rd_kafka_poll(p->rk, 50);
    return NULL;
}

/* Latency: delivery reports are served by a poll thread, as in the
 * wrapper, so neither side waits for the sender's next loop turn. */
static void raw_throttled(long n, double rate, const char *lg, result_t *r) {
    lat_t l;
    lat_init(&l, n);
    rd_kafka_headers_t *rh;
    rd_kafka_t *rk = raw_new(&l, lg, &rh);
    poller_t pl = {rk, 0};
    atomic_init(&pl.stop, 0);
    pthread_t t;
    pthread_create(&t, NULL, raw_poller, &pl);
    int64_t t0 = now_us() + 10000;
    for (long i = 0; i < n; i++) {
        sleep_until(t0 + (int64_t)((double)i * 1e6 / rate));
        if (l.sent)
            l.sent[i] = now_us();
        rd_kafka_headers_t *h = rd_kafka_headers_copy(rh);
        rd_kafka_resp_err_t err = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(keys[i % USERS], strlen(keys[i % USERS])),
            RD_KAFKA_V_VALUE(value, value_len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE((void *)(uintptr_t)(i + 1)), RD_KAFKA_V_END);
        if (err)
            die("raw produce", rd_kafka_err2str(err));
    }
    while (atomic_load(&l.done) < n)
        usleep(1000);
    int64_t t1 = now_us();
    atomic_store(&pl.stop, 1);
    pthread_join(t, NULL);
    rd_kafka_headers_destroy(rh);
    rd_kafka_destroy(rk);
    r->achieved = (double)n / ((double)(t1 - t0) / 1e6);
    r->failed = atomic_load(&l.failed);
    percentiles(&l, r);
    lat_free(&l);
}

/* ---- Kafka's ProducerPerformance ---------------------------------------------------------- */

static int java_run(long n, long throughput, const char *lg, result_t *r) {
    const char *libs = getenv("TE_KAFKA_LIBS");
    if (!libs || !*libs || env_long("TE_BENCH_SKIP_JAVA", 0))
        return -1;
    const char *root = getenv("TE_ROOT");
    char log4j[1024] = "";
    if (root)
        snprintf(log4j, sizeof log4j,
                 "-Dlog4j2.configurationFile=%s/infrastructure/kafka/tools-log4j2.properties",
                 root);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "java -Xmx512m %s -cp '%s/*' org.apache.kafka.tools.ProducerPerformance "
             "--topic %s --num-records %ld --record-size 1000 --throughput %ld "
             "--producer-props bootstrap.servers=%s acks=all enable.idempotence=true "
             "linger.ms=%s 2>&1",
             log4j, libs, topic, n, throughput, brokers, lg);
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    char line[1024], last[1024] = "";
    while (fgets(line, sizeof line, f))
        if (strstr(line, "records sent,"))
            snprintf(last, sizeof last, "%s", line);
    int st = pclose(f);
    long sent = 0;
    double rps = 0, mbs = 0, avg = 0, max = 0, p50 = 0, p95 = 0, p99 = 0;
    /* "100000 records sent, 53447.3 records/sec (50.97 MB/sec), 280.32 ms avg latency,
     *  565.00 ms max latency, 277 ms 50th, 467 ms 95th, 520 ms 99th, 561 ms 99.9th." */
    if (st != 0 || sscanf(last,
                          "%ld records sent, %lf records/sec (%lf MB/sec), %lf ms avg latency, "
                          "%lf ms max latency, %lf ms 50th, %lf ms 95th, %lf ms 99th",
                          &sent, &rps, &mbs, &avg, &max, &p50, &p95, &p99) != 8) {
        fprintf(stderr, "bench_kafka: ProducerPerformance failed (status %d): %s\n", st, last);
        return -1;
    }
    r->msgs = rps;
    r->mbs = mbs;
    r->p50 = p50;
    r->p99 = p99;
    r->max = max;
    r->achieved = rps;
    r->have = 1;
    return 0;
}

/* ---- main -------------------------------------------------------------------------------- */

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmpd);
    return v[n / 2];
}

static void sweep(long n, long tn, double rate, int repeat) {
    const char *lingers[] = {"0", "1", "2", "5"};
    printf("\nlinger.ms sweep: %ld records unthrottled (median of %d, interleaved), %ld at %.0f "
           "msg/s\n",
           n, repeat, tn, rate);
    printf("  %-9s %14s %12s %10s %10s %10s %10s\n", "linger.ms", "wrapper msg/s", "raw msg/s",
           "w p50 ms", "w p99 ms", "raw p50", "raw p99");
    for (size_t i = 0; i < sizeof lingers / sizeof lingers[0]; i++) {
        result_t r, q;
        memset(&r, 0, sizeof r);
        memset(&q, 0, sizeof q);
        double t[15], u[15];
        for (int k = 0; k < repeat; k++) {
            t[k] = wrapper_unthrottled(n, lingers[i]);
            u[k] = raw_unthrottled(n, lingers[i]);
        }
        wrapper_throttled(tn, rate, lingers[i], &r);
        raw_throttled(tn, rate, lingers[i], &q);
        printf("  %-9s %14.0f %12.0f %10.2f %10.2f %10.2f %10.2f\n", lingers[i],
               median(t, repeat), median(u, repeat), r.p50, r.p99, q.p50, q.p99);
        fflush(stdout);
    }
}

int main(void) {
    brokers = getenv("TE_KAFKA_BROKERS");
    if (!brokers || !*brokers)
        die("TE_KAFKA_BROKERS", "not set (scripts/services start; eval \"$(scripts/services env)\")");
    long n = env_long("TE_BENCH_RECORDS", 100000);
    long tn = env_long("TE_BENCH_THROTTLED_RECORDS", 100000);
    double rate = (double)env_long("TE_BENCH_RATE", 1000);
    int repeat = (int)env_long("TE_BENCH_REPEAT", 3);
    partitions = (int)env_long("TE_BENCH_PARTITIONS", 6);
    if (getenv("TE_BENCH_LINGER_MS") && *getenv("TE_BENCH_LINGER_MS"))
        linger = getenv("TE_BENCH_LINGER_MS");
    if (n < 1 || tn < 1 || rate <= 0 || repeat < 1 || repeat > 15 || partitions < 1)
        die("settings", "TE_BENCH_* out of range");
    build_payload();

    snprintf(topic, sizeof topic, "te-bench-%d-%ld", (int)getpid(), (long)time(NULL));
    te_conf_t *c = te_conf_new();
    char e[TE_ERRSTR_SIZE];
    te_conf_set(c, "bootstrap.servers", brokers, e, sizeof e);
    te_topic_info_t spec = {topic, partitions, 3600000, "benchmark"};
    if (te_topics_ensure(c, &spec, 1, 30000, NULL, NULL, NULL, e, sizeof e))
        die("create topic", e);

    printf("Kafka producer benchmark: topic %s (%d partitions, fresh), %d keys\n", topic,
           partitions, USERS);
    printf("record: CloudEvent, structured mode, value %zu B + headers %zu B + key 7 B; "
           "acks=all, enable.idempotence=true, linger.ms=%s\n",
           value_len, header_bytes, linger);
    printf("librdkafka %s; wrapper = te_producer_send (encodes the event every call) with its "
           "poll thread; raw = rd_kafka_producev of the same bytes, polling inline\n",
           rd_kafka_version_str());
    fflush(stdout);

    if (env_long("TE_BENCH_SWEEP", 0) == 2) { /* the sweep alone */
        wrapper_unthrottled(n < 20000 ? n : 20000, linger);
        sweep(n, tn < 10000 ? tn : 10000, rate, repeat);
        const char *names[] = {topic};
        te_topics_delete(c, names, 1, 30000, e, sizeof e);
        te_conf_destroy(c);
        te_free(value);
        te_headers_destroy(hdrs);
        te_event_destroy(event);
        return 0;
    }
    /* warm the broker (segments, JIT) so the first measured client is not penalised */
    wrapper_unthrottled(n < 20000 ? n : 20000, linger);

    double w[15], rw[15], wc[15], rc[15], ratio_v[15], pw[15], pc[15];
    for (int i = 0; i < repeat; i++) {
        /* interleaved, alternating who goes first: drift in the broker's
         * speed hits both clients alike */
        if (i % 2 == 0) {
            w[i] = wrapper_unthrottled(n, linger);
            wc[i] = last_cpu_per_msg;
            rw[i] = raw_unthrottled(n, linger);
            rc[i] = last_cpu_per_msg;
        } else {
            rw[i] = raw_unthrottled(n, linger);
            rc[i] = last_cpu_per_msg;
            w[i] = wrapper_unthrottled(n, linger);
            wc[i] = last_cpu_per_msg;
        }
        ratio_v[i] = w[i] / rw[i];
        send_preencoded = 1;
        pw[i] = wrapper_unthrottled(n, linger);
        pc[i] = last_cpu_per_msg;
        send_preencoded = 0;
        fprintf(stderr,
                "  run %d: wrapper %.0f msg/s (%.2f us CPU/msg), raw %.0f msg/s (%.2f us "
                "CPU/msg), ratio %.2f\n",
                i + 1, w[i], wc[i], rw[i], rc[i], ratio_v[i]);
    }
    result_t W, R, J, Jt;
    memset(&W, 0, sizeof W);
    memset(&R, 0, sizeof R);
    memset(&J, 0, sizeof J);
    memset(&Jt, 0, sizeof Jt);
    W.msgs = median(w, repeat);
    R.msgs = median(rw, repeat);
    double ratio = median(ratio_v, repeat), wcpu = median(wc, repeat), rcpu = median(rc, repeat);
    double pmsgs = median(pw, repeat), pcpu = median(pc, repeat);
    W.mbs = W.msgs * record_bytes() / 1e6;
    R.mbs = R.msgs * record_bytes() / 1e6;
    fprintf(stderr, "  ProducerPerformance, unthrottled...\n");
    java_run(n, -1, linger, &J);

    fprintf(stderr, "  throttled runs: %ld records at %.0f msg/s per client...\n", tn, rate);
    wrapper_throttled(tn, rate, linger, &W);
    raw_throttled(tn, rate, linger, &R);
    java_run(tn, (long)rate, linger, &Jt);

    printf("\n(a) unthrottled, %ld records (median of %d interleaved runs; \"vs raw\" = median "
           "of the per-run ratios;\n    MB/s = value+headers+key; Java sends 1000-byte values "
           "without key or headers)\n",
           n, repeat);
    printf("  %-28s %12s %9s %10s %10s\n", "client", "msg/s", "MB/s", "vs raw", "vs Java");
    char vs[32] = "";
    if (J.have)
        snprintf(vs, sizeof vs, "%.2fx", W.msgs / J.msgs);
    printf("  %-28s %12.0f %9.1f %9.1f%% %9s\n", "wrapper (te_producer_send)", W.msgs, W.mbs,
           100.0 * ratio, vs);
    if (J.have)
        snprintf(vs, sizeof vs, "%.2fx", R.msgs / J.msgs);
    printf("  %-28s %12.0f %9.1f %9s %9s\n", "raw librdkafka", R.msgs, R.mbs, "100%", vs);
    printf("  %-28s %12.0f %9.1f %9.1f%% %9s\n", "wrapper, pre-encoded bytes", pmsgs,
           pmsgs * record_bytes() / 1e6, 100.0 * pmsgs / R.msgs,
           "(te_producer_send_raw: the layer without the CloudEvent encoding)");
    if (J.have) {
        printf("  %-28s %12.0f %9.1f %9s %9s\n", "Kafka ProducerPerformance", J.msgs, J.mbs, "",
               "1.00x");
    } else {
        printf("  Kafka ProducerPerformance: skipped (TE_KAFKA_LIBS unset or TE_BENCH_SKIP_JAVA)\n");
    }
    printf("\n(b) %.0f msg/s, %ld records: delivery latency, send call -> delivery report (ms)\n",
           rate, tn);
    printf("  %-28s %9s %9s %9s %14s %7s\n", "client", "p50", "p99", "max", "achieved msg/s",
           "failed");
    printf("  %-28s %9.2f %9.2f %9.2f %14.0f %7ld\n", "wrapper (te_producer_send)", W.p50, W.p99,
           W.max, W.achieved, W.failed);
    printf("  %-28s %9.2f %9.2f %9.2f %14.0f %7ld\n", "raw librdkafka", R.p50, R.p99, R.max,
           R.achieved, R.failed);
    if (Jt.have)
        printf("  %-28s %9.0f %9.0f %9.0f %14.0f %7s\n", "Kafka ProducerPerformance", Jt.p50,
               Jt.p99, Jt.max, Jt.achieved, "-");
    printf("\n  client CPU per record (all threads, median): wrapper %.2f us, wrapper pre-encoded "
           "%.2f us, raw %.2f us\n",
           wcpu, pcpu, rcpu);
    printf("\ntargets:\n");
    printf("  wrapper >= 90%% of raw throughput, encoding every event:  %6.1f%%  %s\n",
           100.0 * ratio, ratio >= 0.9 ? "PASS" : "FAIL (the CloudEvent JSON encoding, see CPU)");
    printf("  wrapper >= 90%% of raw throughput, pre-encoded (outbox): %6.1f%%  %s\n",
           100.0 * pmsgs / R.msgs, pmsgs / R.msgs >= 0.9 ? "PASS" : "FAIL");
    printf("  wrapper delivery p99 < 5 ms at %.0f msg/s:                %6.2f ms %s\n", rate,
           W.p99, W.p99 < 5.0 ? "PASS" : "FAIL");
    fflush(stdout);

    if (env_long("TE_BENCH_SWEEP", 0))
        sweep(n, tn < 10000 ? tn : 10000, rate, repeat);

    const char *names[] = {topic};
    te_topics_delete(c, names, 1, 30000, e, sizeof e);
    te_conf_destroy(c);
    te_free(value);
    te_headers_destroy(hdrs);
    te_event_destroy(event);
    return 0; /* a benchmark reports; operational errors exit 1 (die) */
}
