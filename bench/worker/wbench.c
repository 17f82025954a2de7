/* wbench — the Kafka side of the worker benchmark (bench/worker/run.sh,
 * docs/bench-worker.md).  Built by run.sh with cc against build/'s
 * libtodoevents and librdkafka (not part of the CMake build).
 *
 *   wbench offsets TOPIC
 *       one line per partition: "partition low high" (high = end offset).
 *   wbench commit GROUP TOPIC FILE
 *       commits, for the (empty, new) consumer group GROUP, the offset
 *       "high" of each line of FILE (an `offsets` output) and reads the
 *       committed offsets back to check: a consumer of that group then
 *       starts exactly there.
 *   wbench others TOPIC FILE EXCLUDE
 *       the other active consumer groups of TOPIC and how many records
 *       of FILE's range ("partition start end") each has yet to read.
 *   wbench records TOPIC FILE PREFIX SECONDS
 *       follows TOPIC from FILE's end offsets for SECONDS and prints, per
 *       record with a key starting with PREFIX, its Kafka timestamp (set
 *       by the producer), when it arrived here, its type and task id.
 *   wbench produce TOPIC N USERS PREFIX SAMPLE
 *       N com.todo.task.created CloudEvents (as todo-api writes them:
 *       structured mode, content-type header, key = partitionkey = user
 *       id; users PREFIX-001 .. PREFIX-USERS in turn), each with its own
 *       event id and task id, through the library's producer
 *       (te_producer_send_raw, as the outbox relay sends).  Writes the
 *       first event to SAMPLE; prints a JSON line of figures.
 *   wbench consume-raw GROUP TOPIC FILE
 *   wbench consume-lib GROUP TOPIC FILE
 *       reads TOPIC in group GROUP (run.sh committed the group's start
 *       offsets with `commit` first) until every partition has reached
 *       the end offset of its line in FILE ("partition start end"),
 *       doing nothing with the records: raw =
 *       plain librdkafka consumer (rd_kafka_consumer_poll, the library's
 *       consumer defaults); lib = the library's te_consumer with a handler
 *       that returns OK at once (decode, catalogue validation, offset
 *       store).  Prints a JSON line: wall-clock times (epoch seconds) of
 *       the start, the first and the last record, records and bytes. */
#define _GNU_SOURCE
#include <librdkafka/rdkafka.h>
#include <todoevents/cloudevent.h>
#include <todoevents/kafka.h>

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#define MAXP 256

static const char *brokers;

static double wall(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void die(const char *fmt, const char *a) {
    fprintf(stderr, "wbench: ");
    fprintf(stderr, fmt, a ? a : "");
    fprintf(stderr, "\n");
    exit(1);
}

static rd_kafka_conf_t *base_conf(const char *group) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[512];
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof err) != RD_KAFKA_CONF_OK)
        die("%s", err);
    if (group && rd_kafka_conf_set(conf, "group.id", group, err, sizeof err) != RD_KAFKA_CONF_OK)
        die("%s", err);
    rd_kafka_conf_set(conf, "client.id", "wbench", NULL, 0);
    return conf;
}

/* --- offsets ------------------------------------------------------------ */
static int cmd_offsets(const char *topic) {
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, base_conf(NULL), err, sizeof err);
    if (!rk) die("%s", err);
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1 ||
        md->topics[0].err)
        die("no metadata for topic %s", topic);
    int n = md->topics[0].partition_cnt;
    for (int p = 0; p < n; p++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000);
        if (e) die("watermarks: %s", rd_kafka_err2str(e));
        printf("%d %lld %lld\n", p, (long long)lo, (long long)hi);
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return 0;
}

typedef struct range_s {
    int n;
    int64_t start[MAXP], end[MAXP];
} range_t;

static void read_range(const char *path, range_t *r) {
    FILE *f = fopen(path, "r");
    if (!f) die("cannot read %s", path);
    memset(r, 0, sizeof *r);
    int p;
    long long a, b;
    while (fscanf(f, "%d %lld %lld", &p, &a, &b) == 3) {
        if (p < 0 || p >= MAXP) die("bad partition in %s", path);
        r->start[p] = a;
        r->end[p] = b;
        if (p + 1 > r->n) r->n = p + 1;
    }
    fclose(f);
}

/* --- commit ------------------------------------------------------------- */
static int cmd_commit(const char *group, const char *topic, const char *path) {
    range_t r;
    read_range(path, &r);
    char err[512];
    rd_kafka_conf_t *conf = base_conf(group);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) die("%s", err);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(r.n);
    for (int p = 0; p < r.n; p++) rd_kafka_topic_partition_list_add(l, topic, p)->offset = r.end[p];
    rd_kafka_resp_err_t e = rd_kafka_commit(rk, l, 0);
    if (e) die("commit: %s", rd_kafka_err2str(e));
    for (int p = 0; p < r.n; p++) rd_kafka_topic_partition_list_find(l, topic, p)->offset = -1;
    e = rd_kafka_committed(rk, l, 10000);
    if (e) die("committed: %s", rd_kafka_err2str(e));
    for (int p = 0; p < r.n; p++) {
        int64_t got = rd_kafka_topic_partition_list_find(l, topic, p)->offset;
        if (got != r.end[p]) {
            fprintf(stderr, "wbench: partition %d committed %lld, wanted %lld\n", p, (long long)got,
                    (long long)r.end[p]);
            return 1;
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return 0;
}

/* --- others ------------------------------------------------------------- */
/* The other active consumer groups reading TOPIC (state Stable, members,
 * a committed offset on TOPIC), except those whose name starts with
 * EXCLUDE, and how many records of the range each still has to read
 * (committed offset below the range's end).  Only reads: OffsetFetch does
 * not join the group.  One line per group "group lag"; the last line
 * "total LAG GROUPS". */
static int cmd_others(const char *topic, const char *path, const char *exclude) {
    range_t r;
    read_range(path, &r);
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, base_conf(NULL), err, sizeof err);
    if (!rk) die("%s", err);
    const struct rd_kafka_group_list *gl = NULL;
    rd_kafka_resp_err_t e = rd_kafka_list_groups(rk, NULL, &gl, 10000);
    if (e) die("list groups: %s", rd_kafka_err2str(e));
    long total = 0;
    int groups = 0;
    for (int i = 0; i < gl->group_cnt; i++) {
        const struct rd_kafka_group_info *g = &gl->groups[i];
        if (g->err || g->member_cnt <= 0 || strcmp(g->state, "Stable") != 0 ||
            strcmp(g->protocol_type, "consumer") != 0 || !strncmp(g->group, exclude, strlen(exclude)))
            continue;
        rd_kafka_conf_t *conf = base_conf(g->group);
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
        rd_kafka_t *gk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
        if (!gk) continue;
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(r.n);
        for (int p = 0; p < r.n; p++) rd_kafka_topic_partition_list_add(l, topic, p);
        long lag = 0;
        int reads = 0;
        if (rd_kafka_committed(gk, l, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            for (int p = 0; p < r.n; p++) {
                int64_t c = l->elems[p].offset;
                if (c < 0) continue;
                reads = 1;
                if (c < r.end[p]) lag += (long)(r.end[p] - c);
            }
        }
        rd_kafka_topic_partition_list_destroy(l);
        rd_kafka_destroy(gk);
        if (!reads) continue;
        printf("%s %ld\n", g->group, lag);
        total += lag;
        groups++;
    }
    printf("total %ld %d\n", total, groups);
    rd_kafka_group_list_destroy(gl);
    rd_kafka_destroy(rk);
    return 0;
}

/* --- records ------------------------------------------------------------ */
/* Follows TOPIC from the "high" offsets of FILE (an `offsets` output; no
 * group joined: assign) for SECONDS, and prints one line per record whose key starts with
 * PREFIX: "create_ms recv_s partition offset key type task_id" —
 * create_ms = the record's timestamp (CreateTime: set by the producer when
 * the relay handed the record over), recv_s = when it got here (epoch). */
static const char *json_str(const char *json, size_t len, const char *key, char *out, size_t n) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = memmem(json, len, pat, strlen(pat));
    if (!p) return "-";
    p += strlen(pat);
    size_t i = 0;
    while (p < json + len && *p != '"' && i + 1 < n) out[i++] = *p++;
    out[i] = '\0';
    return out;
}

static int cmd_records(const char *topic, const char *path, const char *prefix, double seconds) {
    range_t r;
    read_range(path, &r);
    char err[512];
    rd_kafka_conf_t *conf = base_conf("wbench-records-unused");
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
    rd_kafka_conf_set(conf, "fetch.wait.max.ms", "10", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) die("%s", err);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(r.n);
    for (int p = 0; p < r.n; p++) rd_kafka_topic_partition_list_add(l, topic, p)->offset = r.end[p];
    rd_kafka_resp_err_t e = rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) die("assign: %s", rd_kafka_err2str(e));
    setvbuf(stdout, NULL, _IOLBF, 0);
    double end = wall() + seconds;
    size_t plen = strlen(prefix);
    while (wall() < end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) continue;
        if (!m->err && m->key && m->key_len >= plen && !memcmp(m->key, prefix, plen) && m->payload) {
            double recv = wall();
            rd_kafka_timestamp_type_t tt;
            int64_t ts = rd_kafka_message_timestamp(m, &tt);
            char type[96], task[64];
            printf("%lld %.6f %d %lld %.*s %s %s\n", (long long)ts, recv, (int)m->partition, (long long)m->offset,
                   (int)m->key_len, (const char *)m->key, json_str(m->payload, m->len, "type", type, sizeof type),
                   json_str(m->payload, m->len, "task_id", task, sizeof task));
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return 0;
}

/* --- produce ------------------------------------------------------------ */
static atomic_long delivered, failed;

static void on_delivery(const te_delivery_t *d, void *opaque) {
    (void)opaque;
    if (d->err == TE_OK) atomic_fetch_add(&delivered, 1);
    else atomic_fetch_add(&failed, 1);
}

static void uuid_str(char out[37]) {
    uuid_t u;
    uuid_generate_random(u);
    uuid_unparse_lower(u, out);
}

static void now_ms_str(char out[32]) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ts.tv_nsec / 1000000));
}

static int cmd_produce(const char *topic, long n, long users, const char *prefix, const char *sample) {
    char err[TE_ERRSTR_SIZE];
    te_conf_t *conf = te_conf_new();
    if (te_conf_set(conf, "bootstrap.servers", brokers, err, sizeof err) != TE_OK ||
        te_conf_set(conf, "client.id", "wbench-producer", err, sizeof err) != TE_OK ||
        /* a full queue waits instead of failing */
        te_conf_set(conf, "te.send.timeout.ms", "60000", err, sizeof err) != TE_OK)
        die("%s", err);
    te_producer_t *p = te_producer_new(conf, on_delivery, NULL, err, sizeof err);
    te_conf_destroy(conf);
    if (!p) die("%s", err);
    if (te_producer_prepare(p, topic, 10000, err, sizeof err) != TE_OK) die("%s", err);
    static const char ct[] = "application/cloudevents+json; charset=UTF-8";
    te_headers_t *h = te_headers_new();
    te_headers_add(h, "content-type", ct, sizeof ct - 1);
    static const char *const TAGS[] = {"[\"work\",\"reports\",\"q4\"]", "[\"home\"]",
                                       "[\"work\",\"meetings\"]", "[]"};
    static const char *const PRIO[] = {"low", "medium", "high", "urgent"};
    char *buf = malloc(4096);
    size_t bytes = 0;
    double t0 = wall(), c0 = cpu_s();
    for (long i = 0; i < n; i++) {
        char id[37], task[37], ts[32], user[96];
        uuid_str(id);
        uuid_str(task);
        now_ms_str(ts);
        snprintf(user, sizeof user, "%s-%03ld", prefix, i % users + 1);
        unsigned long long tr1 = ((unsigned long long)rand() << 32) ^ (unsigned long long)rand() ^ (unsigned long long)i;
        int len = snprintf(
            buf, 4096,
            "{\"specversion\":\"1.0\",\"id\":\"%s\",\"source\":\"/todo-api\",\"type\":\"com.todo.task.created\","
            "\"subject\":\"tasks/%s\",\"time\":\"%s\",\"partitionkey\":\"%s\","
            "\"traceparent\":\"00-%016llx%016llx-%016llx-01\","
            "\"data\":{\"task_id\":\"%s\",\"user_id\":\"%s\",\"task\":{\"id\":\"%s\",\"user_id\":\"%s\","
            "\"title\":\"Prepare the quarterly report %ld\",\"description\":\"Collect the figures from finance, "
            "reconcile them with the forecast, update the slides and send the deck to the whole team before the "
            "Monday planning meeting (item %ld).\",\"priority\":\"%s\",\"status\":\"pending\",\"tags\":%s,"
            "\"due_date\":\"2027-01-01T09:30:00.000Z\",\"timezone\":\"Europe/Berlin\",\"reminders\":[],"
            "\"recurrence\":null,\"overdue\":false,\"created_at\":\"%s\",\"updated_at\":\"%s\","
            "\"completed_at\":null,\"version\":1}}}",
            id, task, ts, user, tr1, tr1 * 2654435761ULL, tr1 ^ 0x9e3779b97f4a7c15ULL, task, user, task, user,
            i + 1, i + 1, PRIO[i % 4], TAGS[i % 4], ts, ts);
        if (i == 0 && sample) {
            FILE *f = fopen(sample, "w");
            if (f) {
                fwrite(buf, 1, (size_t)len, f);
                fputc('\n', f);
                fclose(f);
            }
        }
        if (te_producer_send_raw(p, topic, user, strlen(user), buf, (size_t)len, h, NULL, err, sizeof err) != TE_OK)
            die("send: %s", err);
        bytes += (size_t)len;
    }
    double t_sent = wall();
    if (te_producer_flush(p, 120000) != TE_OK) die("flush timed out%s", "");
    double t1 = wall(), c1 = cpu_s();
    te_producer_destroy(p);
    te_headers_destroy(h);
    free(buf);
    printf("{\"records\":%ld,\"delivered\":%ld,\"failed\":%ld,\"bytes\":%zu,\"avg_bytes\":%.0f,"
           "\"enqueue_s\":%.3f,\"seconds\":%.3f,\"rate\":%.0f,\"cpu_s\":%.3f}\n",
           n, atomic_load(&delivered), atomic_load(&failed), bytes, n ? (double)bytes / n : 0.0,
           t_sent - t0, t1 - t0, n / (t1 - t0), c1 - c0);
    return atomic_load(&failed) ? 1 : 0;
}

/* --- consume ------------------------------------------------------------ */
typedef struct cstate_s {
    range_t r;
    int64_t seen_last[MAXP];
    int remaining;  /* partitions not yet at their end */
    long records;   /* records below the end offsets */
    size_t bytes;
    double t_first, t_last;
    te_consumer_t *tc;
} cstate_t;

static void cs_init(cstate_t *s, const char *path) {
    memset(s, 0, sizeof *s);
    read_range(path, &s->r);
    for (int p = 0; p < s->r.n; p++) {
        s->seen_last[p] = -1;
        if (s->r.end[p] > s->r.start[p]) s->remaining++;
    }
}

/* 1 when the last partition reached its end */
static int cs_record(cstate_t *s, int32_t p, int64_t off, size_t len) {
    if (p < 0 || p >= s->r.n || off >= s->r.end[p]) return s->remaining == 0;
    double t = wall();
    if (!s->records) s->t_first = t;
    s->t_last = t;
    s->records++;
    s->bytes += len;
    if (off == s->r.end[p] - 1 && s->seen_last[p] < off) s->remaining--;
    if (off > s->seen_last[p]) s->seen_last[p] = off;
    return s->remaining == 0;
}

static void cs_print(const cstate_t *s, const char *kind, double t0, double c0, double t_end) {
    long expected = 0;
    for (int p = 0; p < s->r.n; p++) expected += (long)(s->r.end[p] - s->r.start[p]);
    double span = s->t_last - s->t_first;
    printf("{\"kind\":\"%s\",\"records\":%ld,\"expected\":%ld,\"bytes\":%zu,\"t_start\":%.6f,"
           "\"t_first\":%.6f,\"t_last\":%.6f,\"t_end\":%.6f,\"steady_rate\":%.1f,\"e2e_rate\":%.1f,"
           "\"cpu_s\":%.3f}\n",
           kind, s->records, expected, s->bytes, t0, s->t_first, s->t_last, t_end,
           span > 0 && s->records > 1 ? (s->records - 1) / span : 0.0,
           s->t_last > t0 ? s->records / (s->t_last - t0) : 0.0, cpu_s() - c0);
}

static int cmd_consume_raw(const char *group, const char *topic, const char *path) {
    double t0 = wall(), c0 = cpu_s();
    static cstate_t s;
    cs_init(&s, path);
    char err[512];
    rd_kafka_conf_t *conf = base_conf(group);
    /* the library's consumer defaults (libtodoevents/src/kafka_conf.c) */
    static const char *const kv[][2] = {
        {"enable.auto.commit", "false"},   {"auto.offset.reset", "earliest"},
        {"partition.assignment.strategy", "cooperative-sticky"},
        {"enable.partition.eof", "false"}, {"fetch.wait.max.ms", "100"},
    };
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        if (rd_kafka_conf_set(conf, kv[i][0], kv[i][1], err, sizeof err) != RD_KAFKA_CONF_OK) die("%s", err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) die("%s", err);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (e) die("subscribe: %s", rd_kafka_err2str(e));
    int done = s.remaining == 0;
    double deadline = t0 + 300;
    while (!done && wall() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) continue;
        if (!m->err) done = cs_record(&s, m->partition, m->offset, m->len);
        rd_kafka_message_destroy(m);
    }
    double t_end = wall();
    cs_print(&s, "raw librdkafka consumer", t0, c0, t_end);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return done ? 0 : 1;
}

static te_handler_result_t noop(const te_event_t *ev, const te_record_t *rec, void *opaque, char *errstr,
                                size_t errstr_size) {
    (void)ev, (void)errstr, (void)errstr_size;
    cstate_t *s = opaque;
    if (cs_record(s, rec->partition, rec->offset, rec->value_len)) te_consumer_stop(s->tc);
    return TE_HANDLER_OK;
}

static int cmd_consume_lib(const char *group, const char *topic, const char *path) {
    double t0 = wall(), c0 = cpu_s();
    static cstate_t s;
    cs_init(&s, path);
    char err[TE_ERRSTR_SIZE];
    te_conf_t *conf = te_conf_new();
    if (te_conf_set(conf, "bootstrap.servers", brokers, err, sizeof err) != TE_OK ||
        te_conf_set(conf, "group.id", group, err, sizeof err) != TE_OK ||
        te_conf_set(conf, "client.id", "wbench-lib", err, sizeof err) != TE_OK ||
        te_conf_set(conf, "te.log.level", "3", err, sizeof err) != TE_OK)
        die("%s", err);
    const char *topics[1] = {topic};
    s.tc = te_consumer_new(conf, topics, 1, noop, &s, err, sizeof err);
    te_conf_destroy(conf);
    if (!s.tc) die("%s", err);
    if (s.remaining == 0) te_consumer_stop(s.tc);
    if (te_consumer_run(s.tc, err, sizeof err) != TE_OK) die("run: %s", err);
    double t_end = wall();
    te_consumer_stats_t st;
    te_consumer_stats(s.tc, &st);
    cs_print(&s, "te_consumer, no-op handler", t0, c0, t_end);
    fprintf(stderr, "wbench: lib consumer received %llu handled %llu poison %llu dead-lettered %llu\n",
            (unsigned long long)st.received, (unsigned long long)st.handled_ok, (unsigned long long)st.poison,
            (unsigned long long)st.dead_lettered);
    te_consumer_destroy(s.tc);
    return s.remaining == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    brokers = getenv("TE_KAFKA_BROKERS");
    if (!brokers || !*brokers) die("TE_KAFKA_BROKERS is not set%s", "");
    if (argc == 3 && !strcmp(argv[1], "offsets")) return cmd_offsets(argv[2]);
    if (argc == 5 && !strcmp(argv[1], "commit")) return cmd_commit(argv[2], argv[3], argv[4]);
    if (argc == 5 && !strcmp(argv[1], "others")) return cmd_others(argv[2], argv[3], argv[4]);
    if (argc == 6 && !strcmp(argv[1], "records")) return cmd_records(argv[2], argv[3], argv[4], atof(argv[5]));
    if (argc == 7 && !strcmp(argv[1], "produce"))
        return cmd_produce(argv[2], atol(argv[3]), atol(argv[4]), argv[5], argv[6]);
    if (argc == 5 && !strcmp(argv[1], "consume-raw")) return cmd_consume_raw(argv[2], argv[3], argv[4]);
    if (argc == 5 && !strcmp(argv[1], "consume-lib")) return cmd_consume_lib(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: wbench offsets TOPIC | commit GROUP TOPIC FILE | others TOPIC FILE EXCLUDE | records TOPIC FILE PREFIX SECONDS | "
                    "produce TOPIC N USERS PREFIX SAMPLE | consume-raw|consume-lib GROUP TOPIC FILE\n");
    return 2;
}
