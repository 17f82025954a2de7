/* The Dapr transport (docs/dapr.md): the sidecar's HTTP API through
 * libcurl, and the app side of Dapr pub/sub.
 *
 * - Connections to the sidecar are kept: finished curl handles go back to
 *   a free list (a handle keeps its connection cache).
 * - Delivery routes run the daemon's Kafka-mode handler.  Dapr redelivers
 *   on RETRY without counting attempts for us, so the attempts of an event
 *   id are counted here (a small table of recent ids); the last one, or a
 *   permanent failure, publishes the dead-letter record through the
 *   sidecar before answering SUCCESS — nothing is dropped unrecorded. */
#include <curl/curl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <todoevents/cloudevent.h>
#include <todoevents/datetime.h>
#include <todoevents/event_catalog.h>

#include "daemon.h"
#include "dapr.h"
#include "env.h"
#include "log.h"
#include "metrics.h"

#define MAX_RESPONSE (8u << 20)
#define ATTEMPT_SLOTS 256
#define DLQ_MAX_ORIGINAL (512 * 1024) /* as the Kafka consumer's */

typedef struct handle_s {
    CURL *h;
    struct handle_s *next;
} handle_t;

struct td_dapr_s {
    char *base;  /* http://127.0.0.1:3500 */
    char *pubsub, *state, *secrets, *token;
    long timeout_ms;
    pthread_mutex_t mu;
    handle_t *free_list;
};

static td_dapr_t *global;

int td_transport_dapr(void) {
    const char *t = td_env_str("TE_TRANSPORT", "kafka");
    if (strcmp(t, "kafka") == 0) return 0;
    if (strcmp(t, "dapr") == 0) return 1;
    td_logf(TD_LOG_ERROR, NULL, "TE_TRANSPORT must be kafka or dapr");
    return -1;
}

td_dapr_t *td_dapr_global(void) { return global; }
const char *td_dapr_base(const td_dapr_t *d) { return d->base; }
const char *td_dapr_token(const td_dapr_t *d) { return d->token; }

static td_dapr_t *dapr_new(void) {
    td_dapr_t *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    char base[256];
    const char *b = td_env_str("TE_DAPR_HTTP", NULL);
    if (b) snprintf(base, sizeof base, "%s", b);
    else snprintf(base, sizeof base, "http://127.0.0.1:%s", td_env_str("DAPR_HTTP_PORT", "3500"));
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/') base[--n] = '\0';
    d->base = strdup(base);
    d->pubsub = strdup(td_env_str("TE_DAPR_PUBSUB", "kafka-pubsub"));
    d->state = strdup(td_env_str("TE_DAPR_STATESTORE", "statestore"));
    d->secrets = strdup(td_env_str("TE_DAPR_SECRETSTORE", "secretstore"));
    const char *tok = td_env_str("TE_DAPR_API_TOKEN", NULL);
    d->token = tok ? strdup(tok) : NULL;
    d->timeout_ms = 10000;
    pthread_mutex_init(&d->mu, NULL);
    if (!d->base || !d->pubsub || !d->state || !d->secrets || (tok && !d->token)) {
        free(d->base), free(d->pubsub), free(d->state), free(d->secrets), free(d->token);
        free(d);
        return NULL;
    }
    return d;
}

static void dapr_destroy(td_dapr_t *d) {
    if (!d) return;
    while (d->free_list) {
        handle_t *n = d->free_list->next;
        curl_easy_cleanup(d->free_list->h);
        free(d->free_list);
        d->free_list = n;
    }
    pthread_mutex_destroy(&d->mu);
    free(d->base), free(d->pubsub), free(d->state), free(d->secrets), free(d->token);
    free(d);
}

static handle_t *acquire(td_dapr_t *d) {
    pthread_mutex_lock(&d->mu);
    handle_t *h = d->free_list;
    if (h) d->free_list = h->next;
    pthread_mutex_unlock(&d->mu);
    if (h) {
        curl_easy_reset(h->h); /* options only: the connection cache stays */
        return h;
    }
    h = calloc(1, sizeof *h);
    if (h && !(h->h = curl_easy_init())) {
        free(h);
        h = NULL;
    }
    return h;
}

static void release(td_dapr_t *d, handle_t *h) {
    pthread_mutex_lock(&d->mu);
    h->next = d->free_list;
    d->free_list = h;
    pthread_mutex_unlock(&d->mu);
}

typedef struct buf_s {
    char *p;
    size_t n, cap;
    int overflow;
    char *etag;
} buf_t;

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg) {
    buf_t *b = arg;
    size_t len = size * nmemb;
    if (b->n + len + 1 > MAX_RESPONSE) {
        b->overflow = 1;
        return 0;
    }
    if (b->n + len + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 1024;
        while (c < b->n + len + 1) c *= 2;
        char *np = realloc(b->p, c);
        if (!np) return 0;
        b->p = np;
        b->cap = c;
    }
    memcpy(b->p + b->n, data, len);
    b->n += len;
    b->p[b->n] = '\0';
    return len;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg) {
    buf_t *b = arg;
    size_t len = size * nmemb;
    if (len > 5 && strncasecmp(data, "etag:", 5) == 0 && !b->etag) {
        const char *v = data + 5;
        size_t vl = len - 5;
        while (vl && (*v == ' ' || *v == '\t')) v++, vl--;
        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' ')) vl--;
        b->etag = strndup(v, vl);
    }
    return len;
}

/* td_dapr_call() with one more header line ("Name: value", NULL = none). */
static int call(td_dapr_t *d, const char *method, const char *path, const char *ctype, const char *body, size_t len,
                const char *if_match, const char *extra, char **out, size_t *out_len, char **etag, char *errstr,
                size_t errstr_size) {
    if (out) *out = NULL;
    if (out_len) *out_len = 0;
    if (etag) *etag = NULL;
    handle_t *h = acquire(d);
    if (!h) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    size_t ul = strlen(d->base) + strlen(path) + 1;
    char *url = malloc(ul);
    if (url) snprintf(url, ul, "%s%s", d->base, path);
    struct curl_slist *hdr = NULL;
    char line[512];
    hdr = curl_slist_append(hdr, "Expect:");
    if (ctype) {
        snprintf(line, sizeof line, "Content-Type: %s", ctype);
        hdr = curl_slist_append(hdr, line);
    }
    if (d->token) {
        snprintf(line, sizeof line, "dapr-api-token: %s", d->token);
        hdr = curl_slist_append(hdr, line);
    }
    if (if_match) {
        snprintf(line, sizeof line, "If-Match: %s", if_match);
        hdr = curl_slist_append(hdr, line);
    }
    if (extra) hdr = curl_slist_append(hdr, extra);
    buf_t b = {0};
    CURL *c = h->h;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, d->timeout_ms);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &b);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    else if (strcmp(method, "POST") == 0 && !body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L), curl_easy_setopt(c, CURLOPT_POST, 1L);
    int status = -1;
    CURLcode rc = url ? curl_easy_perform(c) : CURLE_OUT_OF_MEMORY;
    if (rc == CURLE_OK) {
        long st = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
        status = (int)st;
    } else {
        snprintf(errstr, errstr_size, "dapr sidecar %s %s: %s", method, path,
                 b.overflow ? "answer too large" : curl_easy_strerror(rc));
    }
    curl_slist_free_all(hdr);
    free(url);
    release(d, h);
    if (status >= 0 && out) {
        *out = b.p ? b.p : strdup("");
        if (out_len) *out_len = b.n;
        b.p = NULL;
    }
    if (status >= 0 && etag) {
        *etag = b.etag;
        b.etag = NULL;
    }
    free(b.p);
    free(b.etag);
    return status;
}

int td_dapr_call(td_dapr_t *d, const char *method, const char *path, const char *ctype, const char *body, size_t len,
                 const char *if_match, char **out, size_t *out_len, char **etag, char *errstr, size_t errstr_size) {
    return call(d, method, path, ctype, body, len, if_match, NULL, out, out_len, etag, errstr, errstr_size);
}

static char *escape(const char *s) {
    char *e = curl_easy_escape(NULL, s, 0);
    char *r = e ? strdup(e) : NULL;
    curl_free(e);
    return r;
}

int td_dapr_ok(td_dapr_t *d) {
    char err[256];
    int st = td_dapr_call(d, "GET", "/v1.0/healthz/outbound", NULL, NULL, 0, NULL, NULL, NULL, NULL, err,
                          sizeof err);
    return st >= 200 && st < 300;
}

int td_dapr_publish(td_dapr_t *d, const char *topic, const char *key, const char *event_json,
                    size_t len, char *errstr, size_t errstr_size) {
    char *et = escape(topic), *ek = escape(key ? key : "");
    char path[1024];
    if (!et || !ek || snprintf(path, sizeof path, "/v1.0/publish/%s/%s%s%s", d->pubsub, et,
                               key ? "?metadata.partitionKey=" : "", key ? ek : "") >= (int)sizeof path) {
        free(et), free(ek);
        snprintf(errstr, errstr_size, "publish: topic or key too long");
        return -1;
    }
    free(et), free(ek);
    /* the event's trace as the request's: daprd otherwise replaces the
     * event's traceparent with a trace of its own */
    char tp[128] = "";
    json_object *ev = json_tokener_parse(event_json), *v = NULL;
    if (ev && json_object_object_get_ex(ev, "traceparent", &v) && json_object_is_type(v, json_type_string) &&
        json_object_get_string_len(v) < 100)
        snprintf(tp, sizeof tp, "traceparent: %s", json_object_get_string(v));
    json_object_put(ev);
    char *ans = NULL;
    int st = call(d, "POST", path, "application/cloudevents+json", event_json, len, NULL, tp[0] ? tp : NULL, &ans,
                  NULL, NULL, errstr, errstr_size);
    if (st == 204 || st == 200) {
        free(ans);
        return 0;
    }
    if (st >= 0) snprintf(errstr, errstr_size, "publish to %s: %d %.200s", topic, st, ans ? ans : "");
    free(ans);
    return st > 0 ? st : -1;
}

char *td_dapr_secret(td_dapr_t *d, const char *secret, const char *key, char *errstr, size_t errstr_size) {
    char *es = escape(secret);
    char path[512];
    if (!es || snprintf(path, sizeof path, "/v1.0/secrets/%s/%s", d->secrets, es) >= (int)sizeof path) {
        free(es);
        snprintf(errstr, errstr_size, "secret name too long");
        return NULL;
    }
    free(es);
    char *ans = NULL;
    size_t n = 0;
    int st = td_dapr_call(d, "GET", path, NULL, NULL, 0, NULL, &ans, &n, NULL, errstr, errstr_size);
    char *v = NULL;
    if (st == 200) {
        json_object *o = json_tokener_parse(ans);
        json_object *val = NULL;
        if (o && json_object_object_get_ex(o, key ? key : secret, &val) && json_object_is_type(val, json_type_string))
            v = strdup(json_object_get_string(val));
        else
            snprintf(errstr, errstr_size, "secret %s in store %s has no key %s", secret, d->secrets, key ? key : secret);
        json_object_put(o);
    } else if (st >= 0) {
        /* the answer's text is Dapr's error object, never the value */
        snprintf(errstr, errstr_size, "secret %s in store %s: HTTP %d %.200s", secret, d->secrets, st, ans ? ans : "");
    }
    free(ans);
    return v;
}

int td_dapr_binding(td_dapr_t *d, const char *binding, const char *operation, json_object *data,
                    json_object *metadata, char *errstr, size_t errstr_size) {
    json_object *req = json_object_new_object();
    json_object_object_add(req, "operation", json_object_new_string(operation));
    if (data) json_object_object_add(req, "data", data);
    if (metadata) json_object_object_add(req, "metadata", metadata);
    char path[512];
    char *eb = escape(binding);
    snprintf(path, sizeof path, "/v1.0/bindings/%s", eb ? eb : "");
    free(eb);
    size_t len = 0;
    const char *body = json_object_to_json_string_length(req, JSON_C_TO_STRING_PLAIN, &len);
    char *ans = NULL;
    int st = td_dapr_call(d, "POST", path, "application/json", body, len, NULL, &ans, NULL, NULL, errstr,
                          errstr_size);
    json_object_put(req);
    int rc = st == 200 || st == 204 ? 0 : -1;
    if (rc && st >= 0) snprintf(errstr, errstr_size, "binding %s: HTTP %d %.300s", binding, st, ans ? ans : "");
    free(ans);
    return rc;
}

/* ---- secrets through td_env_secret() ------------------------------------ */

static char *resolve_secret(const char *ref, void *arg, char *why, size_t why_size) {
    char name[256];
    snprintf(name, sizeof name, "%s", ref);
    char *slash = strchr(name, '/');
    const char *key = NULL;
    if (slash) {
        *slash = '\0';
        key = slash + 1;
    }
    if (!name[0] || (key && !key[0])) {
        snprintf(why, why_size, "expected <secret>[/<key>]");
        return NULL;
    }
    return td_dapr_secret(arg, name, key, why, why_size);
}

int td_dapr_global_init(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (!(global = dapr_new())) return -1;
    atexit(td_dapr_global_cleanup); /* main returns after joining its threads */
    int bad = 0;
    long wait_s = td_env_long_named("TE_DAPR_WAIT_S", 60, 0, 3600, &bad);
    if (bad) return -1;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (td_dapr_ok(global)) break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec >= wait_s) {
            td_logf(TD_LOG_ERROR, NULL, "the Dapr sidecar at %s did not answer /v1.0/healthz/outbound in %ld s",
                    global->base, wait_s);
            return -1;
        }
        usleep(200 * 1000);
    }
    td_env_set_secret_resolver(resolve_secret, global);
    td_logf(TD_LOG_INFO, NULL, "transport: Dapr sidecar at %s (pubsub %s, state %s, secrets %s)", global->base,
            global->pubsub, global->state, global->secrets);
    return 0;
}

void td_dapr_global_cleanup(void) {
    td_env_set_secret_resolver(NULL, NULL);
    dapr_destroy(global);
    global = NULL;
    curl_global_cleanup();
}

/* ---- idempotency keys in the state store -------------------------------- */

static char *b64(const char *p, size_t n) {
    char *o = malloc(4 * ((n + 2) / 3) + 1);
    if (o) EVP_EncodeBlock((unsigned char *)o, (const unsigned char *)p, (int)n);
    return o;
}

static char *unb64(const char *s, size_t *n) {
    size_t l = strlen(s);
    char *o = malloc(3 * (l / 4) + 1);
    if (!o) return NULL;
    int r = l ? EVP_DecodeBlock((unsigned char *)o, (const unsigned char *)s, (int)l) : 0;
    if (r < 0) {
        free(o);
        return NULL;
    }
    size_t pad = (l >= 1 && s[l - 1] == '=') + (l >= 2 && s[l - 2] == '=');
    *n = (size_t)r - pad;
    o[*n] = '\0';
    return o;
}

static char *str_member(json_object *o, const char *name) {
    json_object *v = NULL;
    return json_object_object_get_ex(o, name, &v) && json_object_is_type(v, json_type_string)
               ? strdup(json_object_get_string(v))
               : NULL;
}

/* "/v1.0/state/<store>/<escaped key>" into path; -1 when it does not fit. */
static int state_path(td_dapr_t *d, const char *key, char *path, size_t size) {
    char *ek = escape(key);
    int n = ek ? snprintf(path, size, "/v1.0/state/%s/%s", d->state, ek) : -1;
    free(ek);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* GET: 0 none, 1 found (*rec, *etag), -1 unavailable. */
static int state_get(td_dapr_t *d, const char *key, json_object **rec, char **etag) {
    char path[4096], err[256];
    *rec = NULL;
    if (etag) *etag = NULL;
    if (state_path(d, key, path, sizeof path) != 0) return -1;
    char *ans = NULL;
    size_t n = 0;
    int st = td_dapr_call(d, "GET", path, NULL, NULL, 0, NULL, &ans, &n, etag, err, sizeof err);
    int rc = -1;
    if (st == 204 || (st == 200 && n == 0)) rc = 0;
    else if (st == 200 && (*rec = json_tokener_parse(ans)) && json_object_is_type(*rec, json_type_object)) rc = 1;
    if (rc < 0) {
        json_object_put(*rec);
        *rec = NULL;
        td_logf(TD_LOG_WARN, NULL, "state store %s: %s", d->state, st < 0 ? err : "unexpected answer");
    }
    if (rc != 1 && etag) {
        free(*etag);
        *etag = NULL;
    }
    free(ans);
    return rc;
}

/* POST one item with first-write concurrency (etag NULL = must not
 * exist).  0 saved, -1 refused or unavailable. */
static int state_save(td_dapr_t *d, const char *key, json_object *value, const char *etag, int ttl_s) {
    json_object *item = json_object_new_object();
    json_object_object_add(item, "key", json_object_new_string(key));
    json_object_object_add(item, "value", value);
    if (etag) json_object_object_add(item, "etag", json_object_new_string(etag));
    json_object *opt = json_object_new_object();
    json_object_object_add(opt, "concurrency", json_object_new_string("first-write"));
    json_object_object_add(item, "options", opt);
    json_object *md = json_object_new_object();
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%d", ttl_s);
    json_object_object_add(md, "ttlInSeconds", json_object_new_string(ttl));
    json_object_object_add(item, "metadata", md);
    json_object *arr = json_object_new_array();
    json_object_array_add(arr, item);
    size_t len = 0;
    const char *body = json_object_to_json_string_length(arr, JSON_C_TO_STRING_PLAIN, &len);
    char path[256], err[256];
    snprintf(path, sizeof path, "/v1.0/state/%s", d->state);
    int st = td_dapr_call(d, "POST", path, "application/json", body, len, NULL, NULL, NULL, NULL, err, sizeof err);
    json_object_put(arr);
    return st == 204 || st == 200 || st == 201 ? 0 : -1;
}

static td_idem_rc_t judge(json_object *rec, const char *fingerprint, td_idem_resp_t *out) {
    char *st = str_member(rec, "st"), *fp = str_member(rec, "fp");
    td_idem_rc_t rc;
    if (!fp || strcmp(fp, fingerprint) != 0) {
        rc = TD_IDEM_MISMATCH;
    } else if (!st || strcmp(st, "d") != 0) {
        rc = TD_IDEM_IN_PROGRESS;
    } else {
        rc = TD_IDEM_REPLAY;
        if (out) {
            json_object *v = NULL;
            out->status = json_object_object_get_ex(rec, "status", &v) ? json_object_get_int(v) : 200;
            out->location = str_member(rec, "loc");
            out->etag = str_member(rec, "etag");
            out->content_type = str_member(rec, "ct");
            char *body = str_member(rec, "body");
            out->body = body ? unb64(body, &out->body_len) : NULL;
            free(body);
            if (!out->body) out->body = strdup(""), out->body_len = 0;
        }
    }
    free(st);
    free(fp);
    return rc;
}

td_idem_rc_t td_dapr_idem_begin(td_dapr_t *d, const char *user, const char *key, const char *fingerprint,
                                int ttl_s, td_idem_resp_t *out) {
    if (out) memset(out, 0, sizeof *out);
    char k[1024];
    if (!d || !fingerprint || td_redis_idem_key(user, key, k, sizeof k) != 0) return TD_IDEM_UNAVAILABLE;
    for (int round = 0; round < 2; round++) {
        json_object *rec = NULL;
        int g = state_get(d, k, &rec, NULL);
        if (g < 0) return TD_IDEM_UNAVAILABLE;
        if (g == 1) {
            td_idem_rc_t rc = judge(rec, fingerprint, out);
            json_object_put(rec);
            return rc;
        }
        json_object *v = json_object_new_object();
        json_object_object_add(v, "st", json_object_new_string("p"));
        json_object_object_add(v, "fp", json_object_new_string(fingerprint));
        if (state_save(d, k, v, NULL, ttl_s < 60 ? (ttl_s < 1 ? 1 : ttl_s) : 60) == 0) return TD_IDEM_NEW;
        /* refused: another request wrote it first — read what it wrote */
    }
    return TD_IDEM_UNAVAILABLE;
}

void td_dapr_idem_finish(td_dapr_t *d, const char *user, const char *key, const char *fingerprint, int ttl_s,
                         const td_idem_resp_t *resp) {
    char k[1024];
    if (!d || !resp || td_redis_idem_key(user, key, k, sizeof k) != 0) return;
    json_object *rec = NULL;
    char *etag = NULL;
    int g = state_get(d, k, &rec, &etag);
    char *fp = g == 1 ? str_member(rec, "fp") : NULL;
    json_object_put(rec);
    if (g == 1 && (!fp || strcmp(fp, fingerprint) != 0)) { /* another request's record */
        free(fp);
        free(etag);
        return;
    }
    free(fp);
    json_object *v = json_object_new_object();
    json_object_object_add(v, "st", json_object_new_string("d"));
    json_object_object_add(v, "fp", json_object_new_string(fingerprint));
    json_object_object_add(v, "status", json_object_new_int(resp->status));
    if (resp->location) json_object_object_add(v, "loc", json_object_new_string(resp->location));
    if (resp->etag) json_object_object_add(v, "etag", json_object_new_string(resp->etag));
    if (resp->content_type) json_object_object_add(v, "ct", json_object_new_string(resp->content_type));
    char *body = b64(resp->body ? resp->body : "", resp->body ? resp->body_len : 0);
    json_object_object_add(v, "body", json_object_new_string(body ? body : ""));
    free(body);
    if (state_save(d, k, v, g == 1 ? etag : NULL, ttl_s < 1 ? 1 : ttl_s) != 0)
        td_logf(TD_LOG_WARN, NULL, "idempotency key: the response could not be stored in %s", d->state);
    free(etag);
}

void td_dapr_idem_abort(td_dapr_t *d, const char *user, const char *key) {
    char k[1024];
    if (!d || td_redis_idem_key(user, key, k, sizeof k) != 0) return;
    json_object *rec = NULL;
    char *etag = NULL;
    if (state_get(d, k, &rec, &etag) == 1) {
        char *st = str_member(rec, "st");
        char path[4096], err[256];
        /* only the marker; a stored response stays */
        if (st && strcmp(st, "p") == 0 && state_path(d, k, path, sizeof path) == 0)
            td_dapr_call(d, "DELETE", path, NULL, NULL, 0, etag, NULL, NULL, NULL, err, sizeof err);
        free(st);
    }
    json_object_put(rec);
    free(etag);
}

/* ---- the app side of pub/sub -------------------------------------------- */

typedef struct attempt_s {
    char id[128];
    int attempts;
    unsigned long long used;
} attempt_t;

struct td_dapr_app_s {
    td_dapr_t *d;
    td_dapr_sub_t *subs;
    size_t count;
    char *source;
    int max_attempts;
    pthread_mutex_t mu; /* one handler call at a time, and the attempts table */
    atomic_int inflight, stopping;
    int max_inflight;
    attempt_t slots[ATTEMPT_SLOTS];
    unsigned long long clock;
    td_metric_t *m_received, *m_handled, *m_retries, *m_dead, *m_poison;
};

td_dapr_app_t *td_dapr_app_new(td_dapr_t *d, const td_dapr_sub_t *subs, size_t count, const char *source,
                               int max_attempts, int max_inflight) {
    td_dapr_app_t *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->d = d;
    a->subs = calloc(count ? count : 1, sizeof *a->subs);
    a->source = strdup(source);
    if (!a->subs || !a->source) {
        td_dapr_app_destroy(a);
        return NULL;
    }
    memcpy(a->subs, subs, count * sizeof *subs);
    a->count = count;
    a->max_attempts = max_attempts < 1 ? 1 : max_attempts;
    a->max_inflight = max_inflight < 1 ? 1 : max_inflight;
    pthread_mutex_init(&a->mu, NULL);
    /* the Kafka consumer's counters, so dashboards work in both modes */
    a->m_received = td_counter("te_consumer_received_total", "Records taken from Kafka", NULL);
    a->m_handled = td_counter("te_consumer_handled_total", "Records handled", NULL);
    a->m_retries = td_counter("te_consumer_retries_total", "Handler retries", NULL);
    a->m_dead = td_counter("te_consumer_dead_lettered_total", "Records dead-lettered", NULL);
    a->m_poison = td_counter("te_consumer_poison_total", "Records that were not valid CloudEvents", NULL);
    return a;
}

void td_dapr_app_stop(td_dapr_app_t *a) {
    if (a) atomic_store(&a->stopping, 1);
}

void td_dapr_app_destroy(td_dapr_app_t *a) {
    if (!a) return;
    if (a->subs) pthread_mutex_destroy(&a->mu);
    free(a->subs);
    free(a->source);
    free(a);
}

static void answer(td_http_resp_t *resp, const char *status) {
    char body[64];
    int n = snprintf(body, sizeof body, "{\"status\":\"%s\"}", status);
    td_http_resp_set(resp, 200, "application/json", body, (size_t)n);
}

/* The attempts table's key of an event id: the id, or for a long one its
 * SHA-256 (ids are any string; the slot must not truncate them). */
static void attempt_key(const char *id, char out[128]) {
    size_t n = strlen(id);
    if (n < 100) {
        memcpy(out, id, n + 1);
        return;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    EVP_Digest(id, n, md, &ml, EVP_sha256(), NULL);
    int o = snprintf(out, 128, "sha256:");
    for (unsigned int i = 0; i < ml && o + 2 < 128; i++) o += snprintf(out + o, 128 - (size_t)o, "%02x", md[i]);
}

/* Attempts so far of id (an attempt_key), this one counted (mu held). */
static int count_attempt(td_dapr_app_t *a, const char *id) {
    attempt_t *free_slot = NULL, *oldest = &a->slots[0];
    a->clock++;
    for (int i = 0; i < ATTEMPT_SLOTS; i++) {
        attempt_t *s = &a->slots[i];
        if (s->attempts && strcmp(s->id, id) == 0) {
            s->used = a->clock;
            return ++s->attempts;
        }
        if (!s->attempts && !free_slot) free_slot = s;
        if (s->used < oldest->used) oldest = s;
    }
    attempt_t *s = free_slot ? free_slot : oldest;
    snprintf(s->id, sizeof s->id, "%s", id);
    s->attempts = 1;
    s->used = a->clock;
    return 1;
}

static void forget_attempts(td_dapr_app_t *a, const char *id) {
    for (int i = 0; i < ATTEMPT_SLOTS; i++)
        if (a->slots[i].attempts && strcmp(a->slots[i].id, id) == 0) a->slots[i].attempts = 0;
}

/* Publishes the dead-letter record of a delivery.  0 or -1. */
static int dead_letter(td_dapr_app_t *a, const char *topic, const te_event_t *ev, const char *rec_key,
                       const char *body, size_t len, const char *error, int attempts) {
    json_object *data = json_object_new_object();
    json_object *orig = NULL;
    size_t orig_len = len;
    if (ev) {
        char *js = NULL;
        if (te_event_to_json(ev, 0, &js, &orig_len, NULL, 0) == TE_OK && orig_len <= DLQ_MAX_ORIGINAL)
            orig = json_tokener_parse(js);
        te_free(js);
    }
    if (!orig && orig_len > DLQ_MAX_ORIGINAL) { /* as Kafka mode: the record must fit in Kafka */
        char note[160];
        snprintf(note, sizeof note, "(original event of %zu bytes omitted: too large for the dead-letter record)",
                 orig_len);
        orig = json_object_new_string(note);
    }
    if (!orig) orig = json_object_new_string_len(body, (int)len);
    char when[TE_TIME_STRLEN];
    te_time_format_utc(te_time_now(), when, sizeof when);
    json_object_object_add(data, "original_topic", json_object_new_string(topic));
    json_object_object_add(data, "original_event", orig);
    json_object_object_add(data, "error", json_object_new_string(error && error[0] ? error : "failed"));
    json_object_object_add(data, "attempt_count", json_object_new_int(attempts));
    json_object_object_add(data, "last_attempt_at", json_object_new_string(when));
    json_object_object_add(data, "consumer_group", json_object_new_string(a->source));
    /* keyed like the record (Kafka mode keys dead letters by the record key) */
    const char *key = rec_key && rec_key[0] ? rec_key : ev ? te_event_get_string(ev, "partitionkey") : NULL;
    char err[TE_ERRSTR_SIZE];
    char *js = td_event_json(TE_EVENT_NOTIFICATION_DLQ, a->source, NULL, key ? key : "unknown",
                             ev ? te_event_get_string(ev, "traceparent") : NULL, data, err, sizeof err);
    if (ev && te_event_id(ev) && js) {
        /* subject = the original id, as in Kafka mode */
        te_event_t *dl = NULL;
        if (te_event_from_json(js, strlen(js), &dl, NULL, NULL, 0) == TE_OK &&
            te_event_set_subject(dl, te_event_id(ev), NULL, 0) == TE_OK) {
            char *js2 = NULL;
            if (te_event_to_json(dl, 0, &js2, NULL, NULL, 0) == TE_OK) {
                te_free(js);
                js = js2;
            }
        }
        te_event_destroy(dl);
    }
    if (!js) {
        td_logf(TD_LOG_ERROR, NULL, "dead-letter record: %s", err);
        return -1;
    }
    int rc = td_dapr_publish(a->d, TE_TOPIC_NOTIFICATION_DLQ, key ? key : "unknown", js, strlen(js), err, sizeof err);
    te_free(js);
    if (rc != 0) td_logf(TD_LOG_ERROR, NULL, "dead-letter record: %s", err);
    else td_metric_inc(a->m_dead, NULL, 1);
    return rc;
}

static void subscribe_list(td_dapr_app_t *a, td_http_resp_t *resp) {
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < a->count; i++) {
        json_object *s = json_object_new_object();
        char route[256];
        snprintf(route, sizeof route, "/dapr/events/%s", a->subs[i].topic);
        json_object_object_add(s, "pubsubname", json_object_new_string(a->d->pubsub));
        json_object_object_add(s, "topic", json_object_new_string(a->subs[i].topic));
        json_object_object_add(s, "route", json_object_new_string(route));
        json_object_array_add(arr, s);
    }
    size_t len = 0;
    const char *js = json_object_to_json_string_length(arr, JSON_C_TO_STRING_PLAIN, &len);
    td_http_resp_set(resp, 200, "application/json", js, len);
    json_object_put(arr);
}

static void deliver(td_dapr_app_t *a, const td_dapr_sub_t *sub, td_http_req_t *req, td_http_resp_t *resp) {
    size_t len = 0;
    const char *body = td_http_body(req, &len);
    char err[TE_ERRSTR_SIZE] = "";
    te_event_t *ev = NULL;
    td_metric_inc(a->m_received, NULL, 1);
    if (te_catalog_event_from_json(body, len, &ev, NULL, err, sizeof err) != TE_OK) {
        td_metric_inc(a->m_poison, NULL, 1);
        char why[TE_ERRSTR_SIZE + 32];
        snprintf(why, sizeof why, "invalid CloudEvent: %s", err);
        td_logf(TD_LOG_WARN, NULL, "dapr delivery on %s: %s", sub->topic, why);
        answer(resp, dead_letter(a, sub->topic, NULL, td_http_header(req, "__key"), body, len, why, 1) == 0
                         ? "SUCCESS"
                         : "RETRY");
        return;
    }
    const char *key = te_event_get_string(ev, "partitionkey");
    te_record_t rec = {.topic = sub->topic,
                       .partition = -1,
                       .offset = -1,
                       .key = key,
                       .key_len = key ? strlen(key) : 0,
                       .timestamp_ms = -1,
                       .value = body,
                       .value_len = len,
                       .mode = TE_KAFKA_STRUCTURED};
    const char *id = te_event_id(ev);
    char akey[128];
    attempt_key(id, akey);
    /* the handler runs one call at a time; a delivery that cannot have it
     * soon goes back to Dapr (RETRY) rather than hold an HTTP thread, so
     * the probes on this server always find one free */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    if (pthread_mutex_timedlock(&a->mu, &until) != 0) {
        te_event_destroy(ev);
        answer(resp, "RETRY");
        return;
    }
    if (atomic_load(&a->stopping)) {
        pthread_mutex_unlock(&a->mu);
        te_event_destroy(ev);
        answer(resp, "RETRY");
        return;
    }
    rec.attempt = count_attempt(a, akey);
    err[0] = '\0';
    te_handler_result_t r = sub->handler(ev, &rec, sub->opaque, err, sizeof err);
    if (r == TE_HANDLER_OK) forget_attempts(a, akey);
    pthread_mutex_unlock(&a->mu);
    if (r == TE_HANDLER_OK) {
        td_metric_inc(a->m_handled, NULL, 1);
        answer(resp, "SUCCESS");
    } else if (r == TE_HANDLER_RETRY && rec.attempt < a->max_attempts) {
        td_metric_inc(a->m_retries, NULL, 1);
        td_logf(TD_LOG_WARN, NULL, "event %s on %s: attempt %d failed, Dapr will redeliver: %s", id, sub->topic,
                rec.attempt, err);
        answer(resp, "RETRY");
    } else {
        int ok = dead_letter(a, sub->topic, ev, td_http_header(req, "__key"), body, len, err, rec.attempt) == 0;
        if (ok) {
            pthread_mutex_lock(&a->mu);
            forget_attempts(a, akey);
            pthread_mutex_unlock(&a->mu);
        }
        answer(resp, ok ? "SUCCESS" : "RETRY");
    }
    te_event_destroy(ev);
}

int td_dapr_app_serve(td_dapr_app_t *a, td_http_req_t *req, td_http_resp_t *resp) {
    if (!a) return 0;
    const char *path = td_http_path(req), *method = td_http_method(req);
    if (strcmp(path, "/dapr/subscribe") == 0) {
        if (strcmp(method, "GET") != 0) td_http_resp_set(resp, 405, "application/json", "{}", 2);
        else subscribe_list(a, resp);
        return 1;
    }
    static const char prefix[] = "/dapr/events/";
    if (strncmp(path, prefix, sizeof prefix - 1) != 0) return 0;
    const char *topic = path + sizeof prefix - 1;
    for (size_t i = 0; i < a->count; i++) {
        if (strcmp(a->subs[i].topic, topic) != 0) continue;
        if (strcmp(method, "POST") != 0) td_http_resp_set(resp, 405, "application/json", "{}", 2);
        else if (td_http_body_too_large(req)) {
            /* larger than any Kafka record (the limit is twice Kafka's
             * default maximum): nothing to do with it but say so — and
             * this runs on the server's I/O thread, so without blocking */
            td_logf(TD_LOG_ERROR, NULL, "dapr delivery on %s: %s bytes, over the app's limit: dropped", topic,
                    td_http_header(req, "Content-Length") ? td_http_header(req, "Content-Length") : "?");
            td_metric_inc(a->m_poison, NULL, 1);
            answer(resp, "DROP");
        } else if (atomic_fetch_add(&a->inflight, 1) >= a->max_inflight) {
            atomic_fetch_sub(&a->inflight, 1);
            answer(resp, "RETRY"); /* every delivery thread is taken: keep one for the probes */
        } else {
            deliver(a, &a->subs[i], req, resp);
            atomic_fetch_sub(&a->inflight, 1);
        }
        return 1;
    }
    td_http_resp_set(resp, 404, "application/json", "{\"status\":\"not subscribed\"}", 27);
    return 1;
}
