/* The event catalogue: topics, event types and a descriptor table of each
 * type's data.  The table is the single source of truth: validate_value()
 * walks it to check a json-c value, schema_of() walks it to emit JSON
 * Schema (draft 2020-12).  The committed schema files are regenerated from
 * here (`todoctl event schemas --out libtodoevents/schemas`) and a unit test
 * fails when they differ. */
#include "todoevents/event_catalog.h"
#include "internal.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uuid/uuid.h>

/* ------------------------------------------------------------------------ */
/* Topics and types                                                          */

#define HOUR_MS (INT64_C(3600) * 1000)
#define DAY_MS (24 * HOUR_MS)

static const te_topic_info_t topics[] = {
    {TE_TOPIC_TASK_EVENTS, 12, 7 * DAY_MS, "Task lifecycle events (created, updated, completed, deleted)"},
    {TE_TOPIC_REMINDER_DUE, 6, 1 * DAY_MS, "Reminders that have become due"},
    {TE_TOPIC_NOTIFICATION_SEND, 6, 1 * DAY_MS, "In-app notifications to deliver"},
    {TE_TOPIC_NOTIFICATION_DLQ, 3, 30 * DAY_MS, "Notifications that failed every delivery attempt"},
    {TE_TOPIC_ACTIVITY_LOG, 12, 30 * DAY_MS, "The per-user activity stream"},
    {TE_TOPIC_SYNC_EVENTS, 12, 1 * HOUR_MS, "Task changes with their change sequence, for real-time sync"},
};
#define N_TOPICS (sizeof topics / sizeof topics[0])

#define SCHEMA_URN "urn:todoevents:schema:"

/* ------------------------------------------------------------------------ */
/* Descriptors                                                               */

enum {
    T_NULL = 1,
    T_BOOL = 2,
    T_INT = 4,
    T_NUM = 8,
    T_STR = 16,
    T_OBJ = 32,
    T_ARR = 64,
    T_ANY = 127
};
enum { F_NONE, F_UUID, F_DATETIME };

typedef struct shape_s shape_t;
typedef struct vspec_s vspec_t;

struct vspec_s {
    unsigned types;             /* allowed JSON types (T_*) */
    unsigned format;            /* F_* (strings) */
    int min_length;             /* strings: minimum length (0 or 1) */
    const char *const *enums;   /* strings: allowed values, NULL-terminated */
    int has_min;                /* numbers: minimum present */
    int64_t min;
    const shape_t *shape;       /* objects: members */
    const vspec_t *items;       /* arrays: element spec */
};

typedef struct field_s {
    const char *name;
    int required;
    vspec_t spec;
    const char *desc;
} field_t;

struct shape_s {
    const char *def;              /* $defs name (shared shapes), NULL = inline */
    const char *desc;
    const field_t *fields;
    size_t n_fields;
    const vspec_t *additional;    /* spec of members not listed; NULL = anything */
    const char *const *one_of;    /* exactly one of these members, NULL-terminated */
};

#define V_STR {.types = T_STR}
#define V_STR_NULL {.types = T_STR | T_NULL}
#define V_NONEMPTY {.types = T_STR, .min_length = 1}
#define V_UUID {.types = T_STR, .format = F_UUID}
#define V_UUID_NULL {.types = T_STR | T_NULL, .format = F_UUID}
#define V_TIME {.types = T_STR, .format = F_DATETIME}
#define V_TIME_NULL {.types = T_STR | T_NULL, .format = F_DATETIME}
#define V_BOOL {.types = T_BOOL}
#define V_OBJECT {.types = T_OBJ}
#define V_ANY {.types = T_ANY}
#define V_ENUM(list) {.types = T_STR, .enums = list}
#define V_INT_MIN(n) {.types = T_INT, .has_min = 1, .min = (n)}
#define V_SHAPE(s) {.types = T_OBJ, .shape = &(s)}
#define V_SHAPE_NULL(s) {.types = T_OBJ | T_NULL, .shape = &(s)}
#define V_ARRAY(it) {.types = T_ARR, .items = &(it)}
#define FIELDS(a) a, sizeof(a) / sizeof((a)[0])

static const char *const priorities[] = {"low", "medium", "high", "urgent", NULL};
static const char *const statuses[] = {"pending", "completed", NULL};
static const char *const anchors[] = {"schedule", "completion", NULL};
static const char *const channels[] = {"in_app", "webhook", "email", NULL};
static const char *const op_created[] = {"created", NULL};
static const char *const op_updated[] = {"updated", NULL};
static const char *const op_completed[] = {"completed", NULL};
static const char *const op_deleted[] = {"deleted", NULL};
static const char *const reminder_one_of[] = {"offset_minutes", "at", NULL};

static const vspec_t v_string = V_STR;
static const vspec_t v_channel = V_ENUM(channels);

/* reminder: relative ({"offset_minutes": n}) or absolute ({"at": time}) */
static const field_t reminder_fields[] = {
    {"offset_minutes", 0, V_INT_MIN(0), "Minutes before the due date"},
    {"at", 0, V_TIME, "Absolute reminder time"},
};
static const shape_t reminder_shape = {"reminder",
                                       "A reminder: relative to the due date or absolute "
                                       "(exactly one of offset_minutes, at)",
                                       FIELDS(reminder_fields), NULL, reminder_one_of};
static const vspec_t v_reminder = V_SHAPE(reminder_shape);

static const field_t recurrence_fields[] = {
    {"rrule", 1, V_STR, "RFC 5545 RRULE"},
    {"timezone", 0, V_STR, "IANA time zone the rule is evaluated in"},
    {"anchor", 0, V_ENUM(anchors), "Next occurrence after the schedule or after completion"},
    {"series_id", 0, V_UUID_NULL, "Id shared by every occurrence of the series"},
};
static const shape_t recurrence_shape = {"recurrence", "Recurrence rule of a task",
                                         FIELDS(recurrence_fields), NULL, NULL};

static const field_t task_fields[] = {
    {"id", 1, V_UUID, "Task id"},
    {"user_id", 1, V_NONEMPTY, "Owner (JWT sub)"},
    {"title", 1, V_STR, "Title"},
    {"description", 0, V_STR_NULL, "Description"},
    {"priority", 1, V_ENUM(priorities), "Priority"},
    {"status", 1, V_ENUM(statuses), "Status"},
    {"tags", 0, V_ARRAY(v_string), "Tags"},
    {"due_date", 0, V_TIME_NULL, "Due date-time"},
    {"timezone", 0, V_STR_NULL, "IANA time zone of the due date"},
    {"reminders", 0, V_ARRAY(v_reminder), "Reminders"},
    {"recurrence", 0, V_SHAPE_NULL(recurrence_shape), "Recurrence, or null"},
    {"overdue", 0, V_BOOL, "Due date passed while pending"},
    {"created_at", 1, V_TIME, "Creation time"},
    {"updated_at", 1, V_TIME, "Last change time"},
    {"completed_at", 0, V_TIME_NULL, "Completion time"},
};
static const shape_t task_shape = {"task", "Task state as emitted by the task model",
                                   FIELDS(task_fields), NULL, NULL};

static const field_t change_fields[] = {
    {"old", 1, V_ANY, "Value before the change"},
    {"new", 1, V_ANY, "Value after the change"},
};
static const shape_t change_shape = {"change", "One changed field", FIELDS(change_fields), NULL,
                                     NULL};
static const vspec_t v_change = V_SHAPE(change_shape);
static const shape_t changes_shape = {NULL, "Changed fields: field name -> {old, new}", NULL, 0,
                                      &v_change, NULL};

/* ---- per-type data -------------------------------------------------- */

static const field_t task_created_fields[] = {
    {"task_id", 1, V_UUID, "Task id"},
    {"user_id", 1, V_NONEMPTY, "Owner"},
    {"task", 1, V_SHAPE(task_shape), "Task state after creation"},
};
static const field_t task_updated_fields[] = {
    {"task_id", 1, V_UUID, "Task id"},
    {"user_id", 1, V_NONEMPTY, "Owner"},
    {"changes", 1, V_SHAPE(changes_shape), "What changed"},
    {"task", 1, V_SHAPE(task_shape), "Task state after the change"},
};
static const field_t task_completed_fields[] = {
    {"task_id", 1, V_UUID, "Task id"},
    {"user_id", 1, V_NONEMPTY, "Owner"},
    {"task", 1, V_SHAPE(task_shape), "Task state after completion"},
    {"completed_at", 1, V_TIME, "Completion time"},
};
static const field_t task_deleted_fields[] = {
    {"task_id", 1, V_UUID, "Task id"},
    {"user_id", 1, V_NONEMPTY, "Owner"},
    {"deleted_at", 1, V_TIME, "Deletion time"},
};
static const field_t reminder_due_fields[] = {
    {"reminder_id", 1, V_UUID, "Reminder id"},
    {"task_id", 1, V_UUID, "Task id"},
    {"user_id", 1, V_NONEMPTY, "Owner"},
    {"title", 1, V_STR, "Task title"},
    {"remind_at", 1, V_TIME, "When the reminder was due"},
    {"due_date", 0, V_TIME_NULL, "Task due date"},
    {"channels", 0, V_ARRAY(v_channel), "Delivery channels"},
    {"late", 0, V_BOOL, "Delivered late (after downtime), within the grace window"},
};
static const field_t notification_send_fields[] = {
    {"notification_id", 1, V_UUID, "Notification id"},
    {"user_id", 1, V_NONEMPTY, "Recipient"},
    {"title", 1, V_STR, "Title"},
    {"body", 0, V_STR, "Body text"},
    {"task_id", 0, V_UUID, "Related task"},
    {"reminder_id", 0, V_UUID, "Related reminder"},
    {"kind", 0, V_STR, "Kind of notification, e.g. reminder"},
    {"created_at", 1, V_TIME, "Creation time"},
};
static const field_t notification_dlq_fields[] = {
    {"original_topic", 1, V_NONEMPTY, "Topic the failed message came from"},
    {"original_event", 1, {.types = T_OBJ | T_STR},
     "The original CloudEvent (JSON object), or its text when it was not decodable"},
    {"error", 1, V_NONEMPTY, "Last error"},
    {"attempt_count", 1, V_INT_MIN(1), "Delivery attempts made"},
    {"last_attempt_at", 1, V_TIME, "Time of the last attempt"},
};
static const field_t activity_recorded_fields[] = {
    {"activity_id", 1, V_UUID, "Activity id"},
    {"user_id", 1, V_NONEMPTY, "User"},
    {"event_id", 1, V_STR, "Id of the CloudEvent that caused the activity"},
    {"event_type", 1, V_STR, "Type of that CloudEvent"},
    {"entity_type", 1, V_STR, "Kind of entity, e.g. task"},
    {"entity_id", 1, V_STR, "Entity id"},
    {"occurred_at", 1, V_TIME, "When it happened"},
    {"details", 0, V_OBJECT, "Extra details"},
};
#define SYNC_FIELDS(ops, task_req, task_spec)                                                 \
    {                                                                                         \
        {"user_id", 1, V_NONEMPTY, "Owner; only this user's sessions receive it"},            \
        {"seq", 1, V_INT_MIN(1), "Per-user change sequence number (64-bit)"},                 \
        {"task_id", 1, V_UUID, "Task id"},                                                    \
        {"op", 1, V_ENUM(ops), "Operation; matches the event type"},                          \
        {"task", task_req, task_spec, "Task state after the change"},                         \
        {"changes", 0, V_OBJECT, "Changed fields (updates)"},                                 \
    }
static const field_t sync_created_fields[] = SYNC_FIELDS(op_created, 1, V_SHAPE(task_shape));
static const field_t sync_updated_fields[] = SYNC_FIELDS(op_updated, 1, V_SHAPE(task_shape));
static const field_t sync_completed_fields[] = SYNC_FIELDS(op_completed, 1, V_SHAPE(task_shape));
static const field_t sync_deleted_fields[] = SYNC_FIELDS(op_deleted, 0, V_SHAPE_NULL(task_shape));

#define TYPE_SHAPE(name, fields) \
    static const shape_t name = {NULL, NULL, FIELDS(fields), NULL, NULL}
TYPE_SHAPE(s_task_created, task_created_fields);
TYPE_SHAPE(s_task_updated, task_updated_fields);
TYPE_SHAPE(s_task_completed, task_completed_fields);
TYPE_SHAPE(s_task_deleted, task_deleted_fields);
TYPE_SHAPE(s_reminder_due, reminder_due_fields);
TYPE_SHAPE(s_notification_send, notification_send_fields);
TYPE_SHAPE(s_notification_dlq, notification_dlq_fields);
TYPE_SHAPE(s_activity_recorded, activity_recorded_fields);
TYPE_SHAPE(s_sync_created, sync_created_fields);
TYPE_SHAPE(s_sync_updated, sync_updated_fields);
TYPE_SHAPE(s_sync_completed, sync_completed_fields);
TYPE_SHAPE(s_sync_deleted, sync_deleted_fields);

#define TYPE(t, topic, desc) {t, topic, desc, SCHEMA_URN t}
static const te_event_type_info_t types[] = {
    TYPE(TE_EVENT_TASK_CREATED, TE_TOPIC_TASK_EVENTS, "A task was created."),
    TYPE(TE_EVENT_TASK_UPDATED, TE_TOPIC_TASK_EVENTS,
         "A task was changed; carries the changes and the new state."),
    TYPE(TE_EVENT_TASK_COMPLETED, TE_TOPIC_TASK_EVENTS, "A task was completed."),
    TYPE(TE_EVENT_TASK_DELETED, TE_TOPIC_TASK_EVENTS, "A task was deleted."),
    TYPE(TE_EVENT_REMINDER_DUE, TE_TOPIC_REMINDER_DUE, "A reminder became due."),
    TYPE(TE_EVENT_NOTIFICATION_SEND, TE_TOPIC_NOTIFICATION_SEND,
         "An in-app notification is to be delivered."),
    TYPE(TE_EVENT_NOTIFICATION_DLQ, TE_TOPIC_NOTIFICATION_DLQ,
         "A notification failed every delivery attempt."),
    TYPE(TE_EVENT_ACTIVITY_RECORDED, TE_TOPIC_ACTIVITY_LOG,
         "An entry of the user's activity log."),
    TYPE(TE_EVENT_SYNC_TASK_CREATED, TE_TOPIC_SYNC_EVENTS,
         "Sync stream: a task was created (with the change sequence)."),
    TYPE(TE_EVENT_SYNC_TASK_UPDATED, TE_TOPIC_SYNC_EVENTS,
         "Sync stream: a task was updated (with the change sequence)."),
    TYPE(TE_EVENT_SYNC_TASK_COMPLETED, TE_TOPIC_SYNC_EVENTS,
         "Sync stream: a task was completed (with the change sequence)."),
    TYPE(TE_EVENT_SYNC_TASK_DELETED, TE_TOPIC_SYNC_EVENTS,
         "Sync stream: a task was deleted (with the change sequence)."),
};
#define N_TYPES (sizeof types / sizeof types[0])

/* Parallel to types[]. */
static const shape_t *const type_shapes[N_TYPES] = {
    &s_task_created,      &s_task_updated,      &s_task_completed,    &s_task_deleted,
    &s_reminder_due,      &s_notification_send, &s_notification_dlq, &s_activity_recorded,
    &s_sync_created,      &s_sync_updated,      &s_sync_completed,    &s_sync_deleted,
};

/* ------------------------------------------------------------------------ */
/* Lookups                                                                   */

size_t te_catalog_topic_count(void) { return N_TOPICS; }

const te_topic_info_t *te_catalog_topic_at(size_t i) { return i < N_TOPICS ? &topics[i] : NULL; }

const te_topic_info_t *te_catalog_topic_lookup(const char *name) {
    for (size_t i = 0; name && i < N_TOPICS; i++)
        if (strcmp(topics[i].name, name) == 0)
            return &topics[i];
    return NULL;
}

size_t te_catalog_type_count(void) { return N_TYPES; }

const te_event_type_info_t *te_catalog_type_at(size_t i) {
    return i < N_TYPES ? &types[i] : NULL;
}

static long type_index(const char *type) {
    for (size_t i = 0; type && i < N_TYPES; i++)
        if (strcmp(types[i].type, type) == 0)
            return (long)i;
    return -1;
}

const te_event_type_info_t *te_catalog_lookup(const char *type) {
    long i = type_index(type);
    return i < 0 ? NULL : &types[i];
}

const char *te_catalog_topic_for(const char *type) {
    const te_event_type_info_t *t = te_catalog_lookup(type);
    return t ? t->topic : NULL;
}

/* ------------------------------------------------------------------------ */
/* Validation                                                                */

typedef struct vctx_s {
    te_problems_t *p;
    size_t n;
    int nomem;
    char path[512];
    size_t plen;
} vctx_t;

static void vadd(vctx_t *c, const char *fmt, ...) TE_PRINTF(2, 3);
static void vadd(vctx_t *c, const char *fmt, ...) {
    char reason[TE_ERRSTR_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    c->n++;
    if (te_problems_add(c->p, c->path, "%s", reason) != TE_OK)
        c->nomem = 1;
}

static void append(vctx_t *c, const char *s, size_t n) {
    size_t room = sizeof c->path - 1 - c->plen;
    if (n > room)
        n = room;
    memcpy(c->path + c->plen, s, n);
    c->plen += n;
    c->path[c->plen] = '\0';
}

static size_t push_member(vctx_t *c, const char *name) {
    size_t save = c->plen;
    append(c, ".", 1);
    append(c, name, strlen(name));
    return save;
}

static size_t push_index(vctx_t *c, size_t i) {
    size_t save = c->plen;
    char buf[32];
    int n = snprintf(buf, sizeof buf, "[%zu]", i);
    append(c, buf, n > 0 ? (size_t)n : 0);
    return save;
}

static void pop(vctx_t *c, size_t save) {
    c->plen = save;
    c->path[save] = '\0';
}

/* The T_* bits a value satisfies (an integral double is an integer too,
 * as in JSON Schema). */
static unsigned json_kinds(struct json_object *v) {
    if (!v)
        return T_NULL;
    switch (json_object_get_type(v)) {
    case json_type_boolean:
        return T_BOOL;
    case json_type_int:
        return T_INT | T_NUM;
    case json_type_double: {
        double d = json_object_get_double(v);
        return isfinite(d) && d == floor(d) ? (T_INT | T_NUM) : T_NUM;
    }
    case json_type_string:
        return T_STR;
    case json_type_object:
        return T_OBJ;
    case json_type_array:
        return T_ARR;
    default:
        return 0;
    }
}

/* "a, b, c" from a NULL-terminated list. */
static void join(const char *const *list, char *buf, size_t size) {
    size_t len = 0;
    buf[0] = '\0';
    for (; *list; list++) {
        int n = snprintf(buf + len, size - len, "%s%s", len ? ", " : "", *list);
        if (n < 0 || (size_t)n >= size - len)
            return;
        len += (size_t)n;
    }
}

static void type_phrase(unsigned mask, char *buf, size_t size) {
    static const struct {
        unsigned bit;
        const char *text;
    } names[] = {{T_STR, "a string"},   {T_INT, "an integer"}, {T_NUM, "a number"},
                 {T_BOOL, "a boolean"}, {T_OBJ, "an object"},  {T_ARR, "an array"},
                 {T_NULL, "null"}};
    size_t len = 0;
    buf[0] = '\0';
    if ((mask & T_NUM) && (mask & T_INT))
        mask &= ~(unsigned)T_INT;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(mask & names[i].bit))
            continue;
        int n = snprintf(buf + len, size - len, "%s%s", len ? " or " : "", names[i].text);
        if (n < 0 || (size_t)n >= size - len)
            return;
        len += (size_t)n;
    }
}

static void validate_shape(vctx_t *c, const shape_t *s, struct json_object *obj);

static void validate_value(vctx_t *c, const vspec_t *s, struct json_object *v) {
    unsigned k = json_kinds(v);
    if (!(k & s->types)) {
        char phrase[128];
        type_phrase(s->types, phrase, sizeof phrase);
        vadd(c, "must be %s", phrase);
        return;
    }
    if (!v)
        return;
    switch (json_object_get_type(v)) {
    case json_type_string: {
        const char *str = json_object_get_string(v);
        if (s->min_length && json_object_get_string_len(v) == 0) {
            vadd(c, "must not be empty");
            return;
        }
        if (s->format == F_UUID) {
            uuid_t u;
            if (uuid_parse(str, u) != 0)
                vadd(c, "must be a UUID (8-4-4-4-12 hex digits)");
        } else if (s->format == F_DATETIME) {
            te_time_t t;
            if (te_time_parse(str, &t, NULL, NULL, 0) != TE_OK)
                vadd(c, "must be an RFC 3339 date-time");
        }
        if (s->enums) {
            int found = 0;
            for (const char *const *e = s->enums; *e && !found; e++)
                found = strcmp(*e, str) == 0;
            if (!found) {
                char list[256];
                join(s->enums, list, sizeof list);
                if (!s->enums[1])
                    vadd(c, "must be \"%s\"", s->enums[0]);
                else
                    vadd(c, "must be one of: %s", list);
            }
        }
        return;
    }
    case json_type_int:
        if (s->has_min) {
            int64_t i = json_object_get_int64(v);
            /* json-c keeps values above INT64_MAX as uint64; get_int64
             * saturates, which is fine for a minimum check */
            if (i < s->min)
                vadd(c, "must be >= %lld", (long long)s->min);
        }
        return;
    case json_type_double:
        if (s->has_min && json_object_get_double(v) < (double)s->min)
            vadd(c, "must be >= %lld", (long long)s->min);
        return;
    case json_type_object:
        if (s->shape)
            validate_shape(c, s->shape, v);
        return;
    case json_type_array:
        if (s->items) {
            size_t n = json_object_array_length(v);
            for (size_t i = 0; i < n; i++) {
                size_t save = push_index(c, i);
                validate_value(c, s->items, json_object_array_get_idx(v, i));
                pop(c, save);
            }
        }
        return;
    default:
        return;
    }
}

static const field_t *find_field(const shape_t *s, const char *name) {
    for (size_t i = 0; i < s->n_fields; i++)
        if (strcmp(s->fields[i].name, name) == 0)
            return &s->fields[i];
    return NULL;
}

static void validate_shape(vctx_t *c, const shape_t *s, struct json_object *obj) {
    for (size_t i = 0; i < s->n_fields; i++) {
        const field_t *f = &s->fields[i];
        struct json_object *m = NULL;
        int present = json_object_object_get_ex(obj, f->name, &m);
        size_t save = push_member(c, f->name);
        if (present)
            validate_value(c, &f->spec, m);
        else if (f->required)
            vadd(c, "is required");
        pop(c, save);
    }
    if (s->one_of) {
        int count = 0;
        for (const char *const *n = s->one_of; *n; n++)
            count += json_object_object_get_ex(obj, *n, NULL) ? 1 : 0;
        if (count != 1) {
            char list[128];
            join(s->one_of, list, sizeof list);
            vadd(c, "must have exactly one of: %s", list);
        }
    }
    if (s->additional) {
        json_object_object_foreach(obj, key, val) {
            if (find_field(s, key))
                continue;
            size_t save = push_member(c, key);
            validate_value(c, s->additional, val);
            pop(c, save);
        }
    }
}

te_err_t te_catalog_validate_data(const char *type, const struct json_object *data,
                                  te_problems_t *problems) {
    long ti = type_index(type);
    if (ti < 0)
        return TE_ERR_NOT_FOUND;
    vctx_t c = {.p = problems};
    strcpy(c.path, "data");
    c.plen = 4;
    const vspec_t root = {.types = T_OBJ, .shape = type_shapes[ti]};
    validate_value(&c, &root, (struct json_object *)data);
    if (c.nomem)
        return TE_ERR_NOMEM;
    return c.n ? TE_ERR_INVALID : TE_OK;
}

static int is_application_json(const char *mt) {
    static const char want[] = "application/json";
    const char *p = mt;
    while (*p == ' ' || *p == '\t')
        p++;
    if (strncasecmp(p, want, sizeof want - 1) != 0)
        return 0;
    p += sizeof want - 1;
    while (*p == ' ' || *p == '\t')
        p++;
    return *p == '\0' || *p == ';';
}

/* The catalogue rules on the parts of an event.  Returns the number of
 * problems added, or -1 when out of memory. */
static long check_parts(const char *type, const char *dct, te_event_data_kind_t kind,
                        const struct json_object *data, te_problems_t *problems) {
    if (!type || strncmp(type, TE_EVENT_TYPE_PREFIX, sizeof TE_EVENT_TYPE_PREFIX - 1) != 0)
        return 0;
    long n = 0;
    int nomem = 0;
#define ADD(field, ...)                                                                       \
    do {                                                                                      \
        n++;                                                                                  \
        if (te_problems_add(problems, field, __VA_ARGS__) != TE_OK)                           \
            nomem = 1;                                                                        \
    } while (0)
    if (type_index(type) < 0) {
        ADD("type", "unknown event type '%.80s' (not in the com.todo event catalogue)", type);
        return nomem ? -1 : n;
    }
    if (dct && !is_application_json(dct))
        ADD("datacontenttype", "must be application/json (or absent) for %s events", type);
    if (kind == TE_EVENT_DATA_NONE) {
        ADD("data", "is required for %s events", type);
    } else if (kind == TE_EVENT_DATA_BINARY) {
        ADD("data_base64", "must not be used: %s events carry JSON in data", type);
    } else {
        size_t before = te_problems_count(problems);
        te_err_t e = te_catalog_validate_data(type, data, problems);
        if (e == TE_ERR_NOMEM)
            nomem = 1;
        else if (e == TE_ERR_INVALID)
            n += problems ? (long)(te_problems_count(problems) - before) : 1;
    }
#undef ADD
    return nomem ? -1 : n;
}

te_err_t te_catalog_validate_event(const te_event_t *ev, te_problems_t *problems) {
    if (!ev)
        return TE_ERR_INVALID_ARG;
    long n = check_parts(te_event_type(ev), te_event_datacontenttype(ev), te_event_data_kind(ev),
                         te_event_data_object(ev), problems);
    if (n < 0)
        return TE_ERR_NOMEM;
    return n ? TE_ERR_INVALID : TE_OK;
}

te_err_t te_catalog_event_from_json(const char *json, size_t len, te_event_t **out,
                                    te_problems_t *problems, char *errstr, size_t errstr_size) {
    size_t before = te_problems_count(problems);
    te_err_t e = te_event_from_json(json, len, out, problems, errstr, errstr_size);
    if (e != TE_OK && e != TE_ERR_INVALID)
        return e;
    long n = 0;
    if (e == TE_OK) {
        n = check_parts(te_event_type(*out), te_event_datacontenttype(*out),
                        te_event_data_kind(*out), te_event_data_object(*out), problems);
    } else {
        /* The envelope is invalid; still report the catalogue's view of the
         * raw type/datacontenttype/data members.  The text is known to be a
         * valid JSON object by now. */
        struct json_tokener *tok = json_tokener_new();
        struct json_object *root = tok ? json_tokener_parse_ex(tok, json, (int)len) : NULL;
        json_tokener_free(tok);
        if (!root)
            return TE_ERR_NOMEM;
        struct json_object *t = NULL, *ct = NULL, *d = NULL, *b = NULL;
        json_object_object_get_ex(root, "type", &t);
        json_object_object_get_ex(root, "datacontenttype", &ct);
        int has_data = json_object_object_get_ex(root, "data", &d);
        int has_b64 = json_object_object_get_ex(root, "data_base64", &b) && b;
        if (json_object_is_type(t, json_type_string) && !(has_data && has_b64)) {
            te_event_data_kind_t kind = has_b64    ? TE_EVENT_DATA_BINARY
                                        : has_data ? TE_EVENT_DATA_JSON
                                                   : TE_EVENT_DATA_NONE;
            const char *dct =
                json_object_is_type(ct, json_type_string) ? json_object_get_string(ct) : NULL;
            n = check_parts(json_object_get_string(t), dct, kind, d, problems);
        }
        json_object_put(root);
    }
    if (n < 0) {
        te_event_destroy(*out);
        *out = NULL;
        return TE_ERR_NOMEM;
    }
    if (e == TE_OK && n == 0)
        return TE_OK;
    if (e == TE_OK) {
        te_event_destroy(*out);
        *out = NULL;
    }
    size_t total = te_problems_count(problems) - before;
    if (total > 0) {
        char line[TE_ERRSTR_SIZE];
        te__seterr(errstr, errstr_size, TE_ERR_INVALID, "%zu problem%s; first: %s", total,
                   total == 1 ? "" : "s", te_problems_format(problems, before, line, sizeof line));
    } else if (e == TE_OK) {
        te__seterr(errstr, errstr_size, TE_ERR_INVALID,
                   "the event breaks the com.todo event catalogue rules");
    }
    return TE_ERR_INVALID;
}

/* ------------------------------------------------------------------------ */
/* JSON Schema generation                                                    */

typedef struct gen_s {
    const shape_t *defs[16];
    size_t n_defs;
    int fail;
} gen_t;

static struct json_object *jstr(gen_t *g, const char *s) {
    struct json_object *o = json_object_new_string(s);
    if (!o)
        g->fail = 1;
    return o;
}

static void put(gen_t *g, struct json_object *obj, const char *key, struct json_object *v) {
    if (!v || json_object_object_add(obj, key, v) != 0)
        g->fail = 1;
}

static struct json_object *string_list(gen_t *g, const char *const *list) {
    struct json_object *a = json_object_new_array();
    if (!a) {
        g->fail = 1;
        return NULL;
    }
    for (; *list; list++)
        if (json_object_array_add(a, jstr(g, *list)) != 0)
            g->fail = 1;
    return a;
}

static void register_def(gen_t *g, const shape_t *s) {
    for (size_t i = 0; i < g->n_defs; i++)
        if (g->defs[i] == s)
            return;
    if (g->n_defs < sizeof g->defs / sizeof g->defs[0])
        g->defs[g->n_defs++] = s;
    else
        g->fail = 1;
}

static struct json_object *schema_of(gen_t *g, const vspec_t *s, const char *desc);

/* Members of an object schema for shape s, added to o. */
static void shape_body(gen_t *g, const shape_t *s, struct json_object *o) {
    put(g, o, "type", jstr(g, "object"));
    struct json_object *req = json_object_new_array();
    struct json_object *props = json_object_new_object();
    if (!req || !props)
        g->fail = 1;
    for (size_t i = 0; i < s->n_fields; i++) {
        const field_t *f = &s->fields[i];
        if (f->required && req)
            json_object_array_add(req, jstr(g, f->name));
        if (props)
            put(g, props, f->name, schema_of(g, &f->spec, f->desc));
    }
    if (req && json_object_array_length(req) > 0)
        put(g, o, "required", req);
    else
        json_object_put(req);
    if (props && s->n_fields > 0)
        put(g, o, "properties", props);
    else
        json_object_put(props);
    if (s->additional)
        put(g, o, "additionalProperties", schema_of(g, s->additional, NULL));
    if (s->one_of) {
        struct json_object *alts = json_object_new_array();
        if (!alts)
            g->fail = 1;
        for (const char *const *n = s->one_of; alts && *n; n++) {
            struct json_object *alt = json_object_new_object();
            const char *one[] = {*n, NULL};
            if (!alt)
                g->fail = 1;
            else
                put(g, alt, "required", string_list(g, one));
            json_object_array_add(alts, alt);
        }
        put(g, o, "oneOf", alts);
    }
}

static struct json_object *schema_of(gen_t *g, const vspec_t *s, const char *desc) {
    struct json_object *o = json_object_new_object();
    if (!o) {
        g->fail = 1;
        return NULL;
    }
    if (desc)
        put(g, o, "description", jstr(g, desc));
    if (s->shape && s->shape->def) {
        char ref[64];
        snprintf(ref, sizeof ref, "#/$defs/%s", s->shape->def);
        register_def(g, s->shape);
        if (s->types & T_NULL) {
            struct json_object *alts = json_object_new_array();
            struct json_object *r = json_object_new_object();
            struct json_object *n = json_object_new_object();
            if (!alts || !r || !n)
                g->fail = 1;
            put(g, r, "$ref", jstr(g, ref));
            put(g, n, "type", jstr(g, "null"));
            json_object_array_add(alts, r);
            json_object_array_add(alts, n);
            put(g, o, "anyOf", alts);
        } else {
            put(g, o, "$ref", jstr(g, ref));
        }
        return o;
    }
    if (s->shape) { /* inline object */
        shape_body(g, s->shape, o);
        return o;
    }
    unsigned t = s->types;
    if (t != T_ANY) {
        static const struct {
            unsigned bit;
            const char *name;
        } names[] = {{T_STR, "string"}, {T_INT, "integer"}, {T_NUM, "number"}, {T_BOOL, "boolean"},
                     {T_OBJ, "object"}, {T_ARR, "array"},   {T_NULL, "null"}};
        if ((t & T_NUM) && (t & T_INT))
            t &= ~(unsigned)T_INT;
        const char *list[8];
        size_t n = 0;
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (t & names[i].bit)
                list[n++] = names[i].name;
        list[n] = NULL;
        if (n == 1)
            put(g, o, "type", jstr(g, list[0]));
        else
            put(g, o, "type", string_list(g, list));
    }
    if (s->format == F_UUID)
        put(g, o, "format", jstr(g, "uuid"));
    else if (s->format == F_DATETIME)
        put(g, o, "format", jstr(g, "date-time"));
    if (s->min_length)
        put(g, o, "minLength", json_object_new_int(s->min_length));
    if (s->enums) {
        if (!s->enums[1])
            put(g, o, "const", jstr(g, s->enums[0]));
        else
            put(g, o, "enum", string_list(g, s->enums));
    }
    if (s->has_min)
        put(g, o, "minimum", json_object_new_int64(s->min));
    if (s->items)
        put(g, o, "items", schema_of(g, s->items, NULL));
    return o;
}

static te_err_t serialize(struct json_object *root, char **out, size_t *len) {
    size_t n = 0;
    const char *s = json_object_to_json_string_length(
        root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE,
        &n);
    char *copy = s ? malloc(n + 2) : NULL;
    if (!copy)
        return TE_ERR_NOMEM;
    memcpy(copy, s, n);
    copy[n] = '\n';
    copy[n + 1] = '\0';
    *out = copy;
    if (len)
        *len = n + 1;
    return TE_OK;
}

/* The envelope schema: written by hand (it mirrors cloudevent.c), kept
 * here so that every published schema comes out of this file. */
static const char envelope_schema[] =
    "{"
    "\"$schema\":\"https://json-schema.org/draft/2020-12/schema\","
    "\"$id\":\"" SCHEMA_URN "cloudevent\","
    "\"title\":\"CloudEvents 1.0 event in the JSON event format\","
    "\"description\":\"A CloudEvent (spec 1.0.2) as application/cloudevents+json, with the "
    "rules libtodoevents enforces. JSON null means the attribute is absent (for data it is an "
    "explicit null payload). Checked by the library but not expressible here: duplicate "
    "members, the characters allowed in strings (no control characters, noncharacters or "
    "unpaired surrogates), integers written without fraction or exponent, the full RFC 2046 "
    "media type grammar, and com.todo.* data (see the per-type schemas).\","
    "\"type\":\"object\","
    "\"required\":[\"specversion\",\"id\",\"source\",\"type\"],"
    "\"properties\":{"
    "\"specversion\":{\"description\":\"CloudEvents version\",\"type\":\"string\","
    "\"const\":\"1.0\"},"
    "\"id\":{\"description\":\"Event id; source + id identifies the event\","
    "\"type\":\"string\",\"minLength\":1},"
    "\"source\":{\"description\":\"Context in which the event happened\",\"type\":\"string\","
    "\"format\":\"uri-reference\",\"minLength\":1},"
    "\"type\":{\"description\":\"Event type, e.g. com.todo.task.created\",\"type\":\"string\","
    "\"minLength\":1},"
    "\"datacontenttype\":{\"description\":\"RFC 2046 media type of data\","
    "\"type\":[\"string\",\"null\"],"
    "\"pattern\":\"^[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+([ \\\\t]*;[ \\\\t]*"
    "[!#$%&'*+.^_`|~0-9A-Za-z-]+=([!#$%&'*+.^_`|~0-9A-Za-z-]+|\\\"([^\\\"\\\\\\\\]|\\\\\\\\.)*"
    "\\\"))*$\"},"
    "\"dataschema\":{\"description\":\"Absolute URI of the schema data adheres to\","
    "\"type\":[\"string\",\"null\"],\"format\":\"uri\",\"minLength\":1},"
    "\"subject\":{\"description\":\"Subject of the event within the source\","
    "\"type\":[\"string\",\"null\"],\"minLength\":1},"
    "\"time\":{\"description\":\"RFC 3339 time of the occurrence\","
    "\"type\":[\"string\",\"null\"],\"format\":\"date-time\"},"
    "\"data\":{\"description\":\"The payload: any JSON value when datacontenttype is absent or "
    "JSON, else a string\"},"
    "\"data_base64\":{\"description\":\"Binary payload, RFC 4648 base64 (padded)\","
    "\"type\":[\"string\",\"null\"],\"contentEncoding\":\"base64\","
    "\"pattern\":\"^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$\"},"
    "\"partitionkey\":{\"description\":\"Partitioning extension: the ordering key (this "
    "system: the user id, also the Kafka record key)\","
    "\"type\":[\"string\",\"null\"],\"minLength\":1},"
    "\"traceparent\":{\"description\":\"Distributed Tracing extension: W3C traceparent\","
    "\"type\":[\"string\",\"null\"],"
    "\"pattern\":\"^(00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}|"
    "(?!00|ff)[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}(-.*)?)$\"}"
    "},"
    "\"patternProperties\":{\"^(?!data$)[a-z0-9]+$\":{\"description\":\"Extension attributes: String, "
    "Integer (32-bit) or Boolean; names are lower-case a-z and 0-9 (more than 20 characters is "
    "discouraged)\",\"type\":[\"string\",\"integer\",\"boolean\",\"null\"],"
    "\"minimum\":-2147483648,\"maximum\":2147483647}},"
    "\"additionalProperties\":{\"description\":\"Other member names are not attribute names; "
    "such a member may only be null (= absent)\",\"type\":\"null\"},"
    "\"not\":{\"description\":\"data and data_base64 are mutually exclusive\","
    "\"required\":[\"data\",\"data_base64\"],"
    "\"properties\":{\"data_base64\":{\"type\":\"string\"}}}"
    "}";

te_err_t te_catalog_schema_json(const char *type, char **out, size_t *len) {
    if (!out)
        return TE_ERR_INVALID_ARG;
    *out = NULL;
    if (!type || strcmp(type, TE_SCHEMA_ENVELOPE_NAME) == 0) {
        struct json_object *root = json_tokener_parse(envelope_schema);
        if (!root)
            return TE_ERR_INTERNAL;
        te_err_t e = serialize(root, out, len);
        json_object_put(root);
        return e;
    }
    long ti = type_index(type);
    if (ti < 0)
        return TE_ERR_NOT_FOUND;
    const te_event_type_info_t *info = &types[ti];
    gen_t g = {0};
    struct json_object *root = json_object_new_object();
    if (!root)
        return TE_ERR_NOMEM;
    char buf[512];
    put(&g, root, "$schema", jstr(&g, "https://json-schema.org/draft/2020-12/schema"));
    put(&g, root, "$id", jstr(&g, info->schema_id));
    snprintf(buf, sizeof buf, "data of %s", info->type);
    put(&g, root, "title", jstr(&g, buf));
    snprintf(buf, sizeof buf,
             "%s Published on Kafka topic %s as a CloudEvent (datacontenttype application/json, "
             "key = partitionkey = the user id). Additional members are allowed.",
             info->description, info->topic);
    put(&g, root, "description", jstr(&g, buf));
    shape_body(&g, type_shapes[ti], root);
    if (g.n_defs > 0) {
        struct json_object *defs = json_object_new_object();
        if (!defs)
            g.fail = 1;
        /* emitting a def may register further defs */
        for (size_t i = 0; defs && i < g.n_defs; i++) {
            struct json_object *d = json_object_new_object();
            if (!d) {
                g.fail = 1;
                break;
            }
            if (g.defs[i]->desc)
                put(&g, d, "description", jstr(&g, g.defs[i]->desc));
            shape_body(&g, g.defs[i], d);
            put(&g, defs, g.defs[i]->def, d);
        }
        put(&g, root, "$defs", defs);
    }
    te_err_t e = g.fail ? TE_ERR_NOMEM : serialize(root, out, len);
    json_object_put(root);
    return e;
}
