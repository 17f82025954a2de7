/* Kafka layer: the at-least-once consumer.
 *
 * Commit policy: enable.auto.commit=true with enable.auto.offset.store=false.
 * The consumer stores a record's offset (offset + 1) only when the handler
 * returned OK, or when the record's dead-letter copy was acknowledged by the
 * broker (or dead-lettering is off and the record was skipped); librdkafka
 * commits stored offsets in the background every auto.commit.interval.ms,
 * and we commit synchronously on partition revocation and on shutdown.  So
 * a record whose handler has not finished is never committed: a process
 * killed at any point redelivers it; a committed record is never
 * redelivered to the group.
 *
 * One record per partition at a time: while a record waits for a retry
 * (back-off) or for its dead-letter acknowledgement, its partition is
 * paused, so later records of that partition (the same user) are not
 * processed before it, while the other partitions keep flowing and the
 * poll loop keeps serving rebalances and stop requests.  When the record is
 * settled the partition is resumed and the fetcher seeked to the next
 * offset.  Everything here runs on the thread that called
 * te_consumer_run() (the rebalance callback runs inside
 * rd_kafka_consumer_poll on that thread); only the DLQ delivery callback
 * runs on the DLQ producer's poll thread and talks to us through an
 * atomically reference-counted acknowledgement. */
#include "kafka_internal.h"

#include <json-c/json.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

typedef struct dlq_ack_s {
    atomic_int refs;
    atomic_int done;
    te_err_t err;
    int retriable;
    char errstr[256];
} dlq_ack_t;

/* An original event larger than this is not copied into its dead-letter
 * record (which must stay under the broker's message.max.bytes). */
#define DLQ_MAX_ORIGINAL (512 * 1024)

typedef enum { IT_NEW, IT_RETRY, IT_DLQ_SEND, IT_DLQ_WAIT } it_state_t;

/* One record being processed (and, while it waits, pending). */
typedef struct item_s {
    rd_kafka_message_t *m;
    const char *topic; /* rd_kafka_topic_name(m->rkt) */
    te_headers_t *hdrs;
    te_event_t *ev; /* the decoded event; NULL when not decodable */
    int valid;      /* ev decoded and passed the catalogue rules */
    te_kafka_mode_t mode;
    char *key; /* NUL-terminated copy, NULL when no key */
    char decode_error[1024];
    int attempts;
    it_state_t state;
    int64_t due_us;
    int dlq_failures;
    int dlq_omit; /* leave original_event out (it made the record too large) */
    char error[1024];
    te_time_t last_attempt_at;
    dlq_ack_t *ack;
} item_t;

struct te_consumer_s {
    te_klog_t log; /* first: the rd_kafka opaque */
    rd_kafka_t *rk;
    te_settings_t s;
    te_producer_t *dlq;
    te_conf_t *conf; /* copy, to recreate the DLQ producer after a fatal error */
    te_handler_cb handler;
    void *opaque;
    char *group;
    atomic_int stop;
    atomic_int running;
    int closed;
    item_t **pend; /* at most one per partition: that partition is paused */
    size_t npend, cap;
    atomic_int fatal;
    char fatal_str[512]; /* written on the consumer thread (error_cb via poll) */
    _Atomic uint64_t st_received, st_ok, st_retries, st_dead, st_poison, st_skipped,
        st_dlq_errors, st_rebalances, st_commits;
};

#define INC(c, f) atomic_fetch_add(&(c)->f, 1)

/* ---- items ----------------------------------------------------------------- */

static void ack_release(dlq_ack_t *a) {
    if (a && atomic_fetch_sub(&a->refs, 1) == 1)
        free(a);
}

static void item_free(item_t *it) {
    if (!it)
        return;
    ack_release(it->ack);
    te_event_destroy(it->ev);
    te_headers_destroy(it->hdrs);
    free(it->key);
    if (it->m)
        rd_kafka_message_destroy(it->m);
    free(it);
}

static void join_problems(const te_problems_t *p, char *buf, size_t size) {
    size_t used = 0;
    char line[256];
    buf[0] = '\0';
    for (size_t i = 0; i < te_problems_count(p) && used + 2 < size; i++) {
        int w = snprintf(buf + used, size - used, "%s%s", i ? "; " : "",
                         te_problems_format(p, i, line, sizeof line));
        if (w < 0)
            break;
        used += (size_t)w;
        if (used >= size)
            used = size - 1;
    }
}

/* Takes ownership of m.  Decodes (mode detected per record) and, with
 * te.validate, applies the catalogue rules. */
static item_t *item_new(te_consumer_t *c, rd_kafka_message_t *m) {
    item_t *it = calloc(1, sizeof *it);
    if (!it) {
        rd_kafka_message_destroy(m);
        return NULL;
    }
    it->m = m;
    it->topic = rd_kafka_topic_name(m->rkt);
    it->hdrs = te_headers_new();
    if (m->key) {
        it->key = malloc(m->key_len + 1);
        if (it->key) {
            memcpy(it->key, m->key, m->key_len);
            it->key[m->key_len] = '\0';
        }
    }
    if (!it->hdrs || (m->key && !it->key)) {
        item_free(it);
        return NULL;
    }
    rd_kafka_headers_t *rh = NULL;
    if (rd_kafka_message_headers(m, &rh) == RD_KAFKA_RESP_ERR_NO_ERROR && rh) {
        const char *name;
        const void *val;
        size_t len;
        for (size_t i = 0; rd_kafka_header_get_all(rh, i, &name, &val, &len) == 0; i++)
            if (te_headers_add(it->hdrs, name, val, len) != TE_OK) {
                item_free(it);
                return NULL;
            }
    }
    te_problems_t *pr = te_problems_new();
    char e[TE_ERRSTR_SIZE] = "";
    te_err_t err = te_event_from_kafka(it->hdrs, m->payload, m->len, &it->ev, &it->mode, pr, e,
                                       sizeof e);
    if (err == TE_ERR_NOT_FOUND) {
        snprintf(it->decode_error, sizeof it->decode_error,
                 "not a CloudEvent (no content-type application/cloudevents... and no "
                 "ce_specversion header)");
    } else if (err) {
        char pb[TE_ERRSTR_SIZE];
        join_problems(pr, pb, sizeof pb);
        snprintf(it->decode_error, sizeof it->decode_error, "invalid CloudEvent: %s",
                 pb[0] ? pb : e);
    } else if (c->s.validate && te_catalog_validate_event(it->ev, NULL) != TE_OK) {
        char pb[TE_ERRSTR_SIZE];
        te_problems_clear(pr);
        te_catalog_validate_event(it->ev, pr);
        join_problems(pr, pb, sizeof pb);
        snprintf(it->decode_error, sizeof it->decode_error,
                 "event %s breaks the catalogue rules for %s: %s", te_event_id(it->ev),
                 te_event_type(it->ev), pb);
    } else {
        it->valid = 1;
    }
    te_problems_destroy(pr);
    return it;
}

/* ---- partitions ------------------------------------------------------------ */

static rd_kafka_topic_partition_list_t *one_partition(const char *topic, int32_t partition,
                                                      int64_t offset) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition)->offset = offset;
    return l;
}

static void store_offset(te_consumer_t *c, item_t *it) {
    rd_kafka_topic_partition_list_t *l =
        one_partition(it->topic, it->m->partition, it->m->offset + 1);
    rd_kafka_resp_err_t e = rd_kafka_offsets_store(c->rk, l);
    if (!e)
        e = l->elems[0].err;
    if (e)
        te__klog(&c->log, LOG_WARNING, "OFFSET",
                 "cannot store offset %lld for %s [%d] (no longer assigned?): %s",
                 (long long)(it->m->offset + 1), it->topic, (int)it->m->partition,
                 rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_destroy(l);
}

static void set_paused(te_consumer_t *c, item_t *it, int pause) {
    rd_kafka_topic_partition_list_t *l =
        one_partition(it->topic, it->m->partition, RD_KAFKA_OFFSET_INVALID);
    rd_kafka_resp_err_t e =
        pause ? rd_kafka_pause_partitions(c->rk, l) : rd_kafka_resume_partitions(c->rk, l);
    if (e || l->elems[0].err)
        te__klog(&c->log, LOG_WARNING, "PAUSE", "cannot %s %s [%d]: %s",
                 pause ? "pause" : "resume", it->topic, (int)it->m->partition,
                 rd_kafka_err2str(e ? e : l->elems[0].err));
    rd_kafka_topic_partition_list_destroy(l);
}

/* A record we could not keep track of (out of memory, a failed seek) must
 * not be skipped: storing a later offset of its partition would commit past
 * it.  Stop the consumer (run() returns TE_ERR_KAFKA with this reason);
 * nothing after it is stored, so it is redelivered to whoever consumes the
 * partition next. */
static void stop_for_redelivery(te_consumer_t *c, const char *reason) {
    snprintf(c->fatal_str, sizeof c->fatal_str, "%s: consumer stopped so the record is redelivered",
             reason);
    atomic_store(&c->fatal, 1);
    te__klog(&c->log, LOG_ERR, "STOP", "%s", c->fatal_str);
}

static void lose_track(te_consumer_t *c, const char *what) {
    char reason[128];
    snprintf(reason, sizeof reason, "out of memory while %s", what);
    stop_for_redelivery(c, reason);
}

/* Resumes a settled record's partition and makes the fetcher continue
 * right after it (whatever was prefetched before the pause is dropped). */
static void resume_after(te_consumer_t *c, item_t *it) {
    set_paused(c, it, 0);
    rd_kafka_topic_partition_list_t *l =
        one_partition(it->topic, it->m->partition, it->m->offset + 1);
    rd_kafka_error_t *e = rd_kafka_seek_partitions(c->rk, l, 5000);
    /* Failures come back in the call's error or per partition. */
    if (e || l->elems[0].err) {
        char reason[256];
        snprintf(reason, sizeof reason, "seek %s [%d] to %lld failed: %s", it->topic,
                 (int)it->m->partition, (long long)(it->m->offset + 1),
                 e ? rd_kafka_error_string(e) : rd_kafka_err2str(l->elems[0].err));
        if (e)
            rd_kafka_error_destroy(e);
        stop_for_redelivery(c, reason);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

static item_t *pending_for(te_consumer_t *c, const char *topic, int32_t partition) {
    for (size_t i = 0; i < c->npend; i++)
        if (c->pend[i]->m->partition == partition && strcmp(c->pend[i]->topic, topic) == 0)
            return c->pend[i];
    return NULL;
}

static int pending_add(te_consumer_t *c, item_t *it) {
    if (c->npend == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 8;
        item_t **np = realloc(c->pend, nc * sizeof *np);
        if (!np)
            return -1;
        c->pend = np;
        c->cap = nc;
    }
    c->pend[c->npend++] = it;
    set_paused(c, it, 1);
    return 0;
}

static void pending_remove(te_consumer_t *c, item_t *it) {
    for (size_t i = 0; i < c->npend; i++)
        if (c->pend[i] == it) {
            memmove(&c->pend[i], &c->pend[i + 1], (c->npend - i - 1) * sizeof *c->pend);
            c->npend--;
            return;
        }
}

static int64_t backoff_us(const te_consumer_t *c, int n) {
    int64_t ms = c->s.backoff_ms;
    for (int i = 1; i < n && ms < c->s.backoff_max_ms; i++)
        ms *= 2;
    if (ms > c->s.backoff_max_ms)
        ms = c->s.backoff_max_ms;
    return ms * 1000;
}

/* ---- the dead-letter record ------------------------------------------------ */

static void dlq_dr(const te_delivery_t *d, void *opaque) {
    (void)opaque;
    dlq_ack_t *a = d->msg_opaque;
    a->err = d->err;
    a->retriable = d->retriable;
    snprintf(a->errstr, sizeof a->errstr, "%s", d->errstr);
    atomic_store(&a->done, 1);
    ack_release(a);
}

static struct json_object *text_or_base64(const void *p, size_t n) {
    if (!p)
        return NULL;
    if (!memchr(p, '\0', n) && te__utf8_count(p, n) >= 0)
        return json_object_new_string_len(p, (int)n);
    size_t out = 7 + 4 * ((n + 2) / 3);
    char *b = malloc(out + 1);
    if (!b)
        return NULL;
    memcpy(b, "base64:", 7);
    EVP_EncodeBlock((unsigned char *)b + 7, p, (int)n); /* NUL-terminates */
    struct json_object *j = json_object_new_string(b);
    free(b);
    return j;
}

static te_err_t build_dlq_event(te_consumer_t *c, item_t *it, te_event_t **out, char *errstr,
                                size_t errstr_size) {
    te_event_t *ev = NULL;
    struct json_object *data = NULL;
    te_err_t e = te_event_create(&ev, TE_EVENT_NOTIFICATION_DLQ, c->s.dlq_source, errstr,
                                 errstr_size);
    if (e)
        return e;
    /* key = partitionkey = the user id, when the key is a valid string */
    if (it->key && strlen(it->key) == it->m->key_len && it->m->key_len > 0)
        (void)te_event_set_partitionkey(ev, it->key, NULL, 0);
    if (it->ev && te_event_id(it->ev))
        (void)te_event_set_subject(ev, te_event_id(it->ev), NULL, 0);
    data = json_object_new_object();
    if (!data)
        goto nomem;
    struct json_object *orig = NULL;
    size_t orig_len = it->m->payload ? it->m->len : 0;
    if (it->ev && !it->dlq_omit) {
        char *js = NULL;
        size_t jl = 0;
        if (te_event_to_json(it->ev, 0, &js, &jl, NULL, 0) == TE_OK) {
            orig_len = jl;
            if (jl <= DLQ_MAX_ORIGINAL)
                orig = json_tokener_parse(js);
        }
        te_free(js);
    }
    if (!orig && (it->dlq_omit || orig_len > DLQ_MAX_ORIGINAL)) {
        char note[160];
        snprintf(note, sizeof note,
                 "(original event of %zu bytes omitted: too large for the dead-letter record)",
                 orig_len);
        orig = json_object_new_string(note);
        if (!orig)
            goto nomem;
    }
    if (!orig) {
        orig = text_or_base64(it->m->payload ? it->m->payload : "", it->m->payload ? it->m->len : 0);
        if (!orig)
            goto nomem;
    }
    char when[TE_TIME_STRLEN];
    te_time_format_utc(it->last_attempt_at ? it->last_attempt_at : te_time_now(), when,
                       sizeof when);
    json_object_object_add(data, "original_topic", json_object_new_string(it->topic));
    json_object_object_add(data, "original_event", orig);
    json_object_object_add(data, "error",
                           json_object_new_string(it->error[0] ? it->error : "failed"));
    json_object_object_add(data, "attempt_count", json_object_new_int(it->attempts));
    json_object_object_add(data, "last_attempt_at", json_object_new_string(when));
    /* extra members (the schema allows them): where the record was */
    json_object_object_add(data, "original_partition", json_object_new_int(it->m->partition));
    json_object_object_add(data, "original_offset", json_object_new_int64(it->m->offset));
    if (it->m->key)
        json_object_object_add(data, "original_key", text_or_base64(it->m->key, it->m->key_len));
    json_object_object_add(data, "consumer_group", json_object_new_string(c->group));
    if (!it->ev && te_headers_count(it->hdrs) > 0) {
        struct json_object *h = json_object_new_object();
        for (size_t i = 0; h && i < te_headers_count(it->hdrs); i++) {
            size_t n = 0;
            const void *v = te_headers_value(it->hdrs, i, &n);
            json_object_object_add(h, te_headers_name(it->hdrs, i), text_or_base64(v, n));
        }
        json_object_object_add(data, "original_headers", h);
    }
    e = te_event_set_data_object(ev, data);
    data = NULL;
    if (!e)
        e = te_event_set_datacontenttype(ev, "application/json", errstr, errstr_size);
    if (e) {
        te_event_destroy(ev);
        return e;
    }
    *out = ev;
    return TE_OK;
nomem:
    json_object_put(data);
    te_event_destroy(ev);
    return te__seterr(errstr, errstr_size, TE_ERR_NOMEM, "out of memory");
}

/* Publishes it's dead-letter record.  IT_DLQ_WAIT on success, else
 * IT_DLQ_SEND with a back-off (retried from the loop). */
/* A DLQ producer that hit a fatal error cannot send again: replace it. */
static void dlq_producer_check(te_consumer_t *c) {
    char e[TE_ERRSTR_SIZE] = "";
    if (c->dlq && te_producer_fatal_error(c->dlq, e, sizeof e) == TE_OK)
        return;
    if (c->dlq) {
        te__klog(&c->log, LOG_ERR, "DLQ", "recreating the dead-letter producer: %s", e);
        te_producer_destroy(c->dlq);
    }
    c->dlq = te__producer_new_named(c->conf, "dlq-producer", dlq_dr, c, e, sizeof e);
    if (!c->dlq)
        te__klog(&c->log, LOG_ERR, "DLQ", "cannot create the dead-letter producer: %s", e);
    else
        (void)te_producer_prepare(c->dlq, c->s.dlq_topic, 2000, NULL, 0);
}

static void dlq_send(te_consumer_t *c, item_t *it) {
    char e[TE_ERRSTR_SIZE] = "";
    te_event_t *ev = NULL;
    dlq_producer_check(c);
    te_err_t err = c->dlq ? build_dlq_event(c, it, &ev, e, sizeof e)
                          : te__seterr(e, sizeof e, TE_ERR_KAFKA, "no dead-letter producer");
    if (!err) {
        dlq_ack_t *a = calloc(1, sizeof *a);
        if (!a) {
            err = TE_ERR_NOMEM;
            snprintf(e, sizeof e, "out of memory");
        } else {
            atomic_init(&a->refs, 2); /* ours + the delivery callback's */
            atomic_init(&a->done, 0);
            err = te__producer_send_event(c->dlq, c->s.dlq_topic, ev, TE_KAFKA_STRUCTURED,
                                          it->m->key, it->m->key ? it->m->key_len : 0, a, e,
                                          sizeof e);
            if (err) {
                free(a);
            } else {
                ack_release(it->ack);
                it->ack = a;
                it->state = IT_DLQ_WAIT;
            }
        }
    }
    te_event_destroy(ev);
    if (err) {
        if (err == TE_ERR_KAFKA && c->dlq && te_producer_fatal_error(c->dlq, NULL, 0) == TE_OK)
            it->dlq_omit = 1; /* e.g. record too large: retry without the original */
        INC(c, st_dlq_errors);
        it->dlq_failures++;
        it->state = IT_DLQ_SEND;
        it->due_us = te__mono_us() + backoff_us(c, it->dlq_failures);
        te__klog(&c->log, LOG_ERR, "DLQ",
                 "cannot dead-letter %s [%d] offset %lld to %s (try %d, again in %lld ms): %s",
                 it->topic, (int)it->m->partition, (long long)it->m->offset, c->s.dlq_topic,
                 it->dlq_failures, (long long)(backoff_us(c, it->dlq_failures) / 1000), e);
    }
}

/* The record is done for good (handled, dead-lettered or skipped). */
static void settle(te_consumer_t *c, item_t *it, int was_pending) {
    store_offset(c, it);
    if (was_pending) {
        pending_remove(c, it);
        resume_after(c, it);
    }
    item_free(it);
}

/* Routes a record that will not be retried any more.  Returns 1 when it
 * is settled (freed), 0 when it now waits (pending). */
static int to_dlq(te_consumer_t *c, item_t *it, int was_pending) {
    if (!c->s.dlq_topic[0]) {
        INC(c, st_skipped);
        te__klog(&c->log, LOG_ERR, "DLQ",
                 "no dead-letter topic (te.dlq.topic is empty): skipping %s [%d] offset %lld "
                 "after %d attempt(s): %s",
                 it->topic, (int)it->m->partition, (long long)it->m->offset, it->attempts,
                 it->error);
        settle(c, it, was_pending);
        return 1;
    }
    dlq_send(c, it);
    if (it->state != IT_DLQ_WAIT)
        return 0;
    /* the broker usually acknowledges within a few milliseconds: waiting
     * here briefly avoids pausing the partition (and fetching again) */
    int64_t deadline = te__mono_us() + 100000;
    while (!atomic_load(&it->ack->done) && te__mono_us() < deadline) {
        struct timespec ts = {0, 250000};
        nanosleep(&ts, NULL);
    }
    if (!atomic_load(&it->ack->done) || it->ack->err != TE_OK)
        return 0; /* handled from the loop (serve_pending) */
    INC(c, st_dead);
    te__klog(&c->log, LOG_NOTICE, "DLQ", "%s [%d] offset %lld dead-lettered to %s after %d attempt(s)",
             it->topic, (int)it->m->partition, (long long)it->m->offset, c->s.dlq_topic,
             it->attempts);
    settle(c, it, was_pending);
    return 1;
}

/* Calls the handler for the record's current attempt and acts on the
 * result.  Returns 1 when the record is settled (freed), 0 when pending. */
static int attempt(te_consumer_t *c, item_t *it, int was_pending) {
    te_record_t r;
    memset(&r, 0, sizeof r);
    r.topic = it->topic;
    r.partition = it->m->partition;
    r.offset = it->m->offset;
    r.key = it->key;
    r.key_len = it->m->key ? it->m->key_len : 0;
    rd_kafka_timestamp_type_t tt;
    r.timestamp_ms = rd_kafka_message_timestamp(it->m, &tt);
    r.headers = it->hdrs;
    r.value = it->m->payload;
    r.value_len = it->m->payload ? it->m->len : 0;
    r.mode = it->mode;
    r.attempt = it->attempts;
    r.decode_error = it->valid ? NULL : it->decode_error;
    char e[TE_ERRSTR_SIZE] = "";
    if (it->attempts > 1)
        INC(c, st_retries);
    te_handler_result_t res = c->handler(it->valid ? it->ev : NULL, &r, c->opaque, e, sizeof e);
    it->last_attempt_at = te_time_now();
    if (res == TE_HANDLER_OK) {
        INC(c, st_ok);
        settle(c, it, was_pending);
        return 1;
    }
    if (res != TE_HANDLER_RETRY && res != TE_HANDLER_FAIL) {
        snprintf(e, sizeof e, "handler returned an unknown result %d", (int)res);
        res = TE_HANDLER_FAIL;
    }
    snprintf(it->error, sizeof it->error, "%s",
             e[0] ? e
                  : (res == TE_HANDLER_RETRY ? "handler asked for a retry (no reason given)"
                                             : "handler failed (no reason given)"));
    if (res == TE_HANDLER_RETRY && it->attempts < c->s.max_attempts) {
        int64_t wait = backoff_us(c, it->attempts);
        it->state = IT_RETRY;
        it->due_us = te__mono_us() + wait;
        te__klog(&c->log, LOG_INFO, "RETRY",
                 "%s [%d] offset %lld: attempt %d/%d failed, retrying in %lld ms: %s", it->topic,
                 (int)it->m->partition, (long long)it->m->offset, it->attempts,
                 c->s.max_attempts, (long long)(wait / 1000), it->error);
        it->attempts++;
        if (!was_pending && pending_add(c, it) != 0) {
            item_free(it);
            lose_track(c, "scheduling a retry");
            return 1;
        }
        return 0;
    }
    te__klog(&c->log, LOG_WARNING, "DLQ",
             "%s [%d] offset %lld: %s after %d attempt(s), dead-lettering: %s", it->topic,
             (int)it->m->partition, (long long)it->m->offset,
             res == TE_HANDLER_FAIL ? "failed" : "still failing", it->attempts, it->error);
    if (to_dlq(c, it, was_pending))
        return 1;
    if (!was_pending && pending_add(c, it) != 0) {
        item_free(it);
        lose_track(c, "dead-lettering a record");
        return 1;
    }
    return 0;
}

static void process(te_consumer_t *c, rd_kafka_message_t *m) {
    item_t *it = item_new(c, m);
    if (!it) {
        lose_track(c, "receiving a record");
        return;
    }
    it->attempts = 1;
    if (!it->valid && !c->s.invalid_to_handler) {
        INC(c, st_poison);
        it->last_attempt_at = te_time_now();
        snprintf(it->error, sizeof it->error, "%s", it->decode_error);
        te__klog(&c->log, LOG_WARNING, "POISON", "%s [%d] offset %lld: %s; dead-lettering",
                 it->topic, (int)it->m->partition, (long long)it->m->offset, it->decode_error);
        if (!to_dlq(c, it, 0) && pending_add(c, it) != 0) {
            item_free(it);
            lose_track(c, "dead-lettering a poison record");
        }
        return;
    }
    if (!it->valid)
        INC(c, st_poison);
    (void)attempt(c, it, 0);
}

/* Works on the pending records whose time has come. */
static void serve_pending(te_consumer_t *c) {
    int64_t now = te__mono_us();
    for (size_t i = 0; i < c->npend && !atomic_load(&c->stop);) {
        item_t *it = c->pend[i];
        size_t before = c->npend; /* settling removes it from the list */
        if (it->state == IT_RETRY && now >= it->due_us) {
            (void)attempt(c, it, 1);
        } else if (it->state == IT_DLQ_SEND && now >= it->due_us) {
            dlq_send(c, it);
        } else if (it->state == IT_DLQ_WAIT && atomic_load(&it->ack->done)) {
            if (it->ack->err == TE_OK) {
                INC(c, st_dead);
                te__klog(&c->log, LOG_NOTICE, "DLQ",
                         "%s [%d] offset %lld dead-lettered to %s after %d attempt(s)", it->topic,
                         (int)it->m->partition, (long long)it->m->offset, c->s.dlq_topic,
                         it->attempts);
                settle(c, it, 1);
            } else {
                INC(c, st_dlq_errors);
                if (!it->ack->retriable)
                    it->dlq_omit = 1; /* e.g. too large for the broker */
                it->dlq_failures++;
                it->state = IT_DLQ_SEND;
                it->due_us = now + backoff_us(c, it->dlq_failures);
                te__klog(&c->log, LOG_ERR, "DLQ",
                         "dead-letter record for %s [%d] offset %lld not delivered (try %d): %s",
                         it->topic, (int)it->m->partition, (long long)it->m->offset,
                         it->dlq_failures, it->ack->errstr);
            }
        }
        if (c->npend == before)
            i++;
    }
}

/* How long the loop may block in poll. */
static int poll_timeout_ms(const te_consumer_t *c) {
    int64_t t = 100000, now = te__mono_us();
    for (size_t i = 0; i < c->npend; i++) {
        const item_t *it = c->pend[i];
        int64_t w = it->state == IT_DLQ_WAIT ? 2000 : it->due_us - now;
        if (w < t)
            t = w;
    }
    return t <= 0 ? 0 : (int)((t + 999) / 1000);
}

/* Waits (bounded) for an in-flight dead-letter record so that its offset
 * can be stored before a commit; then drops the item. */
static void drop_pending(te_consumer_t *c, item_t *it, int wait_ms, int resume) {
    if (it->state == IT_DLQ_WAIT) {
        int64_t deadline = te__mono_us() + (int64_t)wait_ms * 1000;
        while (!atomic_load(&it->ack->done) && te__mono_us() < deadline) {
            struct timespec ts = {0, 2000000};
            nanosleep(&ts, NULL);
        }
        if (atomic_load(&it->ack->done) && it->ack->err == TE_OK) {
            INC(c, st_dead);
            store_offset(c, it);
        }
    }
    if (resume)
        set_paused(c, it, 0);
    pending_remove(c, it);
    item_free(it);
}

/* ---- rebalance and errors (consumer thread, inside poll) ---------------------- */

static void list_names(const rd_kafka_topic_partition_list_t *p, char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < p->cnt && used + 16 < size; i++) {
        int w = snprintf(buf + used, size - used, "%s%s[%d]", i ? ", " : "", p->elems[i].topic,
                         (int)p->elems[i].partition);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    if (used + 16 >= size && size > 4)
        snprintf(buf + size - 5, 5, "...");
}

static void commit_sync(te_consumer_t *c, const char *why) {
    rd_kafka_resp_err_t e = rd_kafka_commit(c->rk, NULL, 0);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
        INC(c, st_commits);
    else if (e != RD_KAFKA_RESP_ERR__NO_OFFSET)
        te__klog(&c->log, LOG_WARNING, "COMMIT", "commit on %s failed: %s", why,
                 rd_kafka_err2str(e));
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
    te_consumer_t *c = opaque;
    int coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    char names[512];
    list_names(parts, names, sizeof names);
    INC(c, st_rebalances);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        te__klog(&c->log, LOG_INFO, "REBALANCE", "assigned (%s): %s",
                 coop ? "cooperative" : "eager", names);
        if (coop) {
            rd_kafka_error_t *e = rd_kafka_incremental_assign(rk, parts);
            if (e) {
                te__klog(&c->log, LOG_ERR, "REBALANCE", "incremental assign failed: %s",
                         rd_kafka_error_string(e));
                rd_kafka_error_destroy(e);
            }
        } else {
            rd_kafka_assign(rk, parts);
        }
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        int lost = rd_kafka_assignment_lost(rk);
        te__klog(&c->log, LOG_INFO, "REBALANCE", "%s (%s): %s", lost ? "lost" : "revoked",
                 coop ? "cooperative" : "eager", names);
        /* records waiting for a retry in revoked partitions are dropped
         * (uncommitted: the new owner gets them); a dead-letter record in
         * flight is waited for, so its offset is committed with the rest */
        for (int i = 0; i < parts->cnt; i++) {
            item_t *it = pending_for(c, parts->elems[i].topic, parts->elems[i].partition);
            if (it)
                drop_pending(c, it, lost ? 0 : c->s.flush_timeout_ms, 1);
        }
        if (!lost)
            commit_sync(c, "revocation");
        if (coop) {
            rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
            if (e) {
                te__klog(&c->log, LOG_ERR, "REBALANCE", "incremental unassign failed: %s",
                         rd_kafka_error_string(e));
                rd_kafka_error_destroy(e);
            }
        } else {
            rd_kafka_assign(rk, NULL);
        }
        return;
    }
    te__klog(&c->log, LOG_ERR, "REBALANCE", "rebalance error: %s", rd_kafka_err2str(err));
    rd_kafka_assign(rk, NULL);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    te_consumer_t *c = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[400] = "";
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof buf);
        snprintf(c->fatal_str, sizeof c->fatal_str, "fatal consumer error %s: %s",
                 rd_kafka_err2name(orig), buf);
        atomic_store(&c->fatal, 1);
        te__klog(&c->log, LOG_ERR, "FATAL", "%s", c->fatal_str);
        return;
    }
    te__klog(&c->log, err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ? LOG_WARNING : LOG_INFO,
             "ERROR", "%s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/* ---- life cycle ------------------------------------------------------------- */

te_consumer_t *te_consumer_new(const te_conf_t *conf, const char *const *topics, size_t count,
                               te_handler_cb handler, void *opaque, char *errstr,
                               size_t errstr_size) {
    if (!conf || !topics || count == 0 || !handler) {
        te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG,
                   "a configuration, at least one topic and a handler are required");
        return NULL;
    }
    for (size_t i = 0; i < count; i++)
        if (!topics[i] || !*topics[i]) {
            te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "empty topic name");
            return NULL;
        }
    te_consumer_t *c = calloc(1, sizeof *c);
    if (!c) {
        te__seterr(errstr, errstr_size, TE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    te__conf_klog(conf, &c->log, "consumer");
    c->handler = handler;
    c->opaque = opaque;
    c->closed = 1; /* nothing to close until the consumer exists */
    atomic_init(&c->stop, 0);
    atomic_init(&c->running, 0);
    atomic_init(&c->fatal, 0);
    rd_kafka_topic_partition_list_t *sub = NULL;
    if (te__conf_settings(conf, &c->s) != TE_OK) {
        te__seterr(errstr, errstr_size, TE_ERR_NOMEM, "out of memory");
        goto fail;
    }
    rd_kafka_conf_t *rc = te__conf_build(conf, TE_ROLE_CONSUMER, c, errstr, errstr_size);
    if (!rc)
        goto fail;
    c->group = strdup(te__conf_value(conf, "group.id"));
    if (!c->group) {
        rd_kafka_conf_destroy(rc);
        te__seterr(errstr, errstr_size, TE_ERR_NOMEM, "out of memory");
        goto fail;
    }
    rd_kafka_conf_set_rebalance_cb(rc, rebalance_cb);
    rd_kafka_conf_set_error_cb(rc, error_cb);
    char e[512] = "";
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, rc, e, sizeof e);
    if (!c->rk) {
        rd_kafka_conf_destroy(rc);
        te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "cannot create consumer: %s", e);
        goto fail;
    }
    c->closed = 0;
    rd_kafka_poll_set_consumer(c->rk);
    /* the subscribed topics and the dead-letter topic must exist */
    const char **check = calloc(count + 1, sizeof *check);
    if (!check) {
        te__seterr(errstr, errstr_size, TE_ERR_NOMEM, "out of memory");
        goto fail;
    }
    memcpy(check, topics, count * sizeof *check);
    size_t ncheck = count;
    if (c->s.dlq_topic[0])
        check[ncheck++] = c->s.dlq_topic;
    char te_[TE_ERRSTR_SIZE] = "";
    te_err_t terr = te__topics_exist(c->rk, check, ncheck, 10000, te_, sizeof te_);
    free(check);
    if (terr == TE_ERR_NOT_FOUND) {
        te__seterr(errstr, errstr_size, TE_ERR_NOT_FOUND, "%s", te_);
        goto fail;
    } else if (terr) {
        te__klog(&c->log, LOG_WARNING, "TOPICS", "cannot check the topics: %s", te_);
    }
    if (c->s.dlq_topic[0]) {
        c->conf = te_conf_dup(conf);
        if (!c->conf) {
            te__seterr(errstr, errstr_size, TE_ERR_NOMEM, "out of memory");
            goto fail;
        }
        c->dlq = te__producer_new_named(conf, "dlq-producer", dlq_dr, c, errstr, errstr_size);
        if (!c->dlq)
            goto fail;
        /* the first dead-letter record should not wait for librdkafka's
         * once-a-second discovery of new topics */
        char pe[TE_ERRSTR_SIZE];
        if (te_producer_prepare(c->dlq, c->s.dlq_topic, 5000, pe, sizeof pe) != TE_OK)
            te__klog(&c->log, LOG_WARNING, "DLQ", "dead-letter topic %s: %s", c->s.dlq_topic,
                     pe);
    }
    sub = rd_kafka_topic_partition_list_new((int)count);
    for (size_t i = 0; i < count; i++)
        rd_kafka_topic_partition_list_add(sub, topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t se = rd_kafka_subscribe(c->rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (se) {
        te__seterr(errstr, errstr_size, TE_ERR_KAFKA, "cannot subscribe: %s",
                   rd_kafka_err2str(se));
        goto fail;
    }
    return c;
fail:
    te_consumer_destroy(c);
    return NULL;
}

static void close_consumer(te_consumer_t *c) {
    if (c->closed || !c->rk)
        return;
    while (c->npend)
        drop_pending(c, c->pend[c->npend - 1], c->s.flush_timeout_ms, 0);
    commit_sync(c, "shutdown");
    rd_kafka_resp_err_t e = rd_kafka_consumer_close(c->rk);
    if (e)
        te__klog(&c->log, LOG_WARNING, "CLOSE", "consumer close: %s", rd_kafka_err2str(e));
    c->closed = 1;
}

te_err_t te_consumer_run(te_consumer_t *c, char *errstr, size_t errstr_size) {
    if (!c)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "NULL consumer");
    if (c->closed)
        return te__seterr(errstr, errstr_size, TE_ERR_CLOSED, "the consumer is closed");
    int expect = 0;
    if (!atomic_compare_exchange_strong(&c->running, &expect, 1))
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG,
                          "te_consumer_run is already running");
    while (!atomic_load(&c->stop) && !atomic_load(&c->fatal)) {
        serve_pending(c);
        if (atomic_load(&c->stop))
            break;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, poll_timeout_ms(c));
        if (!m)
            continue;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                te__klog(&c->log,
                         m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                                 m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC
                             ? LOG_ERR
                             : LOG_WARNING,
                         "CONSUME", "%s%s%s", m->rkt ? rd_kafka_topic_name(m->rkt) : "",
                         m->rkt ? ": " : "", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        if (pending_for(c, rd_kafka_topic_name(m->rkt), m->partition)) {
            /* fetched before the pause took effect: dropped here, fetched
             * again after the seek that follows the resume */
            rd_kafka_message_destroy(m);
            continue;
        }
        INC(c, st_received);
        process(c, m);
    }
    te_err_t rc = TE_OK;
    if (atomic_load(&c->fatal))
        rc = te__seterr(errstr, errstr_size, TE_ERR_KAFKA, "%s", c->fatal_str);
    close_consumer(c);
    atomic_store(&c->running, 0);
    return rc;
}

void te_consumer_stop(te_consumer_t *c) {
    if (c)
        atomic_store(&c->stop, 1);
}

void te_consumer_stats(const te_consumer_t *cc, te_consumer_stats_t *out) {
    te_consumer_t *c = (te_consumer_t *)cc;
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!c)
        return;
    out->received = atomic_load(&c->st_received);
    out->handled_ok = atomic_load(&c->st_ok);
    out->retries = atomic_load(&c->st_retries);
    out->dead_lettered = atomic_load(&c->st_dead);
    out->poison = atomic_load(&c->st_poison);
    out->skipped = atomic_load(&c->st_skipped);
    out->dlq_errors = atomic_load(&c->st_dlq_errors);
    out->rebalances = atomic_load(&c->st_rebalances);
    out->commits = atomic_load(&c->st_commits);
}

int64_t te_consumer_lag(const te_consumer_t *c) {
    if (!c || !c->rk)
        return -1;
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(c->rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || !parts)
        return -1;
    int64_t lag = -1;
    /* positions are local, watermarks those of the last fetch: no broker call */
    if (parts->cnt > 0 && rd_kafka_position(c->rk, parts) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        lag = 0;
        for (int i = 0; i < parts->cnt; i++) {
            rd_kafka_topic_partition_t *p = &parts->elems[i];
            int64_t lo = 0, hi = 0;
            if (p->offset < 0 ||
                rd_kafka_get_watermark_offsets(c->rk, p->topic, p->partition, &lo, &hi) !=
                    RD_KAFKA_RESP_ERR_NO_ERROR ||
                hi < 0)
                continue; /* nothing fetched there yet */
            if (hi > p->offset)
                lag += hi - p->offset;
        }
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return lag;
}

void te_consumer_destroy(te_consumer_t *c) {
    if (!c)
        return;
    close_consumer(c);
    while (c->npend) {
        item_t *it = c->pend[--c->npend];
        item_free(it);
    }
    free(c->pend);
    if (c->rk)
        rd_kafka_destroy(c->rk);
    te_producer_destroy(c->dlq);
    te_conf_destroy(c->conf);
    te__settings_free(&c->s);
    free(c->group);
    free(c);
}
