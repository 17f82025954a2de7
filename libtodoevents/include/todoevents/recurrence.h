/* libtodoevents — recurring tasks: RFC 5545 RRULEs evaluated in an IANA
 * time zone, the seed's "simple" recurrence form, and the two anchors that
 * decide where the next occurrence of a completed task falls.
 *
 * Semantics in short (docs/recurrence.md has the details):
 *  - A series has a DTSTART (the first due instant), an RRULE and a zone.
 *    The rule is expanded on the *wall clock* of the zone: 09:00 stays
 *    09:00 across DST changes.  A local time that falls into a DST gap is
 *    moved forward by the length of the gap (that occurrence only); an
 *    ambiguous local time (fall-back overlap) is the earlier instant.
 *  - DTSTART always counts as the first occurrence (RFC 5545 §3.8.5.3),
 *    also when it does not match the rule; COUNT includes it.
 *  - UNTIL is inclusive.  A UTC UNTIL ("...Z") is an instant; a floating
 *    UNTIL is a wall-clock time in the zone; a DATE UNTIL includes the
 *    whole local day.
 *  - Occurrences are returned as strictly increasing instants; two local
 *    times that resolve to the same instant (a DST gap) yield it once.
 *  - HOURLY/MINUTELY/SECONDLY rules also step on the wall clock (no
 *    occurrences in the hour skipped by a spring-forward, the repeated
 *    fall-back hour is not repeated).
 *  - Occurrences are computed up to the year 2582 (libical's limit).
 *
 * Thread-safety: every function here is thread-safe; a te_recurrence_t is
 * immutable after te_recurrence_new() and may be shared between threads
 * without locking (each query uses its own iterator state). */
#ifndef TODOEVENTS_RECURRENCE_H
#define TODOEVENTS_RECURRENCE_H

#include "todoevents/common.h"
#include "todoevents/datetime.h"
#include "todoevents/error.h"
#include "todoevents/problems.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- anchors ---- */

typedef enum te_anchor_e {
    /* Next occurrence = first occurrence of the original schedule strictly
     * after both the current due time and the completion time: completing
     * late never yields a due date in the past, and skipped occurrences
     * are skipped (they still count toward COUNT). */
    TE_ANCHOR_SCHEDULE = 0,
    /* Re-anchored at completion: the rule is evaluated with a new DTSTART
     * = the completion's local date at the original DTSTART's local time
     * of day (for HOURLY/MINUTELY/SECONDLY rules: the completion instant
     * itself); the next occurrence is the first one strictly after that
     * new DTSTART and strictly after the completion time. */
    TE_ANCHOR_COMPLETION = 1
} te_anchor_t;

/* "schedule" / "completion" (ASCII case-insensitive) → *out.  NULL name →
 * TE_ERR_INVALID_ARG; anything else → TE_ERR_PARSE. */
TE_API te_err_t te_anchor_parse(const char *name, te_anchor_t *out);

/* "schedule" / "completion"; "unknown" for other values.  Static string. */
TE_API const char *te_anchor_name(te_anchor_t anchor);

/* ---- rule validation ---- */

/* Longest accepted RRULE text (bytes, without the NUL). */
#define TE_RRULE_MAX_LEN 1024

/* Checks an RRULE value, with or without a leading "RRULE:" (names and
 * values are case-insensitive).  It is parsed with libical and checked
 * against the RFC 5545 §3.3.10 constraints libical lets through:
 *  - FREQ is required; unknown parts, empty parts, repeated parts and
 *    repeated list values are rejected; RSCALE/SKIP (RFC 7529) are
 *    unsupported;
 *  - COUNT ≥ 1 and not together with UNTIL; 1 ≤ INTERVAL ≤ 32767;
 *  - ranges: BYSECOND 0–59 (no leap second), BYMINUTE 0–59, BYHOUR 0–23,
 *    BYMONTHDAY ±1–31, BYYEARDAY ±1–366, BYWEEKNO ±1–53, BYMONTH 1–12,
 *    BYSETPOS ±1–366, BYDAY [±n]MO..SU with n 1–53 (1–5 with MONTHLY or
 *    YEARLY+BYMONTH), UNTIL a valid DATE or DATE-TIME;
 *  - BYWEEKNO only with YEARLY; BYYEARDAY not with DAILY/WEEKLY/MONTHLY;
 *    BYMONTHDAY not with WEEKLY; numeric BYDAY only with MONTHLY/YEARLY
 *    and not with YEARLY+BYWEEKNO; BYSETPOS needs another BYxxx part;
 *  - BYSETPOS only with MONTHLY or YEARLY (libical 3.0 silently ignores it
 *    with other frequencies, so such rules are refused rather than
 *    evaluated wrongly).
 * rrule is only read.  Returns TE_OK, TE_ERR_INVALID_ARG (NULL) or
 * TE_ERR_RRULE with a message naming the offending part in errstr. */
TE_API te_err_t te_rrule_validate(const char *rrule, char *errstr, size_t errstr_size);

/* ---- a recurrence series ---- */

typedef struct te_recurrence_s te_recurrence_t;

/* Creates a series.  rrule: as for te_rrule_validate (copied).  dtstart:
 * the first due instant; its wall-clock time in zone is the DTSTART the
 * rule is expanded from (sub-second digits are carried to every
 * occurrence).  zone: IANA name (copied).  UNTIL before DTSTART is an
 * error.  On success *out receives a new object the caller frees with
 * te_recurrence_destroy().
 * Errors: TE_ERR_INVALID_ARG, TE_ERR_RRULE, TE_ERR_ZONE, TE_ERR_TIME,
 * TE_ERR_NOMEM; detail in errstr. */
TE_API te_err_t te_recurrence_new(const char *rrule, te_time_t dtstart, const char *zone,
                                  te_anchor_t anchor, te_recurrence_t **out, char *errstr,
                                  size_t errstr_size);

/* Frees r.  NULL is a no-op. */
TE_API void te_recurrence_destroy(te_recurrence_t *r);

/* Getters.  Strings are owned by r and valid until it is destroyed.
 * te_recurrence_rrule: the rule as given, upper-cased, without "RRULE:" and
 * surrounding white space (e.g. "FREQ=WEEKLY;BYDAY=MO,WE"). */
TE_API const char *te_recurrence_rrule(const te_recurrence_t *r);
TE_API const char *te_recurrence_zone(const te_recurrence_t *r);
TE_API te_anchor_t te_recurrence_anchor(const te_recurrence_t *r);
TE_API te_time_t te_recurrence_dtstart(const te_recurrence_t *r);
/* COUNT of the rule, 0 when it has none. */
TE_API unsigned te_recurrence_count(const te_recurrence_t *r);
/* 1 and *until = the inclusive UNTIL instant (see the top of this file)
 * when the rule has UNTIL, else 0.  until may be NULL. */
TE_API int te_recurrence_until(const te_recurrence_t *r, te_time_t *until);

/* Upper bound on candidate occurrences one query examines (rules that
 * match almost never, e.g. FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=-29, or a
 * COUNT rule walked over decades of minutes).  Reaching it makes the query
 * fail with TE_ERR_RRULE ("gave up") instead of running for minutes. */
#define TE_RECUR_MAX_ITERATIONS 1000000

/* First occurrence strictly after `after` (INT64_MIN: the first
 * occurrence, i.e. DTSTART).  Without COUNT the iteration is fast-forwarded
 * close to `after` instead of walking from DTSTART.
 * Returns TE_OK, TE_ERR_SERIES_ENDED (no further occurrence: COUNT or
 * UNTIL reached, or beyond 2582), TE_ERR_RRULE (TE_RECUR_MAX_ITERATIONS
 * reached), TE_ERR_INVALID_ARG, TE_ERR_NOMEM. */
TE_API te_err_t te_recurrence_next_after(const te_recurrence_t *r, te_time_t after,
                                         te_time_t *out);

/* Flags for te_recurrence_next_after_ex. */
#define TE_RECUR_WALK 1u /* never fast-forward: walk from DTSTART (tests, benchmarks) */

/* te_recurrence_next_after with flags (0 = the same as next_after).  The
 * answer never depends on the flags, only the speed does. */
TE_API te_err_t te_recurrence_next_after_ex(const te_recurrence_t *r, te_time_t after,
                                            unsigned flags, te_time_t *out);

/* Writes up to max occurrences strictly after `after` (INT64_MIN: from
 * the start, DTSTART included) into out[0..max-1] (caller-owned, at least
 * max elements) in increasing order; *n receives how many were written —
 * fewer than max when the series ends, which is not an error.
 * Errors: TE_ERR_INVALID_ARG (NULL r/n, or NULL out with max > 0),
 * TE_ERR_RRULE (iteration limit; out[0..*n-1] are still valid),
 * TE_ERR_NOMEM. */
TE_API te_err_t te_recurrence_list(const te_recurrence_t *r, te_time_t after, size_t max,
                                   te_time_t *out, size_t *n);

/* Due instant of the next task of a recurring series, using r's anchor
 * (see te_anchor_t).
 *  current_due:  due instant of the task being completed;
 *  completed_at: when it was completed;
 *  occurrences_so_far: how many occurrences of the series exist so far,
 *    counting the one being completed (the first task is 1; 0 is read as
 *    1).  Only used with TE_ANCHOR_COMPLETION and a COUNT: the series
 *    ends when occurrences_so_far ≥ COUNT.  With TE_ANCHOR_SCHEDULE the
 *    position in the original schedule decides (COUNT counts from DTSTART,
 *    skipped occurrences included) and this argument is ignored.
 * UNTIL ends both kinds of series.
 * Returns TE_OK with *next, TE_ERR_SERIES_ENDED, TE_ERR_RRULE (iteration
 * limit), TE_ERR_TIME (instant out of range), TE_ERR_INVALID_ARG. */
TE_API te_err_t te_recurrence_next_due(const te_recurrence_t *r, te_time_t current_due,
                                       te_time_t completed_at, unsigned occurrences_so_far,
                                       te_time_t *next);

/* ---- the seed's simple form ---- */

/* Bit i of days_of_week: 0 = Monday ... 6 = Sunday (the seed numbers days
 * 0 = Monday). */
#define TE_DOW_MONDAY    (1u << 0)
#define TE_DOW_TUESDAY   (1u << 1)
#define TE_DOW_WEDNESDAY (1u << 2)
#define TE_DOW_THURSDAY  (1u << 3)
#define TE_DOW_FRIDAY    (1u << 4)
#define TE_DOW_SATURDAY  (1u << 5)
#define TE_DOW_SUNDAY    (1u << 6)
#define TE_DOW_ALL       0x7Fu

/* Largest accepted interval of the simple form. */
#define TE_SIMPLE_MAX_INTERVAL 1000

typedef struct te_simple_recurrence_s {
    const char *type;      /* "daily" | "weekly" | "monthly" | "yearly" | "custom"
                              (borrowed; only read during the call) */
    int interval;          /* 0 = 1; 1..TE_SIMPLE_MAX_INTERVAL */
    unsigned days_of_week; /* TE_DOW_* bits; 0 = none */
    int day_of_month;      /* 0 = none, 1..31 (29–31 = that day or the month's last) */
    int has_end_date;      /* non-zero: end_date is set */
    te_time_t end_date;    /* last day of the series: its local date in the zone */
} te_simple_recurrence_t;

/* Converts the simple form to an RRULE (without "RRULE:") for a series
 * starting at dtstart in zone.  Mapping (n = interval):
 *   daily    FREQ=DAILY[;INTERVAL=n][;BYDAY=<days>]
 *   weekly   FREQ=WEEKLY[;INTERVAL=n][;BYDAY=<days>]  (no days: DTSTART's weekday)
 *   monthly  FREQ=MONTHLY[;INTERVAL=n] + day d (day_of_month, else DTSTART's
 *            local day): d ≤ 28 → BYMONTHDAY=d (or implied by DTSTART);
 *            d ≥ 29 → BYMONTHDAY=28,...,d;BYSETPOS=-1 (the month's last day
 *            when it is shorter, back to d afterwards)
 *   yearly   FREQ=YEARLY[;INTERVAL=n]; from 29 February →
 *            BYMONTH=2;BYMONTHDAY=28,29;BYSETPOS=-1 (28 Feb in common years)
 *   custom   days_of_week set → as weekly; day_of_month set → as monthly;
 *            neither → FREQ=DAILY;INTERVAL=n ("every n days")
 *   end_date → ;UNTIL=<end of that local day in zone, as UTC "…Z">
 * Invalid fields are reported to problems (may be NULL; fields
 * "recurrence.type", "recurrence.interval", "recurrence.days_of_week",
 * "recurrence.day_of_month", "recurrence.end_date") and the call returns
 * TE_ERR_INVALID with the first problem in errstr.  s and zone are only
 * read; buf (caller-owned, size bytes) receives the NUL-terminated rule;
 * 160 bytes are always enough.
 * Errors: TE_ERR_INVALID_ARG, TE_ERR_INVALID, TE_ERR_ZONE, TE_ERR_TIME,
 * TE_ERR_BUFFER_TOO_SMALL, TE_ERR_NOMEM. */
TE_API te_err_t te_simple_recurrence_to_rrule(const te_simple_recurrence_t *s,
                                              te_time_t dtstart, const char *zone, char *buf,
                                              size_t size, te_problems_t *problems,
                                              char *errstr, size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif
