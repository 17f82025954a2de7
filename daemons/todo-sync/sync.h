/* todo-sync internals (docs/sync.md is the contract).
 *
 * Threads: the WebSocket service thread (libwebsockets: sessions, fan-out,
 * writes — the only thread that touches sessions), the Kafka consumer
 * thread (feed.c: turns events into messages) and the catch-up thread
 * (catchup.c: PostgreSQL reads).  The other two hand their results to the
 * service thread through mailboxes (a mutex-protected list) and
 * lws_cancel_service(). */
#ifndef TODO_SYNC_H
#define TODO_SYNC_H

#include <json-c/json.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <todoevents/todoevents.h>

#include "metrics.h"

/* One outgoing text message, shared by every session it goes to. */
typedef struct msg_s {
    int refs;             /* service thread only, once published */
    long long seq;        /* change sequence; 0 = not a change (hello, notification, ...) */
    long long event_us;   /* event time (fan-out latency), 0 = none */
    const char *type;     /* for the metrics (static string) */
    size_t len;
    unsigned char *buf;   /* LWS_PRE bytes of room, then len bytes of JSON */
} msg_t;

/* A message with JSON text json (copied).  NULL on out of memory. */
msg_t *msg_new(const char *type, long long seq, long long event_us, const char *json);
void msg_unref(msg_t *m);

/* The message type of a change's op ("created" -> "task.created"), a
 * static string (also a metrics label); NULL for an unknown op. */
const char *sync_change_type(const char *op);

/* A change or notification for one user, from the consumer. */
typedef struct feed_item_s {
    struct feed_item_s *next;
    char user[130];
    msg_t *msg;
} feed_item_t;

/* A catch-up request / result.  kind HELLO: the user's sequence (and,
 * with since >= 0, the changes after since); kind GAP: the changes after
 * since. */
typedef struct catchup_s {
    struct catchup_s *next;
    uint64_t session_id;
    char user[130];
    long long since;      /* -1: none */
    int hello;            /* a first request: the answer starts with hello */
    /* result */
    long long seq;        /* the user's sequence when read */
    int resync;           /* since is out of the retained range */
    char reason[96];
    int failed;           /* PostgreSQL could not be read */
    msg_t **msgs;         /* the changes after since, in order */
    size_t nmsgs;
} catchup_t;
void catchup_free(catchup_t *c);

typedef struct sync_s {
    const char *pg_url;
    te_jwt_verifier_t *jwt;
    long max_queue, max_queue_bytes, max_sessions, max_catchup;
    atomic_int stopping;
    atomic_int pg_ok;           /* the catch-up thread's last use worked */
    struct lws_context *lws;
    /* mailboxes to the service thread */
    pthread_mutex_t mu;
    feed_item_t *feed_head, *feed_tail;
    catchup_t *done_head, *done_tail;
    /* the catch-up thread's queue */
    pthread_cond_t cu_cv;
    catchup_t *cu_head, *cu_tail;
    te_consumer_t *consumer;
    td_metric_t *m_conns, *m_sent, *m_dropped, *m_fanout, *m_catchup;
} sync_t;

/* server.c: runs the WebSocket service until s->stopping, then closes
 * every session (1001) and returns.  0 or -1 (could not listen). */
int server_run(sync_t *s, const char *listen, long ping_s, long pong_timeout_s);
/* Wakes the service thread (any thread). */
void server_wake(sync_t *s);

/* feed.c: the consumer's handler (sync.events, notification.send). */
te_handler_result_t feed_handle(const te_event_t *ev, const te_record_t *rec, void *opaque,
                                char *errstr, size_t errstr_size);

/* catchup.c */
void catchup_submit(sync_t *s, catchup_t *c);
void *catchup_main(void *arg);

#endif
