/* libtodoevents — the task model.
 *
 * A te_task_t holds one to-do item: what a client sends (title, priority,
 * tags, due date, reminders, recurrence...) plus the fields the server owns
 * (id, user_id, status, timestamps).  Setters copy their arguments and do
 * not validate; te_task_validate() checks every field and reports every
 * problem as (field, reason).  JSON conversion uses json-c.
 *
 * JSON shape (what te_task_to_json writes and te_task_from_json reads):
 *   { "id": uuid, "user_id": str, "title": str, "description": str|null,
 *     "priority": "low"|"medium"|"high"|"urgent", "status": "pending"|"completed",
 *     "tags": [str], "due_date": RFC3339|null, "timezone": IANA|null,
 *     "reminders": [ {"offset_minutes": n} | {"at": RFC3339} ],
 *     "recurrence": null | {"rrule": str, "timezone": IANA, "anchor":
 *                           "schedule"|"completion", "series_id": uuid|null,
 *                           "occurrence": n},
 *     "overdue": bool, "created_at", "updated_at", "completed_at": RFC3339|null }
 * te_task_from_json also accepts the seed API's request fields:
 * "reminder_offset_minutes": n (one relative reminder), "completed": bool,
 * and a simple "recurrence": {"type": "daily"|"weekly"|"monthly"|"yearly"|
 * "custom", "interval", "days_of_week": [0=Monday..6], "day_of_month",
 * "end_date"} which is converted to an RRULE (see recurrence.h).  Unknown
 * members are ignored.
 *
 * Limits (validation): title 1–200 characters (Unicode code points, valid
 * UTF-8, not blank, no control characters); description ≤ 2000 characters;
 * at most 20 tags of 1–50 characters, no duplicates (ASCII
 * case-insensitive); at most TE_TASK_MAX_REMINDERS reminders, relative ones
 * 0–10080 minutes (7 days) before the due date and only with a due date;
 * recurrence only with a due date (its first occurrence, DTSTART).
 *
 * Thread-safety: a task is not thread-safe; distinct tasks may be used from
 * different threads.  Const functions may run concurrently on one task. */
#ifndef TODOEVENTS_TASK_H
#define TODOEVENTS_TASK_H

#include "todoevents/common.h"
#include "todoevents/datetime.h"
#include "todoevents/error.h"
#include "todoevents/problems.h"

#ifdef __cplusplus
extern "C" {
#endif

struct json_object; /* json-c; include <json-c/json.h> to use the *_object calls */

#define TE_TASK_TITLE_MAX 200
#define TE_TASK_DESCRIPTION_MAX 2000
#define TE_TASK_TAG_MAX 50
#define TE_TASK_MAX_TAGS 20
#define TE_TASK_MAX_REMINDERS 10
#define TE_TASK_REMINDER_MAX_OFFSET_MIN (7 * 24 * 60)

typedef enum te_priority_e {
    TE_PRIORITY_LOW = 0,
    TE_PRIORITY_MEDIUM = 1, /* default */
    TE_PRIORITY_HIGH = 2,
    TE_PRIORITY_URGENT = 3
} te_priority_t;

typedef enum te_status_e { TE_STATUS_PENDING = 0, TE_STATUS_COMPLETED = 1 } te_status_t;

typedef enum te_reminder_kind_e {
    TE_REMINDER_RELATIVE = 0, /* offset before the due time */
    TE_REMINDER_ABSOLUTE = 1  /* a fixed instant */
} te_reminder_kind_t;

typedef struct te_reminder_s {
    te_reminder_kind_t kind;
    int offset_minutes; /* RELATIVE: minutes before due (0 = at due time) */
    te_time_t at;       /* ABSOLUTE: the instant */
} te_reminder_t;

typedef struct te_task_s te_task_t;

/* "low", "medium", ... / parse the same (TE_ERR_INVALID_ARG if unknown). */
TE_API const char *te_priority_name(te_priority_t p);
TE_API te_err_t te_priority_parse(const char *name, te_priority_t *out);
TE_API const char *te_status_name(te_status_t s);
TE_API te_err_t te_status_parse(const char *name, te_status_t *out);

/* New empty task: priority medium, status pending, nothing else set.
 * NULL when out of memory.  Free with te_task_destroy (NULL is a no-op). */
TE_API te_task_t *te_task_new(void);
TE_API void te_task_destroy(te_task_t *task);
/* Deep copy; NULL when out of memory. */
TE_API te_task_t *te_task_clone(const te_task_t *task);

/* Setters: strings are copied (NULL clears an optional field); they return
 * TE_ERR_NOMEM or TE_ERR_INVALID_ARG (NULL task), never validation errors. */
TE_API te_err_t te_task_set_id(te_task_t *task, const char *id);
TE_API te_err_t te_task_set_user_id(te_task_t *task, const char *user_id);
TE_API te_err_t te_task_set_title(te_task_t *task, const char *title);
TE_API te_err_t te_task_set_description(te_task_t *task, const char *description);
TE_API te_err_t te_task_set_priority(te_task_t *task, te_priority_t priority);
TE_API te_err_t te_task_set_status(te_task_t *task, te_status_t status);
TE_API te_err_t te_task_set_due(te_task_t *task, int has_due, te_time_t due);
TE_API te_err_t te_task_set_timezone(te_task_t *task, const char *zone);
TE_API te_err_t te_task_add_tag(te_task_t *task, const char *tag);
TE_API te_err_t te_task_clear_tags(te_task_t *task);
TE_API te_err_t te_task_add_reminder(te_task_t *task, const te_reminder_t *reminder);
TE_API te_err_t te_task_clear_reminders(te_task_t *task);
/* rrule NULL removes the recurrence; zone NULL = the task's zone (or UTC). */
TE_API te_err_t te_task_set_recurrence(te_task_t *task, const char *rrule, const char *zone,
                                       const char *anchor);
TE_API te_err_t te_task_set_series(te_task_t *task, const char *series_id, int occurrence);
/* Timestamps: 0 clears (server-owned; created/updated/completed). */
TE_API te_err_t te_task_set_created_at(te_task_t *task, te_time_t t);
TE_API te_err_t te_task_set_updated_at(te_task_t *task, te_time_t t);
TE_API te_err_t te_task_set_completed_at(te_task_t *task, te_time_t t);

/* Getters: returned strings are owned by the task and valid until the
 * field is set again or the task is destroyed; NULL when unset. */
TE_API const char *te_task_id(const te_task_t *task);
TE_API const char *te_task_user_id(const te_task_t *task);
TE_API const char *te_task_title(const te_task_t *task);
TE_API const char *te_task_description(const te_task_t *task);
TE_API te_priority_t te_task_priority(const te_task_t *task);
TE_API te_status_t te_task_status(const te_task_t *task);
/* 1 and *due set when the task has a due date, else 0. */
TE_API int te_task_due(const te_task_t *task, te_time_t *due);
TE_API const char *te_task_timezone(const te_task_t *task);
TE_API size_t te_task_tag_count(const te_task_t *task);
TE_API const char *te_task_tag(const te_task_t *task, size_t i);
TE_API size_t te_task_reminder_count(const te_task_t *task);
/* Copies reminder i into *out; TE_ERR_NOT_FOUND when out of range. */
TE_API te_err_t te_task_reminder(const te_task_t *task, size_t i, te_reminder_t *out);
/* Instant reminder i fires at (relative ones need a due date). */
TE_API te_err_t te_task_reminder_time(const te_task_t *task, size_t i, te_time_t *out);
TE_API const char *te_task_rrule(const te_task_t *task);
/* Zone the recurrence is evaluated in: its own, else the task's, else "UTC". */
TE_API const char *te_task_recurrence_zone(const te_task_t *task);
TE_API const char *te_task_recurrence_anchor(const te_task_t *task);
TE_API const char *te_task_series_id(const te_task_t *task);
TE_API int te_task_occurrence(const te_task_t *task);
TE_API te_time_t te_task_created_at(const te_task_t *task);
TE_API te_time_t te_task_updated_at(const te_task_t *task);
TE_API te_time_t te_task_completed_at(const te_task_t *task);

/* 1 when pending with a due date before now, else 0. */
TE_API int te_task_is_overdue(const te_task_t *task, te_time_t now);

/* Checks every field (limits above; zone known; RRULE valid; ids are
 * UUIDs when set).  Every problem is appended to problems (may be NULL);
 * the first one is also written to errstr.  TE_OK or TE_ERR_INVALID. */
TE_API te_err_t te_task_validate(const te_task_t *task, te_problems_t *problems, char *errstr,
                                 size_t errstr_size);

/* Parses and validates a JSON object (len bytes; the text need not be
 * NUL-terminated).  On success *out is a new task the caller destroys.
 * TE_ERR_PARSE: not JSON / not an object; TE_ERR_INVALID: see problems.
 * Field types are checked too ("priority": "must be a string"). */
TE_API te_err_t te_task_from_json(const char *json, size_t len, te_task_t **out,
                                  te_problems_t *problems, char *errstr, size_t errstr_size);
/* Same from a parsed json-c object (borrowed, not modified). */
TE_API te_err_t te_task_from_json_object(const struct json_object *obj, te_task_t **out,
                                         te_problems_t *problems, char *errstr,
                                         size_t errstr_size);

/* Serialises the task; "overdue" is computed against now.  *out is a
 * NUL-terminated string the caller frees with te_free(). */
TE_API te_err_t te_task_to_json(const te_task_t *task, te_time_t now, char **out);
/* Same as a new json-c object the caller releases with json_object_put(). */
TE_API te_err_t te_task_to_json_object(const te_task_t *task, te_time_t now,
                                       struct json_object **out);

#ifdef __cplusplus
}
#endif
#endif
