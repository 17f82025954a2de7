/* todo-reminder internals (docs/reminder.md is the contract). */
#ifndef TODO_REMINDER_H
#define TODO_REMINDER_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <todoevents/todoevents.h>

#include "metrics.h"

#define SOURCE "/todo-reminder"

typedef struct rem_config_s {
    const char *pg_url;
    long late_after_s, grace_s, batch, max_sleep_ms, resend_after_s;
    long threads, max_attempts, backoff_ms, lease_s, webhook_timeout_ms;
    int allow_private;
    const char *smtp_url, *smtp_from, *smtp_user;
    char *smtp_password; /* owned (from TE_SMTP_PASSWORD or its _FILE) */
} rem_config_t;

typedef struct rem_s {
    rem_config_t cfg;
    atomic_int stopping;
    int sched_wake[2];   /* a byte wakes the scheduler (Dapr cron, stop) */
    int stop_pipe[2];    /* write end closed at stop: wakes every delivery thread */
    PGconn *intake_conn; /* the consumer handler's (consumer thread only) */
    td_metric_t *m_fired, *m_lateness, *m_attempts, *m_dlq, *m_events;
} rem_t;

/* A connection that is up, reconnecting (with short pauses) while
 * PostgreSQL is down; NULL when still down after a few seconds or when
 * stopping.  *slot keeps it between calls. */
PGconn *rem_conn(rem_t *r, PGconn **slot, char *errstr, size_t errstr_size);

/* scheduler.c: fires due reminders until r->stopping. */
void *scheduler_main(void *arg);
/* Wakes the scheduler now (any thread). */
void scheduler_wake(rem_t *r);

/* intake.c: the reminder.due consumer's handler. */
te_handler_result_t intake_handle(const te_event_t *ev, const te_record_t *rec, void *opaque,
                                  char *errstr, size_t errstr_size);

/* deliver.c: one webhook/email delivery thread (r->cfg.threads of them). */
void *delivery_main(void *arg);

/* channels.c: one attempt of a delivery, run concurrently with others. */
typedef struct delivery_s {
    char fire_id[37], delivery_id[37], reminder_id[37], user_id[129];
    char channel[8];
    char lease[40];           /* lease_until as claimed (the result must match) */
    int attempts;             /* including this one */
    int current;              /* the reminder is still pending with this firing */
    long long remind_at_ms;
    char *event;              /* the reminder.due CloudEvent JSON */
    char *webhook_url, *webhook_secret, *email;
    /* result */
    int ok;
    char error[512];
    /* transport state (channels.c) */
    void *easy;
    void *headers, *rcpt;
    char *message;
    size_t message_len, message_off;
    int refused;              /* the webhook address was not allowed */
} delivery_t;

/* Sends every delivery in d[0..n) at once (webhooks and emails in
 * parallel) and sets each one's ok / error.  Returns when all are done. */
void channels_send(const rem_config_t *cfg, delivery_t *const *d, size_t n);
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
