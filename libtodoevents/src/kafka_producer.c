/* Kafka layer: the idempotent CloudEvents producer.
 *
 * One rd_kafka_t (producer) plus one background thread that calls
 * rd_kafka_poll(): delivery reports, error and log callbacks run there.
 * outstanding counts records accepted by rd_kafka_producev() whose
 * delivery callback has not returned yet; flush waits for it to reach 0
 * on a condition variable, so a flush never runs callbacks itself. */
#include "kafka_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

struct te_producer_s {
    te_klog_t log; /* first: the rd_kafka opaque (see te__rd_log_cb) */
    rd_kafka_t *rk;
    te_settings_t s;
    te_delivery_cb cb;
    void *cb_opaque;
    pthread_t thread;
    int thread_started;
    atomic_int stop;
    atomic_size_t outstanding;
    pthread_mutex_t mu; /* guards fatal_str and the flush condition */
    pthread_cond_t cv;
    atomic_int fatal;
    char fatal_str[512];
    char queue_max[32];
    rd_kafka_topic_t **topics; /* prepared topics (kept for their metadata) */
    size_t ntopics;
};

/* ---- callbacks (background poll thread) --------------------------------- */

static void outstanding_dec(te_producer_t *p) {
    if (atomic_fetch_sub(&p->outstanding, 1) == 1) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

static int rd_retriable(rd_kafka_resp_err_t err) {
    switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR__FATAL:
        return 0;
    default:
        return 1;
    }
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    te_producer_t *p = opaque;
    te_delivery_t d;
    char detail[640] = "";
    memset(&d, 0, sizeof d);
    d.err = te__rd_err(m->err);
    d.fatal = m->err == RD_KAFKA_RESP_ERR__FATAL;
    if (m->err) {
        if (d.fatal) {
            pthread_mutex_lock(&p->mu);
            snprintf(detail, sizeof detail, "%s",
                     p->fatal_str[0] ? p->fatal_str : rd_kafka_err2str(m->err));
            pthread_mutex_unlock(&p->mu);
        } else {
            snprintf(detail, sizeof detail, "%s (%s)", rd_kafka_err2str(m->err),
                     rd_kafka_err2name(m->err));
        }
        d.retriable = rd_retriable(m->err);
    }
    d.errstr = detail;
    switch (rd_kafka_message_status(m)) {
    case RD_KAFKA_MSG_STATUS_PERSISTED:
        d.persisted = TE_PERSISTED;
        break;
    case RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED:
        d.persisted = TE_POSSIBLY_PERSISTED;
        break;
    default:
        d.persisted = TE_NOT_PERSISTED;
    }
    d.topic = m->rkt ? rd_kafka_topic_name(m->rkt) : "";
    d.partition = m->partition;
    d.offset = m->offset >= 0 ? m->offset : -1;
    d.key = m->key;
    d.key_len = m->key_len;
    d.latency_us = rd_kafka_message_latency(m);
    d.msg_opaque = m->_private;
    if (p->cb)
        p->cb(&d, p->cb_opaque);
    outstanding_dec(p);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    te_producer_t *p = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[400] = "";
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof buf);
        pthread_mutex_lock(&p->mu);
        /* Truncating a very long reason is fine: the text stays a sentence. */
        int n = snprintf(p->fatal_str, sizeof p->fatal_str,
                         "fatal producer error %s: %s (the producer cannot continue without "
                         "risking duplicates or reordering: destroy it and create a new one)",
                         rd_kafka_err2name(orig), buf);
        (void)n;
        pthread_mutex_unlock(&p->mu);
        atomic_store(&p->fatal, 1);
        te__klog(&p->log, LOG_ERR, "FATAL", "%s", p->fatal_str);
        return;
    }
    te__klog(&p->log, err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ? LOG_WARNING : LOG_INFO,
             "ERROR", "%s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void *poll_main(void *arg) {
    te_producer_t *p = arg;
    while (!atomic_load(&p->stop))
        rd_kafka_poll(p->rk, 50);
    rd_kafka_poll(p->rk, 0);
    return NULL;
}

/* ---- life cycle ------------------------------------------------------------ */

static te_producer_t *producer_new(const te_conf_t *conf, const char *name, te_delivery_cb cb,
                                   void *opaque, char *errstr, size_t errstr_size) {
    if (!conf) {
        te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "NULL configuration");
        return NULL;
    }
    te_producer_t *p = calloc(1, sizeof *p);
    if (!p) {
        te__seterr(errstr, errstr_size, TE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    te__conf_klog(conf, &p->log, name);
    p->cb = cb;
    p->cb_opaque = opaque;
    atomic_init(&p->stop, 0);
    atomic_init(&p->outstanding, 0);
    atomic_init(&p->fatal, 0);
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (te__conf_settings(conf, &p->s) != TE_OK) {
        te__seterr(errstr, errstr_size, TE_ERR_NOMEM, "out of memory");
        goto fail;
    }
    rd_kafka_conf_t *rc = te__conf_build(conf, TE_ROLE_PRODUCER, p, errstr, errstr_size);
    if (!rc)
        goto fail;
    rd_kafka_conf_set_dr_msg_cb(rc, dr_msg_cb);
    rd_kafka_conf_set_error_cb(rc, error_cb);
    size_t qn = sizeof p->queue_max;
    if (rd_kafka_conf_get(rc, "queue.buffering.max.messages", p->queue_max, &qn) !=
        RD_KAFKA_CONF_OK)
        snprintf(p->queue_max, sizeof p->queue_max, "?");
    char e[512] = "";
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, rc, e, sizeof e);
    if (!p->rk) {
        rd_kafka_conf_destroy(rc);
        te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "cannot create producer: %s", e);
        goto fail;
    }
    if (pthread_create(&p->thread, NULL, poll_main, p) != 0) {
        te__seterr(errstr, errstr_size, TE_ERR_NOMEM, "cannot start the poll thread");
        goto fail;
    }
    p->thread_started = 1;
    return p;
fail:
    te_producer_destroy(p);
    return NULL;
}

te_producer_t *te_producer_new(const te_conf_t *conf, te_delivery_cb cb, void *opaque,
                               char *errstr, size_t errstr_size) {
    return producer_new(conf, "producer", cb, opaque, errstr, errstr_size);
}

void te_producer_destroy(te_producer_t *p) {
    if (!p)
        return;
    if (p->thread_started) {
        if (te_producer_flush(p, p->s.flush_timeout_ms) != TE_OK) {
            te__klog(&p->log, LOG_WARNING, "FLUSH",
                     "%zu record(s) not delivered within te.flush.timeout.ms=%d; purging them "
                     "(their delivery callbacks report TE_ERR_CLOSED)",
                     atomic_load(&p->outstanding), p->s.flush_timeout_ms);
            rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            if (te_producer_flush(p, 5000) != TE_OK)
                te__klog(&p->log, LOG_ERR, "FLUSH",
                         "%zu record(s) still without a delivery report after purging",
                         atomic_load(&p->outstanding));
        }
        atomic_store(&p->stop, 1);
        pthread_join(p->thread, NULL);
    }
    for (size_t i = 0; i < p->ntopics; i++)
        rd_kafka_topic_destroy(p->topics[i]);
    free(p->topics);
    if (p->rk)
        rd_kafka_destroy(p->rk);
    te__settings_free(&p->s);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* ---- sending ------------------------------------------------------------------ */

static te_err_t fatal_check(te_producer_t *p, char *errstr, size_t errstr_size) {
    if (!atomic_load(&p->fatal))
        return TE_OK;
    pthread_mutex_lock(&p->mu);
    te__seterr(errstr, errstr_size, TE_ERR_KAFKA, "%s", p->fatal_str);
    pthread_mutex_unlock(&p->mu);
    return TE_ERR_KAFKA;
}

/* Hands one record to librdkafka.  value is freed on failure when
 * free_value (on success librdkafka owns it); rh is owned on success. */
static te_err_t produce(te_producer_t *p, const char *topic, const void *key, size_t key_len,
                        void *value, size_t value_len, int free_value, rd_kafka_headers_t *rh,
                        void *opaque, char *errstr, size_t errstr_size) {
    atomic_fetch_add(&p->outstanding, 1);
    /* Never wait on the poll thread (a send from a delivery callback): the
     * slot it waits for is freed only after that callback returns. */
    int on_poll_thread = pthread_equal(pthread_self(), p->thread);
    int64_t deadline = p->s.send_timeout_ms > 0 && !on_poll_thread
                           ? te__mono_us() + (int64_t)p->s.send_timeout_ms * 1000
                           : 0;
    rd_kafka_resp_err_t err;
    for (;;) {
        err = rd_kafka_producev(
            p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key_len),
            RD_KAFKA_V_VALUE(value, value_len),
            RD_KAFKA_V_MSGFLAGS(free_value ? RD_KAFKA_MSG_F_FREE : RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_HEADERS(rh), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
        if (!err)
            return TE_OK;
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || te__mono_us() >= deadline)
            break;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    outstanding_dec(p);
    if (free_value)
        free(value);
    if (rh)
        rd_kafka_headers_destroy(rh);
    switch (err) {
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
        return te__seterr(errstr, errstr_size, TE_ERR_QUEUE_FULL,
                          "local producer queue is full (%s records, te.queue.max.messages): "
                          "the broker is slow or unreachable; retry later%s",
                          p->queue_max,
                          p->s.send_timeout_ms > 0 ? ""
                                                   : " or set te.send.timeout.ms to wait");
    case RD_KAFKA_RESP_ERR__FATAL:
        return fatal_check(p, errstr, errstr_size);
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        return te__seterr(errstr, errstr_size, TE_ERR_KAFKA,
                          "record too large (%zu bytes value; see message.max.bytes)",
                          value_len);
    default:
        return te__seterr(errstr, errstr_size, te__rd_err(err), "cannot send to %s: %s (%s)",
                          topic, rd_kafka_err2str(err), rd_kafka_err2name(err));
    }
}

static rd_kafka_headers_t *to_rd_headers(const te_headers_t *h) {
    size_t n = te_headers_count(h);
    rd_kafka_headers_t *rh = rd_kafka_headers_new(n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const void *v = te_headers_value(h, i, &len);
        if (rd_kafka_header_add(rh, te_headers_name(h, i), -1, v, v ? (ssize_t)len : 0)) {
            rd_kafka_headers_destroy(rh);
            return NULL;
        }
    }
    return rh;
}

static te_err_t invalid_event(const te_event_t *ev, char *errstr, size_t errstr_size) {
    te_problems_t *pr = te_problems_new();
    if (!pr)
        return te__seterr(errstr, errstr_size, TE_ERR_NOMEM, "out of memory");
    te_err_t e = te_catalog_validate_event(ev, pr);
    char buf[TE_ERRSTR_SIZE] = "", line[256];
    size_t used = 0;
    for (size_t i = 0; i < te_problems_count(pr) && used + 2 < sizeof buf; i++) {
        int w = snprintf(buf + used, sizeof buf - used, "%s%s", i ? "; " : "",
                         te_problems_format(pr, i, line, sizeof line));
        if (w < 0)
            break;
        used += (size_t)w;
        if (used >= sizeof buf)
            used = sizeof buf - 1;
    }
    te_problems_destroy(pr);
    return te__seterr(errstr, errstr_size, e ? e : TE_ERR_INVALID,
                      "event %s fails the catalogue rules: %s",
                      te_event_id(ev) ? te_event_id(ev) : "(no id)", buf);
}

te_err_t te__producer_send_event(te_producer_t *p, const char *topic, const te_event_t *ev,
                                 te_kafka_mode_t mode, const void *key, size_t key_len,
                                 void *msg_opaque, char *errstr, size_t errstr_size) {
    if (!p || !topic || !*topic || !ev)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG,
                          "NULL producer, topic or event");
    te_err_t e = fatal_check(p, errstr, errstr_size);
    if (e)
        return e;
    if (p->s.validate && te_catalog_validate_event(ev, NULL) != TE_OK)
        return invalid_event(ev, errstr, errstr_size);
    te_headers_t *h = te_headers_new();
    if (!h)
        return te__seterr(errstr, errstr_size, TE_ERR_NOMEM, "out of memory");
    void *value = NULL;
    size_t value_len = 0;
    e = te_event_to_kafka(ev, mode, h, &value, &value_len, errstr, errstr_size);
    if (e) {
        te_headers_destroy(h);
        return e;
    }
    rd_kafka_headers_t *rh = to_rd_headers(h);
    te_headers_destroy(h);
    if (!rh) {
        free(value);
        return te__seterr(errstr, errstr_size, TE_ERR_NOMEM, "out of memory");
    }
    return produce(p, topic, key, key_len, value, value_len, 1, rh, msg_opaque, errstr,
                   errstr_size);
}

te_err_t te_producer_send_mode(te_producer_t *p, const char *topic, const te_event_t *ev,
                               te_kafka_mode_t mode, const char *key, void *msg_opaque,
                               char *errstr, size_t errstr_size) {
    if (!p || !ev)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "NULL producer or event");
    if (!key)
        key = te_event_partitionkey(ev);
    if (!key || !*key)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG,
                          "event %s has no key: give a key or set the partitionkey extension "
                          "(the user id) — per-user order needs one",
                          te_event_id(ev) ? te_event_id(ev) : "(no id)");
    return te__producer_send_event(p, topic, ev, mode, key, strlen(key), msg_opaque, errstr,
                                   errstr_size);
}

te_err_t te_producer_send(te_producer_t *p, const char *topic, const te_event_t *ev,
                          const char *key, void *msg_opaque, char *errstr, size_t errstr_size) {
    if (!p)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "NULL producer");
    return te_producer_send_mode(p, topic, ev, p->s.mode, key, msg_opaque, errstr, errstr_size);
}

te_err_t te_producer_send_raw(te_producer_t *p, const char *topic, const void *key,
                              size_t key_len, const void *value, size_t value_len,
                              const te_headers_t *headers, void *msg_opaque, char *errstr,
                              size_t errstr_size) {
    if (!p || !topic || !*topic)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "NULL producer or topic");
    te_err_t e = fatal_check(p, errstr, errstr_size);
    if (e)
        return e;
    rd_kafka_headers_t *rh = NULL;
    if (headers && te_headers_count(headers) > 0) {
        rh = to_rd_headers(headers);
        if (!rh)
            return te__seterr(errstr, errstr_size, TE_ERR_NOMEM, "out of memory");
    }
    return produce(p, topic, key, key ? key_len : 0, (void *)(uintptr_t)value,
                   value ? value_len : 0, 0, rh, msg_opaque, errstr, errstr_size);
}

te_err_t te_producer_flush(te_producer_t *p, int timeout_ms) {
    if (!p)
        return TE_ERR_INVALID_ARG;
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    if (timeout_ms >= 0) {
        dl.tv_sec += timeout_ms / 1000;
        dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->outstanding) > 0) {
        if (timeout_ms < 0)
            pthread_cond_wait(&p->cv, &p->mu);
        else if (pthread_cond_timedwait(&p->cv, &p->mu, &dl) != 0)
            break;
    }
    size_t left = atomic_load(&p->outstanding);
    pthread_mutex_unlock(&p->mu);
    return left == 0 ? TE_OK : TE_ERR_TIMEOUT;
}

size_t te_producer_outstanding(const te_producer_t *p) {
    return p ? atomic_load(&((te_producer_t *)p)->outstanding) : 0;
}

te_err_t te_producer_fatal_error(const te_producer_t *cp, char *errstr, size_t errstr_size) {
    te_producer_t *p = (te_producer_t *)cp;
    if (!p)
        return TE_ERR_INVALID_ARG;
    return fatal_check(p, errstr, errstr_size);
}

te_err_t te_producer_prepare(te_producer_t *p, const char *topic, int timeout_ms,
                             char *errstr, size_t errstr_size) {
    if (!p || !topic || !*topic)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "NULL producer or topic");
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(p->rk, topic, NULL);
    if (!rkt)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "invalid topic name '%s'",
                          topic);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(p->rk, 0, rkt, &md, timeout_ms > 0 ? timeout_ms : 5000);
    te_err_t err = TE_OK;
    if (e) {
        err = te__seterr(errstr, errstr_size, te__rd_err(e) == TE_ERR_TIMEOUT ? TE_ERR_TIMEOUT
                                                                               : TE_ERR_KAFKA,
                         "cannot get the metadata of %s: %s", topic, rd_kafka_err2str(e));
    } else if (md->topic_cnt < 1 || md->topics[0].err) {
        rd_kafka_resp_err_t te_ = md->topic_cnt < 1 ? RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
                                                    : md->topics[0].err;
        err = te__seterr(errstr, errstr_size,
                         te_ == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ? TE_ERR_NOT_FOUND
                                                                        : TE_ERR_KAFKA,
                         te_ == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
                             ? "topic '%s' does not exist (topics are not created "
                               "automatically: run 'todoctl topics ensure' or create it)"
                             : "topic '%s': %s",
                         topic, rd_kafka_err2str(te_));
    }
    if (md)
        rd_kafka_metadata_destroy(md);
    pthread_mutex_lock(&p->mu);
    rd_kafka_topic_t **nt = realloc(p->topics, (p->ntopics + 1) * sizeof *nt);
    if (nt) {
        p->topics = nt;
        p->topics[p->ntopics++] = rkt;
        rkt = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    return err;
}

te_err_t te__producer_test_fatal(te_producer_t *p, const char *reason) {
    rd_kafka_resp_err_t e = rd_kafka_test_fatal_error(
        p->rk, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, reason);
    return e ? TE_ERR_KAFKA : TE_OK;
}

te_producer_t *te__producer_new_named(const te_conf_t *conf, const char *name, te_delivery_cb cb,
                                      void *opaque, char *errstr, size_t errstr_size) {
    return producer_new(conf, name, cb, opaque, errstr, errstr_size);
}
