/* The WebSocket service (docs/sync.md), on libwebsockets' event loop: one
 * thread owns every session.  A session is authenticated when the upgrade
 * completes, then receives its hello (after a read of the user's
 * sequence), the catch-up it asks for, and the live messages of its user
 * in sequence order; a gap is filled from the change log first.  Every
 * session has a bounded send queue: a client that cannot keep up is closed,
 * never waited for. */
#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>

#include "daemon.h"
#include "log.h"
#include "sync.h"

#define WS_PATH "/api/ws/tasks"
#define NBUCKET 4096
#define MAX_RX (64 * 1024)

enum { S_AUTH = 0, S_WAITING, S_READY };

typedef struct session_s {
    struct lws *wsi;
    uint64_t id;
    char user[130];
    int state;
    unsigned gen;              /* the catch-up whose answer counts */
    int hello_sent;            /* the hello has been queued (it is always the first message) */
    int gap_fill;              /* the catch-up in flight fills a gap (no synced message) */
    long long last_seq;        /* last change queued (S_READY) */
    msg_t **q;                 /* send queue (ring) */
    size_t qhead, qlen, qcap, qbytes;
    msg_t **held;              /* live changes held during a catch-up */
    size_t nheld, heldcap;
    char *rx;                  /* a client message being received */
    size_t rxlen;
    int close_code;
    char close_reason[100];
    int registered;
    struct session_s *user_next, *user_prev, *id_next;
    /* keep-alive (our own: see keepalive_sweep) */
    size_t slot;               /* index in all[] */
    long long last_rx_us;      /* monotonic: the last frame from the client */
    long long next_ping_us;
    unsigned ping_due : 1, hung_up : 1;
    /* plain HTTP (health, metrics) */
    char *http_body;
    size_t http_len;
} session_t;

typedef struct user_ent_s {
    struct user_ent_s *next;
    char user[130];
    session_t *sessions;
} user_ent_t;

static sync_t *S;
static user_ent_t *users[NBUCKET];
static session_t *by_id[NBUCKET];
static uint64_t next_id = 1;
static long nsessions;
static long max_sessions;
static struct lws_context *ctx;            /* service thread only */
static int finishing, said_goodbye;
static te_time_t stop_at;
static lws_sorted_usec_list_t tick_sul;    /* housekeeping, every TICK_US */
#define TICK_US (100 * LWS_US_PER_MS)
/* every established WebSocket session, for the keep-alive sweep */
static session_t **all;
static size_t nall, allcap, ka_cursor;
static long long ping_us, pong_us;
#define KA_SLICES 10 /* the sweep visits all[] in this many ticks (1 s) */

static long long mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static unsigned hash_str(const char *s) {
    unsigned h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h % NBUCKET;
}

static user_ent_t *user_find(const char *user, int create) {
    unsigned b = hash_str(user);
    for (user_ent_t *u = users[b]; u; u = u->next)
        if (strcmp(u->user, user) == 0) return u;
    if (!create) return NULL;
    user_ent_t *u = calloc(1, sizeof *u);
    if (!u) return NULL;
    snprintf(u->user, sizeof u->user, "%s", user);
    u->next = users[b];
    users[b] = u;
    return u;
}

static int session_register(session_t *s) {
    user_ent_t *u = user_find(s->user, 1);
    if (!u) return -1;
    s->user_next = u->sessions;
    if (u->sessions) u->sessions->user_prev = s;
    u->sessions = s;
    unsigned b = (unsigned)(s->id % NBUCKET);
    s->id_next = by_id[b];
    by_id[b] = s;
    s->registered = 1;
    return 0;
}

static void session_unregister(session_t *s) {
    if (!s->registered) return;
    s->registered = 0;
    user_ent_t *u = user_find(s->user, 0);
    if (u) {
        if (s->user_prev) s->user_prev->user_next = s->user_next;
        else u->sessions = s->user_next;
        if (s->user_next) s->user_next->user_prev = s->user_prev;
        if (!u->sessions) { /* the user's last session: drop the entry */
            unsigned b = hash_str(u->user);
            user_ent_t **pp = &users[b];
            while (*pp && *pp != u) pp = &(*pp)->next;
            if (*pp) *pp = u->next;
            free(u);
        }
    }
    session_t **pp = &by_id[s->id % NBUCKET];
    while (*pp && *pp != s) pp = &(*pp)->id_next;
    if (*pp) *pp = s->id_next;
}

static session_t *session_by_id(uint64_t id) {
    for (session_t *s = by_id[id % NBUCKET]; s; s = s->id_next)
        if (s->id == id) return s;
    return NULL;
}

static void queue_clear(session_t *s) {
    for (size_t i = 0; i < s->qlen; i++) msg_unref(s->q[(s->qhead + i) % s->qcap]);
    free(s->q);
    s->q = NULL;
    s->qhead = s->qlen = s->qcap = s->qbytes = 0;
    for (size_t i = 0; i < s->nheld; i++) msg_unref(s->held[i]);
    free(s->held);
    s->held = NULL;
    s->nheld = s->heldcap = 0;
}

/* Closes the session with code and reason (after what is being written). */
static void session_close(session_t *s, int code, const char *reason) {
    if (s->close_code) return;
    s->close_code = code;
    snprintf(s->close_reason, sizeof s->close_reason, "%s", reason);
    lws_callback_on_writable(s->wsi);
}

static void enqueue(session_t *s, msg_t *m) {
    if (s->close_code) return;
    if ((long)s->qlen + 1 > S->max_queue || (long)(s->qbytes + m->len) > S->max_queue_bytes) {
        static const char *const L[] = {"queue_limit"};
        td_metric_inc(S->m_dropped, L, 1);
        td_logf(TD_LOG_WARN, NULL, "session %llu of %s: send queue limit exceeded, closing",
                (unsigned long long)s->id, s->user);
        queue_clear(s); /* its memory goes now, not when the slow peer finally reads */
        session_close(s, LWS_CLOSE_STATUS_POLICY_VIOLATION, "send queue limit exceeded");
        /* the close frame waits behind what the socket still holds; a peer
         * that never reads again is cut off without it */
        lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, 10);
        return;
    }
    if (s->qlen == s->qcap) {
        size_t cap = s->qcap ? s->qcap * 2 : 8;
        msg_t **nq = malloc(cap * sizeof *nq);
        if (!nq) {
            session_close(s, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
            return;
        }
        for (size_t i = 0; i < s->qlen; i++) nq[i] = s->q[(s->qhead + i) % s->qcap];
        free(s->q);
        s->q = nq;
        s->qhead = 0;
        s->qcap = cap;
    }
    s->q[(s->qhead + s->qlen++) % s->qcap] = m;
    s->qbytes += m->len;
    m->refs++;
    lws_callback_on_writable(s->wsi);
}

static void enqueue_json(session_t *s, const char *type, json_object *o) {
    msg_t *m = msg_new(type, 0, 0, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    if (!m) return;
    enqueue(s, m);
    msg_unref(m);
}

static void hold(session_t *s, msg_t *m) {
    if ((long)s->nheld >= S->max_queue) { /* a catch-up that takes that long: the client is behind anyway */
        session_close(s, LWS_CLOSE_STATUS_POLICY_VIOLATION, "send queue limit exceeded");
        return;
    }
    if (s->nheld == s->heldcap) {
        size_t cap = s->heldcap ? s->heldcap * 2 : 8;
        msg_t **nh = realloc(s->held, cap * sizeof *nh);
        if (!nh) return;
        s->held = nh;
        s->heldcap = cap;
    }
    s->held[s->nheld++] = m;
    m->refs++;
}

/* Asks the catch-up thread for the changes after since (or, hello, for the
 * user's sequence first). */
static void request_catchup(session_t *s, long long since, int hello, int gap_fill) {
    catchup_t *c = calloc(1, sizeof *c);
    if (!c) {
        session_close(s, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
        return;
    }
    c->session_id = s->id;
    snprintf(c->user, sizeof c->user, "%s", s->user);
    c->since = since;
    /* a sync_request before the hello went out supersedes the first
     * request: it carries the hello on */
    if (!s->hello_sent) hello = 1;
    c->hello = hello | (int)(++s->gen << 1); /* bit 0: hello; the rest: the generation */
    s->state = S_WAITING;
    s->gap_fill = gap_fill;
    catchup_submit(S, c);
}

/* One message for this session, in order (live or released after a
 * catch-up). */
static void deliver(session_t *s, msg_t *m) {
    if (m->seq == 0) { /* notifications have no sequence */
        enqueue(s, m);
    } else if (s->state != S_READY) {
        hold(s, m);
    } else if (m->seq <= s->last_seq) {
        /* already sent (catch-up and live overlap) */
    } else if (m->seq == s->last_seq + 1) {
        s->last_seq = m->seq;
        enqueue(s, m);
    } else { /* this replica missed changes: fill the gap first */
        static const char *const L[] = {"gap"};
        td_metric_inc(S->m_catchup, L, 1);
        hold(s, m);
        request_catchup(s, s->last_seq, 0, 1);
    }
}

static void release_held(session_t *s) {
    msg_t **held = s->held;
    size_t n = s->nheld;
    s->held = NULL;
    s->nheld = s->heldcap = 0;
    for (size_t i = 0; i < n; i++) {
        deliver(s, held[i]);
        msg_unref(held[i]);
    }
    free(held);
}

static void catchup_done(catchup_t *c) {
    session_t *s = session_by_id(c->session_id);
    unsigned gen = (unsigned)c->hello >> 1;
    if (!s || s->close_code || gen != s->gen) { /* gone, closing, or asked again since */
        catchup_free(c);
        return;
    }
    static const char *const L_OK[] = {"ok"}, *const L_RESYNC[] = {"resync"}, *const L_FAIL[] = {"failed"};
    if (c->failed) {
        td_metric_inc(S->m_catchup, L_FAIL, 1);
        session_close(s, 1013 /* try again later */, "database unavailable: reconnect with since");
        catchup_free(c);
        return;
    }
    if (c->hello & 1) {
        s->hello_sent = 1;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "type", json_object_new_string("hello"));
        json_object_object_add(o, "user_id", json_object_new_string(s->user));
        json_object_object_add(o, "seq", json_object_new_int64(c->seq));
        enqueue_json(s, "hello", o);
    }
    if (c->resync) {
        td_metric_inc(S->m_catchup, L_RESYNC, 1);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "type", json_object_new_string("resync"));
        json_object_object_add(o, "seq", json_object_new_int64(c->seq));
        json_object_object_add(o, "reason", json_object_new_string(c->reason));
        enqueue_json(s, "resync", o);
        s->last_seq = c->seq;
    } else if (c->since < 0) {
        s->last_seq = c->seq; /* live from here */
    } else {
        if (c->nmsgs || !s->gap_fill) td_metric_inc(S->m_catchup, L_OK, 1);
        s->last_seq = c->since;
        s->state = S_READY;
        for (size_t i = 0; i < c->nmsgs; i++) deliver(s, c->msgs[i]);
        s->last_seq = c->seq > s->last_seq ? c->seq : s->last_seq;
        if (!s->gap_fill) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "type", json_object_new_string("synced"));
            json_object_object_add(o, "seq", json_object_new_int64(s->last_seq));
            enqueue_json(s, "synced", o);
        }
    }
    s->state = S_READY;
    s->gap_fill = 0;
    catchup_free(c);
    release_held(s);
}

/* What the other threads left in the mailboxes. */
static void drain_mailboxes(void) {
    pthread_mutex_lock(&S->mu);
    feed_item_t *feed = S->feed_head;
    catchup_t *done = S->done_head;
    S->feed_head = S->feed_tail = NULL;
    S->done_head = S->done_tail = NULL;
    pthread_mutex_unlock(&S->mu);
    while (done) {
        catchup_t *next = done->next;
        done->next = NULL;
        catchup_done(done);
        done = next;
    }
    while (feed) {
        feed_item_t *next = feed->next;
        user_ent_t *u = user_find(feed->user, 0);
        for (session_t *s = u ? u->sessions : NULL; s; s = s->user_next) deliver(s, feed->msg);
        msg_unref(feed->msg);
        free(feed);
        feed = next;
    }
}

/* The token: ?token= (browsers) or "Authorization: Bearer" (other
 * clients).  Not Sec-WebSocket-Protocol: libwebsockets 4.1 refuses that
 * header beyond 127 bytes, before any callback sees it (docs/sync.md). */
static const char *find_token(struct lws *wsi, char *buf, int size) {
    const char *t = lws_get_urlarg_by_name(wsi, "token=", buf, size);
    if (t && *t) return t;
    if (lws_hdr_copy(wsi, buf, size, WSI_TOKEN_HTTP_AUTHORIZATION) <= 0) return NULL;
    if (strncasecmp(buf, "Bearer ", 7) != 0) return NULL;
    t = buf + 7;
    while (*t == ' ') t++;
    return *t ? t : NULL;
}

/* A refused upgrade cannot carry a status a browser can read; a close code
 * can.  So every upgrade completes, and a wrong path or a full server
 * closes at once with a code and a reason. */
static void authenticate(session_t *s) {
    char buf[8192], err[TE_ERRSTR_SIZE] = "";
    if (lws_hdr_copy(s->wsi, buf, sizeof buf, WSI_TOKEN_GET_URI) <= 0 || strcmp(buf, WS_PATH) != 0) {
        session_close(s, 4404, "not found: the endpoint is " WS_PATH);
        return;
    }
    if (atomic_load(&S->stopping) || nsessions >= max_sessions) {
        static const char *const L[] = {"max_sessions"};
        td_metric_inc(S->m_dropped, L, 1);
        session_close(s, 1013, "try again later: too many sessions");
        return;
    }
    const char *token = find_token(s->wsi, buf, sizeof buf);
    if (!token) {
        session_close(s, 4401, "unauthorized: missing token");
        return;
    }
    if (te_jwt_verify(S->jwt, token, strlen(token), te_time_now(), s->user, sizeof s->user, NULL, err,
                      sizeof err) != TE_OK) {
        char reason[100];
        snprintf(reason, sizeof reason, "unauthorized: %.80s", err[0] ? err : "invalid token");
        session_close(s, 4401, reason);
        return;
    }
    /* as large as the token's buffer: lws stops at the first argument that
     * does not fit, and the token may come first */
    const char *since = lws_get_urlarg_by_name(s->wsi, "since=", buf, sizeof buf);
    long long n = -1;
    if (since) {
        char *end = NULL;
        n = strtoll(since, &end, 10);
        if (!*since || *end || n < 0) {
            session_close(s, LWS_CLOSE_STATUS_POLICY_VIOLATION, "since: a sequence number >= 0");
            return;
        }
    }
    s->id = next_id++;
    if (session_register(s) != 0) {
        session_close(s, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
        return;
    }
    td_metric_set(S->m_conns, NULL, (double)++nsessions);
    request_catchup(s, n, 1, 0);
}

static void client_message(session_t *s, const char *text, size_t len) {
    json_object *o = json_tokener_parse(text), *t = NULL, *since = NULL;
    (void)len;
    const char *type = o && json_object_object_get_ex(o, "type", &t) ? json_object_get_string(t) : NULL;
    if (type && strcmp(type, "sync_request") == 0 && json_object_object_get_ex(o, "since", &since) &&
        json_object_is_type(since, json_type_int) && json_object_get_int64(since) >= 0) {
        request_catchup(s, json_object_get_int64(since), 0, 0);
    } else {
        json_object *e = json_object_new_object();
        json_object_object_add(e, "type", json_object_new_string("error"));
        json_object_object_add(e, "error", json_object_new_string(
            type && strcmp(type, "sync_request") == 0 ? "sync_request needs since: an integer >= 0"
                                                        : "unknown message; expected {\"type\":\"sync_request\",\"since\":N}"));
        enqueue_json(s, "error", e);
    }
    json_object_put(o);
}

/* --- plain HTTP: health and metrics --------------------------------------- */

static int http_reply(struct lws *wsi, session_t *s, int status, const char *type, char *body, size_t len) {
    unsigned char hdr[LWS_PRE + 512], *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof hdr - 1;
    s->http_body = body;
    s->http_len = len;
    if (lws_add_http_common_headers(wsi, (unsigned)status, type, (lws_filepos_t)len, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    lws_callback_on_writable(wsi);
    return 0;
}

static int http_request(struct lws *wsi, session_t *s, const char *path) {
    char *body = NULL;
    size_t len = 0;
    if (strcmp(path, "/healthz") == 0) {
        body = strdup("{\"status\":\"ok\"}");
        len = body ? strlen(body) : 0;
        return http_reply(wsi, s, 200, "application/json", body, len);
    }
    if (strcmp(path, "/readyz") == 0) {
        te_consumer_stats_t st;
        te_consumer_stats(S->consumer, &st);
        /* Dapr mode (no consumer): the sidecar delivers when it can; this
         * thread must not block asking it */
        int pg = atomic_load(&S->pg_ok), assigned = !S->consumer || st.rebalances > 0;
        char b[200];
        snprintf(b, sizeof b, "{\"status\":\"%s\",\"checks\":{\"postgres\":\"%s\",\"%s\":\"%s\"}}",
                 pg && assigned ? "ready" : "not ready", pg ? "ok" : "unavailable", S->consumer ? "kafka" : "dapr",
                 !S->consumer ? "deliveries on TE_SYNC_DAPR_LISTEN" : assigned ? "assigned" : "waiting for partitions");
        body = strdup(b);
        return http_reply(wsi, s, pg && assigned ? 200 : 503, "application/json", body, body ? strlen(body) : 0);
    }
    if (strcmp(path, "/metrics") == 0) {
        if (S->consumer) { /* Dapr mode counts these itself (dapr.c) */
            te_consumer_stats_t st;
            te_consumer_stats(S->consumer, &st);
            td_metric_set(td_counter("te_consumer_received_total", "Records taken from Kafka", NULL), NULL,
                          (double)st.received);
            td_metric_set(td_counter("te_consumer_poison_total", "Records that were not valid CloudEvents", NULL),
                          NULL, (double)st.poison);
            td_consumer_lag_metric(S->consumer);
        }
        body = td_metrics_render(&len);
        return http_reply(wsi, s, 200, "text/plain; version=0.0.4; charset=utf-8", body, len);
    }
    if (lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL)) return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* --- the loop: housekeeping and the end --------------------------------- */

/* Keep-alive.  libwebsockets 4.1's own (the retry policy's validity timers)
 * keeps one timer per session in a single sorted list: every ping and
 * every pong re-inserts one, walking the list, which with 10 000 sessions
 * cost more than everything else an idle server does.  Instead every
 * session gets a ping every ping_s, the first one ping_s/2..ping_s after
 * it connected (spread, so that sessions that connected together are not
 * pinged together), and a session whose client sent nothing (a pong or a
 * message) for pong_s is dropped, as libwebsockets did: no close frame.
 * One sweep over all sessions per second, a tenth of them per tick. */
static int all_add(session_t *s) {
    if (nall == allcap) {
        size_t cap = allcap ? allcap * 2 : 1024;
        session_t **na = realloc(all, cap * sizeof *na);
        if (!na) return -1;
        all = na;
        allcap = cap;
    }
    s->slot = nall;
    all[nall++] = s;
    return 0;
}

static void all_remove(session_t *s) {
    if (s->slot >= nall || all[s->slot] != s) return;
    all[s->slot] = all[--nall];
    all[s->slot]->slot = s->slot;
    if (nall == 0) {
        free(all);
        all = NULL;
        allcap = 0;
    }
}

static void keepalive_start(session_t *s) {
    long long now = mono_us();
    s->last_rx_us = now;
    /* a multiplicative hash of the session's address: spread */
    unsigned long long h = ((unsigned long long)(uintptr_t)s >> 4) * 11400714819323198485ull;
    s->next_ping_us = now + ping_us / 2 + (long long)((h >> 33) % (unsigned long long)(ping_us / 2 + 1));
}

static void keepalive_sweep(void) {
    if (!nall) return;
    long long now = mono_us();
    size_t n = (nall + KA_SLICES - 1) / KA_SLICES;
    for (size_t i = 0; i < n && nall; i++) {
        if (ka_cursor >= nall) ka_cursor = 0;
        session_t *s = all[ka_cursor++];
        if (s->hung_up) continue;
        if (now - s->last_rx_us >= pong_us) {
            s->hung_up = 1;
            lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        } else if (now >= s->next_ping_us && !s->close_code) {
            s->next_ping_us = now + ping_us;
            s->ping_due = 1;
            lws_callback_on_writable(s->wsi);
        }
    }
}

/* While stopping: done when every session is closed, or 2 s after SIGTERM. */
static int stop_due(void) {
    if (!atomic_load(&S->stopping) || finishing) return 0;
    if (!stop_at) stop_at = te_time_now();
    return nsessions == 0 || te_time_now() - stop_at > 2000000;
}

/* The end of the service.  Called on the service thread from the loop
 * (EVENT_WAIT_CANCELLED): the context's destruction starts here (lws
 * closes what is left; an event library's loop then returns), and
 * server_run completes it outside the loop. */
static void finish(void) {
    finishing = 1;
    lws_sul_cancel(&tick_sul);
    pthread_mutex_lock(&S->mu);
    S->lws = NULL; /* no more wakes from the other threads */
    pthread_mutex_unlock(&S->mu);
    lws_context_destroy(ctx);
}

/* Housekeeping on the service thread, every TICK_US. */
static void tick(lws_sorted_usec_list_t *sul) {
    (void)sul;
    if (finishing) return;
    if (stop_due()) lws_cancel_service(ctx); /* finish() from EVENT_WAIT_CANCELLED */
    keepalive_sweep();
    lws_sul_schedule(ctx, 0, &tick_sul, tick, TICK_US);
}

/* --- the protocol callback ------------------------------------------------ */

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    session_t *s = user;
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (finishing) return 0;
        drain_mailboxes();
        if (atomic_load(&S->stopping) && !said_goodbye) { /* say goodbye to everyone */
            said_goodbye = 1;
            for (unsigned b = 0; b < NBUCKET; b++)
                for (session_t *x = by_id[b]; x; x = x->id_next)
                    session_close(x, LWS_CLOSE_STATUS_GOINGAWAY, "server shutting down");
        }
        if (stop_due()) finish();
        return 0;
    case LWS_CALLBACK_HTTP:
        return http_request(wsi, s, (const char *)in);
    case LWS_CALLBACK_HTTP_WRITEABLE: {
        if (!s || !s->http_body) return -1;
        unsigned char *buf = malloc(LWS_PRE + s->http_len + 1);
        int rc = buf ? 0 : -1;
        if (buf) {
            memcpy(buf + LWS_PRE, s->http_body, s->http_len);
            if (lws_write(wsi, buf + LWS_PRE, s->http_len, LWS_WRITE_HTTP_FINAL) != (int)s->http_len) rc = -1;
            free(buf);
        }
        free(s->http_body);
        s->http_body = NULL;
        if (rc == 0 && lws_http_transaction_completed(wsi)) rc = -1;
        return rc;
    }
    case LWS_CALLBACK_CLOSED_HTTP:
        if (s) {
            free(s->http_body);
            s->http_body = NULL;
        }
        return 0;
    case LWS_CALLBACK_ESTABLISHED:
        memset(s, 0, sizeof *s);
        s->wsi = wsi;
        if (all_add(s) != 0) return -1;
        keepalive_start(s);
        authenticate(s);
        return 0;
    case LWS_CALLBACK_RECEIVE_PONG:
        s->last_rx_us = mono_us();
        return 0;
    case LWS_CALLBACK_RECEIVE: {
        s->last_rx_us = mono_us();
        if (s->close_code) return 0;
        if (s->rxlen + len > MAX_RX) {
            session_close(s, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "message too large");
            return 0;
        }
        char *nrx = realloc(s->rx, s->rxlen + len + 1);
        if (!nrx) return -1;
        s->rx = nrx;
        memcpy(s->rx + s->rxlen, in, len);
        s->rxlen += len;
        s->rx[s->rxlen] = '\0';
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
            if (s->state != S_AUTH || s->registered) client_message(s, s->rx, s->rxlen);
            free(s->rx);
            s->rx = NULL;
            s->rxlen = 0;
        }
        return 0;
    }
    case LWS_CALLBACK_SERVER_WRITEABLE: {
        if (s->ping_due) {
            /* not empty: libwebsockets does not report an empty pong */
            unsigned char ping[LWS_PRE + 1];
            ping[LWS_PRE] = 'k';
            s->ping_due = 0;
            if (lws_write(wsi, ping + LWS_PRE, 1, LWS_WRITE_PING) < 1) return -1;
            if (s->qlen > 0 || s->close_code) lws_callback_on_writable(wsi);
            return 0;
        }
        if (s->qlen > 0) {
            msg_t *m = s->q[s->qhead];
            if (lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT) < (int)m->len) return -1;
            s->qhead = (s->qhead + 1) % s->qcap;
            s->qlen--;
            s->qbytes -= m->len;
            const char *lv[1] = {m->type};
            td_metric_inc(S->m_sent, lv, 1);
            if (m->event_us) td_metric_observe(S->m_fanout, NULL, (double)(te_time_now() - m->event_us) / 1e6);
            msg_unref(m);
            if (s->qlen > 0 || s->close_code) lws_callback_on_writable(wsi);
            return 0;
        }
        if (s->close_code) {
            lws_close_reason(wsi, (enum lws_close_status)s->close_code, (unsigned char *)s->close_reason,
                             strlen(s->close_reason));
            return -1;
        }
        return 0;
    }
    case LWS_CALLBACK_CLOSED:
        all_remove(s);
        if (s->registered) td_metric_set(S->m_conns, NULL, (double)--nsessions);
        session_unregister(s);
        queue_clear(s);
        free(s->rx);
        s->rx = NULL;
        if (nsessions == 0 && atomic_load(&S->stopping) && !finishing)
            lws_cancel_service(ctx); /* the last one: finish() from EVENT_WAIT_CANCELLED */
        return 0;
    default:
        return 0;
    }
}

void server_wake(sync_t *s) {
    /* under the lock: the service thread clears s->lws (same lock) before
     * it destroys the context */
    pthread_mutex_lock(&s->mu);
    if (s->lws) lws_cancel_service(s->lws);
    pthread_mutex_unlock(&s->mu);
}

static void lws_to_log(int level, const char *line) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", line);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = '\0';
    td_logf(level == LLL_ERR ? TD_LOG_ERROR : TD_LOG_WARN, NULL, "libwebsockets: %s", msg);
}

int server_run(sync_t *s, const char *listen, long ping_s, long pong_timeout_s) {
    S = s;
    max_sessions = s->max_sessions;
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_to_log);
    static struct lws_protocols protocols[] = {
        {"todo.v1", callback, sizeof(session_t), 4096, 0, NULL, 0},
        {NULL, NULL, 0, 0, 0, NULL, 0},
    };
    char host[128] = "";
    const char *colon = strrchr(listen, ':');
    if (!colon) {
        td_logf(TD_LOG_ERROR, NULL, "TE_SYNC_LISTEN: host:port expected");
        return -1;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
    /* no validity timers of libwebsockets' (keepalive_sweep) */
    static lws_retry_bo_t retry;
    ping_us = (long long)ping_s * 1000000;
    pong_us = (long long)pong_timeout_s * 1000000;
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = atoi(colon + 1);
    info.iface = host[0] && strcmp(host, "0.0.0.0") != 0 ? host : NULL;
    info.protocols = protocols;
    info.max_http_header_data = 8192;
    info.retry_and_idle_policy = &retry;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6 | LWS_SERVER_OPTION_VALIDATE_UTF8;
    /* libwebsockets 4.1 finds the session of a descriptor in a table
     * indexed by descriptor when the table is as large as the open-files
     * limit (main() raised it and fitted max_sessions under it), but scans
     * the whole table on every socket event when fd_limit_per_thread is
     * below the limit: so no smaller limit here, unless the limit is too
     * large for a table (16 bytes per descriptor) */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1u << 22))
        info.fd_limit_per_thread = (unsigned)(s->max_sessions + 256);
    /* libev (epoll): the cost of a wakeup does not grow with the number of
     * sessions, as poll()'s does.  Debian's libwebsockets loads it as a
     * plugin (package libwebsockets-evlib-ev); without it, poll(). */
    sigset_t mask;
    pthread_sigmask(SIG_SETMASK, NULL, &mask);
    info.options |= LWS_SERVER_OPTION_LIBEV;
    const char *loop = "libev";
    ctx = lws_create_context(&info);
    pthread_sigmask(SIG_SETMASK, &mask, NULL); /* signals stay with main's sigwait */
    if (!ctx) {
        info.options &= ~(uint64_t)LWS_SERVER_OPTION_LIBEV;
        ctx = lws_create_context(&info);
        loop = "poll";
        if (ctx)
            td_logf(TD_LOG_WARN, NULL, "libwebsockets: no libev event loop (package libwebsockets-evlib-ev); "
                                       "using poll(), whose cost grows with the number of sessions");
    }
    if (!ctx) {
        td_logf(TD_LOG_ERROR, NULL, "cannot listen on %s", listen);
        return -1;
    }
    pthread_mutex_lock(&s->mu);
    s->lws = ctx;
    pthread_mutex_unlock(&s->mu);
    td_logf(TD_LOG_INFO, NULL, "todo-sync serving ws://%s%s (event loop %s)", listen, WS_PATH, loop);
    lws_sul_schedule(ctx, 0, &tick_sul, tick, TICK_US);
    /* with an event library lws_service() runs the loop until finish();
     * with poll() it returns after each wait */
    while (!finishing && lws_service(ctx, 0) >= 0) {
    }
    if (!finishing) { /* the loop failed: the whole destruction here */
        finishing = 1;
        pthread_mutex_lock(&s->mu);
        s->lws = NULL;
        pthread_mutex_unlock(&s->mu);
    }
    /* (the second half of) the destruction, outside the loop; the sessions
     * still open are closed and freed in it (CLOSED callbacks) */
    lws_context_destroy(ctx);
    ctx = NULL;
    drain_mailboxes(); /* what came in meanwhile: nobody to send it to */
    return 0;
}
