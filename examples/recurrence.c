/* Example: recurring tasks across a DST change and a short month.
 *
 *   cc recurrence.c $(pkg-config --cflags --libs todoevents)
 *
 * A daily 09:00 task in Berlin stays at 09:00 local time when the clocks
 * change; "monthly on the 31st" (the seed's simple form) lands on the last
 * day of shorter months; a late completion never yields a past due date.
 * The program checks what it prints and exits 1 if anything differs. */
#include <stdio.h>
#include <string.h>

#include <todoevents/todoevents.h>

static int failures;

static void show(const char *label, te_time_t t, const char *zone, const char *expected) {
    char text[TE_TIME_STRLEN];
    te_time_format_in_zone(t, zone, text, sizeof text);
    int ok = strcmp(text, expected) == 0;
    failures += !ok;
    printf("%-34s %s%s\n", label, text, ok ? "" : "   <-- unexpected");
}

static te_time_t at(const char *rfc3339) {
    te_time_t t = 0;
    te_time_parse(rfc3339, &t, NULL, NULL, 0);
    return t;
}

int main(void) {
    char err[TE_ERRSTR_SIZE];
    const char *zone = "Europe/Berlin";

    /* 1. Daily at 09:00 across the spring-forward night of 2026-03-29. */
    te_recurrence_t *daily = NULL;
    if (te_recurrence_new("FREQ=DAILY", at("2026-03-27T09:00:00+01:00"), zone,
                          TE_ANCHOR_SCHEDULE, &daily, err, sizeof err) != TE_OK) {
        fprintf(stderr, "rule: %s\n", err);
        return 1;
    }
    te_time_t occ[4];
    size_t n = 0;
    te_recurrence_list(daily, INT64_MIN, 4, occ, &n);
    const char *want[] = {"2026-03-27T09:00:00+01:00", "2026-03-28T09:00:00+01:00",
                          "2026-03-29T09:00:00+02:00", "2026-03-30T09:00:00+02:00"};
    for (size_t i = 0; i < n; i++)
        show(i == 0 ? "daily 09:00 over the DST change:" : "", occ[i], zone, want[i]);

    /* 2. Completed three days late: the next due date is in the future. */
    te_time_t next;
    te_recurrence_next_due(daily, at("2026-03-27T09:00:00+01:00"), at("2026-03-30T12:00:00+02:00"),
                           1, &next);
    show("completed 3 days late -> next:", next, zone, "2026-03-31T09:00:00+02:00");
    te_recurrence_destroy(daily);

    /* 3. The seed's simple form: monthly on day 31. */
    te_simple_recurrence_t simple = {.type = "monthly", .day_of_month = 31};
    char rule[TE_RRULE_MAX_LEN];
    te_time_t start = at("2026-01-31T18:00:00+01:00");
    if (te_simple_recurrence_to_rrule(&simple, start, zone, rule, sizeof rule, NULL, err,
                                      sizeof err) != TE_OK) {
        fprintf(stderr, "simple form: %s\n", err);
        return 1;
    }
    printf("%-34s %s\n", "monthly day 31 as RRULE:", rule);
    te_recurrence_t *monthly = NULL;
    te_recurrence_new(rule, start, zone, TE_ANCHOR_SCHEDULE, &monthly, err, sizeof err);
    te_recurrence_list(monthly, start, 3, occ, &n);
    const char *want_m[] = {"2026-02-28T18:00:00+01:00", "2026-03-31T18:00:00+02:00",
                            "2026-04-30T18:00:00+02:00"};
    for (size_t i = 0; i < n; i++)
        show(i == 0 ? "next three:" : "", occ[i], zone, want_m[i]);
    te_recurrence_destroy(monthly);

    /* 4. Bad input is an error code plus a readable reason. */
    te_err_t e = te_rrule_validate("FREQ=WEEKLY;BYMONTHDAY=1", err, sizeof err);
    printf("%-34s %s: %s\n", "invalid rule:", te_err_name(e), err);
    failures += e != TE_ERR_RRULE;

    return failures ? 1 : 0;
}
