/* Recurrence throughput: te_recurrence_next_after for series whose DTSTART
 * lies 10 years in the past, asking for the next occurrence after "now" in
 * Europe/Berlin — the todo-worker's question when a recurring task is
 * completed.  Each rule is measured with the fast-forward (the default) and
 * with the plain walk from DTSTART (TE_RECUR_WALK) as the baseline.
 *
 *   bench_recurrence [seconds-per-phase]   (default 0.4; whole run < 10 s)
 *
 * Output: plain text, one line per measurement. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <todoevents/datetime.h>
#include <todoevents/recurrence.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define ZONE "Europe/Berlin"
#define YEAR_US (INT64_C(365) * 86400 * TE_USEC_PER_SEC)

typedef struct {
    double ops_per_s, ns_per_op;
    long calls;
} result_t;

static volatile te_time_t sink;

/* Calls next_after with `after` moving through one year from `now`, so
 * the answers are not all the same, for at least `secs` seconds. */
static int measure(const te_recurrence_t *r, te_time_t now, unsigned flags, double secs,
                   result_t *res) {
    long calls = 0;
    double t0 = now_s(), el;
    do {
        for (int i = 0; i < 16; i++, calls++) {
            te_time_t after = now + (te_time_t)(calls % 997) * (YEAR_US / 997), next;
            te_err_t e = te_recurrence_next_after_ex(r, after, flags, &next);
            if (e != TE_OK) {
                fprintf(stderr, "bench_recurrence: next_after: %s\n", te_err2str(e));
                return 0;
            }
            sink = next;
        }
        el = now_s() - t0;
    } while (el < secs);
    res->calls = calls;
    res->ops_per_s = (double)calls / el;
    res->ns_per_op = el * 1e9 / (double)calls;
    return 1;
}

int main(int argc, char **argv) {
    double secs = argc > 1 ? atof(argv[1]) : 0.4;
    if (secs <= 0)
        secs = 0.4;
    static const struct {
        const char *name, *rule;
    } cases[] = {
        {"recur.daily", "FREQ=DAILY"},
        {"recur.weekly_mwf", "FREQ=WEEKLY;BYDAY=MO,WE,FR"},
        {"recur.monthly_last", "FREQ=MONTHLY;BYMONTHDAY=-1"},
        {"recur.monthly_end", "FREQ=MONTHLY;BYMONTHDAY=28,29,30,31;BYSETPOS=-1"},
        {"recur.daily_lastday", "FREQ=DAILY;BYMONTHDAY=-1"},
        {"recur.hourly_3h", "FREQ=HOURLY;INTERVAL=3;BYHOUR=6,9,12,15,18"},
    };
    te_time_t now = te_time_now();
    /* 09:00 local, 10 years ago: a fixed wall-clock time keeps every rule
     * (BYHOUR with INTERVAL=3 included) aligned whenever the bench runs. */
    te_time_t dtstart = now - 10 * YEAR_US;
    te_civil_t local;
    if (te_tz_to_local(ZONE, dtstart, &local, NULL) != TE_OK)
        return 1;
    local.hour = 9, local.minute = 0, local.second = 0, local.usec = 0;
    if (te_tz_from_local(ZONE, &local, &dtstart, NULL) != TE_OK)
        return 1;
    char text[TE_TIME_STRLEN];
    te_time_format_in_zone(dtstart, ZONE, text, sizeof text);
    printf("# next occurrence after now, DTSTART %s (10 years ago), zone %s, %.2f s/phase\n",
           text, ZONE, secs);
    int failed = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char err[TE_ERRSTR_SIZE];
        te_recurrence_t *r = NULL;
        if (te_recurrence_new(cases[i].rule, dtstart, ZONE, TE_ANCHOR_SCHEDULE, &r, err,
                              sizeof err) != TE_OK) {
            fprintf(stderr, "bench_recurrence: %s: %s\n", cases[i].rule, err);
            return 1;
        }
        /* The fast path must give the walk's answer. */
        te_time_t a, b;
        if (te_recurrence_next_after(r, now, &a) != TE_OK ||
            te_recurrence_next_after_ex(r, now, TE_RECUR_WALK, &b) != TE_OK || a != b) {
            fprintf(stderr, "bench_recurrence: %s: fast path and walk disagree\n", cases[i].name);
            failed = 1;
        }
        result_t fast, walk;
        if (!measure(r, now, 0, secs, &fast) || !measure(r, now, TE_RECUR_WALK, secs, &walk))
            return 1;
        printf("%-20s next_after %9.0f ops/s %8.0f ns/op  (walk: %7.0f ops/s %9.0f ns/op, "
               "ratio x%.0f)  %s\n",
               cases[i].name, fast.ops_per_s, fast.ns_per_op, walk.ops_per_s, walk.ns_per_op,
               fast.ops_per_s / walk.ops_per_s, cases[i].rule);
        te_recurrence_destroy(r);
    }

    /* Creating a series (parse + validate + zone lookup), for scale. */
    long n = 0;
    double t0 = now_s(), el;
    do {
        for (int k = 0; k < 64; k++, n++) {
            te_recurrence_t *r = NULL;
            if (te_recurrence_new("FREQ=WEEKLY;BYDAY=MO,WE,FR;UNTIL=20361231T225959Z", dtstart,
                                  ZONE, TE_ANCHOR_SCHEDULE, &r, NULL, 0) != TE_OK)
                return 1;
            te_recurrence_destroy(r);
        }
        el = now_s() - t0;
    } while (el < secs);
    printf("%-20s new        %9.0f ops/s %8.0f ns/op\n", "recur.new", (double)n / el,
           el * 1e9 / (double)n);
    return failed;
}
