/* Redis client: connection pool, token-bucket rate limit, idempotency
 * records.  See redis.h. */
#include "redis.h"

#include "env.h"

#include <ctype.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"

/* TE_REDIS_TIMEOUT_MS (default 500): connect and command timeout.  Short
 * enough that a dead Redis costs little, long enough that a loaded one is
 * not taken for dead (the Idempotency-Key check is skipped then). */
static int timeout_ms(void) {
    return (int)td_env_long("TE_REDIS_TIMEOUT_MS", 500, 10, 60000, NULL);
}
#define CONNECT_TIMEOUT_MS timeout_ms()
#define COMMAND_TIMEOUT_MS timeout_ms()
#define RETRY_INTERVAL_US 1000000  /* reconnect attempts while down */
#define POOL_WAIT_MS 1000          /* longest wait for a free connection */
#define ERRLOG_INTERVAL_US 1000000 /* at most one error log line per second */
#define IDEM_MARKER_MAX_S 60

/* ---- Lua scripts ------------------------------------------------------------ */

enum { S_RATE, S_BEGIN, S_FINISH, S_ABORT, S_COUNT };

/* KEYS[1] bucket; ARGV[1] rate (tokens/s), ARGV[2] burst.
 * Returns {allowed 1/0, microseconds until a token is available}. */
static const char script_rate[] =
    "local rate = tonumber(ARGV[1])\n"
    "local burst = tonumber(ARGV[2])\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')\n"
    "local tokens = tonumber(b[1])\n"
    "local ts = tonumber(b[2])\n"
    "if tokens == nil or ts == nil then tokens = burst; ts = now end\n"
    "if now > ts then\n"
    "  tokens = math.min(burst, tokens + (now - ts) * rate / 1000000)\n"
    "  ts = now\n"
    "end\n"
    "local allowed = 0\n"
    "local wait = 0\n"
    "if tokens >= 1 then\n"
    "  tokens = tokens - 1\n"
    "  allowed = 1\n"
    "else\n"
    "  wait = math.ceil((1 - tokens) * 1000000 / rate)\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),\n"
    "           'ts', string.format('%.0f', ts))\n"
    "local ttl = math.ceil((burst - tokens) * 1000 / rate) + 1000\n"
    "if ttl > 1000000000 then ttl = 1000000000 end\n"
    "redis.call('PEXPIRE', KEYS[1], string.format('%d', ttl))\n"
    "return {allowed, wait}\n";

/* KEYS[1] record; ARGV[1] fingerprint, ARGV[2] marker TTL (s).
 * Returns {0} new, {1, status, loc, etag, ct, body} replay, {2} mismatch,
 * {3} in progress. */
static const char script_begin[] =
    "local st = redis.call('HGET', KEYS[1], 'st')\n"
    "if not st then\n"
    "  redis.call('HSET', KEYS[1], 'st', 'p', 'fp', ARGV[1])\n"
    "  redis.call('EXPIRE', KEYS[1], ARGV[2])\n"
    "  return {0}\n"
    "end\n"
    "if redis.call('HGET', KEYS[1], 'fp') ~= ARGV[1] then return {2} end\n"
    "if st ~= 'd' then return {3} end\n"
    "local v = redis.call('HMGET', KEYS[1], 'status', 'loc', 'etag', 'ct', 'body')\n"
    "return {1, v[1], v[2], v[3], v[4], v[5]}\n";

/* KEYS[1] record; ARGV[1] fingerprint, ARGV[2] TTL (s), ARGV[3..] field/value
 * pairs.  Returns 1 stored, 0 the key belongs to another fingerprint. */
static const char script_finish[] =
    "local fp = redis.call('HGET', KEYS[1], 'fp')\n"
    "if fp and fp ~= ARGV[1] then return 0 end\n"
    "redis.call('DEL', KEYS[1])\n"
    "redis.call('HSET', KEYS[1], 'st', 'd', 'fp', ARGV[1], unpack(ARGV, 3))\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[2])\n"
    "return 1\n";

/* KEYS[1] record.  Deletes it only while in progress. */
static const char script_abort[] =
    "if redis.call('HGET', KEYS[1], 'st') == 'p' then\n"
    "  return redis.call('DEL', KEYS[1])\n"
    "end\n"
    "return 0\n";

static const char *const scripts[S_COUNT] = {script_rate, script_begin, script_finish,
                                             script_abort};

/* ---- the client --------------------------------------------------------------- */

typedef struct {
    redisContext *c; /* idle connection or NULL */
    unsigned gen;    /* generation it was made in */
    int busy;
} slot_t;

struct td_redis_s {
    char *host;
    int port;
    char *user;     /* NULL: AUTH password only */
    char *password; /* NULL: no AUTH */
    int db;
    char sha[S_COUNT][41];

    pthread_mutex_t mu;
    pthread_cond_t cv;
    slot_t *slots;
    int pool_size;
    int nbusy;
    unsigned gen;            /* bumped to drop every pooled connection */
    atomic_int up;           /* written under mu */
    int probing;             /* a thread is reconnecting while down */
    int64_t next_attempt_us; /* monotonic; while down */

    atomic_ulong attempts;
    atomic_llong last_errlog_us;
    td_metric_t *gauge;
};

typedef struct {
    int slot;
    redisContext *c;
    unsigned gen;
    int fresh;
} lease_t;

static int64_t mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static struct timeval ms_tv(int ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

/* At most one line per ERRLOG_INTERVAL_US for repetitive errors. */
static int errlog_due(td_redis_t *r) {
    int64_t now = mono_us();
    long long last = atomic_load(&r->last_errlog_us);
    if (last && now - last < ERRLOG_INTERVAL_US)
        return 0;
    return atomic_compare_exchange_strong(&r->last_errlog_us, &last, (long long)now);
}

static void log_event(td_redis_t *r, td_log_level_t lvl, const char *msg, const char *err) {
    struct json_object *f = json_object_new_object();
    json_object_object_add(f, "redis_host", json_object_new_string(r->host));
    json_object_object_add(f, "redis_port", json_object_new_int(r->port));
    if (err && *err)
        json_object_object_add(f, "error", json_object_new_string(err));
    td_log(lvl, NULL, msg, f);
}

/* State changes; mu held.  Return 1 when the state changed (log it after
 * unlocking). */
static int set_down_locked(td_redis_t *r) {
    int changed = atomic_load(&r->up) != 0;
    atomic_store(&r->up, 0);
    r->gen++;
    r->next_attempt_us = mono_us() + RETRY_INTERVAL_US;
    if (changed)
        td_metric_set(r->gauge, NULL, 0);
    return changed;
}

static int set_up_locked(td_redis_t *r) {
    int changed = atomic_load(&r->up) == 0;
    atomic_store(&r->up, 1);
    if (changed)
        td_metric_set(r->gauge, NULL, 1);
    return changed;
}

/* The reason a connection failed, with a timeout named as such. */
static void conn_error(const redisContext *c, int saved_errno, char *err, size_t errsize) {
    if (c->err == REDIS_ERR_IO && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK))
        snprintf(err, errsize, "timeout (%d ms)", COMMAND_TIMEOUT_MS);
    else
        snprintf(err, errsize, "%s", c->errstr[0] ? c->errstr : "connection failed");
}

/* Runs one command on c; returns the reply when it is not an error reply.
 * *err gets the reason otherwise; *conn_failed is set when the connection
 * itself failed. */
static redisReply *command_ok(redisContext *c, int argc, const char **argv, const size_t *lens,
                              char *err, size_t errsize, int *conn_failed) {
    redisReply *rep = redisCommandArgv(c, argc, argv, lens);
    if (!rep) {
        conn_error(c, errno, err, errsize);
        *conn_failed = 1;
        return NULL;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        snprintf(err, errsize, "%s", rep->str ? rep->str : "error reply");
        freeReplyObject(rep);
        return NULL;
    }
    return rep;
}

/* A new connection, authenticated, on the right database, named (CLIENT
 * SETNAME, which also proves the server answers);
 * NULL with the reason in err. */
static redisContext *do_connect(td_redis_t *r, char *err, size_t errsize) {
    atomic_fetch_add(&r->attempts, 1);
    redisContext *c = redisConnectWithTimeout(r->host, r->port, ms_tv(CONNECT_TIMEOUT_MS));
    if (!c) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    if (c->err) {
        snprintf(err, errsize, "connect: %s", c->errstr);
        redisFree(c);
        return NULL;
    }
    if (redisSetTimeout(c, ms_tv(COMMAND_TIMEOUT_MS)) != REDIS_OK) {
        snprintf(err, errsize, "setting the timeout: %s", c->errstr);
        redisFree(c);
        return NULL;
    }
    int cf = 0;
    redisReply *rep;
    char sub[200] = "";
    if (r->password) {
        const char *argv[3] = {"AUTH", r->user ? r->user : r->password, r->password};
        size_t lens[3] = {4, strlen(argv[1]), strlen(r->password)};
        rep = command_ok(c, r->user ? 3 : 2, argv, lens, sub, sizeof sub, &cf);
        if (!rep) {
            snprintf(err, errsize, "AUTH: %s", sub);
            redisFree(c);
            return NULL;
        }
        freeReplyObject(rep);
    }
    if (r->db) {
        char dbs[16];
        snprintf(dbs, sizeof dbs, "%d", r->db);
        const char *argv[2] = {"SELECT", dbs};
        size_t lens[2] = {6, strlen(dbs)};
        rep = command_ok(c, 2, argv, lens, sub, sizeof sub, &cf);
        if (!rep) {
            snprintf(err, errsize, "SELECT: %s", sub);
            redisFree(c);
            return NULL;
        }
        freeReplyObject(rep);
    }
    /* Names the connection (CLIENT LIST shows which process it is) and
     * proves the server answers: a server that accepts but never replies
     * counts as down.  An error reply (command renamed away) is fine. */
    char name[32];
    snprintf(name, sizeof name, "td:%ld", (long)getpid());
    const char *argv[3] = {"CLIENT", "SETNAME", name};
    size_t lens[3] = {6, 7, strlen(name)};
    rep = command_ok(c, 3, argv, lens, sub, sizeof sub, &cf);
    if (!rep && cf) {
        snprintf(err, errsize, "CLIENT SETNAME: %s", sub);
        redisFree(c);
        return NULL;
    }
    if (rep)
        freeReplyObject(rep);
    return c;
}

/* A pooled connection the server has closed (restart, idle timeout,
 * CLIENT KILL) shows EOF without blocking: replace it before use instead
 * of failing the request.  Pending unexpected data also disqualifies it. */
static int conn_alive(const redisContext *c) {
    char b;
    ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n >= 0)
        return 0;
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

/* Takes a connection.  force: try to reconnect now even within the retry
 * interval.  -1 = unavailable (already logged if it was a state change). */
static int acquire(td_redis_t *r, int force, lease_t *l) {
    memset(l, 0, sizeof *l);
    int prober = 0;
    struct timespec dl = {0, 0};
    pthread_mutex_lock(&r->mu);
    /* The state is checked again after every wait: Redis may have gone
     * down meanwhile, and then only one thread may try. */
    for (;;) {
        if (!atomic_load(&r->up) && !prober) {
            if (r->probing || (!force && mono_us() < r->next_attempt_us)) {
                pthread_mutex_unlock(&r->mu);
                return -1;
            }
            r->probing = prober = 1;
        }
        if (r->nbusy < r->pool_size)
            break;
        if (dl.tv_sec == 0) {
            clock_gettime(CLOCK_MONOTONIC, &dl);
            dl.tv_sec += POOL_WAIT_MS / 1000;
            dl.tv_nsec += (long)(POOL_WAIT_MS % 1000) * 1000000L;
            if (dl.tv_nsec >= 1000000000L) {
                dl.tv_sec++;
                dl.tv_nsec -= 1000000000L;
            }
        }
        if (pthread_cond_timedwait(&r->cv, &r->mu, &dl) == ETIMEDOUT && r->nbusy == r->pool_size) {
            if (prober)
                r->probing = 0;
            pthread_mutex_unlock(&r->mu);
            if (errlog_due(r))
                log_event(r, TD_LOG_WARN, "redis pool exhausted", "no free connection within 1 s");
            return -1;
        }
    }
    int pick = -1;
    for (int i = 0; i < r->pool_size && pick < 0; i++)
        if (!r->slots[i].busy && r->slots[i].c && r->slots[i].gen == r->gen)
            pick = i;
    for (int i = 0; i < r->pool_size && pick < 0; i++)
        if (!r->slots[i].busy)
            pick = i;
    slot_t *s = &r->slots[pick];
    s->busy = 1;
    r->nbusy++;
    redisContext *c = s->c;
    unsigned cgen = s->gen;
    unsigned gen = r->gen;
    s->c = NULL;
    pthread_mutex_unlock(&r->mu);

    if (c && (cgen != gen || !conn_alive(c))) {
        redisFree(c);
        c = NULL;
    }
    int fresh = 0;
    char err[256] = "";
    if (!c) {
        c = do_connect(r, err, sizeof err);
        fresh = 1;
    }
    int changed = 0;
    pthread_mutex_lock(&r->mu);
    if (!c) {
        s->busy = 0;
        r->nbusy--;
        pthread_cond_broadcast(&r->cv);
        changed = set_down_locked(r);
    } else if (prober) {
        changed = set_up_locked(r);
    }
    if (prober)
        r->probing = 0;
    pthread_mutex_unlock(&r->mu);
    if (!c) {
        if (changed)
            log_event(r, TD_LOG_WARN, "redis unavailable", err);
        return -1;
    }
    if (changed)
        log_event(r, TD_LOG_INFO, "redis available again", NULL);
    l->slot = pick;
    l->c = c;
    l->gen = gen;
    l->fresh = fresh;
    return 0;
}

/* Gives the connection back.  failed: the connection broke (err: why). */
static void release(td_redis_t *r, lease_t *l, int failed, const char *err) {
    redisContext *tofree = NULL;
    int changed = 0;
    pthread_mutex_lock(&r->mu);
    slot_t *s = &r->slots[l->slot];
    if (failed) {
        tofree = l->c;
        if (l->fresh)
            changed = set_down_locked(r);
        else
            r->gen++; /* the others are probably broken too: reconnect next time */
    } else if (l->gen != r->gen) {
        tofree = l->c;
    } else {
        s->c = l->c;
        s->gen = l->gen;
    }
    s->busy = 0;
    r->nbusy--;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (tofree)
        redisFree(tofree);
    if (changed)
        log_event(r, TD_LOG_WARN, "redis unavailable", err);
    else if (failed && errlog_due(r))
        log_event(r, TD_LOG_WARN, "redis connection lost, reconnecting", err);
}

/* EVALSHA (EVAL on NOSCRIPT) of script id with one key.  Returns the reply
 * (not an error reply) or NULL when Redis is unavailable or answered with
 * an error (logged, throttled). */
static redisReply *eval(td_redis_t *r, int id, const char *key, int nargs, const char **args,
                        const size_t *lens) {
    const char *argv[24];
    size_t alen[24];
    if (nargs > 20)
        return NULL;
    lease_t l;
    if (acquire(r, 0, &l) != 0)
        return NULL;
    argv[0] = "EVALSHA";
    alen[0] = 7;
    argv[1] = r->sha[id];
    alen[1] = 40;
    argv[2] = "1";
    alen[2] = 1;
    argv[3] = key;
    alen[3] = strlen(key);
    for (int i = 0; i < nargs; i++) {
        argv[4 + i] = args[i];
        alen[4 + i] = lens[i];
    }
    redisReply *rep = redisCommandArgv(l.c, 4 + nargs, argv, alen);
    if (rep && rep->type == REDIS_REPLY_ERROR && rep->str && !strncmp(rep->str, "NOSCRIPT", 8)) {
        freeReplyObject(rep);
        argv[0] = "EVAL";
        alen[0] = 4;
        argv[1] = scripts[id];
        alen[1] = strlen(scripts[id]);
        rep = redisCommandArgv(l.c, 4 + nargs, argv, alen);
    }
    if (!rep) {
        char err[256];
        conn_error(l.c, errno, err, sizeof err);
        release(r, &l, 1, err);
        return NULL;
    }
    release(r, &l, 0, NULL);
    if (rep->type == REDIS_REPLY_ERROR) {
        if (errlog_due(r))
            log_event(r, TD_LOG_WARN, "redis command failed", rep->str);
        freeReplyObject(rep);
        return NULL;
    }
    return rep;
}

/* ---- URL ---------------------------------------------------------------------- */

static int hexval(int c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* %-decodes s[0..n) into a new string; NULL on a bad escape, NUL or OOM. */
static char *pct_decode(const char *s, size_t n) {
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (i + 2 >= n) {
                free(out);
                return NULL;
            }
            int a = hexval((unsigned char)s[i + 1]), b = hexval((unsigned char)s[i + 2]);
            if (a < 0 || b < 0 || (a == 0 && b == 0)) {
                free(out);
                return NULL;
            }
            out[k++] = (char)(a << 4 | b);
            i += 2;
        } else {
            out[k++] = s[i];
        }
    }
    out[k] = '\0';
    return out;
}

static int parse_url(td_redis_t *r, const char *url, char *errstr, size_t errsize) {
#define BAD(...)                                                                                   \
    do {                                                                                           \
        if (errstr && errsize)                                                                     \
            snprintf(errstr, errsize, __VA_ARGS__);                                                \
        return -1;                                                                                 \
    } while (0)
    if (!url || strncasecmp(url, "redis://", 8) != 0)
        BAD("redis URL must start with redis:// (redis://[[user]:password@]host[:port][/db])");
    const char *p = url + 8;
    const char *end = p + strcspn(p, "/?#");
    if (*end == '?' || *end == '#')
        BAD("redis URL: query and fragment are not supported");
    const char *at = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            at = q;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon)
            BAD("redis URL: credentials must be written [user]:password@");
        if (colon > p && !(r->user = pct_decode(p, (size_t)(colon - p))))
            BAD("redis URL: bad %%-escape in the user name");
        if (!(r->password = pct_decode(colon + 1, (size_t)(at - colon - 1))))
            BAD("redis URL: bad %%-escape in the password");
        if (!*r->password)
            BAD("redis URL: empty password");
        p = at + 1;
    }
    const char *hs, *he, *portp;
    if (*p == '[') {
        hs = p + 1;
        he = memchr(hs, ']', (size_t)(end - hs));
        if (!he)
            BAD("redis URL: unterminated [ipv6] host");
        portp = he + 1;
        if (portp < end && *portp != ':')
            BAD("redis URL: unexpected text after ]");
    } else {
        hs = p;
        he = memchr(hs, ':', (size_t)(end - hs));
        if (!he)
            he = end;
        portp = he;
    }
    if (he == hs)
        BAD("redis URL: missing host");
    r->host = strndup(hs, (size_t)(he - hs));
    if (!r->host)
        BAD("out of memory");
    r->port = 6379;
    if (portp < end) { /* ":digits" */
        const char *d = portp + 1;
        long port = 0;
        if (d == end)
            BAD("redis URL: empty port");
        for (; d < end; d++) {
            if (!isdigit((unsigned char)*d) || (port = port * 10 + (*d - '0')) > 65535)
                BAD("redis URL: bad port");
        }
        if (port == 0)
            BAD("redis URL: bad port");
        r->port = (int)port;
    }
    r->db = 0;
    if (*end == '/' && end[1]) {
        long db = 0;
        for (const char *d = end + 1; *d; d++) {
            if (!isdigit((unsigned char)*d) || (db = db * 10 + (*d - '0')) > INT_MAX / 10)
                BAD("redis URL: the path must be a database number");
        }
        r->db = (int)db;
    }
    return 0;
#undef BAD
}

/* ---- lifecycle ------------------------------------------------------------------ */

static void sha1_hex(const char *s, char out[41]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    out[0] = '\0';
    if (EVP_Digest(s, strlen(s), md, &n, EVP_sha1(), NULL) != 1 || n != 20)
        return; /* EVALSHA of "" fails with NOSCRIPT: EVAL still works */
    for (unsigned i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void free_secret(char *s) {
    if (s) {
        memset(s, 0, strlen(s));
        free(s);
    }
}

void td_redis_destroy(td_redis_t *r) {
    if (!r)
        return;
    if (r->slots) {
        for (int i = 0; i < r->pool_size; i++)
            if (r->slots[i].c)
                redisFree(r->slots[i].c);
        free(r->slots);
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
    }
    free(r->host);
    free(r->user);
    free_secret(r->password);
    free(r);
}

td_redis_t *td_redis_new(const char *url, int pool_size, char *errstr, size_t errstr_size) {
    if (errstr && errstr_size)
        errstr[0] = '\0';
    td_redis_t *r = calloc(1, sizeof *r);
    if (!r) {
        if (errstr && errstr_size)
            snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    if (parse_url(r, url, errstr, errstr_size) != 0) {
        td_redis_destroy(r);
        return NULL;
    }
    r->pool_size = pool_size < 1 ? 1 : pool_size;
    r->slots = calloc((size_t)r->pool_size, sizeof *r->slots);
    if (!r->slots) {
        if (errstr && errstr_size)
            snprintf(errstr, errstr_size, "out of memory");
        td_redis_destroy(r);
        return NULL;
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    for (int i = 0; i < S_COUNT; i++)
        sha1_hex(scripts[i], r->sha[i]);
    r->gauge = td_gauge("te_redis_up", "1 when Redis (idempotency keys, rate limit) answers", NULL);

    /* Writing to a socket the server closed must not kill the process. */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && !(sa.sa_flags & SA_SIGINFO) &&
        sa.sa_handler == SIG_DFL) {
        sa.sa_handler = SIG_IGN;
        sigaction(SIGPIPE, &sa, NULL);
    }

    /* One attempt now, so the state (and te_redis_up) is known at start. */
    char err[256] = "";
    redisContext *c = do_connect(r, err, sizeof err);
    if (c) {
        r->slots[0].c = c;
        r->slots[0].gen = r->gen;
        atomic_store(&r->up, 1);
        td_metric_set(r->gauge, NULL, 1);
        log_event(r, TD_LOG_INFO, "redis connected", NULL);
    } else {
        atomic_store(&r->up, 0);
        r->next_attempt_us = mono_us() + RETRY_INTERVAL_US;
        td_metric_set(r->gauge, NULL, 0);
        log_event(r, TD_LOG_WARN, "redis unavailable", err);
    }
    return r;
}

int td_redis_up(td_redis_t *r) { return r ? atomic_load(&r->up) : 0; }

unsigned long td_redis_connect_attempts(td_redis_t *r) { return r ? atomic_load(&r->attempts) : 0; }

int td_redis_ping(td_redis_t *r) {
    if (!r)
        return 0;
    /* A pooled connection that breaks is retried once on a fresh one. */
    for (int attempt = 0; attempt < 2; attempt++) {
        lease_t l;
        if (acquire(r, 1, &l) != 0)
            return 0;
        const char *argv[1] = {"PING"};
        size_t lens[1] = {4};
        redisReply *rep = redisCommandArgv(l.c, 1, argv, lens);
        if (!rep) {
            char err[256];
            int fresh = l.fresh;
            conn_error(l.c, errno, err, sizeof err);
            release(r, &l, 1, err);
            if (fresh)
                return 0;
            continue;
        }
        release(r, &l, 0, NULL);
        int ok = rep->type == REDIS_REPLY_STATUS && rep->str && !strcasecmp(rep->str, "PONG");
        freeReplyObject(rep);
        return ok;
    }
    return 0;
}

/* ---- rate limit ----------------------------------------------------------------- */

static char *concat3(const char *a, const char *b, const char *c) {
    size_t la = strlen(a), lb = strlen(b), lc = c ? strlen(c) : 0;
    char *s = malloc(la + lb + lc + 1);
    if (!s)
        return NULL;
    memcpy(s, a, la);
    memcpy(s + la, b, lb);
    if (lc)
        memcpy(s + la + lb, c, lc);
    s[la + lb + lc] = '\0';
    return s;
}

td_redis_rc_t td_redis_rate_take(td_redis_t *r, const char *user, double rate, double burst,
                                 int *retry_after_s) {
    if (!(rate > 0) || isinf(rate))
        return TD_REDIS_OK;
    if (!r || !user)
        return TD_REDIS_UNAVAILABLE;
    if (!(burst >= 1))
        burst = 1;
    if (isinf(burst))
        burst = 1e15;
    char *key = concat3("te:rl:", user, NULL);
    if (!key)
        return TD_REDIS_UNAVAILABLE;
    char srate[40], sburst[40];
    snprintf(srate, sizeof srate, "%.17g", rate);
    snprintf(sburst, sizeof sburst, "%.17g", burst);
    const char *args[2] = {srate, sburst};
    size_t lens[2] = {strlen(srate), strlen(sburst)};
    redisReply *rep = eval(r, S_RATE, key, 2, args, lens);
    free(key);
    if (!rep)
        return TD_REDIS_UNAVAILABLE;
    td_redis_rc_t rc = TD_REDIS_UNAVAILABLE;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[0]->type == REDIS_REPLY_INTEGER &&
        rep->element[1]->type == REDIS_REPLY_INTEGER) {
        if (rep->element[0]->integer == 1) {
            rc = TD_REDIS_OK;
        } else {
            long long wait_us = rep->element[1]->integer;
            long long s = (wait_us + 999999) / 1000000;
            if (s < 1)
                s = 1;
            if (s > INT_MAX)
                s = INT_MAX;
            if (retry_after_s)
                *retry_after_s = (int)s;
            rc = TD_REDIS_LIMITED;
        }
    }
    freeReplyObject(rep);
    return rc;
}

/* ---- idempotency ---------------------------------------------------------------- */

int td_redis_idem_key(const char *user, const char *key, char *buf, size_t size) {
    if (!user || !key || !buf)
        return -1;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(key, strlen(key), md, &n, EVP_sha256(), NULL) != 1 || n != 32)
        return -1;
    char hex[65];
    for (unsigned i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    int w = snprintf(buf, size, "te:idem:%s:%s", user, hex);
    return w < 0 || (size_t)w >= size ? -1 : 0;
}

/* malloc'd key, NULL on OOM / bad arguments. */
static char *idem_key(const char *user, const char *key) {
    if (!user || !key)
        return NULL;
    size_t size = strlen(user) + sizeof "te:idem::" + 64;
    char *k = malloc(size);
    if (k && td_redis_idem_key(user, key, k, size) != 0) {
        free(k);
        k = NULL;
    }
    return k;
}

void td_idem_resp_clear(td_idem_resp_t *resp) {
    if (!resp)
        return;
    free(resp->location);
    free(resp->etag);
    free(resp->content_type);
    free(resp->body);
    memset(resp, 0, sizeof *resp);
}

/* Copy of a string reply (NULL for nil); *oom set on allocation failure. */
static char *reply_dup(const redisReply *e, size_t *len, int *oom) {
    if (len)
        *len = 0;
    if (!e || e->type != REDIS_REPLY_STRING)
        return NULL;
    char *s = malloc(e->len + 1);
    if (!s) {
        *oom = 1;
        return NULL;
    }
    memcpy(s, e->str, e->len);
    s[e->len] = '\0';
    if (len)
        *len = e->len;
    return s;
}

td_idem_rc_t td_redis_idem_begin(td_redis_t *r, const char *user, const char *key,
                                 const char *fingerprint, int ttl_s, td_idem_resp_t *out) {
    if (out)
        memset(out, 0, sizeof *out);
    if (!r || !fingerprint)
        return TD_IDEM_UNAVAILABLE;
    char *rkey = idem_key(user, key);
    if (!rkey)
        return TD_IDEM_UNAVAILABLE;
    int marker = ttl_s < 1 ? 1 : ttl_s > IDEM_MARKER_MAX_S ? IDEM_MARKER_MAX_S : ttl_s;
    char sttl[16];
    snprintf(sttl, sizeof sttl, "%d", marker);
    const char *args[2] = {fingerprint, sttl};
    size_t lens[2] = {strlen(fingerprint), strlen(sttl)};
    redisReply *rep = eval(r, S_BEGIN, rkey, 2, args, lens);
    free(rkey);
    if (!rep)
        return TD_IDEM_UNAVAILABLE;
    td_idem_rc_t rc = TD_IDEM_UNAVAILABLE;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 &&
        rep->element[0]->type == REDIS_REPLY_INTEGER) {
        long long code = rep->element[0]->integer;
        if (code == 0)
            rc = TD_IDEM_NEW;
        else if (code == 2)
            rc = TD_IDEM_MISMATCH;
        else if (code == 3)
            rc = TD_IDEM_IN_PROGRESS;
        else if (code == 1 && rep->elements == 6 && rep->element[1]->type == REDIS_REPLY_STRING) {
            char *end = NULL;
            char st[16];
            snprintf(st, sizeof st, "%.*s", (int)(rep->element[1]->len < 15 ? rep->element[1]->len : 15),
                     rep->element[1]->str);
            long status = strtol(st, &end, 10);
            if (end != st && *end == '\0' && status >= 100 && status <= 999) {
                rc = TD_IDEM_REPLAY;
                if (out) {
                    int oom = 0;
                    out->status = (int)status;
                    out->location = reply_dup(rep->element[2], NULL, &oom);
                    out->etag = reply_dup(rep->element[3], NULL, &oom);
                    out->content_type = reply_dup(rep->element[4], NULL, &oom);
                    out->body = reply_dup(rep->element[5], &out->body_len, &oom);
                    if (!out->body && !oom)
                        out->body = calloc(1, 1);
                    if (oom || !out->body) {
                        td_idem_resp_clear(out);
                        rc = TD_IDEM_UNAVAILABLE;
                    }
                }
            }
        }
    }
    if (rc == TD_IDEM_UNAVAILABLE && errlog_due(r))
        log_event(r, TD_LOG_WARN, "redis idempotency record unreadable", NULL);
    freeReplyObject(rep);
    return rc;
}

void td_redis_idem_finish(td_redis_t *r, const char *user, const char *key,
                          const char *fingerprint, int ttl_s, const td_idem_resp_t *resp) {
    if (!r || !fingerprint || !resp)
        return;
    char *rkey = idem_key(user, key);
    if (!rkey)
        return;
    char sttl[16], sst[16];
    snprintf(sttl, sizeof sttl, "%d", ttl_s < 1 ? 1 : ttl_s);
    snprintf(sst, sizeof sst, "%d", resp->status);
    const char *args[12];
    size_t lens[12];
    int n = 0;
#define ARG(s, l)                                                                                  \
    do {                                                                                           \
        args[n] = (s);                                                                             \
        lens[n] = (l);                                                                             \
        n++;                                                                                       \
    } while (0)
    ARG(fingerprint, strlen(fingerprint));
    ARG(sttl, strlen(sttl));
    ARG("status", 6);
    ARG(sst, strlen(sst));
    if (resp->location) {
        ARG("loc", 3);
        ARG(resp->location, strlen(resp->location));
    }
    if (resp->etag) {
        ARG("etag", 4);
        ARG(resp->etag, strlen(resp->etag));
    }
    if (resp->content_type) {
        ARG("ct", 2);
        ARG(resp->content_type, strlen(resp->content_type));
    }
    ARG("body", 4);
    ARG(resp->body ? resp->body : "", resp->body ? resp->body_len : 0);
#undef ARG
    redisReply *rep = eval(r, S_FINISH, rkey, n, args, lens);
    free(rkey);
    if (rep) {
        if (rep->type == REDIS_REPLY_INTEGER && rep->integer == 0)
            td_log(TD_LOG_WARN, NULL,
                   "idempotency record taken by another request meanwhile; response not stored",
                   NULL);
        freeReplyObject(rep);
    }
}

void td_redis_idem_abort(td_redis_t *r, const char *user, const char *key) {
    if (!r)
        return;
    char *rkey = idem_key(user, key);
    if (!rkey)
        return;
    redisReply *rep = eval(r, S_ABORT, rkey, 0, NULL, NULL);
    free(rkey);
    if (rep)
        freeReplyObject(rep);
}
