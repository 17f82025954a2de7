/* todo-worker internals (docs/worker.md is the contract). */
#ifndef TODO_WORKER_H
#define TODO_WORKER_H

#include <libpq-fe.h>
#include <stdatomic.h>
#include <todoevents/todoevents.h>

#include "metrics.h"

typedef struct worker_s {
    char *pg_url;
    PGconn *conn;            /* the handler's connection (consumer thread only) */
    td_metric_t *m_events;   /* te_worker_events_total{type,result} */
    td_metric_t *m_next;     /* te_worker_next_occurrence_seconds */
    td_metric_t *m_lag;      /* te_worker_lag_seconds{partition} */
    atomic_int stopping;     /* set by main before stopping the consumer */
} worker_t;

/* The consumer's handler: activity entry for every task event, next
 * occurrence for a completed recurring task.  Runs on the consumer thread. */
te_handler_result_t worker_handle(const te_event_t *ev, const te_record_t *rec, void *opaque,
                                  char *errstr, size_t errstr_size);

#endif
