/* Shared by the task routes and the tag routes. */
#ifndef TODO_API_TASKS_H
#define TODO_API_TASKS_H

#include "api.h"
#include "task_store.h"

/* Inside an open write transaction with cur loaded FOR UPDATE: makes next
 * (validated model; server fields are set here) the task's new state,
 * records the change and its events.  Returns 1 changed (cur now holds the
 * new state and owns next; *after_out = its JSON, caller puts it), 0 no
 * change (next still the caller's), -1 error (errstr). */
int task_apply_locked(rq_t *rq, PGconn *c, stored_task_t *cur,
                      te_task_t *next, json_object **after_out, char *errstr, size_t errsize);

#endif
