/* Kafka layer: topic provisioning through the Admin API (CreateTopics,
 * DescribeConfigs, DeleteTopics) and metadata checks. */
#include "kafka_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

typedef struct admin_s {
    te_klog_t log; /* first: the rd_kafka opaque */
    rd_kafka_t *rk;
    rd_kafka_queue_t *q;
} admin_t;

static void admin_free(admin_t *a) {
    if (!a)
        return;
    if (a->q)
        rd_kafka_queue_destroy(a->q);
    if (a->rk)
        rd_kafka_destroy(a->rk);
    free(a);
}

static admin_t *admin_new(const te_conf_t *conf, char *errstr, size_t errstr_size) {
    admin_t *a = calloc(1, sizeof *a);
    if (!a) {
        te__seterr(errstr, errstr_size, TE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    te__conf_klog(conf, &a->log, "admin");
    rd_kafka_conf_t *rc = te__conf_build(conf, TE_ROLE_ADMIN, a, errstr, errstr_size);
    if (!rc) {
        free(a);
        return NULL;
    }
    char e[512] = "";
    a->rk = rd_kafka_new(RD_KAFKA_PRODUCER, rc, e, sizeof e);
    if (!a->rk) {
        rd_kafka_conf_destroy(rc);
        te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "cannot create admin client: %s", e);
        free(a);
        return NULL;
    }
    a->q = rd_kafka_queue_new(a->rk);
    return a;
}

static te_err_t metadata(rd_kafka_t *rk, int timeout_ms, const struct rd_kafka_metadata **md,
                         char *errstr, size_t errstr_size) {
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, md, timeout_ms);
    if (e)
        return te__seterr(errstr, errstr_size, te__rd_err(e) == TE_ERR_TIMEOUT ? TE_ERR_TIMEOUT
                                                                                : TE_ERR_KAFKA,
                          "cannot get the cluster metadata (is Kafka reachable?): %s",
                          rd_kafka_err2str(e));
    return TE_OK;
}

static const rd_kafka_metadata_topic_t *md_topic(const struct rd_kafka_metadata *md,
                                                 const char *name) {
    for (int i = 0; i < md->topic_cnt; i++)
        if (strcmp(md->topics[i].topic, name) == 0 && md->topics[i].err == 0)
            return &md->topics[i];
    return NULL;
}

te_err_t te__topics_exist(rd_kafka_t *rk, const char *const *topics, size_t count,
                          int timeout_ms, char *errstr, size_t errstr_size) {
    const struct rd_kafka_metadata *md = NULL;
    te_err_t e = metadata(rk, timeout_ms, &md, errstr, errstr_size);
    if (e)
        return e;
    for (size_t i = 0; i < count && !e; i++)
        if (topics[i][0] != '^' && !md_topic(md, topics[i]))
            e = te__seterr(errstr, errstr_size, TE_ERR_NOT_FOUND,
                           "topic '%s' does not exist (topics are not created automatically: "
                           "run 'todoctl topics ensure' or create it)",
                           topics[i]);
    rd_kafka_metadata_destroy(md);
    return e;
}

/* Waits for one admin result event of type want.  NULL on timeout. */
static rd_kafka_event_t *wait_result(admin_t *a, rd_kafka_event_type_t want, int timeout_ms) {
    int64_t deadline = te__mono_us() + (int64_t)timeout_ms * 1000;
    for (;;) {
        int64_t left = (deadline - te__mono_us()) / 1000;
        if (left <= 0)
            return NULL;
        rd_kafka_event_t *ev = rd_kafka_queue_poll(a->q, (int)left);
        if (!ev)
            return NULL;
        if (rd_kafka_event_type(ev) == want)
            return ev;
        rd_kafka_event_destroy(ev);
    }
}

static rd_kafka_AdminOptions_t *options(admin_t *a, rd_kafka_admin_op_t op, int timeout_ms) {
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(a->rk, op);
    char e[256];
    rd_kafka_AdminOptions_set_request_timeout(o, timeout_ms, e, sizeof e);
    if (op == RD_KAFKA_ADMIN_OP_CREATETOPICS || op == RD_KAFKA_ADMIN_OP_DELETETOPICS)
        rd_kafka_AdminOptions_set_operation_timeout(o, timeout_ms, e, sizeof e);
    return o;
}

typedef struct rep_s {
    te_topic_report_t r;
    char detail[TE_ERRSTR_SIZE];
    int missing;  /* not in the metadata */
    int describe; /* exists: compare its configuration */
} rep_t;

static void create_missing(admin_t *a, rep_t *reps, size_t n, int rf, int timeout_ms) {
    size_t nm = 0;
    for (size_t i = 0; i < n; i++)
        nm += reps[i].missing;
    if (!nm)
        return;
    rd_kafka_NewTopic_t **nt = calloc(nm, sizeof *nt);
    size_t k = 0;
    for (size_t i = 0; nt && i < n; i++) {
        if (!reps[i].missing)
            continue;
        char e[256] = "", ret[32];
        rd_kafka_NewTopic_t *t =
            rd_kafka_NewTopic_new(reps[i].r.name, reps[i].r.partitions, rf, e, sizeof e);
        snprintf(ret, sizeof ret, "%lld", (long long)reps[i].r.retention_ms);
        if (t && rd_kafka_NewTopic_set_config(t, "retention.ms", ret) == 0) {
            nt[k++] = t;
            continue;
        }
        if (t)
            rd_kafka_NewTopic_destroy(t);
        reps[i].missing = 0;
        reps[i].r.status = TE_TOPIC_FAILED;
        reps[i].r.err = TE_ERR_INVALID_ARG;
        snprintf(reps[i].detail, sizeof reps[i].detail, "%s", e[0] ? e : "invalid topic spec");
    }
    if (!nt) {
        /* Never report a topic as created when it was not even tried. */
        for (size_t i = 0; i < n; i++)
            if (reps[i].missing) {
                reps[i].missing = 0;
                reps[i].r.status = TE_TOPIC_FAILED;
                reps[i].r.err = TE_ERR_NOMEM;
                snprintf(reps[i].detail, sizeof reps[i].detail, "out of memory");
            }
        return;
    }
    rd_kafka_AdminOptions_t *o = options(a, RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout_ms);
    rd_kafka_CreateTopics(a->rk, nt, k, o, a->q);
    rd_kafka_event_t *ev = wait_result(a, RD_KAFKA_EVENT_CREATETOPICS_RESULT, timeout_ms + 2000);
    const rd_kafka_topic_result_t **tr = NULL;
    size_t ntr = 0;
    if (ev && !rd_kafka_event_error(ev))
        tr = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &ntr);
    for (size_t i = 0; i < n; i++) {
        if (!reps[i].missing)
            continue;
        rep_t *r = &reps[i];
        const rd_kafka_topic_result_t *res = NULL;
        for (size_t j = 0; j < ntr; j++)
            if (strcmp(rd_kafka_topic_result_name(tr[j]), r->r.name) == 0)
                res = tr[j];
        if (res && rd_kafka_topic_result_error(res) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            r->r.status = TE_TOPIC_CREATED;
            r->r.replication_factor = rf;
            r->r.actual_partitions = r->r.partitions;
            r->r.actual_retention_ms = r->r.retention_ms;
        } else if (res &&
                   rd_kafka_topic_result_error(res) == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            /* created concurrently by someone else: compare it like any other */
            r->missing = 0;
            r->describe = 1;
        } else {
            r->missing = 0;
            r->r.status = TE_TOPIC_FAILED;
            r->r.err = !ev ? TE_ERR_TIMEOUT : TE_ERR_KAFKA;
            snprintf(r->detail, sizeof r->detail, "cannot create: %s",
                     !ev                        ? "timed out"
                     : rd_kafka_event_error(ev) ? rd_kafka_event_error_string(ev)
                     : res                      ? rd_kafka_topic_result_error_string(res)
                                                : "no result");
        }
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(o);
    for (size_t j = 0; j < k; j++)
        rd_kafka_NewTopic_destroy(nt[j]);
    free(nt);
}

static void describe_existing(admin_t *a, rep_t *reps, size_t n, int timeout_ms) {
    size_t nd = 0;
    for (size_t i = 0; i < n; i++)
        nd += reps[i].describe;
    if (!nd)
        return;
    rd_kafka_ConfigResource_t **cr = calloc(nd, sizeof *cr);
    if (!cr) {
        for (size_t i = 0; i < n; i++)
            if (reps[i].describe) {
                reps[i].describe = 0;
                reps[i].r.status = TE_TOPIC_FAILED;
                reps[i].r.err = TE_ERR_NOMEM;
                snprintf(reps[i].detail, sizeof reps[i].detail, "out of memory");
            }
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (reps[i].describe)
            cr[k++] = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, reps[i].r.name);
    rd_kafka_AdminOptions_t *o = options(a, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, timeout_ms);
    rd_kafka_DescribeConfigs(a->rk, cr, k, o, a->q);
    rd_kafka_event_t *ev =
        wait_result(a, RD_KAFKA_EVENT_DESCRIBECONFIGS_RESULT, timeout_ms + 2000);
    const rd_kafka_ConfigResource_t **rs = NULL;
    size_t nrs = 0;
    if (ev && !rd_kafka_event_error(ev))
        rs = rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev),
                                                       &nrs);
    for (size_t i = 0; i < nrs; i++) {
        const char *name = rd_kafka_ConfigResource_name(rs[i]);
        for (size_t j = 0; j < n; j++) {
            if (!reps[j].describe || strcmp(reps[j].r.name, name) != 0)
                continue;
            if (rd_kafka_ConfigResource_error(rs[i]))
                break;
            size_t nc = 0;
            const rd_kafka_ConfigEntry_t **ce = rd_kafka_ConfigResource_configs(rs[i], &nc);
            for (size_t x = 0; x < nc; x++)
                if (strcmp(rd_kafka_ConfigEntry_name(ce[x]), "retention.ms") == 0 &&
                    rd_kafka_ConfigEntry_value(ce[x]))
                    reps[j].r.actual_retention_ms =
                        strtoll(rd_kafka_ConfigEntry_value(ce[x]), NULL, 10);
        }
    }
    for (size_t j = 0; j < n; j++) {
        rep_t *r = &reps[j];
        if (!r->describe)
            continue;
        if (r->r.actual_retention_ms == -2) {
            r->r.status = TE_TOPIC_FAILED;
            r->r.err = !ev ? TE_ERR_TIMEOUT : TE_ERR_KAFKA;
            snprintf(r->detail, sizeof r->detail, "cannot describe its configuration: %s",
                     !ev                        ? "timed out"
                     : rd_kafka_event_error(ev) ? rd_kafka_event_error_string(ev)
                                                : "no retention.ms in the result");
            continue;
        }
        size_t used = 0;
        if (r->r.actual_partitions != r->r.partitions)
            used += (size_t)snprintf(r->detail, sizeof r->detail, "partitions %d (want %d)",
                                     r->r.actual_partitions, r->r.partitions);
        if (r->r.actual_retention_ms != r->r.retention_ms && used < sizeof r->detail)
            snprintf(r->detail + used, sizeof r->detail - used,
                     "%sretention.ms %lld (want %lld)", used ? ", " : "",
                     (long long)r->r.actual_retention_ms, (long long)r->r.retention_ms);
        r->r.status = r->detail[0] ? TE_TOPIC_DIFFERS : TE_TOPIC_EXISTS;
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(o);
    for (size_t i = 0; i < k; i++)
        rd_kafka_ConfigResource_destroy(cr[i]);
    free(cr);
}

/* After CreateTopics, waits until the metadata shows every created topic
 * with a leader for each partition, so clients can use it at once. */
static void wait_visible(admin_t *a, rep_t *reps, size_t n, int timeout_ms) {
    int64_t deadline = te__mono_us() + (int64_t)timeout_ms * 1000;
    for (;;) {
        const struct rd_kafka_metadata *md = NULL;
        int all = 1;
        if (rd_kafka_metadata(a->rk, 1, NULL, &md, 2000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            all = 0;
        } else {
            for (size_t i = 0; i < n && all; i++) {
                if (reps[i].r.status != TE_TOPIC_CREATED)
                    continue;
                const rd_kafka_metadata_topic_t *t = md_topic(md, reps[i].r.name);
                if (!t || t->partition_cnt != reps[i].r.partitions)
                    all = 0;
                for (int p = 0; t && all && p < t->partition_cnt; p++)
                    if (t->partitions[p].leader < 0 || t->partitions[p].err)
                        all = 0;
            }
            rd_kafka_metadata_destroy(md);
        }
        if (all || te__mono_us() >= deadline) {
            if (!all)
                te__klog(&a->log, LOG_WARNING, "TOPICS",
                         "created topics not yet visible in the metadata after %d ms",
                         timeout_ms);
            return;
        }
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
    }
}

te_err_t te_topics_ensure(const te_conf_t *conf, const te_topic_info_t *topics, size_t count,
                          int timeout_ms, te_topic_report_cb cb, void *opaque,
                          te_topics_summary_t *summary, char *errstr, size_t errstr_size) {
    if (summary)
        memset(summary, 0, sizeof *summary);
    if (!conf)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "NULL configuration");
    if (!topics)
        count = te_catalog_topic_count();
    if (count == 0)
        return TE_OK;
    if (timeout_ms <= 0)
        timeout_ms = 30000;
    for (size_t i = 0; topics && i < count; i++)
        if (!topics[i].name || !*topics[i].name || topics[i].partitions < 1 ||
            topics[i].retention_ms < -1)
            return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG,
                              "topic spec %zu: needs a name, partitions >= 1 and retention.ms "
                              ">= -1",
                              i);
    te_settings_t s;
    if (te__conf_settings(conf, &s) != TE_OK)
        return te__seterr(errstr, errstr_size, TE_ERR_NOMEM, "out of memory");
    int rf_conf = s.replication_factor;
    te__settings_free(&s);
    rep_t *reps = calloc(count, sizeof *reps);
    if (!reps)
        return te__seterr(errstr, errstr_size, TE_ERR_NOMEM, "out of memory");
    admin_t *a = admin_new(conf, errstr, errstr_size);
    if (!a) {
        free(reps);
        return TE_ERR_INVALID_ARG;
    }
    const struct rd_kafka_metadata *md = NULL;
    te_err_t err = metadata(a->rk, timeout_ms, &md, errstr, errstr_size);
    if (err) {
        admin_free(a);
        free(reps);
        return err;
    }
    int rf = rf_conf > 0 ? rf_conf : (md->broker_cnt < 3 ? md->broker_cnt : 3);
    if (rf < 1)
        rf = 1;
    for (size_t i = 0; i < count; i++) {
        const te_topic_info_t *t = topics ? &topics[i] : te_catalog_topic_at(i);
        rep_t *r = &reps[i];
        r->r.name = t->name;
        r->r.partitions = t->partitions;
        r->r.retention_ms = t->retention_ms;
        r->r.actual_partitions = -1;
        r->r.actual_retention_ms = -2;
        r->r.detail = r->detail;
        const rd_kafka_metadata_topic_t *mt = md_topic(md, t->name);
        if (mt) {
            r->describe = 1;
            r->r.actual_partitions = mt->partition_cnt;
            r->r.replication_factor = mt->partition_cnt > 0 ? mt->partitions[0].replica_cnt : 0;
        } else {
            r->missing = 1;
        }
    }
    rd_kafka_metadata_destroy(md);
    create_missing(a, reps, count, rf, timeout_ms);
    /* topics that turned out to exist (created concurrently) need their
     * partition count from fresh metadata */
    int need_md = 0;
    for (size_t i = 0; i < count; i++)
        need_md |= reps[i].describe && reps[i].r.actual_partitions < 0;
    if (need_md && metadata(a->rk, timeout_ms, &md, NULL, 0) == TE_OK) {
        for (size_t i = 0; i < count; i++) {
            const rd_kafka_metadata_topic_t *mt = md_topic(md, reps[i].r.name);
            if (reps[i].describe && reps[i].r.actual_partitions < 0 && mt) {
                reps[i].r.actual_partitions = mt->partition_cnt;
                reps[i].r.replication_factor =
                    mt->partition_cnt > 0 ? mt->partitions[0].replica_cnt : 0;
            }
        }
        rd_kafka_metadata_destroy(md);
    }
    describe_existing(a, reps, count, timeout_ms);
    wait_visible(a, reps, count, timeout_ms);
    te_topics_summary_t sum = {0, 0, 0, 0};
    for (size_t i = 0; i < count; i++) {
        switch (reps[i].r.status) {
        case TE_TOPIC_CREATED:
            sum.created++;
            break;
        case TE_TOPIC_EXISTS:
            sum.existing++;
            break;
        case TE_TOPIC_DIFFERS:
            sum.differing++;
            break;
        case TE_TOPIC_FAILED:
            sum.failed++;
            break;
        }
        if (reps[i].r.status == TE_TOPIC_CREATED)
            te__klog(&a->log, LOG_INFO, "TOPICS",
                     "created %s (partitions %d, replication %d, retention.ms %lld)",
                     reps[i].r.name, reps[i].r.partitions, rf,
                     (long long)reps[i].r.retention_ms);
        if (cb)
            cb(&reps[i].r, opaque);
    }
    if (summary)
        *summary = sum;
    err = TE_OK;
    if (sum.failed) {
        for (size_t i = 0; i < count; i++)
            if (reps[i].r.status == TE_TOPIC_FAILED) {
                err = te__seterr(errstr, errstr_size, reps[i].r.err,
                                 "%zu topic(s) failed; first: %s: %s", sum.failed,
                                 reps[i].r.name, reps[i].detail);
                break;
            }
    }
    admin_free(a);
    free(reps);
    return err;
}

te_err_t te_topics_delete(const te_conf_t *conf, const char *const *names, size_t count,
                          int timeout_ms, char *errstr, size_t errstr_size) {
    if (!conf || (!names && count))
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "NULL argument");
    if (count == 0)
        return TE_OK;
    if (timeout_ms <= 0)
        timeout_ms = 30000;
    admin_t *a = admin_new(conf, errstr, errstr_size);
    if (!a)
        return TE_ERR_INVALID_ARG;
    rd_kafka_DeleteTopic_t **dt = calloc(count, sizeof *dt);
    if (!dt) {
        admin_free(a);
        return te__seterr(errstr, errstr_size, TE_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < count; i++)
        dt[i] = rd_kafka_DeleteTopic_new(names[i]);
    rd_kafka_AdminOptions_t *o = options(a, RD_KAFKA_ADMIN_OP_DELETETOPICS, timeout_ms);
    rd_kafka_DeleteTopics(a->rk, dt, count, o, a->q);
    rd_kafka_event_t *ev = wait_result(a, RD_KAFKA_EVENT_DELETETOPICS_RESULT, timeout_ms + 2000);
    te_err_t err = TE_OK;
    if (!ev) {
        err = te__seterr(errstr, errstr_size, TE_ERR_TIMEOUT, "DeleteTopics timed out");
    } else if (rd_kafka_event_error(ev)) {
        err = te__seterr(errstr, errstr_size, TE_ERR_KAFKA, "DeleteTopics: %s",
                         rd_kafka_event_error_string(ev));
    } else {
        size_t n = 0;
        const rd_kafka_topic_result_t **tr =
            rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
        for (size_t i = 0; i < n && !err; i++) {
            rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);
            if (e && e != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
                err = te__seterr(errstr, errstr_size, TE_ERR_KAFKA, "cannot delete %s: %s",
                                 rd_kafka_topic_result_name(tr[i]),
                                 rd_kafka_topic_result_error_string(tr[i]));
        }
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(o);
    for (size_t i = 0; i < count; i++)
        rd_kafka_DeleteTopic_destroy(dt[i]);
    free(dt);
    admin_free(a);
    return err;
}
