/* todo-reminder internals (docs/reminder.md is the contract). */
#ifndef TODO_REMINDER_H
#define TODO_REMINDER_H

#include <json-c/json.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <todoevents/todoevents.h>

#include "metrics.h"
#include "pg.h"

#define SOURCE "/todo-reminder"

typedef struct rem_config_s {
    const char *pg_url;
    long late_after_s, grace_s, batch, max_sleep_ms, sched_threads, retention_days;
    long threads, max_attempts, backoff_ms, lease_s, webhook_timeout_ms;
    int allow_private;
    const char *smtp_url, *smtp_from, *smtp_user;
    char *smtp_password; /* owned (from TE_SMTP_PASSWORD or its _FILE) */
    char *smtp_binding_url; /* owned; Dapr mode: email through this SMTP output binding */
    const char *dapr_token; /* Dapr mode: TE_DAPR_API_TOKEN or NULL */
} rem_config_t;

typedef struct rem_s {
    rem_config_t cfg;
    atomic_int stopping;
    int stop_pipe[2];    /* write end closed at stop: wakes every delivery thread */
    PGconn *intake_conn; /* the consumer handler's (consumer thread only) */
    td_metric_t *m_fired, *m_lateness, *m_attempts, *m_dlq, *m_events;
} rem_t;


/* scheduler.c: threads that fire due reminders until r->stopping.  Stop
 * after r->stopping was set. */
typedef struct scheduler_s scheduler_t;
scheduler_t *scheduler_start(rem_t *r, long threads, char *errstr, size_t errstr_size);
/* Wakes every scheduler thread now (any thread; NULL ok). */
void scheduler_wake(scheduler_t *s);
void scheduler_stop(scheduler_t *s);

/* intake.c: deliveries for firings.  A batch collects reminder.due events
 * (their data, id and JSON); its two statements (create, settle) run in
 * the caller's transaction. */
typedef struct intake_batch_s {
    json_object *items;     /* what CREATE_SQL reads */
    json_object *remind_at; /* fire_id -> remind_at, for the lateness metric */
    const char *p_items[2];
    size_t in_app;          /* items with an in-app channel */
} intake_batch_t;
void intake_batch_init(intake_batch_t *b);
/* data: the reminder.due data (borrowed); 0 or -1 (errstr). */
int intake_batch_add(intake_batch_t *b, const char *fire_id, json_object *data, const char *event_json,
                     const char *traceparent, char *errstr, size_t errstr_size);
size_t intake_batch_count(const intake_batch_t *b);
/* st[0] creates the deliveries (publish: and writes the events to the
 * outbox), st[1] (when the batch has in-app deliveries) settles in-app-only
 * firings; returns how many (1 or 2), valid until intake_batch_free(). */
size_t intake_batch_statements(intake_batch_t *b, int publish, td_pg_stmt_t st[2]);
/* After the commit: metrics; *current firings still current, *made
 * firings that got deliveries now. */
void intake_batch_account(rem_t *r, intake_batch_t *b, const PGresult *created, int *current, int *made);
void intake_batch_free(intake_batch_t *b);
/* The reminder.due consumer's handler. */
te_handler_result_t intake_handle(const te_event_t *ev, const te_record_t *rec, void *opaque,
                                  char *errstr, size_t errstr_size);

/* deliver.c: webhook/email delivery — a dispatcher thread and
 * r->cfg.threads senders.  Start after r->cfg is set; stop after
 * r->stopping was set (each sender records what it sent first). */
typedef struct delivery_pool_s delivery_pool_t;
delivery_pool_t *delivery_start(rem_t *r, char *errstr, size_t errstr_size);
void delivery_stop(delivery_pool_t *p);

/* channels.c: one attempt of a delivery, run concurrently with others. */
typedef struct delivery_s {
    char fire_id[37], delivery_id[37], reminder_id[37], user_id[129];
    char channel[8];
    char lease[37];           /* the claim's lease token (the result must match) */
    int attempts;             /* including this one */
    int current;              /* the reminder is still pending with this firing */
    long long remind_at_ms;
    char *event;              /* the reminder.due CloudEvent JSON */
    char *webhook_url, *webhook_secret, *email;
    /* result */
    int ok;
    int skipped;              /* not started (shutdown, or no time left): no attempt */
    char error[512];
    /* transport state (channels.c) */
    void *easy;
    void *headers, *rcpt;
    char *message;
    size_t message_len, message_off;
    int refused;              /* the webhook address was not allowed */
    int http;                 /* an HTTP request (webhook, Dapr binding): 2xx = sent */
} delivery_t;

/* Sends the deliveries d[0..n), up to 16 at a time (webhooks and emails
 * in parallel), and sets each one's ok / error, or skipped for one not
 * started (*stopping set, or too little of the lease left).  Returns when
 * every started one has finished or the lease is nearly over. */
void channels_send(const rem_config_t *cfg, delivery_t *const *d, size_t n, const atomic_int *stopping);
void channels_global_init(void);

/* Exposed for the unit tests (tests/unit/test_td_reminder.c). */
struct sockaddr;
/* 1 for loopback, private, link-local, CGNAT, unspecified, multicast and
 * broadcast addresses (IPv4-mapped IPv6 as IPv4). */
int channels_address_blocked(const struct sockaddr *sa);
/* Standard Webhooks: base64(HMAC-SHA256(key, id "." ts "." body)), key =
 * the base64-decoded part of "whsec_<base64>".  0, or -1 for a bad secret. */
int channels_sign(const char *secret, const char *id, const char *ts, const char *body, char out[64]);
/* Appends the Subject header line(s) "Reminder: <title>" to the string in
 * buf: control characters become spaces; RFC 2047 B-encoded words (at
 * most 75 characters each, split between UTF-8 characters, folded) when
 * not plain ASCII. */
void channels_subject(char *buf, size_t size, const char *title);
/* Frees the calling delivery thread's transport state. */
void channels_thread_done(void);
void channels_global_cleanup(void);

#endif
