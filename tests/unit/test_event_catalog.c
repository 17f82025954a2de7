/* Event catalogue: topics and types, every type's data rules (a valid
 * example, each required member missing, each member with a wrong type,
 * nested task state rules), event-level rules, and the committed JSON
 * Schema files (regenerated here; the test fails when they drift). */
#include <check.h>
#include <dirent.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <todoevents/cloudevent.h>
#include <todoevents/event_catalog.h>

/* ' stands for " in test JSON (see test_cloudevent.c). */
static char *J(const char *s) {
    char *b = strdup(s);
    for (char *p = b; *p; p++)
        if (*p == '\'')
            *p = '"';
    return b;
}

static struct json_object *parse(const char *quoted) {
    char *j = J(quoted);
    enum json_tokener_error err;
    struct json_object *o = json_tokener_parse_verbose(j, &err);
    ck_assert_msg(err == json_tokener_success, "test JSON does not parse: %s", j);
    free(j);
    return o; /* NULL for JSON null */
}

#define U1 "'6e8bc430-9c3a-11d9-9669-0800200c9a66'"
#define U2 "'0b5c3c9e-2f43-4b8e-9d0c-5c7f3b6e1a21'"
#define U3 "'F81D4FAE-7DEC-11D0-A765-00A0C91E6BF6'"
#define T1 "'2026-05-01T09:00:00+02:00'"
#define T2 "'2026-04-01T10:00:00.123Z'"

#define TASK                                                                                  \
    "{'id':" U1 ",'user_id':'user-1','title':'Buy milk','description':null,"                  \
    "'priority':'high','status':'pending','tags':['home','shop'],'due_date':" T1 ","          \
    "'timezone':'Europe/Berlin','reminders':[{'offset_minutes':15},{'at':" T2 "}],"           \
    "'recurrence':{'rrule':'FREQ=WEEKLY;BYDAY=MO','timezone':'Europe/Berlin',"                \
    "'anchor':'schedule','series_id':" U2 "},'overdue':false,'created_at':" T2 ","            \
    "'updated_at':" T2 ",'completed_at':null}"

#define SYNC(op) "{'user_id':'user-1','seq':42,'task_id':" U1 ",'op':'" op "','task':" TASK ",'changes':{}}"

static const struct {
    const char *type;
    const char *topic;
    const char *data;
    const char *required; /* space-separated, from the design brief */
} types[] = {
    {"com.todo.task.created", "task.events",
     "{'task_id':" U1 ",'user_id':'user-1','task':" TASK "}", "task_id user_id task"},
    {"com.todo.task.updated", "task.events",
     "{'task_id':" U1 ",'user_id':'user-1','changes':{'title':{'old':'Buy milk','new':'Buy oat "
     "milk'},'due_date':{'old':null,'new':" T1 "},'tags':{'old':[],'new':['x']}},'task':" TASK "}",
     "task_id user_id changes task"},
    {"com.todo.task.completed", "task.events",
     "{'task_id':" U1 ",'user_id':'user-1','task':" TASK ",'completed_at':" T2 "}",
     "task_id user_id task completed_at"},
    {"com.todo.task.deleted", "task.events",
     "{'task_id':" U1 ",'user_id':'user-1','deleted_at':" T2 "}", "task_id user_id deleted_at"},
    {"com.todo.reminder.due", "reminder.due",
     "{'reminder_id':" U2 ",'task_id':" U1 ",'user_id':'user-1','title':'Buy milk',"
     "'remind_at':" T2 ",'due_date':" T1 ",'channels':['in_app','webhook','email'],'late':false}",
     "reminder_id task_id user_id title remind_at"},
    {"com.todo.notification.send", "notification.send",
     "{'notification_id':" U3 ",'user_id':'user-1','title':'Reminder','body':'Buy milk',"
     "'task_id':" U1 ",'reminder_id':" U2 ",'kind':'reminder','created_at':" T2 "}",
     "notification_id user_id title created_at"},
    {"com.todo.notification.dlq", "notification.dlq",
     "{'original_topic':'notification.send','original_event':{'specversion':'1.0','id':'x'},"
     "'error':'webhook answered 500','attempt_count':3,'last_attempt_at':" T2 "}",
     "original_topic original_event error attempt_count last_attempt_at"},
    {"com.todo.activity.recorded", "activity.log",
     "{'activity_id':" U2 ",'user_id':'user-1','event_id':'e-1','event_type':"
     "'com.todo.task.created','entity_type':'task','entity_id':" U1 ",'occurred_at':" T2 ","
     "'details':{'title':'Buy milk'}}",
     "activity_id user_id event_id event_type entity_type entity_id occurred_at"},
    {"com.todo.sync.task.created", "sync.events", SYNC("created"), "user_id seq task_id op task"},
    {"com.todo.sync.task.updated", "sync.events", SYNC("updated"), "user_id seq task_id op task"},
    {"com.todo.sync.task.completed", "sync.events", SYNC("completed"),
     "user_id seq task_id op task"},
    {"com.todo.sync.task.deleted", "sync.events",
     "{'user_id':'user-1','seq':43,'task_id':" U1 ",'op':'deleted'}", "user_id seq task_id op"},
};
#define N_TYPES (sizeof types / sizeof types[0])

static te_problems_t *P;

static void setup(void) { P = te_problems_new(); }
static void teardown(void) { te_problems_destroy(P); }

static void dump(void) {
    for (size_t i = 0; i < te_problems_count(P); i++)
        fprintf(stderr, "    problem %s: %s\n", te_problems_field(P, i), te_problems_reason(P, i));
}

static int has_problem(const char *field, const char *reason_part) {
    for (size_t i = 0; i < te_problems_count(P); i++)
        if (strcmp(te_problems_field(P, i), field) == 0 &&
            (!reason_part || strstr(te_problems_reason(P, i), reason_part)))
            return 1;
    return 0;
}

static void data_ok(const char *type, struct json_object *data) {
    te_problems_clear(P);
    te_err_t e = te_catalog_validate_data(type, data, P);
    if (e)
        dump();
    ck_assert_msg(e == TE_OK, "%s: valid data rejected: %s", type,
                  json_object_to_json_string(data));
    ck_assert_uint_eq(te_problems_count(P), 0);
}

static void data_bad(const char *type, struct json_object *data, const char *field,
                     const char *reason_part) {
    te_problems_clear(P);
    te_err_t e = te_catalog_validate_data(type, data, P);
    ck_assert_msg(e == TE_ERR_INVALID, "%s: accepted %s", type, json_object_to_json_string(data));
    if (!has_problem(field, reason_part))
        dump();
    ck_assert_msg(has_problem(field, reason_part), "%s: no problem '%s: ...%s...' for %s", type,
                  field, reason_part ? reason_part : "", json_object_to_json_string(data));
}

/* Example data of type i with member path (dotted) set to value (quoted
 * JSON) or removed (value NULL). */
static struct json_object *variant(size_t i, const char *path, const char *value) {
    struct json_object *root = parse(types[i].data);
    struct json_object *obj = root;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    char *name = buf, *dot;
    while ((dot = strchr(name, '.'))) {
        *dot = '\0';
        struct json_object *next = NULL;
        if (strchr(name, '[')) {
            char *br = strchr(name, '[');
            *br = '\0';
            ck_assert(json_object_object_get_ex(obj, name, &next));
            next = json_object_array_get_idx(next, (size_t)atoi(br + 1));
        } else {
            ck_assert_msg(json_object_object_get_ex(obj, name, &next), "no %s", name);
        }
        obj = next;
        name = dot + 1;
    }
    if (value)
        json_object_object_add(obj, name, parse(value));
    else
        json_object_object_del(obj, name);
    return root;
}

static size_t idx(const char *type) {
    for (size_t i = 0; i < N_TYPES; i++)
        if (strcmp(types[i].type, type) == 0)
            return i;
    ck_abort_msg("no example for %s", type);
    return 0;
}

/* ---- topics and types ------------------------------------------------------ */

START_TEST(topics_table) {
    ck_assert_uint_eq(te_catalog_topic_count(), 6);
    const struct {
        const char *name;
        int partitions;
        int64_t retention_ms;
    } want[] = {{"task.events", 12, 7 * 86400000LL},      {"reminder.due", 6, 86400000LL},
                {"notification.send", 6, 86400000LL},     {"notification.dlq", 3, 30 * 86400000LL},
                {"activity.log", 12, 30 * 86400000LL},    {"sync.events", 12, 3600000LL}};
    for (size_t i = 0; i < 6; i++) {
        const te_topic_info_t *t = te_catalog_topic_at(i);
        ck_assert_str_eq(t->name, want[i].name);
        ck_assert_int_eq(t->partitions, want[i].partitions);
        ck_assert(t->retention_ms == want[i].retention_ms);
        ck_assert_ptr_nonnull(t->description);
        ck_assert_ptr_eq(te_catalog_topic_lookup(want[i].name), t);
    }
    ck_assert_ptr_null(te_catalog_topic_at(6));
    ck_assert_ptr_null(te_catalog_topic_lookup("task.event"));
    ck_assert_ptr_null(te_catalog_topic_lookup(NULL));
}
END_TEST

START_TEST(types_table) {
    ck_assert_uint_eq(te_catalog_type_count(), N_TYPES);
    for (size_t i = 0; i < N_TYPES; i++) {
        const te_event_type_info_t *t = te_catalog_type_at(i);
        ck_assert_str_eq(t->type, types[i].type);
        ck_assert_str_eq(t->topic, types[i].topic);
        ck_assert_ptr_eq(te_catalog_lookup(types[i].type), t);
        ck_assert_str_eq(te_catalog_topic_for(types[i].type), types[i].topic);
        ck_assert_ptr_nonnull(te_catalog_topic_lookup(t->topic));
        char urn[128];
        snprintf(urn, sizeof urn, "urn:todoevents:schema:%s", t->type);
        ck_assert_str_eq(t->schema_id, urn);
        ck_assert_ptr_nonnull(t->description);
    }
    ck_assert_ptr_null(te_catalog_type_at(N_TYPES));
    ck_assert_ptr_null(te_catalog_lookup("com.todo.task"));
    ck_assert_ptr_null(te_catalog_lookup("com.todo.task.created.v2"));
    ck_assert_ptr_null(te_catalog_lookup(NULL));
    ck_assert_ptr_null(te_catalog_topic_for("com.example.x"));
    ck_assert_str_eq(te_catalog_topic_for(TE_EVENT_SYNC_TASK_DELETED), TE_TOPIC_SYNC_EVENTS);
    ck_assert_str_eq(te_catalog_topic_for(TE_EVENT_NOTIFICATION_DLQ), TE_TOPIC_NOTIFICATION_DLQ);
    struct json_object *o = json_object_new_object();
    ck_assert_int_eq(te_catalog_validate_data("com.example.x", o, P), TE_ERR_NOT_FOUND);
    ck_assert_uint_eq(te_problems_count(P), 0);
    json_object_put(o);
}
END_TEST

/* ---- per-type data ---------------------------------------------------------- */

START_TEST(valid_examples) {
    for (size_t i = 0; i < N_TYPES; i++) {
        struct json_object *d = parse(types[i].data);
        data_ok(types[i].type, d);
        json_object_put(d);
    }
    /* additional members are allowed everywhere */
    for (size_t i = 0; i < N_TYPES; i++) {
        struct json_object *d = variant(i, "x_extra", "{'anything':[1]}");
        data_ok(types[i].type, d);
        json_object_put(d);
    }
}
END_TEST

START_TEST(required_members) {
    for (size_t i = 0; i < N_TYPES; i++) {
        struct json_object *ex = parse(types[i].data);
        json_object_object_foreach(ex, key, val) {
            (void)val;
            char field[128], words[256];
            snprintf(field, sizeof field, "data.%s", key);
            snprintf(words, sizeof words, " %s ", types[i].required);
            char needle[128];
            snprintf(needle, sizeof needle, " %s ", key);
            struct json_object *d = variant(i, key, NULL);
            if (strstr(words, needle))
                data_bad(types[i].type, d, field, "is required");
            else
                data_ok(types[i].type, d);
            json_object_put(d);
        }
        /* every required member of the brief is in the example */
        char req[256];
        snprintf(req, sizeof req, "%s", types[i].required);
        for (char *w = strtok(req, " "); w; w = strtok(NULL, " "))
            ck_assert_msg(json_object_object_get_ex(ex, w, NULL), "%s lacks %s", types[i].type, w);
        /* {} lists every required member */
        struct json_object *empty = json_object_new_object();
        te_problems_clear(P);
        ck_assert_int_eq(te_catalog_validate_data(types[i].type, empty, P), TE_ERR_INVALID);
        size_t n = 0;
        snprintf(req, sizeof req, "%s", types[i].required);
        for (char *w = strtok(req, " "); w; w = strtok(NULL, " "), n++) {
            char field[128];
            snprintf(field, sizeof field, "data.%s", w);
            ck_assert(has_problem(field, "is required"));
        }
        ck_assert_uint_eq(te_problems_count(P), n);
        json_object_put(empty);
        json_object_put(ex);
    }
}
END_TEST

/* A value of a type no member accepts: arrays for non-arrays, a string for
 * arrays, numbers for strings, ... */
static const char *wrong_value(struct json_object *v) {
    switch (json_object_get_type(v)) {
    case json_type_array:
        return "'not an array'";
    case json_type_object:
        return "[1]";
    case json_type_string:
        return "12345";
    case json_type_null:
        return "{'x':1}";
    default:
        return "'text'";
    }
}

START_TEST(wrong_types) {
    for (size_t i = 0; i < N_TYPES; i++) {
        struct json_object *ex = parse(types[i].data);
        json_object_object_foreach(ex, key, val) {
            char field[128];
            snprintf(field, sizeof field, "data.%s", key);
            struct json_object *d = variant(i, key, wrong_value(val));
            data_bad(types[i].type, d, field, "must be");
            json_object_put(d);
        }
        json_object_put(ex);
        /* data that is not an object */
        const char *not_objects[] = {"[]", "'x'", "1", "true"};
        for (size_t k = 0; k < 4; k++) {
            struct json_object *d = parse(not_objects[k]);
            data_bad(types[i].type, d, "data", "must be an object");
            json_object_put(d);
        }
        data_bad(types[i].type, NULL, "data", "must be an object");
    }
}
END_TEST

START_TEST(formats) {
    size_t del = idx("com.todo.task.deleted");
    const char *bad_uuids[] = {"'x'", "''", "'6e8bc4309c3a11d996690800200c9a66'",
                               "'6e8bc430-9c3a-11d9-9669-0800200c9a6'",
                               "'{6e8bc430-9c3a-11d9-9669-0800200c9a66}'",
                               "'6e8bc430-9c3a-11d9-9669-0800200c9a66 '",
                               "'6e8bc430-9c3a-11d9-9669-0800200c9g66'"};
    for (size_t k = 0; k < sizeof bad_uuids / sizeof bad_uuids[0]; k++) {
        struct json_object *d = variant(del, "task_id", bad_uuids[k]);
        data_bad(types[del].type, d, "data.task_id", "UUID");
        json_object_put(d);
    }
    const char *bad_times[] = {"'2026-04-01'", "'2026-04-01 10:00:00Z'", "'2026-04-01T10:00:00'",
                               "'2026-13-01T10:00:00Z'", "''", "'yesterday'"};
    for (size_t k = 0; k < sizeof bad_times / sizeof bad_times[0]; k++) {
        struct json_object *d = variant(del, "deleted_at", bad_times[k]);
        data_bad(types[del].type, d, "data.deleted_at", "RFC 3339");
        json_object_put(d);
    }
    struct json_object *d = variant(del, "user_id", "''");
    data_bad(types[del].type, d, "data.user_id", "must not be empty");
    json_object_put(d);
    d = variant(del, "user_id", "null");
    data_bad(types[del].type, d, "data.user_id", "must be a string");
    json_object_put(d);
    /* upper-case UUIDs are UUIDs */
    d = variant(del, "task_id", U3);
    data_ok(types[del].type, d);
    json_object_put(d);
}
END_TEST

START_TEST(task_state_rules) {
    size_t c = idx("com.todo.task.created");
    const char *type = types[c].type;
    const char *required[] = {"id", "user_id", "title", "priority", "status", "created_at",
                              "updated_at"};
    for (size_t k = 0; k < sizeof required / sizeof required[0]; k++) {
        char path[64], field[64];
        snprintf(path, sizeof path, "task.%s", required[k]);
        snprintf(field, sizeof field, "data.task.%s", required[k]);
        struct json_object *d = variant(c, path, NULL);
        data_bad(type, d, field, "is required");
        json_object_put(d);
    }
    const char *optional[] = {"description", "tags", "due_date", "timezone", "reminders",
                              "recurrence", "overdue", "completed_at"};
    for (size_t k = 0; k < sizeof optional / sizeof optional[0]; k++) {
        char path[64];
        snprintf(path, sizeof path, "task.%s", optional[k]);
        struct json_object *d = variant(c, path, NULL);
        data_ok(type, d);
        json_object_put(d);
    }
    struct {
        const char *path, *value, *field, *reason;
    } bad[] = {
        {"task.id", "'nope'", "data.task.id", "UUID"},
        {"task.user_id", "''", "data.task.user_id", "empty"},
        {"task.title", "5", "data.task.title", "must be a string"},
        {"task.title", "null", "data.task.title", "must be a string"},
        {"task.description", "5", "data.task.description", "a string or null"},
        {"task.priority", "'critical'", "data.task.priority", "one of: low, medium, high, urgent"},
        {"task.priority", "'HIGH'", "data.task.priority", "one of"},
        {"task.status", "'done'", "data.task.status", "one of: pending, completed"},
        {"task.tags", "['a',2]", "data.task.tags[1]", "must be a string"},
        {"task.tags", "'a'", "data.task.tags", "must be an array"},
        {"task.due_date", "'tomorrow'", "data.task.due_date", "RFC 3339"},
        {"task.timezone", "1", "data.task.timezone", "a string or null"},
        {"task.reminders", "[{}]", "data.task.reminders[0]", "exactly one of: offset_minutes, at"},
        {"task.reminders", "[{'offset_minutes':5,'at':" T2 "}]", "data.task.reminders[0]",
         "exactly one of"},
        {"task.reminders", "[{'offset_minutes':-1}]", "data.task.reminders[0].offset_minutes",
         ">= 0"},
        {"task.reminders", "[{'offset_minutes':1.5}]", "data.task.reminders[0].offset_minutes",
         "integer"},
        {"task.reminders", "[{'offset_minutes':'15'}]", "data.task.reminders[0].offset_minutes",
         "integer"},
        {"task.reminders", "[{'at':'soon'}]", "data.task.reminders[0].at", "RFC 3339"},
        {"task.reminders", "[5]", "data.task.reminders[0]", "must be an object"},
        {"task.recurrence", "'weekly'", "data.task.recurrence", "an object or null"},
        {"task.recurrence", "{'timezone':'UTC'}", "data.task.recurrence.rrule", "is required"},
        {"task.recurrence", "{'rrule':5}", "data.task.recurrence.rrule", "must be a string"},
        {"task.recurrence", "{'rrule':'FREQ=DAILY','anchor':'due'}",
         "data.task.recurrence.anchor", "one of: schedule, completion"},
        {"task.recurrence", "{'rrule':'FREQ=DAILY','series_id':'s'}",
         "data.task.recurrence.series_id", "UUID"},
        {"task.recurrence", "{'rrule':'FREQ=DAILY','timezone':null}",
         "data.task.recurrence.timezone", "must be a string"},
        {"task.overdue", "'no'", "data.task.overdue", "boolean"},
        {"task.created_at", "null", "data.task.created_at", "must be a string"},
        {"task.completed_at", "'x'", "data.task.completed_at", "RFC 3339"},
        {"task", "null", "data.task", "must be an object"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        struct json_object *d = variant(c, bad[k].path, bad[k].value);
        data_bad(type, d, bad[k].field, bad[k].reason);
        json_object_put(d);
    }
    const char *good[][2] = {
        {"task.recurrence", "null"},
        {"task.recurrence", "{'rrule':'FREQ=DAILY'}"},
        {"task.recurrence", "{'rrule':'FREQ=DAILY','series_id':null,'anchor':'completion','occurrence':3}"},
        {"task.reminders", "[]"},
        {"task.reminders", "[{'offset_minutes':0},{'offset_minutes':1440,'note':'x'}]"},
        {"task.reminders", "[{'offset_minutes':15.0}]"}, /* an integral number is an integer */
        {"task.tags", "[]"},
        {"task.due_date", "null"},
        {"task.completed_at", "'2026-04-03T10:00:00Z'"},
        {"task.priority", "'urgent'"},
        {"task.status", "'completed'"},
        {"task.title", "''"},
    };
    for (size_t k = 0; k < sizeof good / sizeof good[0]; k++) {
        struct json_object *d = variant(c, good[k][0], good[k][1]);
        data_ok(type, d);
        json_object_put(d);
    }
    /* several problems at once, all reported */
    struct json_object *d = variant(c, "task", "{'priority':'x','tags':[1,2]}");
    data_bad(type, d, "data.task.id", "is required");
    ck_assert(has_problem("data.task.priority", "one of"));
    ck_assert(has_problem("data.task.tags[0]", NULL) && has_problem("data.task.tags[1]", NULL));
    json_object_put(d);
}
END_TEST

START_TEST(updated_changes_rules) {
    size_t u = idx("com.todo.task.updated");
    const char *type = types[u].type;
    struct {
        const char *path, *value, *field, *reason;
    } bad[] = {
        {"changes", "{'title':{'old':'a'}}", "data.changes.title.new", "is required"},
        {"changes", "{'title':{'new':'a'}}", "data.changes.title.old", "is required"},
        {"changes", "{'title':'a'}", "data.changes.title", "must be an object"},
        {"changes", "{'title':null}", "data.changes.title", "must be an object"},
        {"changes", "[]", "data.changes", "must be an object"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        struct json_object *d = variant(u, bad[k].path, bad[k].value);
        data_bad(type, d, bad[k].field, bad[k].reason);
        json_object_put(d);
    }
    const char *good[] = {"{}", "{'x':{'old':null,'new':null}}",
                          "{'x':{'old':{'a':1},'new':[1,2],'extra':true}}"};
    for (size_t k = 0; k < 3; k++) {
        struct json_object *d = variant(u, "changes", good[k]);
        data_ok(type, d);
        json_object_put(d);
    }
}
END_TEST

START_TEST(sync_rules) {
    size_t cr = idx("com.todo.sync.task.created"), up = idx("com.todo.sync.task.updated"),
           de = idx("com.todo.sync.task.deleted");
    struct json_object *d = variant(up, "seq", "0");
    data_bad(types[up].type, d, "data.seq", ">= 1");
    json_object_put(d);
    d = variant(up, "seq", "-5");
    data_bad(types[up].type, d, "data.seq", ">= 1");
    json_object_put(d);
    d = variant(up, "seq", "1.5");
    data_bad(types[up].type, d, "data.seq", "integer");
    json_object_put(d);
    d = variant(up, "seq", "'7'");
    data_bad(types[up].type, d, "data.seq", "integer");
    json_object_put(d);
    const char *big[] = {"1099511627776", "9223372036854775807", "18446744073709551615", "3.0"};
    for (size_t k = 0; k < 4; k++) {
        d = variant(up, "seq", big[k]);
        data_ok(types[up].type, d);
        json_object_put(d);
    }
    /* op must match the type */
    d = variant(up, "op", "'created'");
    data_bad(types[up].type, d, "data.op", "must be \"updated\"");
    json_object_put(d);
    d = variant(cr, "op", "'removed'");
    data_bad(types[cr].type, d, "data.op", "must be \"created\"");
    json_object_put(d);
    /* task: required (an object) unless deleted */
    d = variant(up, "task", "null");
    data_bad(types[up].type, d, "data.task", "must be an object");
    json_object_put(d);
    d = variant(cr, "task", NULL);
    data_bad(types[cr].type, d, "data.task", "is required");
    json_object_put(d);
    d = variant(de, "task", "null");
    data_ok(types[de].type, d);
    json_object_put(d);
    d = variant(de, "task", TASK);
    data_ok(types[de].type, d);
    json_object_put(d);
    d = variant(de, "task", "{'id':'x'}");
    data_bad(types[de].type, d, "data.task.id", "UUID");
    json_object_put(d);
    d = variant(up, "changes", "{'title':{'old':'a','new':'b'}}");
    data_ok(types[up].type, d);
    json_object_put(d);
    d = variant(up, "user_id", "''");
    data_bad(types[up].type, d, "data.user_id", "empty");
    json_object_put(d);
}
END_TEST

START_TEST(other_type_rules) {
    size_t r = idx("com.todo.reminder.due"), n = idx("com.todo.notification.send"),
           q = idx("com.todo.notification.dlq"), a = idx("com.todo.activity.recorded");
    struct {
        size_t i;
        const char *path, *value, *field, *reason;
    } bad[] = {
        {r, "channels", "['in_app','sms']", "data.channels[1]", "one of: in_app, webhook, email"},
        {r, "channels", "'email'", "data.channels", "must be an array"},
        {r, "late", "'yes'", "data.late", "boolean"},
        {r, "due_date", "'x'", "data.due_date", "RFC 3339"},
        {r, "reminder_id", "'r1'", "data.reminder_id", "UUID"},
        {n, "task_id", "null", "data.task_id", "must be a string"},
        {n, "reminder_id", "'x'", "data.reminder_id", "UUID"},
        {n, "body", "null", "data.body", "must be a string"},
        {n, "kind", "1", "data.kind", "must be a string"},
        {q, "original_event", "5", "data.original_event", "a string or an object"},
        {q, "original_event", "null", "data.original_event", "a string or an object"},
        {q, "original_event", "[]", "data.original_event", "a string or an object"},
        {q, "attempt_count", "0", "data.attempt_count", ">= 1"},
        {q, "attempt_count", "2.5", "data.attempt_count", "integer"},
        {q, "error", "''", "data.error", "empty"},
        {q, "original_topic", "''", "data.original_topic", "empty"},
        {a, "details", "[]", "data.details", "must be an object"},
        {a, "event_id", "1", "data.event_id", "must be a string"},
        {a, "occurred_at", "'x'", "data.occurred_at", "RFC 3339"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        struct json_object *d = variant(bad[k].i, bad[k].path, bad[k].value);
        data_bad(types[bad[k].i].type, d, bad[k].field, bad[k].reason);
        json_object_put(d);
    }
    struct {
        size_t i;
        const char *path, *value;
    } good[] = {
        {r, "channels", "[]"},
        {r, "due_date", "null"},
        {q, "original_event", "'{not json'"},
        {q, "attempt_count", "1"},
        {a, "details", "{}"},
        {n, "body", "''"},
    };
    for (size_t k = 0; k < sizeof good / sizeof good[0]; k++) {
        struct json_object *d = variant(good[k].i, good[k].path, good[k].value);
        data_ok(types[good[k].i].type, d);
        json_object_put(d);
    }
}
END_TEST

/* ---- event-level rules --------------------------------------------------------- */

static char *event_json(size_t i, const char *extra) {
#define EVENT_FMT "{'specversion':'1.0','id':'e1','source':'/api','type':'%s'," \
                  "'partitionkey':'user-1'%s,'data':%s}"
    size_t n = sizeof EVENT_FMT + strlen(types[i].type) + strlen(extra) + strlen(types[i].data);
    char *q = malloc(n);
    snprintf(q, n, EVENT_FMT, types[i].type, extra, types[i].data);
    char *j = J(q);
    free(q);
    return j;
}

static te_err_t from_json(const char *json) {
    te_event_t *ev = (te_event_t *)1;
    char e[TE_ERRSTR_SIZE] = "";
    te_problems_clear(P);
    te_err_t err = te_catalog_event_from_json(json, strlen(json), &ev, P, e, sizeof e);
    if (err == TE_OK) {
        ck_assert_ptr_nonnull(ev);
        ck_assert_int_eq(te_catalog_validate_event(ev, NULL), TE_OK);
    } else {
        ck_assert_ptr_null(ev);
        if (err == TE_ERR_INVALID)
            ck_assert_msg(strstr(e, "problem") != NULL, "errstr: %s", e);
    }
    te_event_destroy(ev);
    return err;
}

START_TEST(event_rules) {
    for (size_t i = 0; i < N_TYPES; i++) {
        char *j = event_json(i, "");
        ck_assert_int_eq(from_json(j), TE_OK);
        free(j);
        j = event_json(i, ",'datacontenttype':'application/json; charset=utf-8'");
        ck_assert_int_eq(from_json(j), TE_OK);
        free(j);
        j = event_json(i, ",'datacontenttype':'APPLICATION/JSON'");
        ck_assert_int_eq(from_json(j), TE_OK);
        free(j);
        j = event_json(i, ",'datacontenttype':'text/plain'");
        ck_assert_int_eq(from_json(j), TE_ERR_INVALID);
        ck_assert(has_problem("datacontenttype", "application/json"));
        free(j);
        j = event_json(i, ",'datacontenttype':'application/vnd.todo+json'");
        ck_assert_int_eq(from_json(j), TE_ERR_INVALID);
        free(j);
    }
    char *j = J("{'specversion':'1.0','id':'1','source':'/a','type':'com.todo.task.deleted'}");
    ck_assert_int_eq(from_json(j), TE_ERR_INVALID);
    ck_assert(has_problem("data", "is required"));
    free(j);
    j = J("{'specversion':'1.0','id':'1','source':'/a','type':'com.todo.task.deleted','data':null}");
    ck_assert_int_eq(from_json(j), TE_ERR_INVALID);
    ck_assert(has_problem("data", "must be an object"));
    free(j);
    j = J("{'specversion':'1.0','id':'1','source':'/a','type':'com.todo.task.deleted',"
          "'data_base64':'e30='}");
    ck_assert_int_eq(from_json(j), TE_ERR_INVALID);
    ck_assert(has_problem("data_base64", "JSON"));
    free(j);
    j = J("{'specversion':'1.0','id':'1','source':'/a','type':'com.todo.task.archived','data':{}}");
    ck_assert_int_eq(from_json(j), TE_ERR_INVALID);
    ck_assert(has_problem("type", "catalogue"));
    ck_assert_uint_eq(te_problems_count(P), 1);
    free(j);
    /* other types pass untouched */
    j = J("{'specversion':'1.0','id':'1','source':'/a','type':'com.example.x','data_base64':''}");
    ck_assert_int_eq(from_json(j), TE_OK);
    free(j);
    j = J("{'specversion':'1.0','id':'1','source':'/a','type':'com.todox.y'}");
    ck_assert_int_eq(from_json(j), TE_OK);
    free(j);
    /* malformed JSON stays a parse error */
    ck_assert_int_eq(from_json("{"), TE_ERR_PARSE);
    ck_assert_int_eq(from_json("[]"), TE_ERR_PARSE);
}
END_TEST

START_TEST(envelope_and_data_problems_together) {
    char *j = J("{'specversion':'1.0','id':'','source':'/a','type':'com.todo.task.deleted',"
                "'time':'x','data':{'task_id':'nope','user_id':'u'}}");
    ck_assert_int_eq(from_json(j), TE_ERR_INVALID);
    ck_assert(has_problem("id", "non-empty"));
    ck_assert(has_problem("time", "RFC 3339"));
    ck_assert(has_problem("data.task_id", "UUID"));
    ck_assert(has_problem("data.deleted_at", "is required"));
    ck_assert_uint_eq(te_problems_count(P), 4);
    free(j);
    /* with an unusable type, only the envelope speaks */
    j = J("{'specversion':'1.0','id':'1','source':'/a','type':'','data':{}}");
    ck_assert_int_eq(from_json(j), TE_ERR_INVALID);
    ck_assert_uint_eq(te_problems_count(P), 1);
    free(j);
    /* validate_event on a built event */
    te_event_t *ev = NULL;
    ck_assert_int_eq(te_event_create(&ev, TE_EVENT_TASK_DELETED, "/api", NULL, 0), TE_OK);
    te_problems_clear(P);
    ck_assert_int_eq(te_catalog_validate_event(ev, P), TE_ERR_INVALID);
    ck_assert(has_problem("data", "is required"));
    const char *data = "{\"task_id\":\"6e8bc430-9c3a-11d9-9669-0800200c9a66\",\"user_id\":\"u\","
                       "\"deleted_at\":\"2026-01-01T00:00:00Z\"}";
    ck_assert_int_eq(te_event_set_data_json(ev, data, strlen(data), NULL, 0), TE_OK);
    ck_assert_int_eq(te_catalog_validate_event(ev, NULL), TE_OK);
    ck_assert_int_eq(te_catalog_validate_event(NULL, NULL), TE_ERR_INVALID_ARG);
    te_event_destroy(ev);
}
END_TEST

/* ---- schemas ------------------------------------------------------------------- */

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    size_t r = fread(b, 1, (size_t)n, f);
    fclose(f);
    b[r] = 0;
    *len = r;
    return b;
}

static const char *schema_dir(void) {
    const char *d = getenv("TE_SCHEMA_DIR");
    return d && *d ? d : TE_SCHEMA_DIR_DEFAULT;
}

static void check_committed(const char *name) {
    char *gen = NULL;
    size_t glen = 0;
    ck_assert_int_eq(te_catalog_schema_json(name, &gen, &glen), TE_OK);
    ck_assert_uint_eq(glen, strlen(gen));
    ck_assert_int_eq(gen[glen - 1], '\n');
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.json", schema_dir(), name);
    size_t flen = 0;
    char *file = read_file(path, &flen);
    ck_assert_msg(file != NULL, "missing %s (run: todoctl event schemas --out %s)", path,
                  schema_dir());
    ck_assert_msg(flen == glen && memcmp(file, gen, glen) == 0,
                  "%s differs from the catalogue; regenerate with: todoctl event schemas --out %s",
                  path, schema_dir());
    /* well-formed JSON, a draft 2020-12 schema object with the right $id */
    struct json_tokener *tok = json_tokener_new();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    struct json_object *o = json_tokener_parse_ex(tok, file, (int)flen);
    ck_assert_msg(o && json_tokener_get_error(tok) == json_tokener_success, "%s is not JSON",
                  path);
    json_tokener_free(tok);
    ck_assert(json_object_is_type(o, json_type_object));
    struct json_object *v;
    ck_assert(json_object_object_get_ex(o, "$schema", &v));
    ck_assert_str_eq(json_object_get_string(v), "https://json-schema.org/draft/2020-12/schema");
    ck_assert(json_object_object_get_ex(o, "$id", &v));
    char urn[128];
    snprintf(urn, sizeof urn, "urn:todoevents:schema:%s", name);
    ck_assert_str_eq(json_object_get_string(v), urn);
    ck_assert(json_object_object_get_ex(o, "type", &v));
    ck_assert_str_eq(json_object_get_string(v), "object");
    json_object_put(o);
    free(file);
    te_free(gen);
}

START_TEST(committed_schemas_match) {
    check_committed(TE_SCHEMA_ENVELOPE_NAME);
    for (size_t i = 0; i < te_catalog_type_count(); i++)
        check_committed(te_catalog_type_at(i)->type);
    /* no stale files */
    DIR *d = opendir(schema_dir());
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    size_t n = 0;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(len - 5), e->d_name);
        ck_assert_msg(strcmp(name, TE_SCHEMA_ENVELOPE_NAME) == 0 || te_catalog_lookup(name),
                      "stale schema file %s", e->d_name);
        n++;
    }
    closedir(d);
    ck_assert_uint_eq(n, te_catalog_type_count() + 1);
}
END_TEST

/* The schemas say what the validator does: required lists and property
 * names agree with the validator's answers. */
START_TEST(schemas_agree_with_validator) {
    for (size_t i = 0; i < N_TYPES; i++) {
        char *s = NULL;
        ck_assert_int_eq(te_catalog_schema_json(types[i].type, &s, NULL), TE_OK);
        struct json_object *o = json_tokener_parse(s);
        ck_assert_ptr_nonnull(o);
        struct json_object *req, *props;
        ck_assert(json_object_object_get_ex(o, "required", &req));
        ck_assert(json_object_object_get_ex(o, "properties", &props));
        /* required = the brief's list */
        char words[256];
        snprintf(words, sizeof words, "%s", types[i].required);
        size_t n = 0;
        for (char *w = strtok(words, " "); w; w = strtok(NULL, " "), n++)
            ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(req, n)), w);
        ck_assert_uint_eq(json_object_array_length(req), n);
        /* every example member is a declared property */
        struct json_object *ex = parse(types[i].data);
        json_object_object_foreach(ex, key, val) {
            (void)val;
            ck_assert_msg(json_object_object_get_ex(props, key, NULL), "%s: %s not in schema",
                          types[i].type, key);
        }
        json_object_put(ex);
        json_object_put(o);
        te_free(s);
    }
    char *s = (char *)1;
    ck_assert_int_eq(te_catalog_schema_json("com.todo.nope", &s, NULL), TE_ERR_NOT_FOUND);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(te_catalog_schema_json(NULL, &s, NULL), TE_OK);
    ck_assert_ptr_nonnull(strstr(s, "\"$id\": \"urn:todoevents:schema:cloudevent\""));
    te_free(s);
    ck_assert_int_eq(te_catalog_schema_json("x", NULL, NULL), TE_ERR_INVALID_ARG);
}
END_TEST

int main(void) {
    Suite *s = suite_create("event_catalog");
    TCase *tc = tcase_create("catalog");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, topics_table);
    tcase_add_test(tc, types_table);
    tcase_add_test(tc, valid_examples);
    tcase_add_test(tc, required_members);
    tcase_add_test(tc, wrong_types);
    tcase_add_test(tc, formats);
    tcase_add_test(tc, task_state_rules);
    tcase_add_test(tc, updated_changes_rules);
    tcase_add_test(tc, sync_rules);
    tcase_add_test(tc, other_type_rules);
    tcase_add_test(tc, event_rules);
    tcase_add_test(tc, envelope_and_data_problems_together);
    tcase_add_test(tc, committed_schemas_match);
    tcase_add_test(tc, schemas_agree_with_validator);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
