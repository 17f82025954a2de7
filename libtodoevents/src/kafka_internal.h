/* Private parts of the Kafka layer shared by kafka_conf.c, kafka_producer.c,
 * kafka_consumer.c and kafka_admin.c (not installed). */
#ifndef TODOEVENTS_KAFKA_INTERNAL_H
#define TODOEVENTS_KAFKA_INTERNAL_H

#include "internal.h"
#include "todoevents/kafka.h"

#include <librdkafka/rdkafka.h>

/* Logging: every object that owns an rd_kafka_t starts with a te_klog_t
 * and is the rd_kafka opaque, so librdkafka's log lines reach the same
 * sink as ours. */
typedef struct te_klog_s {
    te_log_cb cb;
    void *opaque;
    int level; /* te.log.level */
    char name[32]; /* "producer", "consumer", "dlq-producer", "admin" */
} te_klog_t;

void te__klog(const te_klog_t *l, int level, const char *facility, const char *fmt, ...)
    TE_PRINTF(4, 5);

/* librdkafka log_cb / error_cb that forward to the te_klog_t opaque. */
void te__rd_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf);

/* The te.* settings, parsed. */
typedef struct te_settings_s {
    te_kafka_mode_t mode;
    int validate;
    int send_timeout_ms;
    int flush_timeout_ms;
    int allow_unsafe;
    int max_attempts;
    int64_t backoff_ms;
    int64_t backoff_max_ms;
    char *dlq_topic;  /* "" = none */
    char *dlq_source;
    int invalid_to_handler;
    int replication_factor;
    int log_level;
} te_settings_t;

typedef enum te_role_e { TE_ROLE_PRODUCER, TE_ROLE_CONSUMER, TE_ROLE_ADMIN } te_role_t;

/* Copies conf's settings (strings duplicated; free with
 * te__settings_free) and its log sink. */
te_err_t te__conf_settings(const te_conf_t *conf, te_settings_t *out);
void te__settings_free(te_settings_t *s);
void te__conf_klog(const te_conf_t *conf, te_klog_t *out, const char *name);

/* Builds a librdkafka configuration for role: the role's defaults, then
 * every key set on conf that applies to the role; opaque and log_cb set.
 * Checks the role's invariants (idempotence, commit policy).  NULL on
 * error with detail in errstr. */
rd_kafka_conf_t *te__conf_build(const te_conf_t *conf, te_role_t role, void *opaque,
                                char *errstr, size_t errstr_size);

/* The value of a key set on conf (NULL when not set). */
const char *te__conf_value(const te_conf_t *conf, const char *key);

/* Maps a librdkafka error code to ours. */
te_err_t te__rd_err(rd_kafka_resp_err_t err);

/* Monotonic clock in microseconds. */
int64_t te__mono_us(void);

/* Internal producer send used by the consumer's dead-letter path: an
 * explicit mode and a key of any bytes. */
te_err_t te__producer_send_event(te_producer_t *p, const char *topic, const te_event_t *ev,
                                 te_kafka_mode_t mode, const void *key, size_t key_len,
                                 void *msg_opaque, char *errstr, size_t errstr_size);

/* A producer whose log lines carry name (e.g. "dlq-producer"). */
te_producer_t *te__producer_new_named(const te_conf_t *conf, const char *name, te_delivery_cb cb,
                                      void *opaque, char *errstr, size_t errstr_size);

/* Test hook: triggers a fatal (idempotence) error in the producer through
 * rd_kafka_test_fatal_error().  Hidden symbol, for the integration tests. */
te_err_t te__producer_test_fatal(te_producer_t *p, const char *reason);

/* Checks that every topic exists (regex subscriptions '^...' skipped).
 * TE_ERR_NOT_FOUND names the first missing one. */
te_err_t te__topics_exist(rd_kafka_t *rk, const char *const *topics, size_t count,
                          int timeout_ms, char *errstr, size_t errstr_size);

#endif
