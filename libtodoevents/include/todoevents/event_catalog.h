/* libtodoevents — the event catalogue: which CloudEvents types this system
 * emits, the Kafka topic each travels on, and the shape of each type's data.
 *
 * One descriptor table (src/event_catalog.c) drives both the C data
 * validator and the JSON Schema (draft 2020-12) files published for other
 * languages (share/todoevents/schemas/<type>.json, plus cloudevent.json for
 * the envelope).  Data objects allow additional members; the validator and
 * the schemas accept the same documents (the validator also asserts the
 * "format" keywords uuid and date-time).
 *
 * | topic             | partitions | retention | types                                    |
 * |-------------------|-----------:|----------:|------------------------------------------|
 * | task.events       | 12         | 7 d       | com.todo.task.created/.updated/.completed/.deleted |
 * | reminder.due      | 6          | 1 d       | com.todo.reminder.due                    |
 * | notification.send | 6          | 1 d       | com.todo.notification.send               |
 * | notification.dlq  | 3          | 30 d      | com.todo.notification.dlq                |
 * | activity.log      | 12         | 30 d      | com.todo.activity.recorded               |
 * | sync.events       | 12         | 1 h       | com.todo.sync.task.created/.updated/.completed/.deleted |
 *
 * Everything here is immutable static data or pure functions: thread-safe. */
#ifndef TODOEVENTS_EVENT_CATALOG_H
#define TODOEVENTS_EVENT_CATALOG_H

#include "todoevents/cloudevent.h"
#include "todoevents/common.h"
#include "todoevents/error.h"
#include "todoevents/problems.h"

struct json_object;

#ifdef __cplusplus
extern "C" {
#endif

/* Every type of ours starts with this; an unknown type with this prefix is
 * reported as not in the catalogue. */
#define TE_EVENT_TYPE_PREFIX "com.todo."

#define TE_EVENT_TASK_CREATED        "com.todo.task.created"
#define TE_EVENT_TASK_UPDATED        "com.todo.task.updated"
#define TE_EVENT_TASK_COMPLETED      "com.todo.task.completed"
#define TE_EVENT_TASK_DELETED        "com.todo.task.deleted"
#define TE_EVENT_REMINDER_DUE        "com.todo.reminder.due"
#define TE_EVENT_NOTIFICATION_SEND   "com.todo.notification.send"
#define TE_EVENT_NOTIFICATION_DLQ    "com.todo.notification.dlq"
#define TE_EVENT_ACTIVITY_RECORDED   "com.todo.activity.recorded"
#define TE_EVENT_SYNC_TASK_CREATED   "com.todo.sync.task.created"
#define TE_EVENT_SYNC_TASK_UPDATED   "com.todo.sync.task.updated"
#define TE_EVENT_SYNC_TASK_COMPLETED "com.todo.sync.task.completed"
#define TE_EVENT_SYNC_TASK_DELETED   "com.todo.sync.task.deleted"

#define TE_TOPIC_TASK_EVENTS       "task.events"
#define TE_TOPIC_REMINDER_DUE      "reminder.due"
#define TE_TOPIC_NOTIFICATION_SEND "notification.send"
#define TE_TOPIC_NOTIFICATION_DLQ  "notification.dlq"
#define TE_TOPIC_ACTIVITY_LOG      "activity.log"
#define TE_TOPIC_SYNC_EVENTS       "sync.events"

/* File name of the envelope schema in the schema directory. */
#define TE_SCHEMA_ENVELOPE_NAME "cloudevent"

typedef struct te_topic_info_s {
    const char *name;        /* "task.events" */
    int partitions;          /* recommended partition count */
    int64_t retention_ms;    /* recommended retention.ms */
    const char *description;
} te_topic_info_t;

typedef struct te_event_type_info_s {
    const char *type;        /* "com.todo.task.created" */
    const char *topic;       /* "task.events" */
    const char *description; /* one sentence */
    const char *schema_id;   /* $id of its data schema, a URN usable as dataschema */
} te_event_type_info_t;

/* Topics, in table order.  te_catalog_topic_at: NULL when i >= count.
 * te_catalog_topic_lookup: NULL when name is not ours.  Static data. */
TE_API size_t te_catalog_topic_count(void);
TE_API const te_topic_info_t *te_catalog_topic_at(size_t i);
TE_API const te_topic_info_t *te_catalog_topic_lookup(const char *name);

/* Event types, in table order.  te_catalog_lookup: NULL when type is not
 * in the catalogue.  Static data. */
TE_API size_t te_catalog_type_count(void);
TE_API const te_event_type_info_t *te_catalog_type_at(size_t i);
TE_API const te_event_type_info_t *te_catalog_lookup(const char *type);

/* Topic a type is published on; NULL when the type is not ours. */
TE_API const char *te_catalog_topic_for(const char *type);

/* Validates the data of a catalogue type.  Every problem is appended to
 * problems (may be NULL) with field "data" or "data.<path>", e.g.
 * "data.task_id", "data.task.tags[2]", "data.changes.title.new".
 * data NULL means JSON null (which is not an object, so invalid).
 * Returns TE_OK, TE_ERR_INVALID, TE_ERR_NOT_FOUND (type not in the
 * catalogue; nothing appended) or TE_ERR_NOMEM. */
TE_API te_err_t te_catalog_validate_data(const char *type, const struct json_object *data,
                                         te_problems_t *problems);

/* Catalogue rules for a decoded event: a type starting with "com.todo."
 * must be in the catalogue; for catalogue types, data is required, must be
 * JSON ("data", not "data_base64"), datacontenttype must be absent or
 * application/json (parameters allowed), and the data must validate.
 * Other types pass untouched.  TE_OK, TE_ERR_INVALID, TE_ERR_NOMEM. */
TE_API te_err_t te_catalog_validate_event(const te_event_t *ev, te_problems_t *problems);

/* te_event_from_json() followed by te_catalog_validate_event(), except
 * that when the envelope itself is invalid the catalogue problems of the
 * type and data members are still reported (so one call lists every
 * problem).  Same results and ownership as te_event_from_json(). */
TE_API te_err_t te_catalog_event_from_json(const char *json, size_t len, te_event_t **out,
                                           te_problems_t *problems, char *errstr,
                                           size_t errstr_size);

/* The JSON Schema (draft 2020-12) of a type's data, or of the CloudEvents
 * envelope when type is NULL or TE_SCHEMA_ENVELOPE_NAME: pretty-printed,
 * ending in a newline — byte for byte the installed <name>.json file.
 * *out is caller-freed with te_free(); len may be NULL.
 * Errors: TE_ERR_NOT_FOUND (unknown type), TE_ERR_NOMEM. */
TE_API te_err_t te_catalog_schema_json(const char *type, char **out, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
