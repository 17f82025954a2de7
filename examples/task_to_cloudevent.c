/* Example: build a task from a client's JSON, validate it, wrap it in a
 * com.todo.task.created CloudEvent keyed by the user, check it against the
 * event catalogue, and show both Kafka content modes.
 *
 *   cc task_to_cloudevent.c $(pkg-config --cflags --libs todoevents)
 */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>
#include <todoevents/todoevents.h>

#define CHECK(expr)                                                                        \
    do {                                                                                   \
        te_err_t err_ = (expr);                                                            \
        if (err_ != TE_OK) {                                                               \
            fprintf(stderr, "%s failed: %s (%s)\n", #expr, te_err2str(err_), errstr);      \
            return 1;                                                                      \
        }                                                                                  \
    } while (0)

int main(void) {
    char errstr[TE_ERRSTR_SIZE] = "";
    const char *request = "{\"title\": \"Buy groceries\", \"priority\": \"high\","
                          " \"tags\": [\"errand\"], \"due_date\": \"2026-02-04T18:00:00+01:00\","
                          " \"timezone\": \"Europe/Berlin\", \"reminder_offset_minutes\": 30}";

    /* 1. Client input -> validated task.  Bad input gives every problem. */
    te_problems_t *problems = te_problems_new();
    const char *bad = "{\"title\": \"  \", \"priority\": \"asap\"}";
    te_task_t *task = NULL;
    if (te_task_from_json(bad, strlen(bad), &task, problems, errstr, sizeof errstr) !=
        TE_ERR_INVALID)
        return 1;
    printf("rejected %zu problems:\n", te_problems_count(problems));
    for (size_t i = 0; i < te_problems_count(problems); i++)
        printf("  %s: %s\n", te_problems_field(problems, i), te_problems_reason(problems, i));
    te_problems_destroy(problems);

    CHECK(te_task_from_json(request, strlen(request), &task, NULL, errstr, sizeof errstr));
    te_time_t now = 0;
    CHECK(te_time_parse("2026-02-01T12:00:00Z", &now, NULL, errstr, sizeof errstr));
    te_task_set_id(task, "123e4567-e89b-12d3-a456-426614174000");
    te_task_set_user_id(task, "user_abc123");
    te_task_set_created_at(task, now);
    te_task_set_updated_at(task, now);

    /* 2. The event: data = {task_id, user_id, task}. */
    te_event_t *ev = NULL;
    CHECK(te_event_create(&ev, TE_EVENT_TASK_CREATED, "/api/tasks", errstr, sizeof errstr));
    CHECK(te_event_set_id(ev, "550e8400-e29b-41d4-a716-446655440000", errstr, sizeof errstr));
    CHECK(te_event_set_time(ev, now));
    CHECK(te_event_set_partitionkey(ev, te_task_user_id(task), errstr, sizeof errstr));
    CHECK(te_event_set_datacontenttype(ev, "application/json", errstr, sizeof errstr));
    struct json_object *state = NULL, *data = json_object_new_object();
    CHECK(te_task_to_json_object(task, now, &state));
    json_object_object_add(data, "task_id", json_object_new_string(te_task_id(task)));
    json_object_object_add(data, "user_id", json_object_new_string(te_task_user_id(task)));
    json_object_object_add(data, "task", state);
    CHECK(te_event_set_data_object(ev, data));

    /* 3. Spec rules + the catalogue's data schema for this type. */
    problems = te_problems_new();
    CHECK(te_catalog_validate_event(ev, problems));
    te_problems_destroy(problems);
    printf("topic: %s, key: %s\n", te_catalog_topic_for(te_event_type(ev)),
           te_event_kafka_key(ev));

    /* 4. Structured mode: the JSON event format. */
    char *json = NULL;
    CHECK(te_event_to_json(ev, TE_JSON_PRETTY, &json, NULL, errstr, sizeof errstr));
    printf("structured:\n%s\n", json);

    /* 5. Binary mode: ce_* headers + the data as the record value; decoding
     *    detects the mode and gives back the same event. */
    te_headers_t *headers = te_headers_new();
    void *value = NULL;
    size_t value_len = 0;
    CHECK(te_event_to_kafka(ev, TE_KAFKA_BINARY, headers, &value, &value_len, errstr,
                            sizeof errstr));
    printf("binary headers:\n");
    for (size_t i = 0; i < te_headers_count(headers); i++) {
        size_t len;
        const char *v = te_headers_value(headers, i, &len);
        printf("  %s: %.*s\n", te_headers_name(headers, i), (int)len, v ? v : "");
    }
    te_event_t *back = NULL;
    te_kafka_mode_t mode;
    CHECK(te_event_from_kafka(headers, value, value_len, &back, &mode, NULL, errstr,
                              sizeof errstr));
    printf("decoded %s event %s, same as sent: %s\n", mode == TE_KAFKA_BINARY ? "binary" : "structured",
           te_event_id(back), te_event_equal(ev, back) ? "yes" : "no");
    int same = te_event_equal(ev, back);

    te_event_destroy(back);
    te_free(value);
    te_headers_destroy(headers);
    te_free(json);
    te_event_destroy(ev);
    te_task_destroy(task);
    return same ? 0 : 1;
}
