/* libtodoevents — the Kafka layer over librdkafka: configuration, an
 * idempotent CloudEvents producer, an at-least-once consumer with retry,
 * back-off and dead-lettering, and topic provisioning from the event
 * catalogue.  docs/kafka.md has the full semantics; this header is the
 * contract.
 *
 * Objects and threads
 *   te_conf_t      configuration; not thread-safe (build it on one thread,
 *                  then hand it to te_producer_new() / te_consumer_new() /
 *                  te_topics_ensure(), which copy what they need: the
 *                  conf may be changed or destroyed afterwards).
 *   te_producer_t  thread-safe: any thread may send and flush.  Delivery
 *                  callbacks run on the producer's own background poll
 *                  thread, never on the sending thread.
 *   te_consumer_t  te_consumer_run() blocks the calling thread (the
 *                  "consumer thread"); the handler runs on it.
 *                  te_consumer_stop() may be called from any thread, from
 *                  the handler, and from a signal handler.
 *   Log callbacks (te_conf_set_log_cb) run on any thread, including
 *   librdkafka's internal threads.
 *
 * Errors: every fallible function returns a te_err_t and writes a detail
 * into errstr (NULL/0 allowed).  Kafka failures are TE_ERR_KAFKA; the
 * values of sensitive settings (passwords, secrets, private keys) never
 * appear in an errstr or a log line written by this library. */
#ifndef TODOEVENTS_KAFKA_H
#define TODOEVENTS_KAFKA_H

#include "todoevents/cloudevent.h"
#include "todoevents/common.h"
#include "todoevents/error.h"
#include "todoevents/event_catalog.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================
 * Configuration
 * ====================================================================== */

typedef struct te_conf_s te_conf_t;

/* Log sink: level is syslog's (0 emerg .. 3 err, 4 warning, 5 notice,
 * 6 info, 7 debug); facility a short tag ("DLQ", "RETRY", "REBALANCE",
 * or librdkafka's own, e.g. "FAIL"); message is valid only during the
 * call.  Runs on any thread (librdkafka's internal threads included) and
 * must not call back into the library object that logs. */
typedef void (*te_log_cb)(void *opaque, int level, const char *facility,
                          const char *message);

/* New configuration with every default.  NULL when out of memory. */
TE_API te_conf_t *te_conf_new(void);

/* Deep copy (log callback included); NULL when out of memory or conf is NULL. */
TE_API te_conf_t *te_conf_dup(const te_conf_t *conf);

/* Frees the configuration.  NULL is a no-op. */
TE_API void te_conf_destroy(te_conf_t *conf);

/* Sets key to value (both copied).
 *  - Every librdkafka property is passed through by name
 *    (bootstrap.servers, security.protocol, sasl.mechanisms,
 *    sasl.username, sasl.password, ssl.ca.location, linger.ms, group.id,
 *    ...): see librdkafka's CONFIGURATION.md.  The value is checked by
 *    librdkafka at once.  A property that only applies to producers is
 *    not passed to consumers and vice versa, so one conf can configure a
 *    producer, a consumer and the admin client.
 *  - Keys starting with "te." are this library's (docs/kafka.md):
 *      te.content.mode          structured | binary        (structured)
 *      te.validate              true | false: catalogue validation of
 *                               com.todo.* events on send and receive (true)
 *      te.send.timeout.ms       0 = a full queue fails at once with
 *                               TE_ERR_QUEUE_FULL; N = wait up to N ms (0)
 *      te.queue.max.messages    bound of the producer's local queue
 *                               (= queue.buffering.max.messages, 100000)
 *      te.flush.timeout.ms      how long te_producer_destroy() and
 *                               te_consumer_run()'s shutdown wait (10000)
 *      te.allow.unsafe.producer true lets enable.idempotence=false pass
 *                               (false: such a producer is refused)
 *      te.max.attempts          handler attempts before dead-lettering (3)
 *      te.retry.backoff.ms      first retry back-off, doubled each time (200)
 *      te.retry.backoff.max.ms  back-off cap (10000)
 *      te.dlq.topic             dead-letter topic (notification.dlq);
 *                               "" = none: a record that would be dead-
 *                               lettered is logged and skipped
 *      te.dlq.source            CloudEvents source of DLQ records
 *                               (/todoevents/consumer)
 *      te.invalid.events        dlq | handler: records that are not valid
 *                               CloudEvents are dead-lettered at once (dlq)
 *                               or given to the handler with ev == NULL
 *      te.replication.factor    for te_topics_ensure(): -1 = min(3, number
 *                               of brokers) (-1)
 *      te.log.level             0..7: most verbose level logged (5)
 * value NULL removes a previously set key (back to its default).
 * Errors: TE_ERR_UNKNOWN_KEY (neither a librdkafka property nor a te.*
 * key; errstr names the key), TE_ERR_INVALID_ARG (NULL conf/key, value out
 * of range — the value of a sensitive key is never echoed),
 * TE_ERR_NOMEM. */
TE_API te_err_t te_conf_set(te_conf_t *conf, const char *key, const char *value,
                            char *errstr, size_t errstr_size);

/* Current value of key: a key set with te_conf_set(), or the default of a
 * te.* key.  Copies it NUL-terminated into buf (buf may be NULL to ask for
 * the size); *size is the buffer size on input and the size needed
 * (length + 1) on output.  TE_ERR_NOT_FOUND for a librdkafka property
 * that was not set, TE_ERR_UNKNOWN_KEY for an unknown te.* key,
 * TE_ERR_BUFFER_TOO_SMALL when buf is too small. */
TE_API te_err_t te_conf_get(const te_conf_t *conf, const char *key, char *buf, size_t *size);

/* Calls cb for every key set with te_conf_set(), in the order first set.
 * Values of sensitive keys (te_conf_is_sensitive) are given as
 * "[redacted]", so this is safe for logging a configuration. */
TE_API void te_conf_foreach(const te_conf_t *conf,
                            void (*cb)(const char *key, const char *value, void *opaque),
                            void *opaque);

/* 1 when the key holds a secret (password, secret, private key, token,
 * JAAS config ...), else 0. */
TE_API int te_conf_is_sensitive(const char *key);

/* Routes every log line (librdkafka's and this library's) to cb instead
 * of stderr.  cb NULL restores stderr.  Lines more verbose than
 * te.log.level are not delivered. */
TE_API void te_conf_set_log_cb(te_conf_t *conf, te_log_cb cb, void *opaque);

/* librdkafka's version string, e.g. "2.0.2".  Static. */
TE_API const char *te_kafka_librdkafka_version(void);

/* ======================================================================
 * Producer
 * ====================================================================== */

typedef struct te_producer_s te_producer_t;

/* How sure it is that the broker has the record (librdkafka's
 * rd_kafka_msg_status_t). */
typedef enum te_persisted_e {
    TE_NOT_PERSISTED = 0,      /* certainly not written: safe to resend */
    TE_POSSIBLY_PERSISTED = 1, /* unknown (e.g. timed out in flight) */
    TE_PERSISTED = 2           /* acknowledged by the broker (acks=all) */
} te_persisted_t;

/* The final result of one record, handed to the delivery callback.  Every
 * pointer is valid only during the callback. */
typedef struct te_delivery_s {
    te_err_t err;          /* TE_OK: persisted; TE_ERR_TIMEOUT (message.timeout.ms
                              passed), TE_ERR_CLOSED (purged by destroy),
                              TE_ERR_KAFKA (broker/fatal error) */
    const char *errstr;    /* detail, "" on success */
    int retriable;         /* 1 when resending may succeed */
    te_persisted_t persisted;
    int fatal;             /* 1: the producer hit a fatal (idempotence) error
                              and is unusable: create a new one */
    const char *topic;
    int32_t partition;     /* -1 when not known */
    int64_t offset;        /* -1 when not known */
    const void *key;       /* record key (not NUL-terminated), NULL if none */
    size_t key_len;
    int64_t latency_us;    /* from the record's enqueue in send to this report */
    void *msg_opaque;      /* as given to te_producer_send*() */
} te_delivery_t;

/* Delivery callback: called exactly once per record that send accepted,
 * on the producer's background poll thread (one thread: callbacks never
 * run concurrently with each other).  Must not call te_producer_flush()
 * or te_producer_destroy() on the same producer; sending more is
 * allowed, but such a send never waits for queue space (the slot it would
 * wait for is freed only after the callback returns): it fails at once with
 * TE_ERR_QUEUE_FULL when the queue is full. */
typedef void (*te_delivery_cb)(const te_delivery_t *delivery, void *opaque);

/* New producer.  Defaults (before the conf's own keys): enable.idempotence
 * = true, acks = all, linger.ms = 0, partitioner = murmur2_random (the
 * Java client's: the same key lands on the same partition from either).
 * enable.idempotence=false is refused unless te.allow.unsafe.producer is
 * true; acks other than all is refused by librdkafka while idempotence is
 * on.  bootstrap.servers must be set.  cb may be NULL (results are then
 * only counted).  Starts the background poll thread.
 * Errors (NULL returned, detail in errstr): invalid/contradictory
 * configuration, out of memory. */
TE_API te_producer_t *te_producer_new(const te_conf_t *conf, te_delivery_cb cb, void *opaque,
                                      char *errstr, size_t errstr_size);

/* Encodes ev (borrowed: not kept after the call) with te_event_to_kafka()
 * in te.content.mode and queues it for topic.  key (copied) is the record
 * key; NULL means the event's partitionkey (the user id).  A record
 * without either is refused: per-user order needs a key.  With
 * te.validate, com.todo.* events must pass te_catalog_validate_event().
 * On TE_OK the delivery callback will report the final result exactly
 * once with msg_opaque.  Thread-safe (ev itself must not be changed
 * concurrently).
 * Errors: TE_ERR_INVALID_ARG (NULL argument, no key), TE_ERR_INVALID
 * (event invalid; detail lists the problems), TE_ERR_UNSUPPORTED (binary
 * mode for an application/cloudevents datacontenttype), TE_ERR_QUEUE_FULL
 * (the local queue is full — the broker is slow or unreachable — and
 * te.send.timeout.ms passed), TE_ERR_KAFKA (fatal producer error, record
 * too large, unknown topic ...), TE_ERR_NOMEM.  No callback on error. */
TE_API te_err_t te_producer_send(te_producer_t *p, const char *topic, const te_event_t *ev,
                                 const char *key, void *msg_opaque, char *errstr,
                                 size_t errstr_size);

/* Like te_producer_send() with the content mode given per call. */
TE_API te_err_t te_producer_send_mode(te_producer_t *p, const char *topic,
                                      const te_event_t *ev, te_kafka_mode_t mode,
                                      const char *key, void *msg_opaque, char *errstr,
                                      size_t errstr_size);

/* Queues an arbitrary record (not necessarily a CloudEvent): key and value
 * bytes (either may be NULL), headers (may be NULL).  Everything is
 * copied.  Same results, queue and callback as te_producer_send(). */
TE_API te_err_t te_producer_send_raw(te_producer_t *p, const char *topic, const void *key,
                                     size_t key_len, const void *value, size_t value_len,
                                     const te_headers_t *headers, void *msg_opaque,
                                     char *errstr, size_t errstr_size);

/* Looks up topic's metadata now, so that the first record sent to it does
 * not wait for librdkafka's once-a-second discovery of new topics (up to
 * 1 s of extra latency), and checks that the topic exists.  Call it at
 * start-up for the topics a process will use.  Thread-safe.
 * TE_OK, TE_ERR_NOT_FOUND (the topic does not exist: topics are not
 * created automatically), TE_ERR_TIMEOUT / TE_ERR_KAFKA (no answer). */
TE_API te_err_t te_producer_prepare(te_producer_t *p, const char *topic, int timeout_ms,
                                    char *errstr, size_t errstr_size);

/* Waits until no record is outstanding: every record sent — before the
 * call and, from other threads, during it — has had its delivery callback
 * (called on the poll thread, which keeps running).  While other threads
 * keep sending, use a timeout.  TE_OK, or TE_ERR_TIMEOUT after timeout_ms
 * (-1 = no limit).  Thread-safe; must not be called from the delivery
 * callback. */
TE_API te_err_t te_producer_flush(te_producer_t *p, int timeout_ms);

/* Records sent whose delivery callback has not returned yet. */
TE_API size_t te_producer_outstanding(const te_producer_t *p);

/* TE_OK when the producer is healthy; TE_ERR_KAFKA with librdkafka's
 * fatal error (e.g. an idempotence sequence error) in errstr once a fatal
 * error happened: every later send fails and the producer must be
 * destroyed and recreated.  Thread-safe. */
TE_API te_err_t te_producer_fatal_error(const te_producer_t *p, char *errstr,
                                        size_t errstr_size);

/* Flushes for at most te.flush.timeout.ms, then purges what is left (those
 * records get their callback with TE_ERR_CLOSED), stops the poll thread
 * and frees everything.  NULL is a no-op.  Not from a delivery callback. */
TE_API void te_producer_destroy(te_producer_t *p);

/* ======================================================================
 * Consumer
 * ====================================================================== */

typedef struct te_consumer_s te_consumer_t;

typedef enum te_handler_result_e {
    TE_HANDLER_OK = 0,    /* processed: the offset may be committed */
    TE_HANDLER_RETRY = 1, /* transient failure: try again after a back-off */
    TE_HANDLER_FAIL = 2   /* permanent failure: dead-letter it now */
} te_handler_result_t;

/* The Kafka record an event came from.  Every pointer is owned by the
 * consumer and valid only during the handler call. */
typedef struct te_record_s {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const char *key;         /* NUL-terminated copy of the key, NULL if none */
    size_t key_len;          /* key length (the key may contain NULs) */
    int64_t timestamp_ms;    /* record timestamp, -1 if none */
    const te_headers_t *headers;
    const void *value;       /* raw record value, NULL if none */
    size_t value_len;
    te_kafka_mode_t mode;    /* content mode it arrived in (when decoded) */
    int attempt;             /* 1 on the first call for this record, then 2, 3 */
    const char *decode_error; /* NULL when ev decoded; else why not (only seen
                                 with te.invalid.events=handler, ev == NULL) */
} te_record_t;

/* The handler: ev is the decoded, validated event (owned by the consumer,
 * valid only during the call; NULL only with te.invalid.events=handler
 * for a record that is not a valid CloudEvent).  For RETRY and FAIL it
 * should write the reason into errstr (errstr_size >= TE_ERRSTR_SIZE); the
 * text ends up in the log and the dead-letter record.  Runs on the thread
 * that called te_consumer_run().  It may call te_consumer_stop(). */
typedef te_handler_result_t (*te_handler_cb)(const te_event_t *ev, const te_record_t *rec,
                                            void *opaque, char *errstr, size_t errstr_size);

/* New consumer in group group.id (required) subscribed to topics (count
 * names, copied; a name starting with '^' is a regex).  Defaults (before
 * the conf's own keys): partition.assignment.strategy=cooperative-sticky,
 * auto.offset.reset=earliest, enable.auto.commit=true with
 * enable.auto.offset.store=false and auto.commit.interval.ms=1000 — only
 * offsets the consumer stored itself (after OK, or after the dead-letter
 * record was acknowledged) are ever committed; changing either of these
 * two is refused.  The subscribed topics and the dead-letter topic must
 * exist (TE_ERR_NOT_FOUND names the missing one; auto-creation is off).
 * The dead-letter producer is created here from the same conf.
 * Errors: NULL returned, detail in errstr. */
TE_API te_consumer_t *te_consumer_new(const te_conf_t *conf, const char *const *topics,
                                      size_t count, te_handler_cb handler, void *opaque,
                                      char *errstr, size_t errstr_size);

/* Polls, decodes, validates, dispatches to the handler, retries,
 * dead-letters and stores offsets until te_consumer_stop(); then finishes
 * (the handler call in progress completes; a dead-letter record in
 * flight is waited for up to te.flush.timeout.ms; records waiting for a
 * retry are left uncommitted for redelivery), commits synchronously and
 * closes the consumer (rd_kafka_consumer_close: leaves the group).
 * Returns TE_OK after a stop, TE_ERR_KAFKA after a fatal consumer error,
 * TE_ERR_CLOSED when called again after it returned, TE_ERR_INVALID_ARG
 * when already running on another thread. */
TE_API te_err_t te_consumer_run(te_consumer_t *c, char *errstr, size_t errstr_size);

/* Asks te_consumer_run() to return (within about 100 ms plus the handler
 * call in progress).  Only sets an atomic flag: safe from any thread, the
 * handler, and a signal handler.  Before run: run returns at once. */
TE_API void te_consumer_stop(te_consumer_t *c);

/* Counters, for metrics and tests (read atomically, any thread). */
typedef struct te_consumer_stats_s {
    uint64_t received;      /* records taken from Kafka (poll) */
    uint64_t handled_ok;    /* handler returned OK */
    uint64_t retries;       /* handler calls after the first */
    uint64_t dead_lettered; /* DLQ records acknowledged by the broker */
    uint64_t poison;        /* records that were not valid CloudEvents */
    uint64_t skipped;       /* would have been dead-lettered, no DLQ topic */
    uint64_t dlq_errors;    /* failed DLQ publish attempts (retried) */
    uint64_t rebalances;    /* assignment changes seen */
    uint64_t commits;       /* successful synchronous commits */
} te_consumer_stats_t;

TE_API void te_consumer_stats(const te_consumer_t *c, te_consumer_stats_t *out);

/* Records on the assigned partitions not yet taken from the broker: the
 * sum over partitions of high watermark minus the consumer's position, as
 * of the last fetch (no broker round-trip; partitions not fetched yet are
 * left out).  -1 when unknown (nothing assigned, not running, NULL).  Any
 * thread, while the consumer exists. */
TE_API int64_t te_consumer_lag(const te_consumer_t *c);

/* Frees the consumer.  If te_consumer_run() never ran, or is not running,
 * the Kafka consumer is closed first (leaving the group, committing what
 * was stored).  Must not be called while te_consumer_run() runs.  NULL is
 * a no-op. */
TE_API void te_consumer_destroy(te_consumer_t *c);

/* ======================================================================
 * Topics (Admin API)
 * ====================================================================== */

typedef enum te_topic_status_e {
    TE_TOPIC_CREATED = 0, /* did not exist; created with the wanted settings */
    TE_TOPIC_EXISTS,      /* exists with the wanted partitions and retention.ms */
    TE_TOPIC_DIFFERS,     /* exists, but partitions or retention.ms differ
                             (reported, never changed) */
    TE_TOPIC_FAILED       /* could not be created or described */
} te_topic_status_t;

/* One topic's outcome.  Pointers valid only during the callback. */
typedef struct te_topic_report_s {
    const char *name;
    te_topic_status_t status;
    int partitions;              /* wanted */
    int64_t retention_ms;        /* wanted */
    int replication_factor;      /* used when created; the actual one otherwise */
    int actual_partitions;       /* -1 when unknown */
    int64_t actual_retention_ms; /* -2 when unknown */
    te_err_t err;                /* TE_TOPIC_FAILED: why */
    const char *detail;          /* DIFFERS: "partitions 3 (want 12), retention.ms
                                    1000 (want 604800000)"; FAILED: the error;
                                    else "" */
} te_topic_report_t;

typedef void (*te_topic_report_cb)(const te_topic_report_t *report, void *opaque);

typedef struct te_topics_summary_s {
    size_t created, existing, differing, failed;
} te_topics_summary_t;

/* Makes sure topics exist (count entries; topics NULL = the six topics of
 * the event catalogue, te_catalog_topic_at): creates the missing ones
 * through the Admin API (replication factor te.replication.factor, by
 * default min(3, brokers); retention.ms as given) and waits until the
 * cluster metadata shows them; describes the existing ones and reports
 * any whose partition count or retention.ms differs (they are not
 * changed).  cb (may be NULL) is called once per topic in the given
 * order, on the calling thread; summary (may be NULL) gets the counts.
 * Idempotent: a second run creates nothing.
 * Returns TE_OK when no topic FAILED (DIFFERS is a report, not an error),
 * TE_ERR_KAFKA / TE_ERR_TIMEOUT when the cluster cannot be reached or some
 * topic failed, TE_ERR_INVALID_ARG for a bad spec. */
TE_API te_err_t te_topics_ensure(const te_conf_t *conf, const te_topic_info_t *topics,
                                 size_t count, int timeout_ms, te_topic_report_cb cb,
                                 void *opaque, te_topics_summary_t *summary, char *errstr,
                                 size_t errstr_size);

/* Deletes topics (count names).  A topic that does not exist is not an
 * error.  TE_OK, TE_ERR_KAFKA, TE_ERR_TIMEOUT. */
TE_API te_err_t te_topics_delete(const te_conf_t *conf, const char *const *names,
                                 size_t count, int timeout_ms, char *errstr,
                                 size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif
