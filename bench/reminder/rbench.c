/* rbench — the webhook side of the reminder benchmark (bench/reminder/run.sh,
 * docs/bench-reminder.md).  Built by run.sh with cc against libmicrohttpd,
 * libcurl, OpenSSL, librdkafka and json-c (not part of the CMake build).
 *
 *   rbench receive LISTEN SECRET
 *       the webhook receiver (libmicrohttpd, epoll, a pool of 2 threads):
 *       every POST is answered 204 and recorded with its arrival time
 *       (CLOCK_REALTIME, µs, taken when the whole body is in), its path,
 *       the Standard Webhooks headers and the body.  Until SIGTERM/SIGINT.
 *         GET /count?prefix=P   how many POSTs with a path starting with P
 *                               (plain text), for polling
 *         GET /dump?prefix=P    those POSTs, one line each (below), oldest
 *                               first, and forgets them
 *         GET /stats            JSON: requests, connections opened,
 *                               the receiver's CPU seconds
 *       A dump line (tab-separated): arrival_us path webhook-id
 *       webhook-timestamp sig body, where sig is "ok" when one of the v1
 *       signatures of webhook-signature is HMAC-SHA256 of id.timestamp.body
 *       with SECRET's key (checked when dumped, off the hot path), "bad"
 *       otherwise; the body with CR/LF/TAB (whitespace between JSON tokens,
 *       the only place JSON has them raw) turned into spaces.
 *   rbench blast URLBASE INFILE THREADS SECRET START_MS OUTFILE
 *       the baseline client: INFILE's lines "offset_ms \t webhook-id \t
 *       path \t body" POSTed to URLBASE+path, each not before START_MS +
 *       offset_ms (epoch ms; 0: the next whole second + 1 s), by THREADS
 *       threads each with its own libcurl easy handle (kept-alive
 *       connection), taking the lines in order; each request signed as
 *       todo-reminder signs (webhook-id, webhook-timestamp = the send time,
 *       webhook-signature v1).  OUTFILE: one line per request "webhook-id
 *       due_ms start_us end_us http_status".  Prints a JSON line.
 *   rbench follow TOPIC PREFIX
 *       reads TOPIC from its end offsets at start (all partitions assigned,
 *       no group joined) until SIGTERM and prints, per record whose key
 *       starts with PREFIX, "kafka_ts_ms arrival_us event-id reminder_id":
 *       when each reminder.due event reached Kafka (the record's CreateTime,
 *       set by the relay's producer).  Prints "ready" to stderr once
 *       assigned. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static void die(const char *fmt, const char *a) {
    fprintf(stderr, "rbench: ");
    fprintf(stderr, fmt, a ? a : "");
    fprintf(stderr, "\n");
    exit(1);
}

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) die("%s", "out of memory");
    return p;
}

static char *xstrdup(const char *s) {
    char *p = strdup(s ? s : "");
    if (!p) die("%s", "out of memory");
    return p;
}

/* --- Standard Webhooks signing --------------------------------------------- */
/* The key of a "whsec_<base64>" secret; its length in *len. */
static unsigned char *secret_key(const char *secret, int *len) {
    const char *b64 = strncmp(secret, "whsec_", 6) == 0 ? secret + 6 : secret;
    size_t n = strlen(b64);
    unsigned char *key = xmalloc(n + 3);
    int k = EVP_DecodeBlock(key, (const unsigned char *)b64, (int)n);
    if (k < 0) die("bad base64 in the secret %s", secret);
    while (n > 0 && b64[n - 1] == '=') {  /* EVP_DecodeBlock counts the padding */
        n--;
        k--;
    }
    *len = k;
    return key;
}

/* "v1," + base64(HMAC-SHA256(key, id "." ts "." body)) into out (>= 64 bytes). */
static void sign(const unsigned char *key, int klen, const char *id, const char *ts, const char *body,
                 size_t blen, char *out) {
    size_t il = strlen(id), tl = strlen(ts);
    char *msg = xmalloc(il + tl + blen + 2);
    memcpy(msg, id, il);
    msg[il] = '.';
    memcpy(msg + il + 1, ts, tl);
    msg[il + 1 + tl] = '.';
    memcpy(msg + il + tl + 2, body, blen);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mlen = 0;
    HMAC(EVP_sha256(), key, klen, (unsigned char *)msg, il + tl + 2 + blen, mac, &mlen);
    free(msg);
    memcpy(out, "v1,", 3);
    EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)mlen);
}

/* --- receive ----------------------------------------------------------------- */
typedef struct rec_s {
    int64_t at_us;
    char *path, *id, *ts, *sig, *body;
    size_t blen;
} rec_t;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static rec_t *recs;
static size_t nrecs, caprecs;
static atomic_long requests, connections;
static unsigned char *rkey;
static int rklen;

typedef struct req_s {
    char *buf;
    size_t len, cap;
} req_t;

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
    (void)cls, (void)c, (void)socket_context;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) atomic_fetch_add(&connections, 1);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, char *text, const char *type) {
    struct MHD_Response *r =
        text ? MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE)
             : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (type) MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static int sig_ok(const rec_t *r) {
    if (!r->id[0] || !r->ts[0] || !r->sig[0]) return 0;
    char want[128];
    sign(rkey, rklen, r->id, r->ts, r->body, r->blen, want);
    /* the header may carry several space-separated signatures */
    char *copy = xstrdup(r->sig), *save = NULL;
    int ok = 0;
    for (char *tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
        if (strcmp(tok, want) == 0) ok = 1;
    free(copy);
    return ok;
}

static char *dump(const char *prefix) {
    pthread_mutex_lock(&mu);
    rec_t *all = recs;
    size_t n = nrecs;
    recs = NULL;
    nrecs = caprecs = 0;
    /* keep the others */
    for (size_t i = 0; i < n; i++) {
        if (strncmp(all[i].path, prefix, strlen(prefix)) == 0) continue;
        if (nrecs == caprecs) {
            caprecs = caprecs ? caprecs * 2 : 1024;
            recs = realloc(recs, caprecs * sizeof *recs);
            if (!recs) die("%s", "out of memory");
        }
        recs[nrecs++] = all[i];
        all[i].path = NULL;
    }
    pthread_mutex_unlock(&mu);
    char *out = NULL;
    size_t olen = 0;
    FILE *f = open_memstream(&out, &olen);
    if (!f) die("%s", "open_memstream failed");
    for (size_t i = 0; i < n; i++) {
        rec_t *r = &all[i];
        if (!r->path) continue;
        for (size_t j = 0; j < r->blen; j++)
            if (r->body[j] == '\n' || r->body[j] == '\r' || r->body[j] == '\t') r->body[j] = ' ';
        int ok = sig_ok(r);
        fprintf(f, "%lld\t%s\t%s\t%s\t%s\t%.*s\n", (long long)r->at_us, r->path, r->id[0] ? r->id : "-",
                r->ts[0] ? r->ts : "-", ok ? "ok" : "bad", (int)r->blen, r->body);
        free(r->path), free(r->id), free(r->ts), free(r->sig), free(r->body);
    }
    free(all);
    fclose(f);
    return out;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *data, size_t *data_size, void **con_cls) {
    (void)cls, (void)version;
    if (strcmp(method, "POST") == 0) {
        req_t *q = *con_cls;
        if (!q) {
            q = calloc(1, sizeof *q);
            if (!q) return MHD_NO;
            *con_cls = q;
            return MHD_YES;
        }
        if (*data_size) {
            if (q->len + *data_size + 1 > q->cap) {
                q->cap = (q->len + *data_size + 1) * 2;
                q->buf = realloc(q->buf, q->cap);
                if (!q->buf) return MHD_NO;
            }
            memcpy(q->buf + q->len, data, *data_size);
            q->len += *data_size;
            *data_size = 0;
            return MHD_YES;
        }
        rec_t r = {.at_us = now_us()};
        const char *h;
        r.path = xstrdup(url);
        r.id = xstrdup((h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-id")) ? h : "");
        r.ts = xstrdup((h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-timestamp")) ? h : "");
        r.sig = xstrdup((h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-signature")) ? h : "");
        r.body = q->buf ? q->buf : xstrdup("");
        r.blen = q->len;
        q->buf = NULL;
        pthread_mutex_lock(&mu);
        if (nrecs == caprecs) {
            caprecs = caprecs ? caprecs * 2 : 16384;
            recs = realloc(recs, caprecs * sizeof *recs);
            if (!recs) die("%s", "out of memory");
        }
        recs[nrecs++] = r;
        pthread_mutex_unlock(&mu);
        atomic_fetch_add(&requests, 1);
        return reply(c, MHD_HTTP_NO_CONTENT, NULL, NULL);
    }
    if (strcmp(method, "GET") != 0) return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, NULL, NULL);
    const char *prefix = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "prefix");
    if (!prefix) prefix = "";
    char small[256];
    if (strcmp(url, "/count") == 0) {
        size_t n = 0;
        pthread_mutex_lock(&mu);
        for (size_t i = 0; i < nrecs; i++)
            if (strncmp(recs[i].path, prefix, strlen(prefix)) == 0) n++;
        pthread_mutex_unlock(&mu);
        snprintf(small, sizeof small, "%zu\n", n);
        return reply(c, MHD_HTTP_OK, xstrdup(small), "text/plain");
    }
    if (strcmp(url, "/dump") == 0) return reply(c, MHD_HTTP_OK, dump(prefix), "text/tab-separated-values");
    if (strcmp(url, "/stats") == 0) {
        snprintf(small, sizeof small, "{\"requests\": %ld, \"connections\": %ld, \"cpu_s\": %.3f}\n",
                 atomic_load(&requests), atomic_load(&connections), cpu_s());
        return reply(c, MHD_HTTP_OK, xstrdup(small), "application/json");
    }
    return reply(c, MHD_HTTP_NOT_FOUND, NULL, NULL);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)cls, (void)c, (void)toe;
    req_t *q = *con_cls;
    if (q) {
        free(q->buf);
        free(q);
        *con_cls = NULL;
    }
}

static int cmd_receive(const char *listen, const char *secret) {
    rkey = secret_key(secret, &rklen);
    const char *colon = strrchr(listen, ':');
    if (!colon) die("LISTEN must be host:port, not %s", listen);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    char host[64];
    snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) die("LISTEN must be an IPv4 address: %s", listen);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_USE_TURBO, 0, NULL, NULL,
        on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE, 2u,
        MHD_OPTION_CONNECTION_LIMIT, 4096u, MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_LISTEN_BACKLOG_SIZE,
        1024u, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        NULL, MHD_OPTION_END);
    if (!d) die("cannot listen on %s", listen);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    fprintf(stderr, "rbench: receiving on http://%s\n", listen);
    while (!stop) pause();
    MHD_stop_daemon(d);
    return 0;
}

/* --- blast ------------------------------------------------------------------- */
typedef struct item_s {
    int64_t due_ms;
    char *id, *path, *body;
    size_t blen;
    int64_t start_us, end_us;
    long status;
} item_t;

static item_t *items;
static size_t nitems;
static atomic_size_t next_item;
static const char *urlbase;
static unsigned char *bkey;
static int bklen;

static size_t discard(char *p, size_t s, size_t n, void *u) {
    (void)p, (void)u;
    return s * n;
}

static void *blaster(void *arg) {
    (void)arg;
    CURL *h = curl_easy_init();
    if (!h) die("%s", "curl_easy_init failed");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    char url[4096];
    for (;;) {
        size_t i = atomic_fetch_add(&next_item, 1);
        if (i >= nitems) break;
        item_t *it = &items[i];
        int64_t wait = it->due_ms * 1000 - now_us();
        if (wait > 0) {
            struct timespec ts = {.tv_sec = wait / 1000000, .tv_nsec = (wait % 1000000) * 1000};
            while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
            }
        }
        it->start_us = now_us();
        char tsbuf[32], sig[128], hid[300], hts[64], hsig[160];
        snprintf(tsbuf, sizeof tsbuf, "%lld", (long long)(it->start_us / 1000000));
        sign(bkey, bklen, it->id, tsbuf, it->body, it->blen, sig);
        snprintf(hid, sizeof hid, "webhook-id: %s", it->id);
        snprintf(hts, sizeof hts, "webhook-timestamp: %s", tsbuf);
        snprintf(hsig, sizeof hsig, "webhook-signature: %s", sig);
        struct curl_slist *hd = NULL;
        hd = curl_slist_append(hd, "Content-Type: application/cloudevents+json");
        hd = curl_slist_append(hd, hid);
        hd = curl_slist_append(hd, hts);
        hd = curl_slist_append(hd, hsig);
        hd = curl_slist_append(hd, "Expect:");
        snprintf(url, sizeof url, "%s%s", urlbase, it->path);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, it->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)it->blen);
        CURLcode rc = curl_easy_perform(h);
        it->end_us = now_us();
        it->status = -1;
        if (rc == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &it->status);
        curl_slist_free_all(hd);
    }
    curl_easy_cleanup(h);
    return NULL;
}

static int cmd_blast(const char *base, const char *in, const char *threads_s, const char *secret,
                     const char *start_s, const char *out) {
    urlbase = base;
    bkey = secret_key(secret, &bklen);
    int threads = atoi(threads_s);
    if (threads < 1 || threads > 512) die("bad THREADS %s", threads_s);
    FILE *f = fopen(in, "r");
    if (!f) die("cannot read %s", in);
    size_t cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) > 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        char *save = NULL, *off = strtok_r(line, "\t", &save), *id = strtok_r(NULL, "\t", &save),
             *path = strtok_r(NULL, "\t", &save), *body = strtok_r(NULL, "", &save);
        if (!off || !id || !path || !body) continue;
        if (nitems == cap) {
            cap = cap ? cap * 2 : 16384;
            items = realloc(items, cap * sizeof *items);
            if (!items) die("%s", "out of memory");
        }
        items[nitems++] = (item_t){.due_ms = atoll(off), .id = xstrdup(id), .path = xstrdup(path),
                                   .body = xstrdup(body), .blen = strlen(body)};
    }
    free(line);
    fclose(f);
    if (!nitems) die("no lines in %s", in);
    int64_t start = atoll(start_s);
    if (start <= 0) start = (now_us() / 1000000 + 2) * 1000;
    for (size_t i = 0; i < nitems; i++) items[i].due_ms += start;
    curl_global_init(CURL_GLOBAL_ALL);
    double c0 = cpu_s();
    pthread_t *t = xmalloc(sizeof *t * (size_t)threads);
    for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, blaster, NULL);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    double cpu = cpu_s() - c0;
    FILE *o = fopen(out, "w");
    if (!o) die("cannot write %s", out);
    size_t ok = 0;
    int64_t first = INT64_MAX, last = 0;
    for (size_t i = 0; i < nitems; i++) {
        item_t *it = &items[i];
        fprintf(o, "%s\t%lld\t%lld\t%lld\t%ld\n", it->id, (long long)it->due_ms, (long long)it->start_us,
                (long long)it->end_us, it->status);
        if (it->status >= 200 && it->status < 300) ok++;
        if (it->start_us < first) first = it->start_us;
        if (it->end_us > last) last = it->end_us;
    }
    fclose(o);
    printf("{\"requests\": %zu, \"ok\": %zu, \"threads\": %d, \"start_ms\": %lld, \"first_start_us\": %lld, "
           "\"last_end_us\": %lld, \"cpu_s\": %.3f}\n",
           nitems, ok, threads, (long long)start, (long long)first, (long long)last, cpu);
    curl_global_cleanup();
    return 0;
}

/* --- follow ------------------------------------------------------------------ */
static int cmd_follow(const char *topic, const char *prefix) {
    const char *brokers = getenv("TE_KAFKA_BROKERS");
    if (!brokers || !*brokers) die("%s", "TE_KAFKA_BROKERS is not set");
    char err[512], group[64];
    snprintf(group, sizeof group, "rbench-follow-%d", (int)getpid());
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof err) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "group.id", group, err, sizeof err) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "fetch.wait.max.ms", "10", err, sizeof err) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "client.id", "rbench", err, sizeof err) != RD_KAFKA_CONF_OK)
        die("%s", err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) die("%s", err);
    rd_kafka_poll_set_consumer(rk);
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1 ||
        md->topics[0].err)
        die("no metadata for topic %s", topic);
    int n = md->topics[0].partition_cnt;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
    for (int p = 0; p < n; p++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000);
        if (e) die("watermarks: %s", rd_kafka_err2str(e));
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = hi;
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_resp_err_t e = rd_kafka_assign(rk, l);
    if (e) die("assign: %s", rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_destroy(l);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    fprintf(stderr, "ready\n");
    size_t plen = strlen(prefix);
    while (!stop) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) continue;
        int64_t at = now_us();
        if (!m->err && m->key && m->key_len >= plen && memcmp(m->key, prefix, plen) == 0) {
            rd_kafka_timestamp_type_t tt;
            int64_t ts = rd_kafka_message_timestamp(m, &tt);
            json_tokener *tok = json_tokener_new();
            json_object *o = json_tokener_parse_ex(tok, m->payload, (int)m->len), *v, *data;
            const char *id = "-", *rid = "-";
            if (o && json_object_object_get_ex(o, "id", &v)) id = json_object_get_string(v);
            if (o && json_object_object_get_ex(o, "data", &data) &&
                json_object_object_get_ex(data, "reminder_id", &v))
                rid = json_object_get_string(v);
            printf("%lld\t%lld\t%s\t%s\n", (long long)ts, (long long)at, id, rid);
            json_object_put(o);
            json_tokener_free(tok);
        }
        rd_kafka_message_destroy(m);
    }
    fflush(stdout);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "receive") == 0) return cmd_receive(argv[2], argv[3]);
    if (argc == 8 && strcmp(argv[1], "blast") == 0)
        return cmd_blast(argv[2], argv[3], argv[4], argv[5], argv[6], argv[7]);
    if (argc == 4 && strcmp(argv[1], "follow") == 0) return cmd_follow(argv[2], argv[3]);
    fprintf(stderr,
            "usage: rbench receive LISTEN SECRET\n"
            "       rbench blast URLBASE INFILE THREADS SECRET START_MS OUTFILE\n"
            "       rbench follow TOPIC PREFIX\n");
    return 2;
}
