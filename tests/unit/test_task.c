/* Task model: every validation rule, JSON in/out, the seed's request fields. */
#include <check.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <todoevents/todoevents.h>
#include <todoevents/task.h>

static te_time_t P(const char *s) {
    te_time_t t;
    ck_assert_int_eq(te_time_parse(s, &t, NULL, NULL, 0), TE_OK);
    return t;
}

/* Parses json and expects success. */
static te_task_t *ok(const char *json) {
    te_task_t *t = NULL;
    te_problems_t *p = te_problems_new();
    char e[TE_ERRSTR_SIZE] = "";
    te_err_t err = te_task_from_json(json, strlen(json), &t, p, e, sizeof e);
    ck_assert_msg(err == TE_OK, "rejected %s: %s (%zu problems)", json, e, te_problems_count(p));
    ck_assert_int_eq(te_problems_count(p), 0);
    te_problems_destroy(p);
    return t;
}

/* Parses json, expects TE_ERR_INVALID with a problem on field whose reason
 * contains reason_part. */
static void bad(const char *json, const char *field, const char *reason_part) {
    te_task_t *t = (te_task_t *)1;
    te_problems_t *p = te_problems_new();
    char e[TE_ERRSTR_SIZE] = "";
    te_err_t err = te_task_from_json(json, strlen(json), &t, p, e, sizeof e);
    ck_assert_msg(err == TE_ERR_INVALID, "expected invalid for %s, got %s", json, te_err_name(err));
    ck_assert_ptr_null(t);
    ck_assert_msg(e[0], "no errstr for %s", json);
    int found = 0;
    for (size_t i = 0; i < te_problems_count(p); i++)
        if (strcmp(te_problems_field(p, i), field) == 0 &&
            strstr(te_problems_reason(p, i), reason_part))
            found = 1;
    if (!found) {
        for (size_t i = 0; i < te_problems_count(p); i++)
            fprintf(stderr, "  got %s: %s\n", te_problems_field(p, i), te_problems_reason(p, i));
    }
    ck_assert_msg(found, "%s: no problem '%s: ...%s...'", json, field, reason_part);
    te_problems_destroy(p);
}

static char *repeat(const char *unit, int n) {
    size_t u = strlen(unit);
    char *s = malloc(u * (size_t)n + 1);
    for (int i = 0; i < n; i++)
        memcpy(s + u * (size_t)i, unit, u);
    s[u * (size_t)n] = 0;
    return s;
}

START_TEST(minimal_defaults) {
    te_task_t *t = ok("{\"title\":\"Buy milk\"}");
    ck_assert_str_eq(te_task_title(t), "Buy milk");
    ck_assert_int_eq(te_task_priority(t), TE_PRIORITY_MEDIUM);
    ck_assert_int_eq(te_task_status(t), TE_STATUS_PENDING);
    ck_assert_int_eq(te_task_due(t, NULL), 0);
    ck_assert_int_eq(te_task_tag_count(t), 0);
    ck_assert_ptr_null(te_task_rrule(t));
    te_task_destroy(t);
}
END_TEST

START_TEST(full_task) {
    te_task_t *t = ok("{\"title\":\"Standup\",\"description\":\"daily\\nsync\",\"priority\":\"high\","
                      "\"tags\":[\"work\",\"team\"],\"due_date\":\"2026-03-02T09:00:00+01:00\","
                      "\"timezone\":\"Europe/Berlin\",\"reminders\":[{\"offset_minutes\":15},"
                      "{\"at\":\"2026-03-01T18:00:00Z\"}],\"recurrence\":{\"rrule\":"
                      "\"FREQ=WEEKLY;BYDAY=MO\",\"anchor\":\"completion\"}}");
    ck_assert_int_eq(te_task_priority(t), TE_PRIORITY_HIGH);
    ck_assert_int_eq(te_task_tag_count(t), 2);
    ck_assert_str_eq(te_task_tag(t, 1), "team");
    te_time_t due;
    ck_assert(te_task_due(t, &due));
    ck_assert_int_eq(due, P("2026-03-02T08:00:00Z"));
    ck_assert_int_eq(te_task_reminder_count(t), 2);
    te_time_t at;
    ck_assert_int_eq(te_task_reminder_time(t, 0, &at), TE_OK);
    ck_assert_int_eq(at, P("2026-03-02T07:45:00Z"));
    ck_assert_int_eq(te_task_reminder_time(t, 1, &at), TE_OK);
    ck_assert_int_eq(at, P("2026-03-01T18:00:00Z"));
    ck_assert_str_eq(te_task_rrule(t), "FREQ=WEEKLY;BYDAY=MO");
    ck_assert_str_eq(te_task_recurrence_zone(t), "Europe/Berlin");
    ck_assert_str_eq(te_task_recurrence_anchor(t), "completion");
    te_task_destroy(t);
}
END_TEST

START_TEST(title_rules) {
    bad("{}", "title", "required");
    bad("{\"title\":null}", "title", "required");
    bad("{\"title\":\"\"}", "title", "blank");
    bad("{\"title\":\"   \\t \"}", "title", "blank");
    bad("{\"title\":\"\\u3000\\u00a0\"}", "title", "blank");
    bad("{\"title\":42}", "title", "must be a string");
    bad("{\"title\":\"a\\u0001b\"}", "title", "control");
    bad("{\"title\":\"line\\nbreak\"}", "title", "control");
    char *s = repeat("a", 200), *j = malloc(600);
    snprintf(j, 600, "{\"title\":\"%s\"}", s);
    te_task_destroy(ok(j));
    free(s);
    s = repeat("a", 201);
    snprintf(j, 600, "{\"title\":\"%s\"}", s);
    bad(j, "title", "at most 200 characters");
    free(s);
    free(j);
    /* Characters, not bytes: 200 two-byte characters are fine. */
    s = repeat("\xc3\xa9", 200);
    j = malloc(1000);
    snprintf(j, 1000, "{\"title\":\"%s\"}", s);
    te_task_destroy(ok(j));
    free(s);
    s = repeat("\xe2\x82\xac", 201);
    snprintf(j, 1000, "{\"title\":\"%s\"}", s);
    bad(j, "title", "at most 200 characters (got 201)");
    free(s);
    free(j);
    /* Invalid UTF-8 through the C API. */
    te_task_t *t = te_task_new();
    te_task_set_title(t, "bad \xc3\x28 utf8");
    te_problems_t *p = te_problems_new();
    ck_assert_int_eq(te_task_validate(t, p, NULL, 0), TE_ERR_INVALID);
    ck_assert_str_eq(te_problems_field(p, 0), "title");
    ck_assert_str_eq(te_problems_reason(p, 0), "must be valid UTF-8");
    te_task_set_title(t, "overlong \xc0\xaf");
    te_problems_clear(p);
    ck_assert_int_eq(te_task_validate(t, p, NULL, 0), TE_ERR_INVALID);
    te_task_set_title(t, "surrogate \xed\xa0\x80");
    ck_assert_int_eq(te_task_validate(t, NULL, NULL, 0), TE_ERR_INVALID);
    te_task_set_title(t, "fine");
    ck_assert_int_eq(te_task_validate(t, NULL, NULL, 0), TE_OK);
    te_problems_destroy(p);
    te_task_destroy(t);
    /* Invalid UTF-8 inside JSON is a parse error. */
    const char *raw = "{\"title\":\"\xff\"}";
    ck_assert_int_eq(te_task_from_json(raw, strlen(raw), &t, NULL, NULL, 0), TE_ERR_PARSE);
}
END_TEST

START_TEST(description_rules) {
    char *s = repeat("x", 2000), *j = malloc(2100);
    snprintf(j, 2100, "{\"title\":\"t\",\"description\":\"%s\"}", s);
    te_task_destroy(ok(j));
    free(s);
    s = repeat("x", 2001);
    snprintf(j, 2100, "{\"title\":\"t\",\"description\":\"%s\"}", s);
    bad(j, "description", "at most 2000");
    free(s);
    free(j);
    te_task_destroy(ok("{\"title\":\"t\",\"description\":\"\"}"));
    te_task_destroy(ok("{\"title\":\"t\",\"description\":null}"));
    bad("{\"title\":\"t\",\"description\":[]}", "description", "must be a string");
    bad("{\"title\":\"t\",\"description\":\"bell\\u0007\"}", "description", "control");
}
END_TEST

START_TEST(priority_rules) {
    const char *names[] = {"low", "medium", "high", "urgent"};
    for (int i = 0; i < 4; i++) {
        char j[80];
        snprintf(j, sizeof j, "{\"title\":\"t\",\"priority\":\"%s\"}", names[i]);
        te_task_t *t = ok(j);
        ck_assert_int_eq(te_task_priority(t), i);
        ck_assert_str_eq(te_priority_name(te_task_priority(t)), names[i]);
        te_task_destroy(t);
    }
    bad("{\"title\":\"t\",\"priority\":\"critical\"}", "priority", "low, medium, high, urgent");
    bad("{\"title\":\"t\",\"priority\":\"HIGH\"}", "priority", "one of");
    bad("{\"title\":\"t\",\"priority\":3}", "priority", "must be a string");
}
END_TEST

START_TEST(tag_rules) {
    char j[4096];
    int n = snprintf(j, sizeof j, "{\"title\":\"t\",\"tags\":[");
    for (int i = 0; i < 20; i++)
        n += snprintf(j + n, sizeof j - (size_t)n, "%s\"tag%d\"", i ? "," : "", i);
    snprintf(j + n, sizeof j - (size_t)n, "]}");
    te_task_destroy(ok(j));
    n = snprintf(j, sizeof j, "{\"title\":\"t\",\"tags\":[");
    for (int i = 0; i < 21; i++)
        n += snprintf(j + n, sizeof j - (size_t)n, "%s\"tag%d\"", i ? "," : "", i);
    snprintf(j + n, sizeof j - (size_t)n, "]}");
    bad(j, "tags", "at most 20");
    char *s = repeat("k", 51);
    snprintf(j, sizeof j, "{\"title\":\"t\",\"tags\":[\"ok\",\"%s\"]}", s);
    bad(j, "tags[1]", "at most 50");
    free(s);
    s = repeat("k", 50);
    snprintf(j, sizeof j, "{\"title\":\"t\",\"tags\":[\"%s\"]}", s);
    te_task_destroy(ok(j));
    free(s);
    bad("{\"title\":\"t\",\"tags\":[\"Work\",\"home\",\"work\"]}", "tags[2]", "duplicates tags[0]");
    bad("{\"title\":\"t\",\"tags\":[\"\"]}", "tags[0]", "blank");
    bad("{\"title\":\"t\",\"tags\":[\"a\",7]}", "tags[1]", "must be a string");
    bad("{\"title\":\"t\",\"tags\":\"work\"}", "tags", "must be an array");
}
END_TEST

START_TEST(due_and_zone_rules) {
    te_task_destroy(ok("{\"title\":\"t\",\"due_date\":\"2026-02-04T18:00:00Z\"}"));
    te_task_destroy(ok("{\"title\":\"t\",\"due_date\":\"2026-02-04T18:00:00Z\",\"timezone\":\"Asia/Kolkata\"}"));
    bad("{\"title\":\"t\",\"due_date\":\"2026-02-30T18:00:00Z\"}", "due_date", "day out of range");
    bad("{\"title\":\"t\",\"due_date\":\"tomorrow\"}", "due_date", "RFC 3339");
    bad("{\"title\":\"t\",\"due_date\":1700000000}", "due_date", "RFC 3339");
    bad("{\"title\":\"t\",\"timezone\":\"Mars/Olympus\"}", "timezone", "unknown time zone");
    bad("{\"title\":\"t\",\"timezone\":\"../../etc/passwd\"}", "timezone", "time zone");
}
END_TEST

START_TEST(reminder_rules) {
    const char *due = "\"due_date\":\"2026-02-04T18:00:00Z\"";
    char j[1024];
    snprintf(j, sizeof j, "{\"title\":\"t\",%s,\"reminders\":[{\"offset_minutes\":10080}]}", due);
    te_task_destroy(ok(j));
    snprintf(j, sizeof j, "{\"title\":\"t\",%s,\"reminders\":[{\"offset_minutes\":10081}]}", due);
    bad(j, "reminders[0].offset_minutes", "between 0 and 10080");
    snprintf(j, sizeof j, "{\"title\":\"t\",%s,\"reminders\":[{\"offset_minutes\":-5}]}", due);
    bad(j, "reminders[0].offset_minutes", "between 0 and 10080");
    snprintf(j, sizeof j, "{\"title\":\"t\",%s,\"reminders\":[{\"offset_minutes\":1.5}]}", due);
    bad(j, "reminders[0].offset_minutes", "integer");
    bad("{\"title\":\"t\",\"reminders\":[{\"offset_minutes\":15}]}", "reminders[0].offset_minutes",
        "needs a due_date");
    te_task_destroy(ok("{\"title\":\"t\",\"reminders\":[{\"at\":\"2026-01-01T08:00:00Z\"}]}"));
    bad("{\"title\":\"t\",\"reminders\":[{\"at\":\"soon\"}]}", "reminders[0].at", "RFC 3339");
    snprintf(j, sizeof j, "{\"title\":\"t\",%s,\"reminders\":[{\"offset_minutes\":5,\"at\":\"2026-01-01T08:00:00Z\"}]}", due);
    bad(j, "reminders[0]", "exactly one of");
    snprintf(j, sizeof j, "{\"title\":\"t\",%s,\"reminders\":[{}]}", due);
    bad(j, "reminders[0]", "exactly one of");
    snprintf(j, sizeof j, "{\"title\":\"t\",%s,\"reminders\":[{\"offset_minutes\":5},{\"offset_minutes\":5}]}", due);
    bad(j, "reminders[1].offset_minutes", "duplicates reminders[0]");
    int n = snprintf(j, sizeof j, "{\"title\":\"t\",%s,\"reminders\":[", due);
    for (int i = 0; i < 11; i++)
        n += snprintf(j + n, sizeof j - (size_t)n, "%s{\"offset_minutes\":%d}", i ? "," : "", i);
    snprintf(j + n, sizeof j - (size_t)n, "]}");
    bad(j, "reminders", "at most 10");
    bad("{\"title\":\"t\",\"reminders\":{}}", "reminders", "must be an array");
    /* The seed's single field becomes one relative reminder. */
    snprintf(j, sizeof j, "{\"title\":\"t\",%s,\"reminder_offset_minutes\":30}", due);
    te_task_t *t = ok(j);
    ck_assert_int_eq(te_task_reminder_count(t), 1);
    te_time_t at;
    te_task_reminder_time(t, 0, &at);
    ck_assert_int_eq(at, P("2026-02-04T17:30:00Z"));
    te_task_destroy(t);
    bad("{\"title\":\"t\",\"reminder_offset_minutes\":30}", "reminders[0].offset_minutes",
        "needs a due_date");
}
END_TEST

START_TEST(recurrence_rules) {
    const char *due = "\"due_date\":\"2026-03-02T09:00:00+01:00\",\"timezone\":\"Europe/Berlin\"";
    char j[1024];
    snprintf(j, sizeof j, "{\"title\":\"t\",%s,\"recurrence\":{\"rrule\":\"FREQ=SOMETIMES\"}}", due);
    bad(j, "recurrence.rrule", "");
    snprintf(j, sizeof j, "{\"title\":\"t\",%s,\"recurrence\":{\"rrule\":\"FREQ=DAILY\",\"anchor\":\"whenever\"}}", due);
    bad(j, "recurrence.anchor", "schedule");
    snprintf(j, sizeof j, "{\"title\":\"t\",%s,\"recurrence\":{\"rrule\":\"FREQ=DAILY\",\"timezone\":\"Nope/Nope\"}}", due);
    bad(j, "recurrence.timezone", "unknown time zone");
    bad("{\"title\":\"t\",\"recurrence\":{\"rrule\":\"FREQ=DAILY\"}}", "recurrence", "needs a due_date");
    bad("{\"title\":\"t\",\"recurrence\":{\"type\":\"daily\"}}", "recurrence", "needs a due_date");
    snprintf(j, sizeof j, "{\"title\":\"t\",%s,\"recurrence\":{\"rrule\":\"FREQ=DAILY\",\"type\":\"daily\"}}", due);
    bad(j, "recurrence", "not both");
    snprintf(j, sizeof j, "{\"title\":\"t\",%s,\"recurrence\":\"weekly\"}", due);
    bad(j, "recurrence", "must be an object");
    snprintf(j, sizeof j, "{\"title\":\"t\",%s,\"recurrence\":{\"type\":\"weekly\",\"days_of_week\":[7]}}", due);
    bad(j, "recurrence.days_of_week[0]", "between 0 and 6");
    snprintf(j, sizeof j, "{\"title\":\"t\",%s,\"recurrence\":{\"type\":\"monthly\",\"day_of_month\":32}}", due);
    bad(j, "recurrence.day_of_month", "between 1 and 31");
    snprintf(j, sizeof j, "{\"title\":\"t\",%s,\"recurrence\":{\"type\":\"hourly\"}}", due);
    bad(j, "recurrence.type", "");
    /* The seed's simple form becomes an RRULE: 0 = Monday. */
    snprintf(j, sizeof j, "{\"title\":\"t\",%s,\"recurrence\":{\"type\":\"weekly\",\"interval\":2,\"days_of_week\":[0,2]}}", due);
    te_task_t *t = ok(j);
    ck_assert_ptr_nonnull(te_task_rrule(t));
    ck_assert_ptr_nonnull(strstr(te_task_rrule(t), "FREQ=WEEKLY"));
    ck_assert_ptr_nonnull(strstr(te_task_rrule(t), "INTERVAL=2"));
    ck_assert_ptr_nonnull(strstr(te_task_rrule(t), "BYDAY=MO,WE"));
    ck_assert_str_eq(te_task_recurrence_anchor(t), "schedule");
    te_task_destroy(t);
    snprintf(j, sizeof j, "{\"title\":\"t\",%s,\"recurrence\":{\"type\":\"daily\",\"end_date\":\"2026-03-31T00:00:00+02:00\"}}", due);
    t = ok(j);
    ck_assert_ptr_nonnull(strstr(te_task_rrule(t), "UNTIL="));
    te_task_destroy(t);
}
END_TEST

/* The seed's end_date as a plain date: that local day in the zone, inclusive. */
START_TEST(simple_recurrence_end_date_plain_date) {
    te_task_t *t = ok("{\"title\":\"t\",\"due_date\":\"2026-03-01T09:00:00+01:00\","
                      "\"timezone\":\"Europe/Berlin\","
                      "\"recurrence\":{\"type\":\"daily\",\"end_date\":\"2026-03-31\"}}");
    ck_assert_ptr_nonnull(strstr(te_task_rrule(t), "UNTIL=20260331T215959Z"));
    te_task_destroy(t);
    /* UTC+14: the local day ends at 09:59:59 UTC */
    t = ok("{\"title\":\"t\",\"due_date\":\"2026-03-01T09:00:00+14:00\","
           "\"timezone\":\"Pacific/Kiritimati\","
           "\"recurrence\":{\"type\":\"daily\",\"end_date\":\"2026-03-31\"}}");
    ck_assert_ptr_nonnull(strstr(te_task_rrule(t), "UNTIL=20260331T095959Z"));
    te_task_destroy(t);
    const char *j = "{\"title\":\"t\",\"due_date\":\"2026-03-01T09:00:00Z\","
                    "\"recurrence\":{\"type\":\"daily\",\"end_date\":\"2026-02-30\"}}";
    te_task_t *bad = NULL;
    te_problems_t *p = te_problems_new();
    ck_assert_int_eq(te_task_from_json(j, strlen(j), &bad, p, NULL, 0), TE_ERR_INVALID);
    ck_assert_ptr_null(bad);
    ck_assert_str_eq(te_problems_field(p, 0), "recurrence.end_date");
    te_problems_destroy(p);
}
END_TEST

START_TEST(many_problems_at_once) {
    const char *j = "{\"title\":\" \",\"priority\":\"x\",\"tags\":[\"a\",\"A\"],\"timezone\":\"No/Where\","
                    "\"due_date\":\"nope\",\"description\":5}";
    te_task_t *t = NULL;
    te_problems_t *p = te_problems_new();
    char e[TE_ERRSTR_SIZE];
    ck_assert_int_eq(te_task_from_json(j, strlen(j), &t, p, e, sizeof e), TE_ERR_INVALID);
    const char *fields[] = {"title", "priority", "tags[1]", "timezone", "due_date", "description"};
    for (size_t k = 0; k < 6; k++) {
        int found = 0;
        for (size_t i = 0; i < te_problems_count(p); i++)
            found += strcmp(te_problems_field(p, i), fields[k]) == 0;
        ck_assert_msg(found == 1, "field %s reported %d times", fields[k], found);
    }
    ck_assert_int_eq(te_problems_count(p), 6);
    /* errstr carries the first problem, with its field. */
    ck_assert_ptr_nonnull(strchr(e, ':'));
    te_problems_destroy(p);
}
END_TEST

START_TEST(malformed_json) {
    te_task_t *t;
    const char *cases[] = {"", "{", "[1]", "{\"title\":\"a\"} x", "{'title':'a'}", "nul",
                           "{\"title\":\"a\",}", "\"just a string\""};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char e[TE_ERRSTR_SIZE] = "";
        ck_assert_msg(te_task_from_json(cases[i], strlen(cases[i]), &t, NULL, e, sizeof e) == TE_ERR_PARSE,
                      "case %s", cases[i]);
        ck_assert(e[0]);
    }
    /* Length is honoured: the text need not be NUL-terminated. */
    const char *j = "{\"title\":\"a\"}GARBAGE";
    ck_assert_int_eq(te_task_from_json(j, 13, &t, NULL, NULL, 0), TE_OK);
    te_task_destroy(t);
}
END_TEST

START_TEST(json_round_trip) {
    te_task_t *t = ok("{\"title\":\"Päckchen \\\"abholen\\\"\",\"description\":\"bei der Post\","
                      "\"priority\":\"urgent\",\"tags\":[\"errand\"],\"due_date\":\"2026-02-04T18:00:00.5Z\","
                      "\"timezone\":\"Europe/Berlin\",\"reminders\":[{\"offset_minutes\":60}],"
                      "\"recurrence\":{\"rrule\":\"FREQ=MONTHLY;BYMONTHDAY=-1\",\"series_id\":"
                      "\"7d9f2c1e-4b7a-4c57-9f52-0a4f8c1d2e3b\",\"occurrence\":3},"
                      "\"id\":\"123e4567-e89b-12d3-a456-426614174000\",\"user_id\":\"user_abc123\","
                      "\"status\":\"completed\",\"created_at\":\"2026-01-01T00:00:00Z\","
                      "\"updated_at\":\"2026-01-02T00:00:00Z\",\"completed_at\":\"2026-01-03T00:00:00Z\"}");
    char *json;
    ck_assert_int_eq(te_task_to_json(t, P("2030-01-01T00:00:00Z"), &json), TE_OK);
    te_task_t *u = ok(json);
    char *json2;
    ck_assert_int_eq(te_task_to_json(u, P("2030-01-01T00:00:00Z"), &json2), TE_OK);
    ck_assert_str_eq(json, json2);
    ck_assert_str_eq(te_task_title(u), "Päckchen \"abholen\"");
    ck_assert_str_eq(te_task_series_id(u), "7d9f2c1e-4b7a-4c57-9f52-0a4f8c1d2e3b");
    ck_assert_int_eq(te_task_occurrence(u), 3);
    ck_assert_int_eq(te_task_completed_at(u), P("2026-01-03T00:00:00Z"));
    /* The output is the documented shape. */
    struct json_object *o = json_tokener_parse(json);
    ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "due_date")),
                     "2026-02-04T18:00:00.500Z");
    ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "priority")), "urgent");
    ck_assert(!json_object_get_boolean(json_object_object_get(o, "overdue")));
    struct json_object *rec = json_object_object_get(o, "recurrence");
    ck_assert_str_eq(json_object_get_string(json_object_object_get(rec, "timezone")), "Europe/Berlin");
    ck_assert_str_eq(json_object_get_string(json_object_object_get(rec, "anchor")), "schedule");
    json_object_put(o);
    te_free(json);
    te_free(json2);
    te_task_t *c = te_task_clone(u);
    ck_assert_int_eq(te_task_to_json(c, P("2030-01-01T00:00:00Z"), &json), TE_OK);
    ck_assert_int_eq(te_task_to_json(u, P("2030-01-01T00:00:00Z"), &json2), TE_OK);
    ck_assert_str_eq(json, json2);
    te_free(json);
    te_free(json2);
    te_task_destroy(c);
    te_task_destroy(u);
    te_task_destroy(t);
    bad("{\"title\":\"t\",\"id\":\"not-a-uuid\"}", "id", "UUID");
    bad("{\"title\":\"t\",\"user_id\":\"\"}", "user_id", "empty");
    bad("{\"title\":\"t\",\"status\":\"done\"}", "status", "pending or completed");
}
END_TEST

START_TEST(overdue_and_seed_completed) {
    te_task_t *t = ok("{\"title\":\"t\",\"due_date\":\"2026-02-04T18:00:00Z\"}");
    ck_assert(te_task_is_overdue(t, P("2026-02-04T18:00:01Z")));
    ck_assert(!te_task_is_overdue(t, P("2026-02-04T18:00:00Z")));
    te_task_set_status(t, TE_STATUS_COMPLETED);
    ck_assert(!te_task_is_overdue(t, P("2027-01-01T00:00:00Z")));
    te_task_destroy(t);
    t = ok("{\"title\":\"t\",\"completed\":true}");
    ck_assert_int_eq(te_task_status(t), TE_STATUS_COMPLETED);
    ck_assert(!te_task_is_overdue(t, P("2027-01-01T00:00:00Z")));
    te_task_destroy(t);
    t = ok("{\"title\":\"no due\"}");
    ck_assert(!te_task_is_overdue(t, P("2099-01-01T00:00:00Z")));
    te_task_destroy(t);
    bad("{\"title\":\"t\",\"completed\":\"yes\"}", "completed", "boolean");
}
END_TEST

START_TEST(c_api_setters) {
    te_task_t *t = te_task_new();
    ck_assert_int_eq(te_task_validate(t, NULL, NULL, 0), TE_ERR_INVALID);
    ck_assert_int_eq(te_task_set_title(t, "Write report"), TE_OK);
    ck_assert_int_eq(te_task_set_priority(t, (te_priority_t)9), TE_ERR_INVALID_ARG);
    ck_assert_int_eq(te_task_add_tag(t, "work"), TE_OK);
    te_reminder_t r = {TE_REMINDER_RELATIVE, 15, 0};
    ck_assert_int_eq(te_task_add_reminder(t, &r), TE_OK);
    char e[TE_ERRSTR_SIZE];
    ck_assert_int_eq(te_task_validate(t, NULL, e, sizeof e), TE_ERR_INVALID);
    ck_assert_str_eq(e, "reminders[0].offset_minutes: a reminder relative to the due date needs a due_date");
    te_task_set_due(t, 1, P("2026-05-01T10:00:00Z"));
    ck_assert_int_eq(te_task_validate(t, NULL, e, sizeof e), TE_OK);
    ck_assert_int_eq(te_task_reminder(t, 5, &r), TE_ERR_NOT_FOUND);
    te_task_set_title(t, NULL);
    ck_assert_int_eq(te_task_validate(t, NULL, NULL, 0), TE_ERR_INVALID);
    te_task_destroy(t);
    te_task_destroy(NULL);
    ck_assert_int_eq(te_task_set_title(NULL, "x"), TE_ERR_INVALID_ARG);
}
END_TEST

int main(void) {
    Suite *s = suite_create("task");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, minimal_defaults);
    tcase_add_test(tc, full_task);
    tcase_add_test(tc, title_rules);
    tcase_add_test(tc, description_rules);
    tcase_add_test(tc, priority_rules);
    tcase_add_test(tc, tag_rules);
    tcase_add_test(tc, due_and_zone_rules);
    tcase_add_test(tc, reminder_rules);
    tcase_add_test(tc, recurrence_rules);
    tcase_add_test(tc, simple_recurrence_end_date_plain_date);
    tcase_add_test(tc, many_problems_at_once);
    tcase_add_test(tc, malformed_json);
    tcase_add_test(tc, json_round_trip);
    tcase_add_test(tc, overdue_and_seed_completed);
    tcase_add_test(tc, c_api_setters);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
