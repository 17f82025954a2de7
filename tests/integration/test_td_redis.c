/* daemons/common Redis client (td_redis_*) against the real Redis started
 * by scripts/services (TE_REDIS_URL): the token bucket (burst, refill,
 * Retry-After, shared between clients, exact under concurrency), the
 * idempotency records (new, in progress, replay of a binary body,
 * mismatch, abort, TTLs), and failure handling (closed port, a server
 * that never answers, a killed connection, recovery) without stalls.
 * Every test uses its own random user ids, so the file can be re-run
 * against the same server. */
#include <arpa/inet.h>
#include <check.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "redis.h"
#include "it_main.h"

/* ---- helpers -------------------------------------------------------------- */

static const char *redis_url(void) {
    const char *u = getenv("TE_REDIS_URL");
    ck_assert_msg(u && *u, "TE_REDIS_URL is not set: run scripts/services start redis and "
                           "eval \"$(scripts/services env)\"");
    return u;
}

static td_redis_t *client(int pool) {
    char err[256] = "";
    td_redis_t *r = td_redis_new(redis_url(), pool, err, sizeof err);
    ck_assert_msg(r, "td_redis_new: %s", err);
    ck_assert_msg(td_redis_up(r), "Redis at %s does not answer", redis_url());
    return r;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static char *unique(const char *what) {
    static atomic_int seq;
    char buf[128];
    snprintf(buf, sizeof buf, "it-%s-%d-%08x-%d", what, (int)getpid(),
             (unsigned)rand() ^ (unsigned)time(NULL), atomic_fetch_add(&seq, 1));
    return strdup(buf);
}

/* A plain hiredis connection to the test server, for inspection. */
static redisContext *raw(void) {
    const char *u = redis_url() + strlen("redis://");
    char host[128];
    int port = 6379;
    ck_assert_msg(!strchr(u, '@'), "the test's raw connection does not do AUTH");
    size_t hl = strcspn(u, ":/");
    snprintf(host, sizeof host, "%.*s", (int)hl, u);
    if (u[hl] == ':')
        port = atoi(u + hl + 1);
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    ck_assert_msg(c && !c->err, "raw connect to %s:%d failed", host, port);
    const char *slash = strchr(u, '/');
    if (slash && atoi(slash + 1) != 0) {
        redisReply *rep = redisCommand(c, "SELECT %d", atoi(slash + 1));
        ck_assert_ptr_nonnull(rep);
        freeReplyObject(rep);
    }
    return c;
}

static long long raw_int(redisContext *c, const char *cmd, const char *key) {
    redisReply *rep = redisCommand(c, "%s %s", cmd, key);
    ck_assert_ptr_nonnull(rep);
    ck_assert_int_eq(rep->type, REDIS_REPLY_INTEGER);
    long long v = rep->integer;
    freeReplyObject(rep);
    return v;
}

static void raw_del(redisContext *c, const char *key) {
    redisReply *rep = redisCommand(c, "DEL %s", key);
    if (rep)
        freeReplyObject(rep);
}

/* A TCP port on 127.0.0.1 where nothing listens. */
static int closed_port(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t l = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &l);
    close(s);
    return ntohs(a.sin_port);
}

/* A listening socket on port (0 = any); returns the fd, *port_out the port. */
static int listen_on(int port, int *port_out) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((uint16_t)port)};
    ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(s, 16), 0);
    socklen_t l = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &l);
    if (port_out)
        *port_out = ntohs(a.sin_port);
    return s;
}

static void setup(void) {
    unsetenv("TE_LOG_LEVEL");
    td_log_init("it-td-redis");
}

static void teardown(void) { td_metrics_shutdown(); }

/* ---- URL ---------------------------------------------------------------------- */

START_TEST(url_errors) {
    const char *bad[] = {NULL,
                         "",
                         "http://127.0.0.1:6379",
                         "redis://",
                         "redis://:6379",
                         "redis://host:99999",
                         "redis://host:0",
                         "redis://host:12x",
                         "redis://host:",
                         "redis://host/abc",
                         "redis://host/1?x=y",
                         "redis://user@host",
                         "redis://:@host",
                         "redis://:pw%zz@host",
                         "redis://[::1",
                         "rediss://host"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "";
        td_redis_t *r = td_redis_new(bad[i], 2, err, sizeof err);
        ck_assert_msg(r == NULL, "accepted '%s'", bad[i] ? bad[i] : "(null)");
        ck_assert_msg(err[0], "no reason for '%s'", bad[i] ? bad[i] : "(null)");
    }
    /* A password never shows in the reason. */
    char err[256] = "";
    ck_assert_ptr_null(td_redis_new("redis://:topsecret@host:99999", 1, err, sizeof err));
    ck_assert_ptr_null(strstr(err, "topsecret"));
    td_redis_destroy(NULL);
}
END_TEST

START_TEST(url_forms_and_auth) {
    /* Valid forms against a closed port: created (down), nothing leaks. */
    int port = closed_port();
    const char *forms[][2] = {{"redis://127.0.0.1:", ""},
                              {"redis://127.0.0.1:", "/"},
                              {"redis://127.0.0.1:", "/3"},
                              {"redis://:p%40ss@127.0.0.1:", "/0"},
                              {"redis://user:pw@127.0.0.1:", ""},
                              {"REDIS://[127.0.0.1]:", ""}};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char url[128], err[256] = "";
        snprintf(url, sizeof url, "%s%d%s", forms[i][0], port, forms[i][1]);
        td_redis_t *r = td_redis_new(url, 1, err, sizeof err);
        ck_assert_msg(r, "refused %s: %s", url, err);
        ck_assert_int_eq(td_redis_up(r), 0);
        td_redis_destroy(r);
    }
    /* The test server has no password: AUTH fails, the client is down
     * (the reason is logged, never the password). */
    char url[256], err[256] = "";
    const char *u = redis_url() + strlen("redis://");
    snprintf(url, sizeof url, "redis://:wrongpass@%s", u);
    td_redis_t *r = td_redis_new(url, 1, err, sizeof err);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(td_redis_up(r), 0);
    ck_assert_int_eq(td_redis_ping(r), 0);
    td_redis_destroy(r);
    /* A database number is selected on every connection. */
    snprintf(url, sizeof url, "redis://%.*s/5", (int)strcspn(u, "/"), u);
    r = td_redis_new(url, 1, err, sizeof err);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(td_redis_up(r), 1);
    char *user = unique("db");
    int ra = 0;
    ck_assert_int_eq(td_redis_rate_take(r, user, 1, 5, &ra), TD_REDIS_OK);
    redisContext *c = raw();
    char key[256];
    snprintf(key, sizeof key, "te:rl:%s", user);
    redisReply *rep = redisCommand(c, "SELECT 5");
    freeReplyObject(rep);
    ck_assert_int_eq(raw_int(c, "EXISTS", key), 1);
    raw_del(c, key);
    redisFree(c);
    free(user);
    td_redis_destroy(r);
}
END_TEST

/* ---- rate limit --------------------------------------------------------------- */

START_TEST(rate_burst_then_limited_then_refill) {
    td_redis_t *r = client(2);
    char *user = unique("rl");
    int ra = -1;
    for (int i = 0; i < 5; i++)
        ck_assert_msg(td_redis_rate_take(r, user, 1, 5, &ra) == TD_REDIS_OK, "take %d", i);
    ck_assert_int_eq(ra, -1); /* untouched when allowed */
    ck_assert_int_eq(td_redis_rate_take(r, user, 1, 5, &ra), TD_REDIS_LIMITED);
    ck_assert_int_eq(ra, 1);
    ra = -1;
    ck_assert_int_eq(td_redis_rate_take(r, user, 1, 5, &ra), TD_REDIS_LIMITED);
    ck_assert_int_eq(ra, 1);

    /* The bucket expires once it would be full again (5 s at 1/s, + 1 s). */
    redisContext *c = raw();
    char key[256];
    snprintf(key, sizeof key, "te:rl:%s", user);
    long long pttl = raw_int(c, "PTTL", key);
    ck_assert_msg(pttl > 4000 && pttl <= 6000, "PTTL %lld", pttl);

    sleep_s(1.1);
    ck_assert_int_eq(td_redis_rate_take(r, user, 1, 5, &ra), TD_REDIS_OK);
    ck_assert_int_eq(td_redis_rate_take(r, user, 1, 5, &ra), TD_REDIS_LIMITED);
    ck_assert_int_eq(ra, 1);

    /* A slow rate gives a longer Retry-After. */
    char *slow = unique("rl-slow");
    ck_assert_int_eq(td_redis_rate_take(r, slow, 0.1, 1, &ra), TD_REDIS_OK);
    ck_assert_int_eq(td_redis_rate_take(r, slow, 0.1, 1, &ra), TD_REDIS_LIMITED);
    ck_assert_msg(ra >= 9 && ra <= 10, "retry after %d", ra);

    /* rate <= 0: no limit, Redis not asked. */
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(td_redis_rate_take(r, user, 0, 5, &ra), TD_REDIS_OK);
    raw_del(c, key);
    snprintf(key, sizeof key, "te:rl:%s", slow);
    raw_del(c, key);
    redisFree(c);
    free(slow);
    free(user);
    td_redis_destroy(r);
}
END_TEST

START_TEST(rate_shared_between_clients) {
    td_redis_t *a = client(1), *b = client(1);
    char *user = unique("rl-shared");
    int ra = 0;
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(td_redis_rate_take(a, user, 1, 5, &ra), TD_REDIS_OK);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(td_redis_rate_take(b, user, 1, 5, &ra), TD_REDIS_OK);
    ck_assert_int_eq(td_redis_rate_take(a, user, 1, 5, &ra), TD_REDIS_LIMITED);
    ck_assert_int_eq(td_redis_rate_take(b, user, 1, 5, &ra), TD_REDIS_LIMITED);
    /* Another user has a bucket of their own. */
    char *other = unique("rl-other");
    ck_assert_int_eq(td_redis_rate_take(b, other, 1, 5, &ra), TD_REDIS_OK);
    free(other);
    free(user);
    td_redis_destroy(a);
    td_redis_destroy(b);
}
END_TEST

#define HAMMER_THREADS 8
#define HAMMER_CALLS 200

typedef struct {
    td_redis_t *r;
    const char *shared;
    int ok_shared, limited_shared, ok_own, other;
    long id;
} hammer_t;

static void *hammer(void *arg) {
    hammer_t *h = arg;
    char own[96];
    snprintf(own, sizeof own, "%s-own-%ld", h->shared, h->id);
    for (int i = 0; i < HAMMER_CALLS; i++) {
        int ra = 0;
        /* shared bucket: 100 tokens, practically no refill */
        td_redis_rc_t rc = td_redis_rate_take(h->r, h->shared, 0.001, 100, &ra);
        if (rc == TD_REDIS_OK)
            h->ok_shared++;
        else if (rc == TD_REDIS_LIMITED && ra >= 1)
            h->limited_shared++;
        else
            h->other++;
        /* own bucket: never limited */
        rc = td_redis_rate_take(h->r, own, 10000, 1000000, &ra);
        if (rc == TD_REDIS_OK)
            h->ok_own++;
        else
            h->other++;
    }
    return NULL;
}

START_TEST(rate_concurrent_pool_of_two) {
    td_redis_t *r = client(2);
    char *user = unique("rl-hammer");
    hammer_t h[HAMMER_THREADS];
    pthread_t t[HAMMER_THREADS];
    for (long i = 0; i < HAMMER_THREADS; i++) {
        h[i] = (hammer_t){.r = r, .shared = user, .id = i};
        ck_assert_int_eq(pthread_create(&t[i], NULL, hammer, &h[i]), 0);
    }
    int ok = 0, limited = 0, own = 0, other = 0;
    for (int i = 0; i < HAMMER_THREADS; i++) {
        pthread_join(t[i], NULL);
        ok += h[i].ok_shared;
        limited += h[i].limited_shared;
        own += h[i].ok_own;
        other += h[i].other;
    }
    ck_assert_int_eq(other, 0);
    ck_assert_int_eq(ok, 100); /* the bucket is atomic: exactly its capacity */
    ck_assert_int_eq(limited, HAMMER_THREADS * HAMMER_CALLS - 100);
    ck_assert_int_eq(own, HAMMER_THREADS * HAMMER_CALLS);
    ck_assert_int_eq(td_redis_up(r), 1);
    ck_assert_uint_le(td_redis_connect_attempts(r), 2); /* the pool was reused */
    redisContext *c = raw(); /* the shared bucket would live for a day */
    char key[256];
    snprintf(key, sizeof key, "te:rl:%s", user);
    raw_del(c, key);
    redisFree(c);
    free(user);
    td_redis_destroy(r);
}
END_TEST

/* ---- idempotency -------------------------------------------------------------- */

START_TEST(idem_lifecycle) {
    td_redis_t *r = client(2);
    char *user = unique("idem");
    const char *key = "create-task-0001";
    const char *fp = "fp-aaaa";
    td_idem_resp_t out;
    memset(&out, 0x5a, sizeof out);

    ck_assert_int_eq(td_redis_idem_begin(r, user, key, fp, 3600, &out), TD_IDEM_NEW);
    ck_assert_ptr_null(out.body); /* zeroed */
    ck_assert_int_eq(out.status, 0);

    /* the in-progress marker lives at most 60 s */
    redisContext *c = raw();
    char rkey[512];
    ck_assert_int_eq(td_redis_idem_key(user, key, rkey, sizeof rkey), 0);
    ck_assert_uint_eq(strlen(rkey), strlen("te:idem:") + strlen(user) + 1 + 64);
    long long ttl = raw_int(c, "TTL", rkey);
    ck_assert_msg(ttl > 55 && ttl <= 60, "marker TTL %lld", ttl);

    ck_assert_int_eq(td_redis_idem_begin(r, user, key, fp, 3600, &out), TD_IDEM_IN_PROGRESS);
    ck_assert_int_eq(td_redis_idem_begin(r, user, key, "fp-other", 3600, &out), TD_IDEM_MISMATCH);
    /* another user's same key is independent */
    char *user2 = unique("idem2");
    ck_assert_int_eq(td_redis_idem_begin(r, user2, key, "fp-other", 3600, &out), TD_IDEM_NEW);

    static const char body[] = "{\"id\":\"1\"}\0tail\xff";
    td_idem_resp_t resp = {.status = 201,
                           .location = "/api/tasks/1",
                           .etag = "\"1\"",
                           .content_type = "application/json",
                           .body = (char *)body,
                           .body_len = sizeof body - 1};
    td_redis_idem_finish(r, user, key, fp, 3600, &resp);
    ttl = raw_int(c, "TTL", rkey);
    ck_assert_msg(ttl > 3590 && ttl <= 3600, "record TTL %lld", ttl);

    ck_assert_int_eq(td_redis_idem_begin(r, user, key, fp, 3600, &out), TD_IDEM_REPLAY);
    ck_assert_int_eq(out.status, 201);
    ck_assert_str_eq(out.location, "/api/tasks/1");
    ck_assert_str_eq(out.etag, "\"1\"");
    ck_assert_str_eq(out.content_type, "application/json");
    ck_assert_uint_eq(out.body_len, sizeof body - 1);
    ck_assert(memcmp(out.body, body, sizeof body - 1) == 0);
    ck_assert_int_eq(out.body[out.body_len], '\0');
    td_idem_resp_clear(&out);
    ck_assert_ptr_null(out.body);

    ck_assert_int_eq(td_redis_idem_begin(r, user, key, "fp-other", 3600, &out), TD_IDEM_MISMATCH);
    ck_assert_ptr_null(out.body);
    /* abort leaves a completed record alone */
    td_redis_idem_abort(r, user, key);
    ck_assert_int_eq(td_redis_idem_begin(r, user, key, fp, 3600, NULL), TD_IDEM_REPLAY);

    /* a record whose other fingerprint took the key is not overwritten */
    td_idem_resp_t other = {.status = 200, .body = "x", .body_len = 1};
    td_redis_idem_finish(r, user, key, "fp-other", 3600, &other);
    ck_assert_int_eq(td_redis_idem_begin(r, user, key, fp, 3600, &out), TD_IDEM_REPLAY);
    ck_assert_int_eq(out.status, 201);
    td_idem_resp_clear(&out);

    raw_del(c, rkey);
    ck_assert_int_eq(td_redis_idem_key(user2, key, rkey, sizeof rkey), 0);
    raw_del(c, rkey);
    ck_assert_int_eq(td_redis_idem_key(user, key, rkey, 10), -1); /* too small */
    redisFree(c);
    free(user2);
    free(user);
    td_redis_destroy(r);
}
END_TEST

START_TEST(idem_abort_and_optional_fields) {
    td_redis_t *r = client(1);
    char *user = unique("idem-abort");
    const char *key = "k with spaces and \xc3\xa9 and a very long tail "
                      "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    td_idem_resp_t out;
    ck_assert_int_eq(td_redis_idem_begin(r, user, key, "fp1", 600, &out), TD_IDEM_NEW);
    td_redis_idem_abort(r, user, key);
    ck_assert_int_eq(td_redis_idem_begin(r, user, key, "fp2", 600, &out), TD_IDEM_NEW);

    /* short TTL: the marker lives min(ttl, 60) */
    redisContext *c = raw();
    char rkey[512];
    td_redis_idem_key(user, key, rkey, sizeof rkey);
    long long ttl = raw_int(c, "TTL", rkey);
    ck_assert_msg(ttl > 55 && ttl <= 60, "TTL %lld", ttl);

    /* no Location/ETag/Content-Type, empty body (204) */
    td_idem_resp_t resp = {.status = 204};
    td_redis_idem_finish(r, user, key, "fp2", 10, &resp);
    ttl = raw_int(c, "TTL", rkey);
    ck_assert_msg(ttl > 5 && ttl <= 10, "TTL %lld", ttl);
    ck_assert_int_eq(td_redis_idem_begin(r, user, key, "fp2", 10, &out), TD_IDEM_REPLAY);
    ck_assert_int_eq(out.status, 204);
    ck_assert_ptr_null(out.location);
    ck_assert_ptr_null(out.etag);
    ck_assert_ptr_null(out.content_type);
    ck_assert_ptr_nonnull(out.body);
    ck_assert_uint_eq(out.body_len, 0);
    td_idem_resp_clear(&out);
    td_idem_resp_clear(NULL);

    /* ttl 5 -> marker 5 s */
    char *user3 = unique("idem-short");
    ck_assert_int_eq(td_redis_idem_begin(r, user3, "k", "fp", 5, &out), TD_IDEM_NEW);
    char rk3[512];
    td_redis_idem_key(user3, "k", rk3, sizeof rk3);
    ttl = raw_int(c, "TTL", rk3);
    ck_assert_msg(ttl > 0 && ttl <= 5, "TTL %lld", ttl);
    raw_del(c, rk3);

    /* bad arguments */
    ck_assert_int_eq(td_redis_idem_begin(r, NULL, "k", "fp", 5, &out), TD_IDEM_UNAVAILABLE);
    ck_assert_int_eq(td_redis_idem_begin(r, user, NULL, "fp", 5, &out), TD_IDEM_UNAVAILABLE);
    ck_assert_int_eq(td_redis_idem_begin(r, user, "k", NULL, 5, &out), TD_IDEM_UNAVAILABLE);
    ck_assert_int_eq(td_redis_idem_begin(NULL, user, "k", "fp", 5, &out), TD_IDEM_UNAVAILABLE);

    raw_del(c, rkey);
    redisFree(c);
    free(user3);
    free(user);
    td_redis_destroy(r);
}
END_TEST

/* Two clients race for the same new key: exactly one gets NEW. */
typedef struct {
    td_redis_t *r;
    const char *user;
    int news;
} race_t;

static void *race(void *arg) {
    race_t *x = arg;
    for (int i = 0; i < 50; i++) {
        char key[32];
        snprintf(key, sizeof key, "race-%d", i);
        if (td_redis_idem_begin(x->r, x->user, key, "fp", 60, NULL) == TD_IDEM_NEW)
            x->news++;
    }
    return NULL;
}

START_TEST(idem_race) {
    td_redis_t *a = client(2), *b = client(2);
    char *user = unique("idem-race");
    race_t x[4] = {{a, user, 0}, {a, user, 0}, {b, user, 0}, {b, user, 0}};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, race, &x[i]);
    int news = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        news += x[i].news;
    }
    ck_assert_int_eq(news, 50);
    redisContext *c = raw();
    for (int i = 0; i < 50; i++) {
        char key[32], rkey[512];
        snprintf(key, sizeof key, "race-%d", i);
        td_redis_idem_key(user, key, rkey, sizeof rkey);
        raw_del(c, rkey);
    }
    redisFree(c);
    free(user);
    td_redis_destroy(a);
    td_redis_destroy(b);
}
END_TEST

/* ---- unavailable -------------------------------------------------------------- */

START_TEST(unavailable_fails_fast) {
    double t0 = now_s();
    char err[256] = "";
    td_redis_t *r = td_redis_new("redis://127.0.0.1:1", 2, err, sizeof err);
    ck_assert_msg(r, "%s", err);
    ck_assert_double_lt(now_s() - t0, 0.3);
    ck_assert_int_eq(td_redis_up(r), 0);
    ck_assert_uint_eq(td_redis_connect_attempts(r), 1);
    td_metric_t *g = td_gauge("te_redis_up", "x", NULL);
    ck_assert(td_metric_value(g, NULL) == 0);

    /* within the second: no attempt at all */
    int ra = 0;
    td_idem_resp_t out;
    for (int i = 0; i < 20; i++) {
        t0 = now_s();
        ck_assert_int_eq(td_redis_rate_take(r, "u", 1, 5, &ra), TD_REDIS_UNAVAILABLE);
        ck_assert_int_eq(td_redis_idem_begin(r, "u", "k", "fp", 60, &out), TD_IDEM_UNAVAILABLE);
        td_redis_idem_finish(r, "u", "k", "fp", 60, &(td_idem_resp_t){.status = 200});
        td_redis_idem_abort(r, "u", "k");
        ck_assert_double_lt(now_s() - t0, 0.05); /* no I/O at all: see the attempts */
    }
    ck_assert_uint_eq(td_redis_connect_attempts(r), 1);

    /* after a second: one attempt (< 300 ms), then fail fast again */
    sleep_s(1.1);
    t0 = now_s();
    ck_assert_int_eq(td_redis_rate_take(r, "u", 1, 5, &ra), TD_REDIS_UNAVAILABLE);
    ck_assert_double_lt(now_s() - t0, 0.3);
    ck_assert_uint_eq(td_redis_connect_attempts(r), 2);
    ck_assert_int_eq(td_redis_rate_take(r, "u", 1, 5, &ra), TD_REDIS_UNAVAILABLE);
    ck_assert_uint_eq(td_redis_connect_attempts(r), 2);

    /* ping tries now */
    ck_assert_int_eq(td_redis_ping(r), 0);
    ck_assert_uint_eq(td_redis_connect_attempts(r), 3);
    ck_assert_int_eq(td_redis_up(r), 0);
    td_redis_destroy(r);
}
END_TEST

typedef struct {
    td_redis_t *r;
    int unavailable, calls;
    double worst;
} down_t;

static void *down_worker(void *arg) {
    down_t *d = arg;
    for (int i = 0; i < 50; i++) {
        int ra;
        double t0 = now_s();
        if (td_redis_rate_take(d->r, "u", 1, 5, &ra) == TD_REDIS_UNAVAILABLE)
            d->unavailable++;
        double took = now_s() - t0;
        if (took > d->worst)
            d->worst = took;
        d->calls++;
    }
    return NULL;
}

/* 8 threads on a pool of 2 while Redis is down: all fail fast, and at most
 * one thread tries to reconnect once the second has passed. */
START_TEST(unavailable_concurrent) {
    td_redis_t *r = td_redis_new("redis://127.0.0.1:1", 2, NULL, 0);
    ck_assert_ptr_nonnull(r);
    for (int round = 0; round < 2; round++) {
        if (round)
            sleep_s(1.1);
        down_t d[8];
        pthread_t t[8];
        for (int i = 0; i < 8; i++) {
            d[i] = (down_t){.r = r};
            pthread_create(&t[i], NULL, down_worker, &d[i]);
        }
        for (int i = 0; i < 8; i++) {
            pthread_join(t[i], NULL);
            ck_assert_int_eq(d[i].unavailable, 50);
            ck_assert_msg(d[i].worst < 0.3, "a call took %.3f s", d[i].worst);
        }
        ck_assert_uint_eq(td_redis_connect_attempts(r), 1 + (unsigned long)round);
    }
    td_redis_destroy(r);
}
END_TEST

/* A server that accepts connections but never answers: bounded by the
 * command timeout, then fail fast. */
START_TEST(unavailable_silent_server) {
    setenv("TE_REDIS_TIMEOUT_MS", "200", 1); /* the bound this test measures */
    int port;
    int ls = listen_on(0, &port);
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    double t0 = now_s();
    td_redis_t *r = td_redis_new(url, 2, NULL, 0);
    double took = now_s() - t0;
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(took >= 0.15 && took < 0.3, "new took %.3f s", took);
    ck_assert_int_eq(td_redis_up(r), 0);
    int ra;
    for (int i = 0; i < 10; i++) {
        t0 = now_s();
        ck_assert_int_eq(td_redis_rate_take(r, "u", 1, 5, &ra), TD_REDIS_UNAVAILABLE);
        ck_assert_double_lt(now_s() - t0, 0.05);
    }
    sleep_s(1.1);
    t0 = now_s();
    ck_assert_int_eq(td_redis_rate_take(r, "u", 1, 5, &ra), TD_REDIS_UNAVAILABLE);
    took = now_s() - t0;
    ck_assert_msg(took < 0.3, "retry took %.3f s", took);
    ck_assert_uint_eq(td_redis_connect_attempts(r), 2);
    td_redis_destroy(r);
    close(ls);
    unsetenv("TE_REDIS_TIMEOUT_MS");
}
END_TEST

/* A minimal fake Redis: answers every request with +PONG (enough for
 * CLIENT SETNAME and PING), until told to stop. */
typedef struct {
    int ls;
    atomic_int stop;
    atomic_int close_next; /* close the next connection that sends a request */
    int conns[16];
    int nconns;
} fake_t;

static void *fake_main(void *arg) {
    fake_t *f = arg;
    while (!atomic_load(&f->stop)) {
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(f->ls, &rd);
        int maxfd = f->ls;
        for (int i = 0; i < f->nconns; i++) {
            FD_SET(f->conns[i], &rd);
            if (f->conns[i] > maxfd)
                maxfd = f->conns[i];
        }
        struct timeval tv = {0, 20000};
        if (select(maxfd + 1, &rd, NULL, NULL, &tv) <= 0)
            continue;
        if (FD_ISSET(f->ls, &rd) && f->nconns < 16)
            f->conns[f->nconns++] = accept(f->ls, NULL, NULL);
        for (int i = 0; i < f->nconns; i++) {
            if (!FD_ISSET(f->conns[i], &rd))
                continue;
            char buf[4096];
            ssize_t n = read(f->conns[i], buf, sizeof buf);
            if (n <= 0 || atomic_exchange(&f->close_next, 0)) {
                close(f->conns[i]);
                f->conns[i--] = f->conns[--f->nconns];
                continue;
            }
            ssize_t w = write(f->conns[i], "+PONG\r\n", 7);
            (void)w;
        }
    }
    for (int i = 0; i < f->nconns; i++)
        close(f->conns[i]);
    close(f->ls);
    return NULL;
}

START_TEST(recovers_when_redis_comes_back) {
    int port = closed_port();
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    td_redis_t *r = td_redis_new(url, 2, NULL, 0);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(td_redis_up(r), 0);
    td_metric_t *g = td_gauge("te_redis_up", "x", NULL);
    ck_assert(td_metric_value(g, NULL) == 0);

    fake_t f = {.ls = listen_on(port, NULL)};
    pthread_t t;
    pthread_create(&t, NULL, fake_main, &f);
    ck_assert_int_eq(td_redis_ping(r), 1); /* ping does not wait for the retry interval */
    ck_assert_int_eq(td_redis_up(r), 1);
    ck_assert(td_metric_value(g, NULL) == 1);
    char *m = td_metrics_render(NULL);
    ck_assert_ptr_nonnull(strstr(m, "\nte_redis_up 1\n"));
    free(m);

    /* the pooled connection dies in the middle of a request: not "down";
     * ping retries once on a fresh connection */
    unsigned long before = td_redis_connect_attempts(r);
    atomic_store(&f.close_next, 1);
    ck_assert_int_eq(td_redis_ping(r), 1);
    ck_assert_uint_eq(td_redis_connect_attempts(r), before + 1);
    ck_assert_int_eq(td_redis_up(r), 1);

    /* the server goes away: the closed pooled connection is noticed before
     * use, the reconnect fails at once, Redis is down */
    atomic_store(&f.stop, 1);
    pthread_join(t, NULL);
    double t0 = now_s();
    ck_assert_int_eq(td_redis_ping(r), 0);
    ck_assert_double_lt(now_s() - t0, 0.1);
    ck_assert_int_eq(td_redis_up(r), 0);
    ck_assert(td_metric_value(g, NULL) == 0);
    ck_assert_uint_eq(td_redis_connect_attempts(r), before + 2);
    int ra;
    ck_assert_int_eq(td_redis_rate_take(r, "u", 1, 5, &ra), TD_REDIS_UNAVAILABLE);
    ck_assert_uint_eq(td_redis_connect_attempts(r), before + 2);
    td_redis_destroy(r);
}
END_TEST

/* Redis closes our pooled connection (restart, CLIENT KILL, idle timeout):
 * the next call notices before sending, reconnects and succeeds; Redis is
 * never reported down. */
START_TEST(killed_connection_reconnects) {
    td_redis_t *r = client(1);
    char *user = unique("kill");
    int ra;
    ck_assert_int_eq(td_redis_rate_take(r, user, 100, 100, &ra), TD_REDIS_OK);
    redisContext *c = raw();
    char name[32];
    snprintf(name, sizeof name, "td:%ld", (long)getpid());
    redisReply *rep = redisCommand(c, "CLIENT LIST");
    ck_assert_ptr_nonnull(rep);
    ck_assert_int_eq(rep->type, REDIS_REPLY_STRING);
    int killed = 0;
    for (char *line = rep->str; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        char *nm = strstr(line, " name=");
        if (nm && !strncmp(nm + 6, name, strlen(name)) && nm[6 + strlen(name)] == ' ') {
            long long id = atoll(line + 3); /* "id=N ..." */
            redisReply *k = redisCommand(c, "CLIENT KILL ID %lld", id);
            ck_assert_ptr_nonnull(k);
            killed += k->type == REDIS_REPLY_INTEGER ? (int)k->integer : 0;
            freeReplyObject(k);
        }
        line = nl ? nl + 1 : NULL;
    }
    freeReplyObject(rep);
    ck_assert_int_ge(killed, 1);
    unsigned long before = td_redis_connect_attempts(r);
    sleep_s(0.05); /* let the FIN arrive */
    ck_assert_int_eq(td_redis_rate_take(r, user, 100, 100, &ra), TD_REDIS_OK);
    ck_assert_uint_eq(td_redis_connect_attempts(r), before + 1);
    ck_assert_int_eq(td_redis_up(r), 1);
    ck_assert_int_eq(td_redis_rate_take(r, user, 100, 100, &ra), TD_REDIS_OK);
    ck_assert_uint_eq(td_redis_connect_attempts(r), before + 1);
    ck_assert_int_eq(td_redis_ping(r), 1);
    char key[256];
    snprintf(key, sizeof key, "te:rl:%s", user);
    raw_del(c, key);
    redisFree(c);
    free(user);
    td_redis_destroy(r);
}
END_TEST

/* ---- suite -------------------------------------------------------------------- */

static Suite *suite(void) {
    const it_test_t tests[] = {
        {"url_errors", url_errors},
        {"url_forms", url_forms_and_auth},
        {"rate_burst", rate_burst_then_limited_then_refill},
        {"rate_shared", rate_shared_between_clients},
        {"rate_concurrent", rate_concurrent_pool_of_two},
        {"idem_lifecycle", idem_lifecycle},
        {"idem_abort", idem_abort_and_optional_fields},
        {"idem_race", idem_race},
        {"unavailable", unavailable_fails_fast},
        {"unavailable_concurrent", unavailable_concurrent},
        {"silent_server", unavailable_silent_server},
        {"recovers", recovers_when_redis_comes_back},
        {"killed_connection", killed_connection_reconnects},
    };
    return it_suite("td_redis", tests, sizeof tests / sizeof tests[0], 60, setup, teardown);
}

int main(void) {
    int rc = it_run(suite);
    td_metrics_shutdown();
    return rc;
}
