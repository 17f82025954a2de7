/* CloudEvents throughput: decode + validate (te_event_from_json and the
 * event catalogue) of realistic ~1 KB com.todo.task.updated events, beside a
 * plain json-c parse (json_tokener_parse) of the same documents; then encode
 * (te_event_to_json) and a Kafka binary-mode round trip.
 *
 *   bench_cloudevent [seconds-per-phase]   (default 1.5; whole run < 10 s)
 *
 * Output: plain text, one line per measurement. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <todoevents/cloudevent.h>
#include <todoevents/event_catalog.h>

#define N_DOCS 512

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *const priorities[] = {"low", "medium", "high", "urgent"};

/* A com.todo.task.updated event as the API's outbox would write it. */
static char *make_doc(int i, size_t *len) {
    char *buf = malloc(4096);
    int n = snprintf(
        buf, 4096,
        "{\"specversion\":\"1.0\",\"id\":\"%08x-2d7a-4b43-9f4e-2f0a7f1c%04x\","
        "\"source\":\"/todo-api/tasks\",\"type\":\"com.todo.task.updated\","
        "\"time\":\"2026-04-%02dT10:%02d:%02d.%03dZ\",\"subject\":\"6e8bc430-9c3a-11d9-9669-%012x\","
        "\"datacontenttype\":\"application/json\",\"partitionkey\":\"user-%d\","
        "\"traceparent\":\"00-0af7651916cd43dd8448eb211c80319c-b7ad6b71692033%02x-01\","
        "\"data\":{\"task_id\":\"6e8bc430-9c3a-11d9-9669-%012x\",\"user_id\":\"user-%d\","
        "\"changes\":{\"title\":{\"old\":\"Buy milk %d\",\"new\":\"Buy oat milk %d\"},"
        "\"priority\":{\"old\":\"low\",\"new\":\"%s\"},"
        "\"due_date\":{\"old\":null,\"new\":\"2026-05-%02dT09:00:00+02:00\"}},"
        "\"task\":{\"id\":\"6e8bc430-9c3a-11d9-9669-%012x\",\"user_id\":\"user-%d\","
        "\"title\":\"Buy oat milk %d\",\"description\":\"From the shop on the corner; "
        "the one with the green door. Two litres, unsweetened.\",\"priority\":\"%s\","
        "\"status\":\"pending\",\"tags\":[\"home\",\"shop\",\"weekly\"],"
        "\"due_date\":\"2026-05-%02dT09:00:00+02:00\",\"timezone\":\"Europe/Berlin\","
        "\"reminders\":[{\"offset_minutes\":15},{\"offset_minutes\":1440},"
        "{\"at\":\"2026-05-01T06:00:00Z\"}],"
        "\"recurrence\":{\"rrule\":\"FREQ=WEEKLY;BYDAY=FR\",\"timezone\":\"Europe/Berlin\","
        "\"anchor\":\"schedule\",\"series_id\":\"0b5c3c9e-2f43-4b8e-9d0c-%012x\"},"
        "\"overdue\":false,\"created_at\":\"2026-04-01T10:00:00.123Z\","
        "\"updated_at\":\"2026-04-%02dT10:%02d:%02d.%03dZ\",\"completed_at\":null}}}",
        (unsigned)i * 2654435761u, i & 0xffff, 1 + i % 28, i % 60, (i * 7) % 60, i % 1000, i,
        i % 1000, i % 256, i, i % 1000, i, i, priorities[i % 4], 1 + i % 28, i, i % 1000, i,
        priorities[i % 4], 1 + i % 28, i, 1 + i % 28, i % 60, (i * 7) % 60, i % 1000);
    *len = (size_t)n;
    return buf;
}

typedef struct {
    double secs;
    long docs;
    double bytes;
} result_t;

static void report(const char *what, result_t r, const result_t *base) {
    double dps = r.docs / r.secs, mbps = r.bytes / r.secs / 1e6;
    printf("%-44s %10.0f docs/s %8.1f MB/s", what, dps, mbps);
    if (base)
        printf("   %.2fx json-c time per doc", (base->docs / base->secs) / dps);
    printf("\n");
}

int main(int argc, char **argv) {
    double budget = argc > 1 ? atof(argv[1]) : 1.5;
    if (budget <= 0 || budget > 2.0)
        budget = 1.5;
    char *docs[N_DOCS];
    size_t lens[N_DOCS], total = 0;
    for (int i = 0; i < N_DOCS; i++) {
        docs[i] = make_doc(i, &lens[i]);
        total += lens[i];
    }
    /* every document must be a valid catalogue event */
    te_event_t *events[N_DOCS];
    for (int i = 0; i < N_DOCS; i++) {
        char err[TE_ERRSTR_SIZE];
        if (te_catalog_event_from_json(docs[i], lens[i], &events[i], NULL, err, sizeof err) !=
            TE_OK) {
            fprintf(stderr, "bench_cloudevent: document %d is invalid: %s\n", i, err);
            return 1;
        }
    }
    printf("bench_cloudevent: %d distinct com.todo.task.updated events, %.0f bytes on average, "
           "%.1f s per phase\n",
           N_DOCS, (double)total / N_DOCS, budget);

    /* 1. json-c alone */
    result_t jc = {0};
    double t0 = now_s();
    do {
        for (int i = 0; i < N_DOCS; i++) {
            struct json_object *o = json_tokener_parse(docs[i]);
            if (!o)
                return 1;
            json_object_put(o);
            jc.bytes += (double)lens[i];
        }
        jc.docs += N_DOCS;
        jc.secs = now_s() - t0;
    } while (jc.secs < budget);
    report("json-c parse (json_tokener_parse)", jc, NULL);

    /* 2. decode + validate: envelope rules, then the catalogue */
    result_t dv = {0};
    t0 = now_s();
    do {
        for (int i = 0; i < N_DOCS; i++) {
            te_event_t *ev = NULL;
            if (te_event_from_json(docs[i], lens[i], &ev, NULL, NULL, 0) != TE_OK ||
                te_catalog_validate_event(ev, NULL) != TE_OK)
                return 1;
            te_event_destroy(ev);
            dv.bytes += (double)lens[i];
        }
        dv.docs += N_DOCS;
        dv.secs = now_s() - t0;
    } while (dv.secs < budget);
    report("decode+validate (from_json + catalogue)", dv, &jc);

    /* 2b. the envelope alone, to show what the catalogue costs */
    result_t de = {0};
    t0 = now_s();
    do {
        for (int i = 0; i < N_DOCS; i++) {
            te_event_t *ev = NULL;
            if (te_event_from_json(docs[i], lens[i], &ev, NULL, NULL, 0) != TE_OK)
                return 1;
            te_event_destroy(ev);
            de.bytes += (double)lens[i];
        }
        de.docs += N_DOCS;
        de.secs = now_s() - t0;
    } while (de.secs < budget);
    report("decode, envelope rules only (from_json)", de, &jc);

    /* 3. encode */
    result_t en = {0};
    t0 = now_s();
    do {
        for (int i = 0; i < N_DOCS; i++) {
            char *out = NULL;
            size_t len = 0;
            if (te_event_to_json(events[i], 0, &out, &len, NULL, 0) != TE_OK)
                return 1;
            en.bytes += (double)len;
            te_free(out);
        }
        en.docs += N_DOCS;
        en.secs = now_s() - t0;
    } while (en.secs < budget);
    report("encode (te_event_to_json)", en, NULL);

    /* 4. Kafka binary mode: encode + decode */
    result_t kb = {0};
    te_headers_t *h = te_headers_new();
    t0 = now_s();
    do {
        for (int i = 0; i < N_DOCS; i++) {
            void *value = NULL;
            size_t len = 0;
            te_event_t *back = NULL;
            te_headers_clear(h);
            if (te_event_to_kafka(events[i], TE_KAFKA_BINARY, h, &value, &len, NULL, 0) != TE_OK ||
                te_event_from_kafka(h, value, len, &back, NULL, NULL, NULL, 0) != TE_OK)
                return 1;
            kb.bytes += (double)len;
            te_free(value);
            te_event_destroy(back);
        }
        kb.docs += N_DOCS;
        kb.secs = now_s() - t0;
    } while (kb.secs < budget);
    report("kafka binary encode+decode (value bytes)", kb, NULL);
    te_headers_destroy(h);

    for (int i = 0; i < N_DOCS; i++) {
        te_event_destroy(events[i]);
        free(docs[i]);
    }
    return 0;
}
