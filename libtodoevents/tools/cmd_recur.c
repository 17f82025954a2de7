/* todoctl recur — print the occurrences of a recurrence rule.
 *
 *   todoctl recur --rule RRULE --start RFC3339 --tz ZONE
 *                 [--after RFC3339] [--count N] [--anchor schedule|completion]
 *                 [--completed RFC3339 [--due RFC3339] [--so-far N]]
 *
 * Without --completed: prints the first N (default 10) occurrences — with
 * --after, the first N strictly after that instant — one per line as RFC
 * 3339 with the zone's UTC offset at that instant.  With --completed:
 * prints the due time of the next task when the task due at --due
 * (default --start) is completed then, following --anchor. */
#include "todoctl.h"

#include <todoevents/datetime.h>
#include <todoevents/error.h>
#include <todoevents/recurrence.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define RECUR_MAX_COUNT 10000

static void recur_usage(FILE *out) {
    fprintf(out,
            "usage: todoctl recur --rule RRULE --start RFC3339 --tz ZONE\n"
            "                     [--after RFC3339] [--count N] [--anchor schedule|completion]\n"
            "                     [--completed RFC3339 [--due RFC3339] [--so-far N]]\n"
            "\n"
            "  --rule RRULE      RFC 5545 rule, e.g. 'FREQ=WEEKLY;BYDAY=MO,WE' (RRULE: optional)\n"
            "  --start RFC3339   first occurrence (DTSTART); its wall-clock time in --tz is kept\n"
            "  --tz ZONE         IANA time zone the rule is evaluated in\n"
            "  --after RFC3339   list occurrences strictly after this instant\n"
            "  --count N         how many occurrences to print (1-%d, default 10)\n"
            "  --anchor A        schedule (default) or completion\n"
            "  --completed T     print the next due time when completing at T instead\n"
            "  --due T           due time of the completed task (default --start)\n"
            "  --so-far N        occurrences so far, counting the completed one (default 1)\n",
            RECUR_MAX_COUNT);
}

static int bad(const char *opt, const char *detail) {
    fprintf(stderr, "todoctl: invalid %s: %s\n", opt, detail);
    return TODOCTL_USAGE;
}

static int parse_uint(const char *s, long max, long *out) {
    if (!s || !*s)
        return 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || s[0] == '-' || s[0] == '+' || v < 1 || v > max)
        return 0;
    *out = v;
    return 1;
}

static int print_time(te_time_t t, const char *zone) {
    char buf[TE_TIME_STRLEN];
    if (te_time_format_in_zone(t, zone, buf, sizeof buf) != TE_OK) {
        fprintf(stderr, "todoctl: recur: cannot format an occurrence\n");
        return 0;
    }
    printf("%s\n", buf);
    return 1;
}

int cmd_recur(int argc, char **argv) {
    const char *rule = NULL, *start = NULL, *tz = NULL, *after = NULL, *count = NULL,
               *anchor = NULL, *completed = NULL, *due = NULL, *so_far = NULL;
    todoctl_opt_t opts[] = {
        {"--rule", &rule},   {"--start", &start}, {"--tz", &tz},
        {"--after", &after}, {"--count", &count}, {"--anchor", &anchor},
        {"--completed", &completed}, {"--due", &due}, {"--so-far", &so_far},
    };
    int prc = todoctl_parse_opts("recur", recur_usage, TODOCTL_OPTS_USAGE_ON_VALUE, argc, argv, 1,
                                 opts, sizeof opts / sizeof *opts, NULL);
    if (prc)
        return prc == TODOCTL_OPTS_HELP ? TODOCTL_OK : prc;
    if (!rule || !start || !tz) {
        fprintf(stderr, "todoctl: recur: --rule, --start and --tz are required\n");
        recur_usage(stderr);
        return TODOCTL_USAGE;
    }
    if ((due || so_far) && !completed) {
        fprintf(stderr, "todoctl: recur: --due and --so-far need --completed\n");
        return TODOCTL_USAGE;
    }
    if (completed && (after || count)) {
        fprintf(stderr, "todoctl: recur: --completed cannot be combined with --after/--count\n");
        return TODOCTL_USAGE;
    }

    char err[TE_ERRSTR_SIZE] = "";
    te_time_t t_start, t_after = INT64_MIN, t_completed = 0, t_due = 0;
    long n = 10, n_so_far = 1;
    te_anchor_t an = TE_ANCHOR_SCHEDULE;
    if (te_time_parse(start, &t_start, NULL, err, sizeof err) != TE_OK)
        return bad("--start", err);
    if (te_tz_check(tz, err, sizeof err) != TE_OK)
        return bad("--tz", err);
    if (after && te_time_parse(after, &t_after, NULL, err, sizeof err) != TE_OK)
        return bad("--after", err);
    if (completed && te_time_parse(completed, &t_completed, NULL, err, sizeof err) != TE_OK)
        return bad("--completed", err);
    t_due = t_start;
    if (due && te_time_parse(due, &t_due, NULL, err, sizeof err) != TE_OK)
        return bad("--due", err);
    if (count && !parse_uint(count, RECUR_MAX_COUNT, &n)) {
        snprintf(err, sizeof err, "'%s' is not an integer between 1 and %d", count,
                 RECUR_MAX_COUNT);
        return bad("--count", err);
    }
    if (so_far && !parse_uint(so_far, INT32_MAX, &n_so_far)) {
        snprintf(err, sizeof err, "'%s' is not a positive integer", so_far);
        return bad("--so-far", err);
    }
    if (anchor && te_anchor_parse(anchor, &an) != TE_OK) {
        snprintf(err, sizeof err, "'%s' is not 'schedule' or 'completion'", anchor);
        return bad("--anchor", err);
    }

    te_recurrence_t *r = NULL;
    te_err_t e = te_recurrence_new(rule, t_start, tz, an, &r, err, sizeof err);
    if (e == TE_ERR_TIME)
        return bad("--start", err);
    if (e == TE_ERR_ZONE)
        return bad("--tz", err);
    if (e != TE_OK)
        return bad("--rule", err[0] ? err : te_err2str(e));

    int rc = TODOCTL_OK;
    if (completed) {
        te_time_t next;
        e = te_recurrence_next_due(r, t_due, t_completed, (unsigned)n_so_far, &next);
        if (e == TE_OK) {
            if (!print_time(next, tz))
                rc = TODOCTL_INVALID;
        } else if (e == TE_ERR_SERIES_ENDED) {
            fprintf(stderr, "todoctl: recur: the series has ended (no next occurrence)\n");
        } else {
            fprintf(stderr, "todoctl: recur: %s\n", te_err2str(e));
            rc = TODOCTL_USAGE; /* a bad rule, time or zone */
        }
        te_recurrence_destroy(r);
        return rc;
    }

    te_time_t *out = malloc((size_t)n * sizeof *out);
    if (!out) {
        te_recurrence_destroy(r);
        fprintf(stderr, "todoctl: recur: out of memory\n");
        return TODOCTL_INVALID;
    }
    size_t got = 0;
    e = te_recurrence_list(r, t_after, (size_t)n, out, &got);
    for (size_t i = 0; i < got && rc == TODOCTL_OK; i++)
        if (!print_time(out[i], tz))
            rc = TODOCTL_INVALID;
    if (e == TE_ERR_RRULE) {
        fprintf(stderr,
                "todoctl: invalid --rule: gave up after %d candidate occurrences without "
                "finding more (the rule matches too rarely)\n",
                TE_RECUR_MAX_ITERATIONS);
        rc = TODOCTL_USAGE;
    } else if (e != TE_OK) {
        fprintf(stderr, "todoctl: recur: %s\n", te_err2str(e));
        rc = TODOCTL_INVALID;
    }
    free(out);
    te_recurrence_destroy(r);
    return rc;
}
