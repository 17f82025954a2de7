/* sbench — the client side of the sync benchmark (bench/sync/run.sh,
 * docs/bench-sync.md).  Built by run.sh with cc against libwebsockets,
 * libcurl, json-c and the build's libtodoevents (not part of the CMake
 * build).
 *
 *   sbench run OUTDIR KEY=VALUE...
 *
 * One process, four threads (named, for the CPU split):
 *   sb-ws     one libwebsockets client context (on libev when the library
 *             has it: epoll, so that the client's cost per wakeup does not
 *             grow with the sessions; else poll) holding every WebSocket
 *             session (todo-sync's /api/ws/tasks?token=...); records, per
 *             change message received, the session, the user, the seq and
 *             the receipt time (CLOCK_REALTIME, µs, taken in
 *             LWS_CALLBACK_CLIENT_RECEIVE); the first copy of each (user,
 *             seq) is parsed in full (task id, task version, data.at); the
 *             others only for the seq, checked to follow the session's last
 *             one (gaps, repeats counted);
 *   sb-gen    the load generator: libcurl multi, kept-alive connections to
 *             todo-api, request i at start + i / rate (open loop, at most
 *             INFLIGHT in flight, none started later than 1 s after the
 *             window), round-robin over the part's users; per user the
 *             requests alternate POST /api/tasks (create) and
 *             PATCH /api/tasks/{id} (the task it created last); records when
 *             each request left and when its answer was in, the status and
 *             the task id and version answered;
 *   sb-kafka  the baseline: a te_consumer (the library's consumer, as
 *             todo-sync's) in a group of its own from the end of
 *             sync.events and notification.send — todo-sync's topics and
 *             settings; records, per sync event of a bench user, the user,
 *             seq, task id and version, the receipt time in the handler and
 *             the record's Kafka timestamp (CreateTime: the relay's
 *             producer);
 *   main      runs the scenario (below) and the hook.
 *
 * Keys (defaults): ws=HOST:PORT (todo-sync) api=HOST:PORT (todo-api)
 *   tokens=FILE ("user token" lines, the users in order) sessions=10 (per
 *   user) users_small=100 users_large=1000 (0: no large part) rate=1000
 *   (changes/s asked) warmup=5 seconds=30 (measured) drain=5 (max s after
 *   the last answer) settle=2 pending=256 (handshakes at once) inflight=64
 *   (API requests at once) probe=8 (measured s per probe step; 0: none)
 *   idle=25 (s from the large ramp's end to closing it; 0: none)
 *   evlib=1 (0: poll) kafka=1 (the baseline consumer; TE_KAFKA_BROKERS)
 *   group=NAME (its consumer group) hook=CMD (run through /bin/sh as
 *   "CMD MARK" at each mark, SBENCH_PID in its environment).
 *
 * The scenario (session j belongs to user j / sessions):
 *   mark start; open users_small x sessions, wait for every hello, settle,
 *   mark idle-small; open the rest up to users_large x sessions (ramp
 *   "large"), settle, mark idle-large, wait until `idle` s after the ramp,
 *   mark idle-large-end; close those again, settle, mark closed; the probe
 *   (parts probe1..3 over users_small: the asked rate, then up to two steps
 *   at 80 % of what was answered, until one is steady); part "small": the
 *   load over users_small at the probe's rate (warm-up, then the marks
 *   small-start / small-end around the measured seconds, then until every
 *   answer is in and nothing arrives for 1 s, at most drain s); reopen the
 *   rest (ramp "reopen"); part "large": the same over users_large; close
 *   everything, mark end.
 *
 * Files in OUTDIR (tab-separated, times µs since the epoch):
 *   connect-RAMP.tsv  session user t_connect t_established t_hello hello_seq
 *   gen-PART.tsv      user op(c|u) task_id version t_sched t_sent t_done http_status
 *   ws-PART.tsv       session user seq t_recv
 *   changes-PART.tsv  user seq type task_id version at_us   (first WS copy)
 *   kafka-PART.tsv    user seq task_id version t_recv kafka_ts_ms
 * stdout: one JSON line per ramp, per part and for the probe (counts,
 * anomalies, close codes, the process's CPU by thread). */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <json-c/json.h>
#include <libwebsockets.h>
#include <todoevents/todoevents.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define WS_PATH "/api/ws/tasks"

static void die(const char *fmt, const char *a) {
    fprintf(stderr, "sbench: ");
    fprintf(stderr, fmt, a ? a : "");
    fprintf(stderr, "\n");
    exit(1);
}

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_us(int64_t us) {
    if (us <= 0) return;
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static void *xcalloc(size_t n, size_t sz) {
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p) die("%s", "out of memory");
    return p;
}

static char *xstrdup(const char *s) {
    char *p = strdup(s ? s : "");
    if (!p) die("%s", "out of memory");
    return p;
}

/* A growable array of fixed-size records. */
typedef struct vec_s {
    char *v;
    size_t n, cap, sz;
} vec_t;

static void *vec_push(vec_t *a) {
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 4096;
        a->v = realloc(a->v, a->cap * a->sz);
        if (!a->v) die("%s", "out of memory");
    }
    return a->v + a->sz * a->n++;
}
#define VEC(T) ((vec_t){.sz = sizeof(T)})
#define AT(a, T, i) ((T *)((a).v + (size_t)(i) * sizeof(T)))

/* --- settings ------------------------------------------------------------------ */
static const char *opt_ws, *opt_api, *opt_tokens, *opt_hook = "", *opt_group = "sbench";
static long opt_sessions = 10, opt_users_small = 100, opt_users_large = 1000, opt_rate = 1000, opt_warmup = 5,
            opt_seconds = 30, opt_drain = 5, opt_settle = 2, opt_pending = 256, opt_inflight = 64, opt_kafka = 1,
            opt_probe = 10, opt_idle = 25, opt_evlib = 1;

/* --- users ------------------------------------------------------------------------ */
typedef struct user_s {
    char *name, *token, *path;   /* path: /api/ws/tasks?token=... */
    struct curl_slist *headers;  /* Authorization, Content-Type */
    /* sb-ws: the highest seq whose first copy was parsed */
    long long parsed_seq;
    /* sb-gen */
    char last_task[40];
    unsigned count;
    int busy;
} user_t;

static user_t *users;
static size_t nusers;
/* user name -> index: open addressing, built before the threads start */
static int32_t *uhash;
static size_t uhash_cap;

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static void uhash_build(void) {
    uhash_cap = 16;
    while (uhash_cap < nusers * 2) uhash_cap *= 2;
    uhash = xcalloc(uhash_cap, sizeof *uhash);
    for (size_t i = 0; i < uhash_cap; i++) uhash[i] = -1;
    for (size_t u = 0; u < nusers; u++) {
        size_t h = hash_bytes(users[u].name, strlen(users[u].name)) & (uhash_cap - 1);
        while (uhash[h] >= 0) h = (h + 1) & (uhash_cap - 1);
        uhash[h] = (int32_t)u;
    }
}

static int32_t user_index(const char *name) {
    if (!name) return -1;
    size_t h = hash_bytes(name, strlen(name)) & (uhash_cap - 1);
    for (; uhash[h] >= 0; h = (h + 1) & (uhash_cap - 1))
        if (strcmp(users[uhash[h]].name, name) == 0) return uhash[h];
    return -1;
}

static void read_tokens(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) die("cannot read %s", path);
    char *line = NULL;
    size_t lcap = 0, cap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) > 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        char *save = NULL, *name = strtok_r(line, " \t", &save), *tok = strtok_r(NULL, " \t", &save);
        if (!name || !tok) continue;
        if (nusers == cap) {
            cap = cap ? cap * 2 : 1024;
            users = realloc(users, cap * sizeof *users);
            if (!users) die("%s", "out of memory");
        }
        user_t *u = &users[nusers++];
        memset(u, 0, sizeof *u);
        u->name = xstrdup(name);
        u->token = xstrdup(tok);
        size_t n = strlen(WS_PATH) + strlen(tok) + 16;
        u->path = xcalloc(1, n);
        snprintf(u->path, n, "%s?token=%s", WS_PATH, tok);
        char h[4096];
        snprintf(h, sizeof h, "Authorization: Bearer %s", tok);
        u->headers = curl_slist_append(NULL, h);
        u->headers = curl_slist_append(u->headers, "Content-Type: application/json");
        u->headers = curl_slist_append(u->headers, "Expect:");
    }
    free(line);
    fclose(f);
    if (!nusers) die("no \"user token\" lines in %s", path);
}

/* --- records ---------------------------------------------------------------------- */
typedef struct ws_rec_s {
    uint32_t sess, user;
    long long seq;
    int64_t recv_us;
} ws_rec_t;

typedef struct change_rec_s {
    uint32_t user;
    int version;
    long long seq;
    int64_t at_us;
    char type[16];
    char task[40];
} change_rec_t;

typedef struct kafka_rec_s {
    uint32_t user;
    int version;
    long long seq;
    int64_t recv_us, ts_ms;
    char task[40];
} kafka_rec_t;

typedef struct gen_rec_s {
    uint32_t user;
    char op;
    int version;
    long status;
    int64_t sched_us, sent_us, done_us;
    char task[40];
} gen_rec_t;

static pthread_mutex_t rec_mu = PTHREAD_MUTEX_INITIALIZER;
static vec_t ws_recs, change_recs, kafka_recs; /* under rec_mu */
static atomic_llong last_ws_us;                /* the last change message's receipt */
static atomic_long ws_changes;                 /* change messages received (all parts) */

/* --- WebSocket sessions (sb-ws) -------------------------------------------------- */
enum { S_OFF = 0, S_CONNECTING, S_OPEN, S_READY };

typedef struct sess_s {
    struct lws *wsi;
    uint32_t idx, user;
    uint8_t state, want, ramp_done;
    int64_t t_conn, t_est, t_hello;
    long long hello_seq, last_seq;
    char *frag; /* a fragmented message being received */
    size_t fraglen, fragcap;
} sess_t;

static sess_t *sess;
static size_t nsess;
static struct lws_context *ctx;
static char ws_host[128];
static int ws_port;
/* commands from main: open / close sessions [lo, hi) */
static pthread_mutex_t cmd_mu = PTHREAD_MUTEX_INITIALIZER;
static size_t cmd_open_lo, cmd_open_hi, cmd_close_lo, cmd_close_hi;
static int cmd_open, cmd_close;
/* sb-ws state, read by main */
static size_t open_cursor, open_hi;
static atomic_long n_pending, n_ready, n_connected; /* connecting or open / hello received / wsi alive */
/* anomalies and counts (sb-ws only, read by main between parts) */
static atomic_long conn_errors, unexpected_closes, seq_gaps, seq_dups, other_msgs, parse_errors;
static atomic_long close_codes[5000];
static char first_error[256];

static void pump(void) {
    while (open_cursor < open_hi && atomic_load(&n_pending) < opt_pending) {
        sess_t *s = &sess[open_cursor++];
        if (!s->want || s->state != S_OFF) continue;
        struct lws_client_connect_info ci;
        memset(&ci, 0, sizeof ci);
        ci.context = ctx;
        ci.address = ws_host;
        ci.port = ws_port;
        ci.path = users[s->user].path;
        ci.host = ws_host;
        ci.origin = ws_host;
        ci.protocol = "todo.v1";
        ci.local_protocol_name = "todo.v1";
        ci.ietf_version_or_minus_one = -1;
        ci.opaque_user_data = s;
        ci.pwsi = &s->wsi;
        s->state = S_CONNECTING;
        s->t_conn = now_us();
        s->t_est = s->t_hello = 0;
        s->ramp_done = 0;
        atomic_fetch_add(&n_pending, 1);
        atomic_fetch_add(&n_connected, 1);
        if (!lws_client_connect_via_info(&ci)) {
            s->state = S_OFF;
            s->wsi = NULL;
            atomic_fetch_sub(&n_pending, 1);
            atomic_fetch_sub(&n_connected, 1);
            atomic_fetch_add(&conn_errors, 1);
        }
    }
}

static void commands(void) {
    pthread_mutex_lock(&cmd_mu);
    int o = cmd_open, c = cmd_close;
    size_t olo = cmd_open_lo, ohi = cmd_open_hi, clo = cmd_close_lo, chi = cmd_close_hi;
    cmd_open = cmd_close = 0;
    pthread_mutex_unlock(&cmd_mu);
    if (c)
        for (size_t i = clo; i < chi; i++) {
            sess[i].want = 0;
            if (sess[i].wsi) lws_callback_on_writable(sess[i].wsi);
        }
    if (o) {
        for (size_t i = olo; i < ohi; i++) sess[i].want = 1;
        open_cursor = olo;
        open_hi = ohi;
    }
    pump();
}

static long long parse_ll(const char *p) {
    while (*p == ' ') p++;
    return strtoll(p, NULL, 10);
}

/* "2025-01-02T03:04:05.678Z" -> µs since the epoch (0 when not parsable) */
static int64_t parse_ts_us(const char *s) {
    te_time_t t = 0;
    int off = 0;
    if (!s || te_time_parse(s, &t, &off, NULL, 0) != TE_OK) return 0;
    return t;
}

/* The first copy of a change for its user: task id, version, data.at. */
static void parse_change(sess_t *s, const char *text, long long seq) {
    json_object *o = json_tokener_parse(text), *data = NULL, *v = NULL, *task = NULL;
    change_rec_t r;
    memset(&r, 0, sizeof r);
    r.user = s->user;
    r.seq = seq;
    if (!o) {
        atomic_fetch_add(&parse_errors, 1);
        return;
    }
    if (json_object_object_get_ex(o, "type", &v)) snprintf(r.type, sizeof r.type, "%s", json_object_get_string(v));
    if (json_object_object_get_ex(o, "data", &data)) {
        if (json_object_object_get_ex(data, "task_id", &v))
            snprintf(r.task, sizeof r.task, "%s", json_object_get_string(v));
        if (json_object_object_get_ex(data, "task", &task) && task &&
            json_object_object_get_ex(task, "version", &v))
            r.version = json_object_get_int(v);
        if (json_object_object_get_ex(data, "at", &v)) r.at_us = parse_ts_us(json_object_get_string(v));
    }
    json_object_put(o);
    pthread_mutex_lock(&rec_mu);
    *(change_rec_t *)vec_push(&change_recs) = r;
    pthread_mutex_unlock(&rec_mu);
}

static void on_message(sess_t *s, const char *text, size_t len, int64_t t) {
    (void)len;
    if (strncmp(text, "{\"type\":\"task.", 14) == 0) {
        const char *p = strstr(text, "\"seq\":");
        long long seq = p ? parse_ll(p + 6) : -1;
        if (s->state == S_READY) {
            if (seq == s->last_seq + 1) s->last_seq = seq;
            else if (seq <= s->last_seq) atomic_fetch_add(&seq_dups, 1);
            else {
                atomic_fetch_add(&seq_gaps, 1);
                s->last_seq = seq;
            }
        }
        pthread_mutex_lock(&rec_mu);
        *(ws_rec_t *)vec_push(&ws_recs) = (ws_rec_t){.sess = s->idx, .user = s->user, .seq = seq, .recv_us = t};
        pthread_mutex_unlock(&rec_mu);
        atomic_store(&last_ws_us, t);
        atomic_fetch_add(&ws_changes, 1);
        user_t *u = &users[s->user];
        if (seq > u->parsed_seq) {
            u->parsed_seq = seq;
            parse_change(s, text, seq);
        }
        return;
    }
    if (strncmp(text, "{\"type\":\"hello\"", 15) == 0 && s->state == S_OPEN) {
        const char *p = strstr(text, "\"seq\":");
        s->hello_seq = s->last_seq = p ? parse_ll(p + 6) : 0;
        s->t_hello = t;
        s->state = S_READY;
        atomic_fetch_add(&n_ready, 1);
        atomic_fetch_sub(&n_pending, 1);
        if (!s->want) lws_callback_on_writable(s->wsi);
        lws_cancel_service(ctx); /* the next handshake */
        return;
    }
    atomic_fetch_add(&other_msgs, 1);
    if (!first_error[0]) snprintf(first_error, sizeof first_error, "unexpected message: %.200s", text);
}

static void session_gone(sess_t *s) {
    if (s->state == S_READY) atomic_fetch_sub(&n_ready, 1);
    else if (s->state == S_CONNECTING || s->state == S_OPEN) atomic_fetch_sub(&n_pending, 1);
    if (s->state != S_OFF) atomic_fetch_sub(&n_connected, 1);
    if (s->want) atomic_fetch_add(&unexpected_closes, 1);
    s->state = S_OFF;
    s->wsi = NULL;
    s->want = 0; /* not reopened: the missing messages show in the figures */
    free(s->frag);
    s->frag = NULL;
    s->fraglen = s->fragcap = 0;
    lws_cancel_service(ctx);
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    (void)user;
    if (reason == LWS_CALLBACK_EVENT_WAIT_CANCELLED) {
        commands();
        return 0;
    }
    sess_t *s = wsi ? lws_get_opaque_user_data(wsi) : NULL;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (!s) return 0;
        atomic_fetch_add(&conn_errors, 1);
        if (!first_error[0])
            snprintf(first_error, sizeof first_error, "connection error: %.200s", in ? (const char *)in : "?");
        s->want = 0;
        session_gone(s);
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (!s) return 0;
        s->state = S_OPEN;
        s->t_est = now_us();
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE: {
        if (!s) return 0;
        int64_t t = now_us();
        int whole = lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi);
        if (whole && !s->fraglen) { /* the usual case: one piece, copied to be NUL-terminated */
            static char *buf;
            static size_t cap;
            if (len + 1 > cap) {
                cap = (len + 1) * 2;
                buf = realloc(buf, cap);
                if (!buf) die("%s", "out of memory");
            }
            memcpy(buf, in, len);
            buf[len] = 0;
            on_message(s, buf, len, t);
            return 0;
        }
        if (s->fraglen + len + 1 > s->fragcap) {
            s->fragcap = (s->fraglen + len + 1) * 2;
            s->frag = realloc(s->frag, s->fragcap);
            if (!s->frag) die("%s", "out of memory");
        }
        memcpy(s->frag + s->fraglen, in, len);
        s->fraglen += len;
        s->frag[s->fraglen] = 0;
        if (whole) {
            on_message(s, s->frag, s->fraglen, t);
            s->fraglen = 0;
        }
        return 0;
    }
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (s && !s->want) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)"bye", 3);
            return -1;
        }
        return 0;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (in && len >= 2) {
            unsigned code = ((unsigned)((unsigned char *)in)[0] << 8) | ((unsigned char *)in)[1];
            if (code < 5000) atomic_fetch_add(&close_codes[code], 1);
            if (!first_error[0])
                snprintf(first_error, sizeof first_error, "server closed session %u with %u: %.*s",
                         s ? s->idx : 0, code, (int)(len - 2 > 150 ? 150 : len - 2), (char *)in + 2);
        }
        return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (s) session_gone(s);
        return 0;
    default:
        return 0;
    }
}

static void *ws_main(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "sb-ws");
    /* with an event library lws_service() runs its loop and does not return */
    while (lws_service(ctx, 0) >= 0) {
    }
    return NULL;
}

static void ws_command(int open, size_t lo, size_t hi) {
    pthread_mutex_lock(&cmd_mu);
    if (open) {
        cmd_open = 1, cmd_open_lo = lo, cmd_open_hi = hi;
    } else {
        cmd_close = 1, cmd_close_lo = lo, cmd_close_hi = hi;
    }
    pthread_mutex_unlock(&cmd_mu);
    lws_cancel_service(ctx);
}

/* --- the load generator (sb-gen) ------------------------------------------------ */
typedef struct req_s {
    CURL *h;
    size_t rec; /* index into gen_recs */
    char body[1024];
    char resp[16384];
    size_t resp_len;
} req_t;

static vec_t gen_recs; /* sb-gen while it runs, then main */
static size_t gen_users;
static int64_t gen_start_us, gen_cutoff_us;
static long gen_total;
static atomic_long gen_done_count;

static size_t on_body(char *p, size_t sz, size_t n, void *u) {
    req_t *r = u;
    size_t k = sz * n;
    if (r->resp_len + k < sizeof r->resp) {
        memcpy(r->resp + r->resp_len, p, k);
        r->resp_len += k;
    }
    return k;
}

static const char *const PRIO[] = {"low", "medium", "high", "urgent"};
static const char *const TAGS[] = {"\"work\",\"reports\",\"q4\"", "\"home\",\"errands\"",
                                   "\"work\",\"meetings\",\"team\"", "\"personal\",\"health\""};
static const char *const ZONES[] = {"Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC"};

static void start_request(CURLM *m, req_t *r, long i, char *url_buf, size_t url_size) {
    uint32_t ui = (uint32_t)(i % (long)gen_users);
    user_t *u = &users[ui];
    gen_rec_t *g = vec_push(&gen_recs);
    memset(g, 0, sizeof *g);
    g->user = ui;
    g->sched_us = gen_start_us + (int64_t)((double)i * 1e6 / (double)opt_rate);
    int update = (u->count++ % 2 == 1) && u->last_task[0] && !u->busy;
    if (update) {
        g->op = 'u';
        snprintf(g->task, sizeof g->task, "%s", u->last_task);
        snprintf(url_buf, url_size, "http://%s/api/tasks/%s", opt_api, u->last_task);
        snprintf(r->body, sizeof r->body, "{\"title\":\"Prepare the quarterly report %ld (revised)\",\"priority\":\"%s\"}",
                 i, PRIO[(i + 1) % 4]);
    } else {
        g->op = 'c';
        snprintf(url_buf, url_size, "http://%s/api/tasks", opt_api);
        snprintf(r->body, sizeof r->body,
                 "{\"title\":\"Prepare the quarterly report %ld\",\"description\":\"Collect the figures from "
                 "finance, reconcile them with the forecast, update the slides and send the deck to the whole team "
                 "before the Monday planning meeting (item %ld).\",\"priority\":\"%s\",\"tags\":[%s],"
                 "\"due_date\":\"2027-%02ld-%02ldT%02ld:30:00Z\",\"timezone\":\"%s\"}",
                 i, i, PRIO[i % 4], TAGS[i % 4], i % 12 + 1, i % 28 + 1, i % 24, ZONES[i % 4]);
    }
    u->busy = 1;
    r->rec = gen_recs.n - 1;
    r->resp_len = 0;
    curl_easy_setopt(r->h, CURLOPT_URL, url_buf);
    curl_easy_setopt(r->h, CURLOPT_HTTPHEADER, u->headers);
    curl_easy_setopt(r->h, CURLOPT_CUSTOMREQUEST, update ? "PATCH" : NULL);
    curl_easy_setopt(r->h, CURLOPT_POSTFIELDS, r->body);
    curl_easy_setopt(r->h, CURLOPT_POSTFIELDSIZE, (long)strlen(r->body));
    curl_easy_setopt(r->h, CURLOPT_PRIVATE, r);
    g->sent_us = now_us();
    curl_multi_add_handle(m, r->h);
}

static void finish_request(CURLM *m, req_t *r, CURLcode rc) {
    gen_rec_t *g = AT(gen_recs, gen_rec_t, r->rec);
    g->done_us = now_us();
    g->status = -1;
    if (rc == CURLE_OK) curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &g->status);
    curl_multi_remove_handle(m, r->h);
    user_t *u = &users[g->user];
    u->busy = 0;
    if (g->status >= 200 && g->status < 300) {
        r->resp[r->resp_len] = 0;
        json_object *o = json_tokener_parse(r->resp), *v = NULL;
        if (o && json_object_object_get_ex(o, "id", &v)) snprintf(g->task, sizeof g->task, "%s", json_object_get_string(v));
        if (o && json_object_object_get_ex(o, "version", &v)) g->version = json_object_get_int(v);
        json_object_put(o);
        if (g->op == 'c' && g->task[0]) snprintf(u->last_task, sizeof u->last_task, "%s", g->task);
    }
    atomic_fetch_add(&gen_done_count, 1);
}

static void *gen_main(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "sb-gen");
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)opt_inflight);
    size_t npool = (size_t)opt_inflight, nfree = npool;
    req_t *pool = xcalloc(npool, sizeof *pool);
    req_t **freel = xcalloc(npool, sizeof *freel);
    for (size_t i = 0; i < npool; i++) {
        req_t *r = &pool[i];
        r->h = curl_easy_init();
        if (!r->h) die("%s", "curl_easy_init failed");
        curl_easy_setopt(r->h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(r->h, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(r->h, CURLOPT_TIMEOUT_MS, 10000L);
        curl_easy_setopt(r->h, CURLOPT_NOSIGNAL, 1L);
        freel[i] = r;
    }
    char url[256];
    long next = 0;
    int running = 0;
    while (next < gen_total || nfree < npool) {
        int64_t t = now_us();
        if (next < gen_total && t > gen_cutoff_us) gen_total = next; /* saturated: no backlog beyond the part */
        while (next < gen_total && nfree > 0 &&
               gen_start_us + (int64_t)((double)next * 1e6 / (double)opt_rate) <= t)
            start_request(m, freel[--nfree], next++, url, sizeof url);
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)))
            if (msg->msg == CURLMSG_DONE) {
                req_t *r = NULL;
                curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
                CURLcode rc = msg->data.result;
                finish_request(m, r, rc);
                freel[nfree++] = r;
            }
        int wait_ms = 100;
        if (next < gen_total && nfree > 0) {
            int64_t due = gen_start_us + (int64_t)((double)next * 1e6 / (double)opt_rate) - now_us();
            wait_ms = due <= 0 ? 0 : (int)((due + 999) / 1000);
            if (wait_ms > 100) wait_ms = 100;
        }
        if (wait_ms > 0) curl_multi_poll(m, NULL, 0, wait_ms, NULL);
    }
    for (size_t i = 0; i < npool; i++) curl_easy_cleanup(pool[i].h);
    free(pool);
    free(freel);
    curl_multi_cleanup(m);
    return NULL;
}

/* --- the baseline consumer (sb-kafka) --------------------------------------------- */
static te_consumer_t *consumer;

static te_handler_result_t on_event(const te_event_t *ev, const te_record_t *rec, void *opaque, char *errstr,
                                    size_t errstr_size) {
    (void)opaque, (void)errstr, (void)errstr_size;
    int64_t t = now_us();
    if (!ev || strncmp(te_event_type(ev), "com.todo.sync.task.", 19) != 0) return TE_HANDLER_OK;
    json_object *data = (json_object *)te_event_data_object(ev), *v = NULL, *task = NULL;
    if (!data || !json_object_object_get_ex(data, "user_id", &v)) return TE_HANDLER_OK;
    int32_t ui = user_index(json_object_get_string(v));
    if (ui < 0) return TE_HANDLER_OK; /* not a bench user */
    kafka_rec_t r;
    memset(&r, 0, sizeof r);
    r.user = (uint32_t)ui;
    r.recv_us = t;
    r.ts_ms = rec ? rec->timestamp_ms : -1;
    if (json_object_object_get_ex(data, "seq", &v)) r.seq = json_object_get_int64(v);
    if (json_object_object_get_ex(data, "task_id", &v)) snprintf(r.task, sizeof r.task, "%s", json_object_get_string(v));
    if (json_object_object_get_ex(data, "task", &task) && task && json_object_object_get_ex(task, "version", &v))
        r.version = json_object_get_int(v);
    pthread_mutex_lock(&rec_mu);
    *(kafka_rec_t *)vec_push(&kafka_recs) = r;
    pthread_mutex_unlock(&rec_mu);
    return TE_HANDLER_OK;
}

static void *kafka_main(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "sb-kafka");
    char err[TE_ERRSTR_SIZE];
    if (te_consumer_run(consumer, err, sizeof err) != TE_OK) fprintf(stderr, "sbench: consumer: %s\n", err);
    return NULL;
}

static void kafka_start(pthread_t *t) {
    const char *brokers = getenv("TE_KAFKA_BROKERS");
    if (!brokers || !*brokers) die("%s", "TE_KAFKA_BROKERS is not set");
    char err[TE_ERRSTR_SIZE];
    te_conf_t *conf = te_conf_new();
    /* todo-sync's settings: its group of its own, from the end of the topics */
    if (te_conf_set(conf, "bootstrap.servers", brokers, err, sizeof err) != TE_OK ||
        te_conf_set(conf, "client.id", "sbench", err, sizeof err) != TE_OK ||
        te_conf_set(conf, "group.id", opt_group, err, sizeof err) != TE_OK ||
        te_conf_set(conf, "auto.offset.reset", "latest", err, sizeof err) != TE_OK ||
        te_conf_set(conf, "te.log.level", "3", err, sizeof err) != TE_OK)
        die("consumer settings: %s", err);
    static const char *const TOPICS[] = {TE_TOPIC_SYNC_EVENTS, TE_TOPIC_NOTIFICATION_SEND};
    consumer = te_consumer_new(conf, TOPICS, 2, on_event, NULL, err, sizeof err);
    te_conf_destroy(conf);
    if (!consumer) die("consumer: %s", err);
    pthread_create(t, NULL, kafka_main, NULL);
    for (int i = 0; i < 600; i++) {
        te_consumer_stats_t st;
        te_consumer_stats(consumer, &st);
        if (st.rebalances > 0) {
            sleep_us(1000000); /* the end offsets resolved */
            return;
        }
        sleep_us(100000);
    }
    die("%s", "the baseline consumer got no partitions within 60 s");
}

/* --- the scenario (main) ----------------------------------------------------------- */
static const char *outdir;
static const char *client_loop = "poll";

static void hook(const char *mark) {
    fprintf(stderr, "sbench: mark %s\n", mark);
    if (!opt_hook[0]) return;
    size_t n = strlen(opt_hook) + strlen(mark) + 4;
    char *cmd = xcalloc(1, n);
    snprintf(cmd, n, "%s %s", opt_hook, mark);
    int rc = system(cmd);
    if (rc != 0) fprintf(stderr, "sbench: hook %s exited with %d\n", cmd, rc);
    free(cmd);
}

static FILE *out_file(const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", outdir, name);
    FILE *f = fopen(path, "w");
    if (!f) die("cannot write %s", path);
    return f;
}

/* CPU seconds of this process's threads, as a JSON object "name/tid": s. */
static void thread_cpu_json(FILE *o) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)getpid());
    double tck = (double)sysconf(_SC_CLK_TCK);
    DIR *d = opendir(path);
    struct dirent *e;
    int first = 1;
    fprintf(o, "{");
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[400], comm[64] = "?", buf[1024];
        unsigned long ut = 0, st = 0;
        snprintf(p, sizeof p, "%s/%s/comm", path, e->d_name);
        FILE *f = fopen(p, "r");
        if (f) {
            if (fgets(comm, sizeof comm, f)) comm[strcspn(comm, "\n\"\\")] = 0;
            fclose(f);
        }
        snprintf(p, sizeof p, "%s/%s/stat", path, e->d_name);
        if ((f = fopen(p, "r"))) {
            char *q = fgets(buf, sizeof buf, f) ? strrchr(buf, ')') : NULL;
            if (q) sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
            fclose(f);
        }
        fprintf(o, "%s\"%s/%s\": %.2f", first ? "" : ", ", comm, e->d_name, (double)(ut + st) / tck);
        first = 0;
    }
    if (d) closedir(d);
    fprintf(o, "}");
}

static void wait_ready(const char *what, long want_ready, long want_connected, int timeout_s) {
    int64_t until = now_us() + (int64_t)timeout_s * 1000000;
    while (now_us() < until) {
        if (atomic_load(&n_ready) == want_ready && atomic_load(&n_connected) == want_connected &&
            atomic_load(&n_pending) == 0)
            return;
        sleep_us(20000);
    }
    fprintf(stderr, "sbench: %s: gave up after %d s with %ld ready, %ld connected (wanted %ld, %ld)\n", what,
            timeout_s, atomic_load(&n_ready), atomic_load(&n_connected), want_ready, want_connected);
}

static void counts_json(FILE *o) {
    fprintf(o, "\"conn_errors\": %ld, \"unexpected_closes\": %ld, \"seq_gaps\": %ld, \"seq_dups\": %ld, "
               "\"other_msgs\": %ld, \"parse_errors\": %ld, \"close_codes\": {",
            atomic_load(&conn_errors), atomic_load(&unexpected_closes), atomic_load(&seq_gaps),
            atomic_load(&seq_dups), atomic_load(&other_msgs), atomic_load(&parse_errors));
    int first = 1;
    for (int c = 0; c < 5000; c++)
        if (atomic_load(&close_codes[c])) {
            fprintf(o, "%s\"%d\": %ld", first ? "" : ", ", c, atomic_load(&close_codes[c]));
            first = 0;
        }
    fprintf(o, "}, \"first_error\": ");
    /* a JSON string */
    fputc('"', o);
    for (const char *p = first_error; *p; p++) {
        if (*p == '"' || *p == '\\') fputc('\\', o);
        if ((unsigned char)*p >= 0x20) fputc(*p, o);
    }
    fputc('"', o);
}

/* Opens sessions [lo, hi), waits for their hellos; writes connect-NAME.tsv. */
static int64_t ramp(const char *name, size_t lo, size_t hi, long ready_after) {
    int64_t t0 = now_us();
    ws_command(1, lo, hi);
    wait_ready(name, ready_after, ready_after, 120);
    int64_t t1 = now_us();
    char fn[128];
    snprintf(fn, sizeof fn, "connect-%s.tsv", name);
    FILE *f = out_file(fn);
    long ok = 0;
    for (size_t i = lo; i < hi; i++) {
        sess_t *s = &sess[i];
        fprintf(f, "%zu\t%u\t%lld\t%lld\t%lld\t%lld\n", i, s->user, (long long)s->t_conn, (long long)s->t_est,
                (long long)s->t_hello, s->state == S_READY ? s->hello_seq : -1);
        if (s->state == S_READY) ok++;
    }
    fclose(f);
    printf("{\"label\": \"ramp-%s\", \"sessions\": %zu, \"ready\": %ld, \"seconds\": %.3f, \"client_loop\": \"%s\", ",
           name, hi - lo, ok, (double)(t1 - t0) / 1e6, client_loop);
    counts_json(stdout);
    printf("}\n");
    fflush(stdout);
    return t1;
}

static void close_sessions(const char *what, size_t lo, size_t hi, long ready_after) {
    ws_command(0, lo, hi);
    wait_ready(what, ready_after, ready_after, 60);
}

static void write_part(const char *part, int64_t t0, int64_t w0, int64_t w1, int64_t t_end, long warmup, long seconds,
                       const char *more) {
    char fn[128];
    pthread_mutex_lock(&rec_mu);
    vec_t ws = ws_recs, ch = change_recs, kf = kafka_recs;
    ws_recs = VEC(ws_rec_t), change_recs = VEC(change_rec_t), kafka_recs = VEC(kafka_rec_t);
    pthread_mutex_unlock(&rec_mu);
    snprintf(fn, sizeof fn, "ws-%s.tsv", part);
    FILE *f = out_file(fn);
    for (size_t i = 0; i < ws.n; i++) {
        ws_rec_t *r = AT(ws, ws_rec_t, i);
        fprintf(f, "%u\t%u\t%lld\t%lld\n", r->sess, r->user, r->seq, (long long)r->recv_us);
    }
    fclose(f);
    snprintf(fn, sizeof fn, "changes-%s.tsv", part);
    f = out_file(fn);
    for (size_t i = 0; i < ch.n; i++) {
        change_rec_t *r = AT(ch, change_rec_t, i);
        fprintf(f, "%u\t%lld\t%s\t%s\t%d\t%lld\n", r->user, r->seq, r->type[0] ? r->type : "-",
                r->task[0] ? r->task : "-", r->version, (long long)r->at_us);
    }
    fclose(f);
    snprintf(fn, sizeof fn, "kafka-%s.tsv", part);
    f = out_file(fn);
    for (size_t i = 0; i < kf.n; i++) {
        kafka_rec_t *r = AT(kf, kafka_rec_t, i);
        fprintf(f, "%u\t%lld\t%s\t%d\t%lld\t%lld\n", r->user, r->seq, r->task[0] ? r->task : "-", r->version,
                (long long)r->recv_us, (long long)r->ts_ms);
    }
    fclose(f);
    snprintf(fn, sizeof fn, "gen-%s.tsv", part);
    f = out_file(fn);
    long ok = 0;
    for (size_t i = 0; i < gen_recs.n; i++) {
        gen_rec_t *r = AT(gen_recs, gen_rec_t, i);
        fprintf(f, "%u\t%c\t%s\t%d\t%lld\t%lld\t%lld\t%ld\n", r->user, r->op, r->task[0] ? r->task : "-",
                r->version, (long long)r->sched_us, (long long)r->sent_us, (long long)r->done_us, r->status);
        if (r->status >= 200 && r->status < 300) ok++;
    }
    fclose(f);
    printf("{\"label\": \"part-%s\", \"users\": %zu, \"sessions\": %ld, \"rate\": %ld, \"warmup\": %ld, "
           "\"seconds\": %ld, \"start_us\": %lld, \"window_start_us\": %lld, \"window_end_us\": %lld, "
           "\"end_us\": %lld, \"requests\": %zu, \"ok\": %ld, \"ws_messages\": %zu, \"changes_parsed\": %zu, "
           "\"kafka_records\": %zu, \"cpu_threads\": ",
           part, gen_users, atomic_load(&n_ready), opt_rate, warmup, seconds, (long long)t0, (long long)w0,
           (long long)w1, (long long)t_end, gen_recs.n, ok, ws.n, ch.n, kf.n);
    thread_cpu_json(stdout);
    printf(", %s, ", more);
    counts_json(stdout);
    printf("}\n");
    fflush(stdout);
    free(ws.v), free(ch.v), free(kf.v);
    free(gen_recs.v);
    gen_recs = VEC(gen_rec_t);
}

/* The load over the first `nu` users at opt_rate: `warmup` s, then the
 * measured `seconds` (between the marks PART-start and PART-end when
 * `marks`), then until every answer is in and nothing arrives for 1 s (at
 * most opt_drain s).  No request starts later than 1 s after the window (a
 * saturated API leaves no backlog).  Returns the answers (2xx) per second
 * within the window; *lag_p99_ms: the 99th percentile of (sent - scheduled)
 * of the requests scheduled in the window (how far the API let the
 * schedule slip). */
static int cmp_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

static double load_part(const char *part, size_t nu, long warmup, long seconds, int marks, double *lag_p99_ms) {
    char mark[64];
    gen_users = nu;
    gen_total = opt_rate * (warmup + seconds);
    atomic_store(&gen_done_count, 0);
    for (size_t u = 0; u < nusers; u++) users[u].count = 0, users[u].busy = 0;
    /* the first request a little ahead: the hook's snapshot needs no thread of ours */
    gen_start_us = now_us() + 200000;
    int64_t w0 = gen_start_us + warmup * 1000000, w1 = w0 + seconds * 1000000;
    gen_cutoff_us = w1 + 1000000;
    pthread_t gt;
    pthread_create(&gt, NULL, gen_main, NULL);
    sleep_us(w0 - now_us());
    if (marks) {
        snprintf(mark, sizeof mark, "%s-start", part);
        hook(mark);
    }
    sleep_us(w1 - now_us());
    if (marks) {
        snprintf(mark, sizeof mark, "%s-end", part);
        hook(mark);
    }
    pthread_join(gt, NULL);
    int64_t until = now_us() + opt_drain * 1000000;
    while (now_us() < until) {
        if (now_us() - atomic_load(&last_ws_us) > 1000000) break;
        sleep_us(50000);
    }
    long answered = 0, ok = 0;
    for (size_t i = 0; i < gen_recs.n; i++) {
        gen_rec_t *r = AT(gen_recs, gen_rec_t, i);
        if (r->status >= 200 && r->status < 300) ok++;
    }
    if (!ok) die("%s: todo-api answered none of the requests with 2xx (is it running? see todo-api.log)", part);
    size_t planned = (size_t)(opt_rate * (warmup + seconds));
    long long *lag = xcalloc((gen_recs.n > planned ? gen_recs.n : planned) + 1, sizeof *lag);
    size_t nlag = 0;
    for (size_t i = 0; i < gen_recs.n; i++) {
        gen_rec_t *r = AT(gen_recs, gen_rec_t, i);
        if (r->status >= 200 && r->status < 300 && r->done_us >= w0 && r->done_us < w1) answered++;
        if (r->sched_us >= w0 && r->sched_us < w1) lag[nlag++] = r->sent_us - r->sched_us;
    }
    /* requests never sent (cut off) lag by the rest of the window at least */
    for (size_t i = gen_recs.n; i < planned; i++) {
        int64_t sched = gen_start_us + (int64_t)((double)i * 1e6 / (double)opt_rate);
        if (sched >= w0 && sched < w1) lag[nlag++] = gen_cutoff_us - sched;
    }
    qsort(lag, nlag, sizeof *lag, cmp_ll);
    double p99 = nlag ? (double)lag[nlag * 99 / 100] / 1000.0 : 0;
    free(lag);
    if (lag_p99_ms) *lag_p99_ms = p99;
    double per_s = seconds ? (double)answered / (double)seconds : 0;
    char more[256];
    snprintf(more, sizeof more, "\"answered_per_s\": %.1f, \"lag_p99_ms\": %.1f", per_s, p99);
    write_part(part, gen_start_us, w0, w1, now_us(), warmup, seconds, more);
    return per_s;
}

static long opt_long(const char *k, const char *v) {
    char *end = NULL;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < 0) die("bad value for %s", k);
    return n;
}

static int cmd_run(int argc, char **argv) {
    outdir = argv[2];
    for (int i = 3; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) die("KEY=VALUE expected, not %s", argv[i]);
        *eq = 0;
        const char *k = argv[i], *v = eq + 1;
        if (!strcmp(k, "ws")) opt_ws = v;
        else if (!strcmp(k, "api")) opt_api = v;
        else if (!strcmp(k, "tokens")) opt_tokens = v;
        else if (!strcmp(k, "hook")) opt_hook = v;
        else if (!strcmp(k, "group")) opt_group = v;
        else if (!strcmp(k, "sessions")) opt_sessions = opt_long(k, v);
        else if (!strcmp(k, "users_small")) opt_users_small = opt_long(k, v);
        else if (!strcmp(k, "users_large")) opt_users_large = opt_long(k, v);
        else if (!strcmp(k, "rate")) opt_rate = opt_long(k, v);
        else if (!strcmp(k, "warmup")) opt_warmup = opt_long(k, v);
        else if (!strcmp(k, "seconds")) opt_seconds = opt_long(k, v);
        else if (!strcmp(k, "drain")) opt_drain = opt_long(k, v);
        else if (!strcmp(k, "settle")) opt_settle = opt_long(k, v);
        else if (!strcmp(k, "pending")) opt_pending = opt_long(k, v);
        else if (!strcmp(k, "inflight")) opt_inflight = opt_long(k, v);
        else if (!strcmp(k, "kafka")) opt_kafka = opt_long(k, v);
        else if (!strcmp(k, "probe")) opt_probe = opt_long(k, v);
        else if (!strcmp(k, "idle")) opt_idle = opt_long(k, v);
        else if (!strcmp(k, "evlib")) opt_evlib = opt_long(k, v);
        else die("unknown key %s", k);
    }
    if (!opt_ws || !opt_api || !opt_tokens) die("%s", "ws=, api= and tokens= are required");
    if (opt_rate < 1 || opt_sessions < 1 || opt_users_small < 1 || opt_pending < 1 || opt_inflight < 1)
        die("%s", "rate, sessions, users_small, pending and inflight must be >= 1");
    read_tokens(opt_tokens);
    if (opt_users_large && opt_users_large < opt_users_small) opt_users_large = opt_users_small;
    size_t nmax = (size_t)(opt_users_large ? opt_users_large : opt_users_small);
    if (nmax > nusers) die("%s", "fewer users in tokens= than users_small / users_large");
    uhash_build();
    const char *colon = strrchr(opt_ws, ':');
    if (!colon) die("ws= must be HOST:PORT, not %s", opt_ws);
    snprintf(ws_host, sizeof ws_host, "%.*s", (int)(colon - opt_ws), opt_ws);
    ws_port = atoi(colon + 1);
    nsess = nmax * (size_t)opt_sessions;
    sess = xcalloc(nsess, sizeof *sess);
    for (size_t i = 0; i < nsess; i++) {
        sess[i].idx = (uint32_t)i;
        sess[i].user = (uint32_t)(i / (size_t)opt_sessions);
    }
    ws_recs = VEC(ws_rec_t), change_recs = VEC(change_rec_t), kafka_recs = VEC(kafka_rec_t);
    gen_recs = VEC(gen_rec_t);
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    setenv("SBENCH_PID", pid, 1);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_ALL);

    /* the WebSocket client context: one service thread, every session */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    static struct lws_protocols protocols[] = {
        {"todo.v1", ws_callback, 0, 4096, 0, NULL, 0},
        {NULL, NULL, 0, 0, 0, NULL, 0},
    };
    lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.fd_limit_per_thread = (unsigned)rl.rlim_cur; /* lws indexes its table by fd number */
    info.timeout_secs = 30;
    /* the client must not be the bottleneck: libev (epoll), whose cost
     * per wakeup does not grow with the number of sessions, when the
     * library has it (Debian's evlib plugins) */
    if (opt_evlib) {
        info.options |= LWS_SERVER_OPTION_LIBEV;
        ctx = lws_create_context(&info);
        if (ctx) client_loop = "libev";
        info.options &= ~(uint64_t)LWS_SERVER_OPTION_LIBEV;
    }
    if (!ctx) ctx = lws_create_context(&info);
    if (!ctx) die("%s", "lws_create_context failed");
    pthread_t wt, kt;
    pthread_create(&wt, NULL, ws_main, NULL);
    if (opt_kafka) kafka_start(&kt);

    size_t small = (size_t)opt_users_small * (size_t)opt_sessions;
    hook("start");
    ramp("small", 0, small, (long)small);
    sleep_us(opt_settle * 1000000);
    hook("idle-small");
    if (opt_users_large) {
        int64_t t = ramp("large", small, nsess, (long)nsess);
        sleep_us(opt_settle * 1000000);
        hook("idle-large");
        if (opt_idle) { /* the sessions' first keep-alive round: 20 s after each connected */
            sleep_us(t + opt_idle * 1000000 - now_us());
            hook("idle-large-end");
        }
        close_sessions("closing the large ramp", small, nsess, (long)small);
        sleep_us(opt_settle * 1000000);
        hook("closed");
    }
    if (opt_probe) {
        /* The rate the parts run at: the asked one if the API takes it
         * here, with everything running (answers >= 95 % of it); else the
         * highest steady one found in at most two more steps, each at
         * 80 % of what the previous step got answered, steady meaning
         * answers >= 97 % of the rate and the schedule's p99 lag < 50 ms
         * (after two unsteady steps, 80 % of the last). */
        long asked = opt_rate, rate = opt_rate;
        char steps[1024] = "", name[32];
        size_t sl = 0;
        int steady = 0;
        for (int step = 1; step <= 3 && !steady; step++) {
            opt_rate = rate;
            snprintf(name, sizeof name, "probe%d", step);
            double lag = 0, got = load_part(name, (size_t)opt_users_small, 3, opt_probe, 0, &lag);
            sl += (size_t)snprintf(steps + sl, sizeof steps - sl, "%s{\"rate\": %ld, \"answered_per_s\": %.1f, "
                                   "\"lag_p99_ms\": %.1f}", step > 1 ? ", " : "", rate, got, lag);
            fprintf(stderr, "sbench: probe at %ld/s: %.0f answers/s, schedule lag p99 %.0f ms\n", rate, got, lag);
            steady = step == 1 ? got >= 0.95 * (double)rate : got >= 0.97 * (double)rate && lag < 50;
            if (!steady) {
                long next = (long)(0.8 * (got < (double)rate ? got : (double)rate) / 10) * 10;
                rate = next < 10 ? 10 : next;
            }
        }
        opt_rate = rate;
        printf("{\"label\": \"probe\", \"asked\": %ld, \"rate\": %ld, \"steady\": %s, \"steps\": [%s]}\n", asked,
               opt_rate, steady ? "true" : "false", steps);
        fflush(stdout);
        fprintf(stderr, "sbench: the parts run at %ld/s\n", opt_rate);
    }
    load_part("small", (size_t)opt_users_small, opt_warmup, opt_seconds, 1, NULL);
    if (opt_users_large) {
        ramp("reopen", small, nsess, (long)nsess);
        load_part("large", (size_t)opt_users_large, opt_warmup, opt_seconds, 1, NULL);
    }
    close_sessions("closing everything", 0, nsess, 0);
    hook("end");

    if (opt_kafka) { /* leaves its group */
        te_consumer_stop(consumer);
        pthread_join(kt, NULL);
        te_consumer_destroy(consumer);
    }
    /* the WebSocket thread's event loop runs until the process ends */
    (void)wt;
    fflush(stdout);
    fflush(stderr);
    _exit(0);
}

int main(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[1], "run") == 0) return cmd_run(argc, argv);
    fprintf(stderr, "usage: sbench run OUTDIR ws=HOST:PORT api=HOST:PORT tokens=FILE [KEY=VALUE...]\n");
    return 2;
}
