/* Recurrence: RFC 5545 RRULE validation and expansion in an IANA zone.
 *
 * How it works (docs/recurrence.md explains the why):
 *  - libical parses the rule and expands it in FLOATING local time: the
 *    iterator gets DTSTART as the zone's wall-clock time without a zone.
 *    Every local occurrence is resolved to an instant here with
 *    te_tz_from_local (gap → shifted forward, ambiguous → earlier).  This
 *    avoids libical's zoned-iteration bugs (a DAILY 02:30 rule sticking to
 *    03:30 after a spring-forward day, ambiguous times taking the later
 *    offset).
 *  - COUNT and UNTIL are removed from the rule libical sees and applied
 *    here: UNTIL on instants (libical would compare a UTC UNTIL against
 *    floating times), COUNT on our own candidate stream (which includes
 *    DTSTART even when it does not match the rule, per RFC 5545, and the
 *    candidates of the workaround below).
 *  - libical 3.0.16 returns nothing for negative BYMONTHDAY/BYYEARDAY with
 *    FREQ=DAILY or finer.  Those lists are removed from the libical rule
 *    and applied as a filter here (whole days are kept or dropped, which
 *    commutes with everything else libical does for such frequencies).
 *  - Resolving local times can reorder instants only around a DST gap; a
 *    small sorted buffer and a "watermark" restore strict order and drop
 *    duplicates (see gen_next).
 *  - Fast-forward: without COUNT, DAILY and coarser rules start libical at
 *    the day of `after` with icalrecur_iterator_set_start; finer rules
 *    start a fresh iterator at DTSTART + k·period (libical's set_start does
 *    not keep the INTERVAL grid for HOURLY/MINUTELY/SECONDLY). */
#include "todoevents/recurrence.h"
#include "internal.h"
#include "ical_time.h"

#include <libical/ical.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define USEC TE_USEC_PER_SEC
#define SEC_PER_DAY INT64_C(86400)

/* ------------------------------------------------------------------ */
/* anchors                                                              */

te_err_t te_anchor_parse(const char *name, te_anchor_t *out) {
    if (!name || !out)
        return TE_ERR_INVALID_ARG;
    if (strcasecmp(name, "schedule") == 0) {
        *out = TE_ANCHOR_SCHEDULE;
        return TE_OK;
    }
    if (strcasecmp(name, "completion") == 0) {
        *out = TE_ANCHOR_COMPLETION;
        return TE_OK;
    }
    return TE_ERR_PARSE;
}

const char *te_anchor_name(te_anchor_t anchor) {
    switch (anchor) {
    case TE_ANCHOR_SCHEDULE:
        return "schedule";
    case TE_ANCHOR_COMPLETION:
        return "completion";
    }
    return "unknown";
}

/* ------------------------------------------------------------------ */
/* small calendar helpers (floating wall-clock arithmetic)              */

/* A wall-clock time as a number: microseconds since 1970-01-01T00:00:00 of
 * the same calendar, no zone.  Only for comparisons and arithmetic. */
static te_time_t floating(const te_civil_t *c) {
    te_time_t t = 0;
    if (te_civil_to_time(c, &t) != TE_OK)
        return INT64_MIN;
    return t;
}

static int day_of_year(const te_civil_t *c) {
    te_civil_t jan1 = {c->year, 1, 1, 0, 0, 0, 0};
    te_civil_t day = {c->year, c->month, c->day, 0, 0, 0, 0};
    return (int)((floating(&day) - floating(&jan1)) / (SEC_PER_DAY * USEC)) + 1;
}

/* ------------------------------------------------------------------ */
/* rule scanning and validation                                         */

enum {
    P_FREQ,
    P_UNTIL,
    P_COUNT,
    P_INTERVAL,
    P_BYSECOND,
    P_BYMINUTE,
    P_BYHOUR,
    P_BYDAY,
    P_BYMONTHDAY,
    P_BYYEARDAY,
    P_BYWEEKNO,
    P_BYMONTH,
    P_BYSETPOS,
    P_WKST,
    P__N
};

static const char *const part_names[P__N] = {
    "FREQ",       "UNTIL",     "COUNT",    "INTERVAL", "BYSECOND", "BYMINUTE", "BYHOUR",
    "BYDAY",      "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYMONTH", "BYSETPOS", "WKST"};

static const char *const freq_names[] = {"SECONDLY", "MINUTELY", "HOURLY", "DAILY",
                                         "WEEKLY",   "MONTHLY",  "YEARLY"};
enum { F_SECONDLY, F_MINUTELY, F_HOURLY, F_DAILY, F_WEEKLY, F_MONTHLY, F_YEARLY };

static const char *const day_names[] = {"MO", "TU", "WE", "TH", "FR", "SA", "SU"};

/* What the scan learnt about a rule (beyond libical's struct). */
typedef struct rr_info_s {
    int present[P__N];
    int freq; /* F_* */
    long count;
    long interval;
    int byday_numeric;    /* some BYDAY value has an ordinal */
    int byday_max_ord;    /* largest |ordinal| */
    char byday_first_numeric[16];
    short monthday[62];
    int n_monthday;
    int monthday_neg;
    short yearday[732];
    int n_yearday;
    int yearday_neg;
    te_civil_t until;
    int until_is_date;
    int until_utc;
} rr_info_t;

#define RRERR(...) te__seterr(errstr, errstr_size, TE_ERR_RRULE, __VA_ARGS__)

/* Upper-cases rule into out (TE_RRULE_MAX_LEN + 1 bytes), trimming white
 * space and an "RRULE:" prefix, and checks the character set. */
static te_err_t normalize(const char *rule, char *out, char *errstr, size_t errstr_size) {
    const char *s = rule;
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    if (strncasecmp(s, "RRULE:", 6) == 0)
        for (s += 6; *s == ' ' || *s == '\t'; s++)
            ;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        n--;
    if (n == 0)
        return RRERR("the rule is empty");
    if (n > TE_RRULE_MAX_LEN)
        return RRERR("the rule is longer than %d characters", TE_RRULE_MAX_LEN);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        int ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                 ch == ';' || ch == '=' || ch == ',' || ch == '+' || ch == '-';
        if (!ok) {
            if (ch >= 0x20 && ch < 0x7f)
                return RRERR("unexpected character '%c' at position %zu", ch, i + 1);
            return RRERR("unexpected byte 0x%02x at position %zu", ch, i + 1);
        }
        out[i] = (ch >= 'a' && ch <= 'z') ? (char)(ch - 'a' + 'A') : (char)ch;
    }
    out[n] = '\0';
    return TE_OK;
}

/* Parses a decimal number of at most 9 digits at *p with an optional sign
 * (when allowed).  Advances *p.  Returns 0 when there is no number. */
static int scan_number(const char **p, int allow_sign, long *out) {
    const char *s = *p;
    int neg = 0;
    if (allow_sign && (*s == '+' || *s == '-')) {
        neg = *s == '-';
        s++;
    }
    if (*s < '0' || *s > '9')
        return 0;
    long v = 0;
    int nd = 0;
    while (*s >= '0' && *s <= '9') {
        if (++nd > 9)
            return 0;
        v = v * 10 + (*s - '0');
        s++;
    }
    *p = s;
    *out = neg ? -v : v;
    return 1;
}

/* An integer list "a,b,c" with values in [lo, hi] (and, when signed, in
 * [-hi, -lo]).  Values go to out (if not NULL, capacity cap). */
static te_err_t scan_int_list(const char *name, const char *value, int allow_sign, long lo,
                              long hi, short *out, int cap, int *n_out, int *has_neg,
                              char *errstr, size_t errstr_size) {
    long seen[800];
    int n = 0;
    const char *p = value;
    for (;;) {
        const char *tok = p;
        long v;
        const char *q = p;
        if (!scan_number(&q, allow_sign, &v) || (*q != ',' && *q != '\0')) {
            size_t len = strcspn(tok, ",");
            if (len == 0)
                return RRERR("%s has an empty list item", name);
            return RRERR("%s value '%.*s' is not %s", name, (int)(len > 20 ? 20 : len), tok,
                         allow_sign ? "a (signed) integer" : "an unsigned integer");
        }
        long a = v < 0 ? -v : v;
        if (a < lo || a > hi) {
            if (allow_sign)
                return RRERR("%s value '%.*s' is out of range (%ld to %ld or -%ld to -%ld)", name,
                             (int)(q - tok), tok, lo, hi, hi, lo);
            return RRERR("%s value '%.*s' is out of range (%ld to %ld)", name, (int)(q - tok), tok,
                         lo, hi);
        }
        for (int i = 0; i < n; i++)
            if (seen[i] == v)
                return RRERR("%s lists the value %ld twice", name, v);
        if (n >= (int)(sizeof seen / sizeof *seen))
            return RRERR("%s has too many values", name);
        seen[n] = v;
        if (out && n < cap)
            out[n] = (short)v;
        n++;
        if (v < 0 && has_neg)
            *has_neg = 1;
        if (*q == '\0')
            break;
        p = q + 1;
    }
    if (n_out)
        *n_out = n;
    return TE_OK;
}

static int weekday_index(const char *s) {
    for (int i = 0; i < 7; i++)
        if (s[0] == day_names[i][0] && s[1] == day_names[i][1])
            return i;
    return -1;
}

static te_err_t scan_byday(rr_info_t *info, const char *value, char *errstr, size_t errstr_size) {
    int seen[7][54 * 2 + 1];
    memset(seen, 0, sizeof seen);
    const char *p = value;
    for (;;) {
        const char *tok = p;
        size_t len = strcspn(tok, ",");
        if (len == 0)
            return RRERR("BYDAY has an empty list item");
        long ord = 0;
        const char *q = p;
        int has_num = 0;
        if (*q == '+' || *q == '-' || (*q >= '0' && *q <= '9')) {
            if (!scan_number(&q, 1, &ord))
                return RRERR("BYDAY value '%.*s' is not [+/-n]MO..SU", (int)(len > 20 ? 20 : len),
                             tok);
            has_num = 1;
        }
        int wd = (size_t)(q - tok) + 2 == len ? weekday_index(q) : -1;
        if (wd < 0)
            return RRERR("BYDAY value '%.*s' is not [+/-n]MO..SU (weekdays are MO TU WE TH FR "
                         "SA SU)",
                         (int)(len > 20 ? 20 : len), tok);
        if (has_num) {
            long a = ord < 0 ? -ord : ord;
            if (a < 1 || a > 53)
                return RRERR("BYDAY value '%.*s': the ordinal must be 1 to 53 or -53 to -1",
                             (int)len, tok);
            if (!info->byday_numeric)
                snprintf(info->byday_first_numeric, sizeof info->byday_first_numeric, "%.*s",
                         (int)len, tok);
            info->byday_numeric = 1;
            if (a > info->byday_max_ord)
                info->byday_max_ord = (int)a;
        }
        if (seen[wd][ord + 54]++)
            return RRERR("BYDAY lists '%.*s' twice", (int)len, tok);
        if (tok[len] == '\0')
            break;
        p = tok + len + 1;
    }
    return TE_OK;
}

static te_err_t scan_until(rr_info_t *info, const char *v, char *errstr, size_t errstr_size) {
    size_t n = strlen(v);
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++) {
        int digit = v[i] >= '0' && v[i] <= '9';
        if (i == 8)
            ok = v[i] == 'T';
        else if (i == 15)
            ok = v[i] == 'Z';
        else
            ok = digit;
    }
    if (!ok || (n != 8 && n != 15 && n != 16))
        return RRERR("UNTIL value '%.24s' is not a DATE (YYYYMMDD) or DATE-TIME "
                     "(YYYYMMDDThhmmss[Z])",
                     v);
    te_civil_t c = {0};
    sscanf(v, "%4d%2d%2d", &c.year, &c.month, &c.day);
    if (n > 8)
        sscanf(v + 9, "%2d%2d%2d", &c.hour, &c.minute, &c.second);
    te_time_t t;
    if (te_civil_to_time(&c, &t) != TE_OK)
        return RRERR("UNTIL value '%s' is not a valid date-time", v);
    info->until = c;
    info->until_is_date = n == 8;
    info->until_utc = n == 16;
    return TE_OK;
}

/* Scans a normalized rule into info; checks names, values, ranges and the
 * RFC 5545 rules between parts. */
static te_err_t scan_rule(const char *rule, rr_info_t *info, char *errstr, size_t errstr_size) {
    memset(info, 0, sizeof *info);
    info->interval = 1;
    const char *p = rule;
    char part[TE_RRULE_MAX_LEN + 1];
    for (;;) {
        size_t len = strcspn(p, ";");
        if (len == 0)
            return RRERR(*p == '\0' ? "the rule ends with ';'" : "the rule has an empty part (';;')");
        memcpy(part, p, len);
        part[len] = '\0';
        char *eq = strchr(part, '=');
        if (!eq)
            return RRERR("rule part '%.40s' is not NAME=VALUE", part);
        *eq = '\0';
        const char *name = part, *value = eq + 1;
        int id = -1;
        for (int i = 0; i < P__N; i++)
            if (strcmp(name, part_names[i]) == 0)
                id = i;
        if (id < 0) {
            if (strcmp(name, "RSCALE") == 0 || strcmp(name, "SKIP") == 0)
                return RRERR("%s (RFC 7529 non-Gregorian calendars) is not supported", name);
            return RRERR("unknown rule part '%.40s'", name);
        }
        if (info->present[id])
            return RRERR("%s is given more than once", name);
        info->present[id] = 1;
        if (*value == '\0')
            return RRERR("%s has no value", name);
        te_err_t err = TE_OK;
        switch (id) {
        case P_FREQ: {
            int f = -1;
            for (int i = 0; i < 7; i++)
                if (strcmp(value, freq_names[i]) == 0)
                    f = i;
            if (f < 0)
                return RRERR("FREQ value '%.20s' is not one of SECONDLY, MINUTELY, HOURLY, "
                             "DAILY, WEEKLY, MONTHLY, YEARLY",
                             value);
            info->freq = f;
            break;
        }
        case P_UNTIL:
            err = scan_until(info, value, errstr, errstr_size);
            break;
        case P_COUNT:
        case P_INTERVAL: {
            const char *q = value;
            long v;
            long max = id == P_COUNT ? INT_MAX : 32767;
            if (!scan_number(&q, 0, &v) || *q != '\0')
                return RRERR("%s value '%.20s' is not a positive integer", name, value);
            if (v < 1 || v > max)
                return RRERR("%s must be between 1 and %ld (got %ld)", name, max, v);
            if (id == P_COUNT)
                info->count = v;
            else
                info->interval = v;
            break;
        }
        case P_BYSECOND:
            err = scan_int_list(name, value, 0, 0, 59, NULL, 0, NULL, NULL, errstr, errstr_size);
            break;
        case P_BYMINUTE:
            err = scan_int_list(name, value, 0, 0, 59, NULL, 0, NULL, NULL, errstr, errstr_size);
            break;
        case P_BYHOUR:
            err = scan_int_list(name, value, 0, 0, 23, NULL, 0, NULL, NULL, errstr, errstr_size);
            break;
        case P_BYMONTH:
            err = scan_int_list(name, value, 0, 1, 12, NULL, 0, NULL, NULL, errstr, errstr_size);
            break;
        case P_BYMONTHDAY:
            err = scan_int_list(name, value, 1, 1, 31, info->monthday, 62, &info->n_monthday,
                                &info->monthday_neg, errstr, errstr_size);
            break;
        case P_BYYEARDAY:
            err = scan_int_list(name, value, 1, 1, 366, info->yearday, 732, &info->n_yearday,
                                &info->yearday_neg, errstr, errstr_size);
            break;
        case P_BYWEEKNO:
            err = scan_int_list(name, value, 1, 1, 53, NULL, 0, NULL, NULL, errstr, errstr_size);
            break;
        case P_BYSETPOS:
            err = scan_int_list(name, value, 1, 1, 366, NULL, 0, NULL, NULL, errstr, errstr_size);
            break;
        case P_BYDAY:
            err = scan_byday(info, value, errstr, errstr_size);
            break;
        case P_WKST:
            if (strlen(value) != 2 || weekday_index(value) < 0)
                return RRERR("WKST value '%.20s' is not one of MO TU WE TH FR SA SU", value);
            break;
        }
        if (err)
            return err;
        if (p[len] == '\0')
            break;
        p += len + 1;
    }

    /* RFC 5545 §3.3.10 rules between parts. */
    if (!info->present[P_FREQ])
        return RRERR("FREQ is required");
    const char *fname = freq_names[info->freq];
    if (info->present[P_COUNT] && info->present[P_UNTIL])
        return RRERR("COUNT and UNTIL must not both be given");
    if (info->present[P_BYWEEKNO] && info->freq != F_YEARLY)
        return RRERR("BYWEEKNO is only allowed with FREQ=YEARLY (not FREQ=%s)", fname);
    if (info->present[P_BYYEARDAY] &&
        (info->freq == F_DAILY || info->freq == F_WEEKLY || info->freq == F_MONTHLY))
        return RRERR("BYYEARDAY is not allowed with FREQ=%s", fname);
    if (info->present[P_BYMONTHDAY] && info->freq == F_WEEKLY)
        return RRERR("BYMONTHDAY is not allowed with FREQ=WEEKLY");
    if (info->byday_numeric) {
        if (info->freq != F_MONTHLY && info->freq != F_YEARLY)
            return RRERR("BYDAY value '%s' has an ordinal, which is only allowed with "
                         "FREQ=MONTHLY or FREQ=YEARLY (not FREQ=%s)",
                         info->byday_first_numeric, fname);
        if (info->freq == F_YEARLY && info->present[P_BYWEEKNO])
            return RRERR("BYDAY value '%s' has an ordinal, which is not allowed with "
                         "FREQ=YEARLY and BYWEEKNO",
                         info->byday_first_numeric);
        if ((info->freq == F_MONTHLY || info->present[P_BYMONTH]) && info->byday_max_ord > 5)
            return RRERR("BYDAY ordinal %d is out of range: a month has at most 5 of each "
                         "weekday",
                         info->byday_max_ord);
    }
    if (info->present[P_BYSETPOS]) {
        int other = 0;
        for (int i = P_BYSECOND; i <= P_BYMONTH; i++)
            other |= info->present[i];
        if (!other)
            return RRERR("BYSETPOS needs another BYxxx rule part to select from");
        if (info->freq != F_MONTHLY && info->freq != F_YEARLY)
            return RRERR("BYSETPOS is only supported with FREQ=MONTHLY or FREQ=YEARLY "
                         "(libical 3.0 ignores it with FREQ=%s)",
                         fname);
    }
    return TE_OK;
}

/* Number of values in a libical BY list. */
static int by_len(const short *a, int size) {
    int n = 0;
    while (n < size && a[n] != ICAL_RECURRENCE_ARRAY_MAX)
        n++;
    return n;
}

static int cmp_short(const void *a, const void *b) {
    return *(const short *)a - *(const short *)b;
}

/* libical 3.0.16 expands BYHOUR/BYMINUTE/BYSECOND (and steps through
 * BYMONTH...) assuming ascending lists: "BYHOUR=19,11" silently loses
 * 11:00.  RFC 5545 gives lists no order, so sort them first. */
static void sort_by_lists(struct icalrecurrencetype *rule) {
#define SORT_BY(arr, size) qsort(rule->arr, (size_t)by_len(rule->arr, size), sizeof(short), cmp_short)
    SORT_BY(by_second, ICAL_BY_SECOND_SIZE);
    SORT_BY(by_minute, ICAL_BY_MINUTE_SIZE);
    SORT_BY(by_hour, ICAL_BY_HOUR_SIZE);
    SORT_BY(by_month, ICAL_BY_MONTH_SIZE);
    SORT_BY(by_month_day, ICAL_BY_MONTHDAY_SIZE);
    SORT_BY(by_year_day, ICAL_BY_YEARDAY_SIZE);
    SORT_BY(by_week_no, ICAL_BY_WEEKNO_SIZE);
#undef SORT_BY
}

static int in_by_list(const short *a, int size, int v, int neg_base) {
    int n = by_len(a, size);
    if (n == 0)
        return 1;
    for (int i = 0; i < n; i++)
        if (a[i] > 0 ? a[i] == v : neg_base + a[i] + 1 == v)
            return 1;
    return 0;
}

/* 1 when some calendar date satisfies BYMONTH, BYMONTHDAY and BYYEARDAY
 * together (checked over one common and one leap year, which between them
 * hold every (month, day, day-of-year) combination).  A rule that fails
 * this can never produce an occurrence after DTSTART, and libical would
 * scan day by day up to the year 2582 looking for one. */
static int dates_possible(const struct icalrecurrencetype *rule) {
    for (int y = 2023; y <= 2024; y++) {
        int doy = 0, ylen = te__is_leap(y) ? 366 : 365;
        for (int m = 1; m <= 12; m++) {
            int dim = te__days_in_month(y, m);
            for (int d = 1; d <= dim; d++) {
                doy++;
                if (in_by_list(rule->by_month, ICAL_BY_MONTH_SIZE, m, 0) &&
                    in_by_list(rule->by_month_day, ICAL_BY_MONTHDAY_SIZE, d, dim) &&
                    in_by_list(rule->by_year_day, ICAL_BY_YEARDAY_SIZE, doy, ylen))
                    return 1;
            }
        }
    }
    return 0;
}

/* Full check of a normalized rule; on success *rule is libical's parse. */
static te_err_t parse_rule(const char *norm, rr_info_t *info, struct icalrecurrencetype *rule,
                           char *errstr, size_t errstr_size) {
    te_err_t err = scan_rule(norm, info, errstr, errstr_size);
    if (err)
        return err;
    icalerror_clear_errno();
    *rule = icalrecurrencetype_from_string(norm);
    if (rule->freq == ICAL_NO_RECURRENCE)
        return RRERR("libical could not parse the rule");
    if (rule->rscale) { /* cannot happen: RSCALE is rejected above */
        icalmemory_free_buffer(rule->rscale);
        rule->rscale = NULL;
    }
    sort_by_lists(rule);
    if (!dates_possible(rule))
        return RRERR("the rule can never match: no date satisfies its BYMONTH, BYMONTHDAY "
                     "and BYYEARDAY parts together");
    /* BYSETPOS picks from the whole set of a period's instances; libical
     * applies it per day when BYHOUR/BYMINUTE/BYSECOND expand a day into
     * several times, which gives wrong answers. */
    if (info->present[P_BYSETPOS] &&
        (by_len(rule->by_hour, ICAL_BY_HOUR_SIZE) > 1 ||
         by_len(rule->by_minute, ICAL_BY_MINUTE_SIZE) > 1 ||
         by_len(rule->by_second, ICAL_BY_SECOND_SIZE) > 1))
        return RRERR("BYSETPOS together with several BYHOUR, BYMINUTE or BYSECOND values is "
                     "not supported (libical 3.0 applies BYSETPOS per day)");
    /* libical's week numbering is only right for ISO weeks (WKST=MO), and
     * even then it emits days of the neighbouring years' weeks; those are
     * filtered out in filter_ok(). */
    if (info->present[P_BYWEEKNO] && rule->week_start != ICAL_MONDAY_WEEKDAY)
        return RRERR("BYWEEKNO is only supported with WKST=MO (ISO 8601 weeks)");
    /* libical checks part/frequency combinations when an iterator is made. */
    te_civil_t probe = {2000, 1, 1, 0, 0, 0, 0};
    struct icalrecurrencetype copy = *rule;
    copy.count = 0;
    copy.until = icaltime_null_time();
    icalrecur_iterator *it = icalrecur_iterator_new(copy, te__civil_to_ical(&probe));
    if (!it) {
        if (icalerrno == ICAL_NEWFAILED_ERROR)
            return te__seterr(errstr, errstr_size, TE_ERR_NOMEM, "out of memory");
        return RRERR("libical does not accept this combination of rule parts");
    }
    icalrecur_iterator_free(it);
    return TE_OK;
}

te_err_t te_rrule_validate(const char *rrule, char *errstr, size_t errstr_size) {
    if (!rrule)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "no rule");
    char norm[TE_RRULE_MAX_LEN + 1];
    te_err_t err = normalize(rrule, norm, errstr, errstr_size);
    if (err)
        return err;
    rr_info_t *info = malloc(sizeof *info);
    if (!info)
        return te__seterr(errstr, errstr_size, TE_ERR_NOMEM, "out of memory");
    struct icalrecurrencetype rule;
    err = parse_rule(norm, info, &rule, errstr, errstr_size);
    free(info);
    return err;
}

/* ------------------------------------------------------------------ */
/* the series object                                                    */

struct te_recurrence_s {
    char *rrule;
    char *zone;
    te_anchor_t anchor;
    te_time_t dtstart;
    te_civil_t dtstart_local;
    int freq; /* F_* */
    /* What libical iterates: no COUNT, no UNTIL, and without the parts
     * filtered here (see te_recurrence_new). */
    struct icalrecurrencetype rule;
    unsigned count; /* 0 = none */
    int has_until;
    te_time_t until; /* inclusive */
    /* Filters applied here instead of by libical (0 / empty = off). */
    int filter_monthday, filter_yearday;
    short monthday[62];
    int n_monthday;
    short yearday[732];
    int n_yearday;
    int n_weekno; /* BYWEEKNO values, checked as ISO 8601 weeks */
    short weekno[ICAL_BY_WEEKNO_SIZE];
    unsigned month_mask;   /* bit m: month m (1..12) */
    unsigned wday_mask;    /* bit d: 0 = Sunday .. 6 = Saturday */
    uint32_t hour_mask;    /* bit h */
    uint64_t minute_mask;  /* bit m */
    uint64_t second_mask;  /* bit s */
};

/* Moves the values of a libical BY list into a bit mask and removes the
 * list from the rule libical sees.  Returns the mask (0 when absent). */
static uint64_t take_list(short *list, int size, int bias) {
    uint64_t mask = 0;
    for (int i = 0; i < size && list[i] != ICAL_RECURRENCE_ARRAY_MAX; i++)
        mask |= UINT64_C(1) << (list[i] + bias);
    list[0] = ICAL_RECURRENCE_ARRAY_MAX;
    return mask;
}

te_err_t te_recurrence_new(const char *rrule, te_time_t dtstart, const char *zone,
                           te_anchor_t anchor, te_recurrence_t **out, char *errstr,
                           size_t errstr_size) {
    if (out)
        *out = NULL;
    if (!rrule || !zone || !out)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG,
                          "rrule, zone and out are required");
    if (anchor != TE_ANCHOR_SCHEDULE && anchor != TE_ANCHOR_COMPLETION)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "unknown anchor %d",
                          (int)anchor);
    te_err_t err = te_tz_check(zone, errstr, errstr_size);
    if (err)
        return err;
    te_civil_t local;
    if (te_tz_to_local(zone, dtstart, &local, NULL) != TE_OK)
        return te__seterr(errstr, errstr_size, TE_ERR_TIME, "DTSTART is out of range");
    char norm[TE_RRULE_MAX_LEN + 1];
    err = normalize(rrule, norm, errstr, errstr_size);
    if (err)
        return err;
    rr_info_t *info = malloc(sizeof *info);
    te_recurrence_t *r = calloc(1, sizeof *r);
    if (!info || !r) {
        free(info);
        free(r);
        return te__seterr(errstr, errstr_size, TE_ERR_NOMEM, "out of memory");
    }
    err = parse_rule(norm, info, &r->rule, errstr, errstr_size);
    if (err)
        goto fail;
    r->anchor = anchor;
    r->dtstart = dtstart;
    r->dtstart_local = local;
    r->freq = info->freq;
    r->count = (unsigned)info->count;
    r->rule.count = 0;
    r->rule.until = icaltime_null_time();
    if (info->present[P_UNTIL]) {
        r->has_until = 1;
        te_civil_t u = info->until;
        if (info->until_utc) {
            te_civil_to_time(&u, &r->until); /* validated by the scan */
        } else if (info->until_is_date) {
            /* The whole local day: until the next local midnight. */
            te_time_t next_day;
            te_civil_t d = u;
            te_time_t f = floating(&d) + SEC_PER_DAY * USEC;
            if (te_time_to_civil(f, &d) != TE_OK ||
                te_tz_from_local(zone, &d, &next_day, NULL) != TE_OK) {
                err = RRERR("UNTIL is out of range");
                goto fail;
            }
            r->until = next_day - 1;
        } else if (te_tz_from_local(zone, &u, &r->until, NULL) != TE_OK) {
            err = RRERR("UNTIL is out of range");
            goto fail;
        }
        if (r->until < dtstart) {
            char a[TE_TIME_STRLEN], b[TE_TIME_STRLEN];
            te_time_format_in_zone(r->until, zone, a, sizeof a);
            te_time_format_in_zone(dtstart, zone, b, sizeof b);
            err = RRERR("UNTIL (%s) is before DTSTART (%s)", a, b);
            goto fail;
        }
    }
    /* libical 3.0.16 yields nothing for negative BYMONTHDAY/BYYEARDAY with
     * FREQ=DAILY or finer, and for HOURLY/MINUTELY/SECONDLY it skips ahead
     * by whole hours/days when a limiting BYxxx part does not match, which
     * leaves the INTERVAL grid (FREQ=HOURLY;INTERVAL=5;BYHOUR=9 comes out
     * daily).  So: DAILY keeps its BYxxx parts except negative BYMONTHDAY;
     * finer frequencies hand libical the bare grid (plus the finer parts it
     * expands) and every limiting part is applied here. */
    if (info->freq < F_DAILY) {
        r->month_mask = (unsigned)take_list(r->rule.by_month, ICAL_BY_MONTH_SIZE, 0);
        uint64_t wd = 0;
        for (int i = 0; i < ICAL_BY_DAY_SIZE && r->rule.by_day[i] != ICAL_RECURRENCE_ARRAY_MAX;
             i++)
            wd |= UINT64_C(1) << (icalrecurrencetype_day_day_of_week(r->rule.by_day[i]) - 1);
        r->rule.by_day[0] = ICAL_RECURRENCE_ARRAY_MAX;
        r->wday_mask = (unsigned)wd;
        r->hour_mask = (uint32_t)take_list(r->rule.by_hour, ICAL_BY_HOUR_SIZE, 0);
        if (info->freq <= F_MINUTELY)
            r->minute_mask = take_list(r->rule.by_minute, ICAL_BY_MINUTE_SIZE, 0);
        if (info->freq == F_SECONDLY)
            r->second_mask = take_list(r->rule.by_second, ICAL_BY_SECOND_SIZE, 0);
        info->monthday_neg |= info->n_monthday > 0;
        info->yearday_neg |= info->n_yearday > 0;
    }
    r->n_weekno = by_len(r->rule.by_week_no, ICAL_BY_WEEKNO_SIZE);
    memcpy(r->weekno, r->rule.by_week_no, sizeof r->weekno);
    if (info->freq <= F_DAILY && info->monthday_neg) {
        r->filter_monthday = 1;
        r->n_monthday = info->n_monthday;
        memcpy(r->monthday, info->monthday, sizeof r->monthday);
        r->rule.by_month_day[0] = ICAL_RECURRENCE_ARRAY_MAX;
    }
    if (info->freq <= F_DAILY && info->yearday_neg) {
        r->filter_yearday = 1;
        r->n_yearday = info->n_yearday;
        memcpy(r->yearday, info->yearday, sizeof r->yearday);
        r->rule.by_year_day[0] = ICAL_RECURRENCE_ARRAY_MAX;
    }
    r->rrule = te__strdup(norm);
    r->zone = te__strdup(zone);
    if (!r->rrule || !r->zone) {
        err = te__seterr(errstr, errstr_size, TE_ERR_NOMEM, "out of memory");
        goto fail;
    }
    free(info);
    *out = r;
    return TE_OK;
fail:
    free(info);
    te_recurrence_destroy(r);
    return err;
}

void te_recurrence_destroy(te_recurrence_t *r) {
    if (!r)
        return;
    free(r->rrule);
    free(r->zone);
    free(r);
}

const char *te_recurrence_rrule(const te_recurrence_t *r) { return r ? r->rrule : NULL; }
const char *te_recurrence_zone(const te_recurrence_t *r) { return r ? r->zone : NULL; }
te_anchor_t te_recurrence_anchor(const te_recurrence_t *r) {
    return r ? r->anchor : TE_ANCHOR_SCHEDULE;
}
te_time_t te_recurrence_dtstart(const te_recurrence_t *r) { return r ? r->dtstart : 0; }
unsigned te_recurrence_count(const te_recurrence_t *r) { return r ? r->count : 0; }
int te_recurrence_until(const te_recurrence_t *r, te_time_t *until) {
    if (!r || !r->has_until)
        return 0;
    if (until)
        *until = r->until;
    return 1;
}

/* ------------------------------------------------------------------ */
/* the occurrence generator                                             */

#define GEN_INLINE 8

typedef struct gen_s {
    const te_recurrence_t *r;
    icalrecur_iterator *it;
    te_civil_t start; /* DTSTART of this series (wall clock) */
    te_time_t start_f;
    te_time_t start_utc; /* DTSTART instant: first occurrence, nothing before it */
    int emit_start; /* DTSTART not yet produced */
    /* Candidates whose wall-clock time is below this cannot be wanted (they
     * resolve to instants before the query's `after`): counted for COUNT
     * but not resolved to instants.  INT64_MIN = resolve all. */
    te_time_t skip_below_f;
    unsigned count_limit;
    unsigned produced;
    long iterations;
    int source_done;
    te_err_t err;
    /* reorder buffer, ascending */
    te_time_t *buf;
    size_t nbuf, cap;
    te_time_t inline_buf[GEN_INLINE];
    int have_wm;
    te_time_t wm;
    int have_last;
    te_time_t last;
} gen_t;

/* ISO 8601 weekday (1 = Monday .. 7 = Sunday) of a civil date. */
static int iso_weekday(int y, int m, int d) {
    te_civil_t day = {y, m, d, 0, 0, 0, 0};
    int64_t days = floating(&day) / (SEC_PER_DAY * USEC);
    return (int)(((days % 7) + 7 + 3) % 7) + 1; /* 1970-01-01 was a Thursday */
}

/* Number of ISO weeks in ISO year y: 53 when it starts on a Thursday, or
 * on a Wednesday in a leap year. */
static int iso_weeks_in_year(int y) {
    int jan1 = iso_weekday(y, 1, 1);
    return jan1 == 4 || (jan1 == 3 && te__is_leap(y)) ? 53 : 52;
}

static int weekno_ok(const te_recurrence_t *r, const te_civil_t *c) {
    int year = c->year;
    int week = (day_of_year(c) - iso_weekday(c->year, c->month, c->day) + 10) / 7;
    if (week < 1) {
        year--;
        week = iso_weeks_in_year(year);
    } else if (week > iso_weeks_in_year(year)) {
        year++;
        week = 1;
    }
    int nweeks = iso_weeks_in_year(year);
    for (int i = 0; i < r->n_weekno; i++) {
        int v = r->weekno[i];
        if (v > 0 ? week == v : week == nweeks + v + 1)
            return 1;
    }
    return 0;
}

static int filter_ok(const te_recurrence_t *r, const te_civil_t *c) {
    if (r->n_weekno && !weekno_ok(r, c))
        return 0;
    if (r->month_mask && !(r->month_mask & (1u << c->month)))
        return 0;
    if (r->hour_mask && !(r->hour_mask & (UINT32_C(1) << c->hour)))
        return 0;
    if (r->minute_mask && !(r->minute_mask & (UINT64_C(1) << c->minute)))
        return 0;
    if (r->second_mask && !(r->second_mask & (UINT64_C(1) << c->second)))
        return 0;
    /* wday_mask bit 0 = Sunday: ISO 7 (Sunday) % 7 = 0. */
    if (r->wday_mask && !(r->wday_mask & (1u << (iso_weekday(c->year, c->month, c->day) % 7))))
        return 0;
    if (r->filter_monthday) {
        int dim = te__days_in_month(c->year, c->month), ok = 0;
        for (int i = 0; i < r->n_monthday && !ok; i++) {
            int v = r->monthday[i];
            ok = v > 0 ? c->day == v : c->day == dim + v + 1;
        }
        if (!ok)
            return 0;
    }
    if (r->filter_yearday) {
        int len = te__is_leap(c->year) ? 366 : 365, doy = day_of_year(c), ok = 0;
        for (int i = 0; i < r->n_yearday && !ok; i++) {
            int v = r->yearday[i];
            ok = v > 0 ? doy == v : doy == len + v + 1;
        }
        if (!ok)
            return 0;
    }
    return 1;
}

static te_err_t new_iterator(const te_recurrence_t *r, const te_civil_t *dtstart,
                             icalrecur_iterator **out) {
    icalerror_clear_errno();
    *out = icalrecur_iterator_new(r->rule, te__civil_to_ical(dtstart));
    if (!*out)
        return icalerrno == ICAL_NEWFAILED_ERROR ? TE_ERR_NOMEM : TE_ERR_RRULE;
    return TE_OK;
}

/* The earliest wall-clock time (as floating()) that can resolve to an
 * instant after `after`: the local time of `after`, less the length of a
 * DST gap that ended shortly before it (a time pushed out of a gap is
 * earlier on the wall clock than the instant it becomes).  INT64_MIN when
 * there is no bound. */
static te_time_t wall_floor(const te_recurrence_t *r, te_time_t after) {
    te_civil_t la;
    int off_now, off_before;
    if (after == INT64_MIN || te_tz_to_local(r->zone, after, &la, &off_now) != TE_OK ||
        te_tz_offset_at(r->zone, after - 2 * SEC_PER_DAY * USEC, &off_before) != TE_OK)
        return INT64_MIN;
    te_time_t margin = off_now > off_before ? (te_time_t)(off_now - off_before) * USEC : 0;
    return floating(&la) - margin;
}

/* Positions a fresh iterator at or before wall-clock time ls (see the top
 * of the file).  Returns TE_OK with g->it set, or TE_OK with g->it NULL
 * when a plain walk from DTSTART is as good. */
static te_err_t fast_forward(gen_t *g, te_time_t ls) {
    const te_recurrence_t *r = g->r;
    if (ls <= g->start_f)
        return TE_OK;
    if (r->freq >= F_DAILY) {
        te_civil_t day;
        if (te_time_to_civil(ls, &day) != TE_OK)
            return TE_OK;
        day.hour = day.minute = day.second = day.usec = 0;
        if (floating(&day) <= g->start_f)
            return TE_OK;
        icalrecur_iterator *it;
        te_err_t err = new_iterator(r, &g->start, &it);
        if (err)
            return err;
        if (!icalrecur_iterator_set_start(it, te__civil_to_ical(&day))) {
            icalrecur_iterator_free(it);
            return TE_OK;
        }
        g->it = it;
    } else {
        int64_t unit = r->freq == F_HOURLY ? 3600 : r->freq == F_MINUTELY ? 60 : 1;
        te_time_t period = unit * r->rule.interval * USEC;
        te_time_t k = (ls - g->start_f) / period;
        if (k <= 0)
            return TE_OK;
        te_civil_t s;
        if (te_time_to_civil(g->start_f + k * period, &s) != TE_OK)
            return TE_OK;
        te_err_t err = new_iterator(r, &s, &g->it);
        if (err)
            return err;
    }
    g->emit_start = 0; /* DTSTART ≤ after: not wanted */
    return TE_OK;
}

/* start/start_utc: DTSTART of the series as wall clock and instant;
 * after: the query wants only occurrences after this (INT64_MIN: all);
 * fast: fast-forward allowed (only without a count limit). */
static te_err_t gen_init(gen_t *g, const te_recurrence_t *r, const te_civil_t *start,
                         te_time_t start_utc, unsigned count_limit, te_time_t after, int fast) {
    memset(g, 0, sizeof *g);
    g->r = r;
    g->start = *start;
    g->start_f = floating(start);
    g->start_utc = start_utc;
    g->emit_start = 1;
    g->count_limit = count_limit;
    g->buf = g->inline_buf;
    g->cap = GEN_INLINE;
    te_time_t ls = wall_floor(r, after);
    /* One more day of slack for zones that change offset twice in 48 h. */
    g->skip_below_f = ls == INT64_MIN ? INT64_MIN : ls - SEC_PER_DAY * USEC;
    if (fast && ls != INT64_MIN && count_limit == 0) {
        te_err_t err = fast_forward(g, ls);
        if (err)
            return err;
    }
    if (!g->it)
        return new_iterator(r, start, &g->it);
    return TE_OK;
}

static void gen_free(gen_t *g) {
    if (g->it)
        icalrecur_iterator_free(g->it);
    if (g->buf != g->inline_buf)
        free(g->buf);
}

/* Next local candidate resolved to an instant, in wall-clock order.
 * 1 = got one (*gap set when it was shifted out of a DST gap), 0 = the
 * series ended, -1 = error in g->err. */
static int raw_next(gen_t *g, te_time_t *utc, int *gap) {
    const te_recurrence_t *r = g->r;
    for (;;) {
        if (g->count_limit && g->produced >= g->count_limit)
            return 0;
        te_civil_t c;
        int flags = 0;
        if (g->emit_start) {
            /* DTSTART is the given instant, also when its wall-clock time
             * is ambiguous and would otherwise resolve to the earlier one. */
            g->emit_start = 0;
            *utc = g->start_utc;
        } else {
            if (++g->iterations > TE_RECUR_MAX_ITERATIONS) {
                g->err = TE_ERR_RRULE;
                return -1;
            }
            struct icaltimetype t = icalrecur_iterator_next(g->it);
            if (icaltime_is_null_time(t))
                return 0;
            c.year = t.year;
            c.month = t.month;
            c.day = t.day;
            c.hour = t.hour;
            c.minute = t.minute;
            c.second = t.second;
            c.usec = g->start.usec;
            te_time_t f = floating(&c);
            if (f == INT64_MIN) /* not a valid calendar time: never expected */
                continue;
            if (f <= g->start_f) /* DTSTART itself (already produced) */
                continue;
            if (!filter_ok(r, &c))
                continue;
            if (f < g->skip_below_f && f > g->start_f + SEC_PER_DAY * USEC) {
                g->produced++;
                continue;
            }
            te_err_t err = te_tz_from_local(r->zone, &c, utc, &flags);
            if (err) {
                g->err = err;
                return -1;
            }
            if (*utc <= g->start_utc) /* nothing before DTSTART */
                continue;
        }
        *gap = (flags & TE_LOCAL_GAP) != 0;
        if (r->has_until && *utc > r->until) {
            /* Later wall-clock times resolve to later instants unless this
             * one was pushed out of a gap: only then can more follow. */
            if (*gap)
                continue;
            return 0;
        }
        g->produced++;
        return 1;
    }
}

static te_err_t buf_insert(gen_t *g, te_time_t v) {
    if (g->nbuf == g->cap) {
        size_t ncap = g->cap * 2;
        te_time_t *nb = malloc(ncap * sizeof *nb);
        if (!nb)
            return TE_ERR_NOMEM;
        memcpy(nb, g->buf, g->nbuf * sizeof *nb);
        if (g->buf != g->inline_buf)
            free(g->buf);
        g->buf = nb;
        g->cap = ncap;
    }
    size_t i = g->nbuf;
    while (i > 0 && g->buf[i - 1] > v) {
        g->buf[i] = g->buf[i - 1];
        i--;
    }
    g->buf[i] = v;
    g->nbuf++;
    return TE_OK;
}

/* Next occurrence in strictly increasing instant order.  A candidate that
 * was not shifted out of a gap sets the watermark: no later candidate can
 * resolve to an earlier instant, so everything buffered up to it is
 * final.  1 = *out set, 0 = ended, -1 = error in g->err. */
static int gen_next(gen_t *g, te_time_t *out) {
    for (;;) {
        if (g->nbuf > 0 && (g->source_done || (g->have_wm && g->buf[0] <= g->wm))) {
            te_time_t v = g->buf[0];
            memmove(g->buf, g->buf + 1, (g->nbuf - 1) * sizeof *g->buf);
            g->nbuf--;
            if (g->have_last && v <= g->last)
                continue; /* two wall-clock times, one instant */
            g->have_last = 1;
            g->last = v;
            *out = v;
            return 1;
        }
        if (g->source_done)
            return 0;
        te_time_t u;
        int gap;
        int rc = raw_next(g, &u, &gap);
        if (rc < 0)
            return -1;
        if (rc == 0) {
            g->source_done = 1;
            continue;
        }
        te_err_t err = buf_insert(g, u);
        if (err) {
            g->err = err;
            return -1;
        }
        if (!gap) {
            g->have_wm = 1;
            g->wm = u;
        }
    }
}

/* First occurrence of generator g strictly after `after`. */
static te_err_t gen_first_after(gen_t *g, te_time_t after, te_time_t *out) {
    for (;;) {
        te_time_t u;
        int rc = gen_next(g, &u);
        if (rc < 0)
            return g->err;
        if (rc == 0)
            return TE_ERR_SERIES_ENDED;
        if (u > after) {
            *out = u;
            return TE_OK;
        }
    }
}

te_err_t te_recurrence_next_after_ex(const te_recurrence_t *r, te_time_t after, unsigned flags,
                                     te_time_t *out) {
    if (!r || !out)
        return TE_ERR_INVALID_ARG;
    gen_t g;
    te_err_t err = gen_init(&g, r, &r->dtstart_local, r->dtstart, r->count, after,
                            !(flags & TE_RECUR_WALK));
    if (!err)
        err = gen_first_after(&g, after, out);
    gen_free(&g);
    return err;
}

te_err_t te_recurrence_next_after(const te_recurrence_t *r, te_time_t after, te_time_t *out) {
    return te_recurrence_next_after_ex(r, after, 0, out);
}

te_err_t te_recurrence_list(const te_recurrence_t *r, te_time_t after, size_t max, te_time_t *out,
                            size_t *n) {
    if (n)
        *n = 0;
    if (!r || !n || (!out && max > 0))
        return TE_ERR_INVALID_ARG;
    if (max == 0)
        return TE_OK;
    gen_t g;
    te_err_t err = gen_init(&g, r, &r->dtstart_local, r->dtstart, r->count, after, 1);
    while (!err && *n < max) {
        te_time_t u;
        int rc = gen_next(&g, &u);
        if (rc < 0)
            err = g.err;
        else if (rc == 0)
            break;
        else if (u > after)
            out[(*n)++] = u;
    }
    gen_free(&g);
    return err;
}

te_err_t te_recurrence_next_due(const te_recurrence_t *r, te_time_t current_due,
                                te_time_t completed_at, unsigned occurrences_so_far,
                                te_time_t *next) {
    if (!r || !next)
        return TE_ERR_INVALID_ARG;
    if (r->anchor == TE_ANCHOR_SCHEDULE)
        return te_recurrence_next_after(r, current_due > completed_at ? current_due : completed_at,
                                        next);
    /* TE_ANCHOR_COMPLETION */
    if (occurrences_so_far == 0)
        occurrences_so_far = 1;
    if (r->count && occurrences_so_far >= r->count)
        return TE_ERR_SERIES_ENDED;
    te_civil_t lc;
    if (te_tz_to_local(r->zone, completed_at, &lc, NULL) != TE_OK)
        return TE_ERR_TIME;
    te_civil_t start = lc;
    if (r->freq >= F_DAILY) {
        start.hour = r->dtstart_local.hour;
        start.minute = r->dtstart_local.minute;
        start.second = r->dtstart_local.second;
        start.usec = r->dtstart_local.usec;
    }
    te_time_t start_utc;
    if (te_tz_from_local(r->zone, &start, &start_utc, NULL) != TE_OK)
        return TE_ERR_TIME;
    gen_t g;
    te_time_t threshold = start_utc > completed_at ? start_utc : completed_at;
    te_err_t err = gen_init(&g, r, &start, start_utc, 0, threshold, 0);
    if (!err)
        err = gen_first_after(&g, threshold, next);
    gen_free(&g);
    return err;
}

/* ------------------------------------------------------------------ */
/* the simple form                                                      */

typedef struct simple_ctx_s {
    te_problems_t *problems;
    int n;
    te_err_t err; /* TE_ERR_NOMEM from the list */
    char *errstr;
    size_t errstr_size;
} simple_ctx_t;

static void problem(simple_ctx_t *ctx, const char *field, const char *fmt, ...) TE_PRINTF(3, 4);
static void problem(simple_ctx_t *ctx, const char *field, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (ctx->n == 0)
        te__seterr(ctx->errstr, ctx->errstr_size, TE_ERR_INVALID, "%s: %s", field, msg);
    ctx->n++;
    if (te_problems_add(ctx->problems, field, "%s", msg) != TE_OK)
        ctx->err = TE_ERR_NOMEM;
}

static size_t append_days(char *p, size_t room, unsigned days) {
    size_t used = 0;
    int first = 1;
    for (int i = 0; i < 7; i++) {
        if (!(days & (1u << i)))
            continue;
        int k = snprintf(p + used, room > used ? room - used : 0, "%s%s", first ? "" : ",",
                         day_names[i]);
        used += (size_t)k;
        first = 0;
    }
    return used;
}

te_err_t te_simple_recurrence_to_rrule(const te_simple_recurrence_t *s, te_time_t dtstart,
                                       const char *zone, char *buf, size_t size,
                                       te_problems_t *problems, char *errstr,
                                       size_t errstr_size) {
    if (!s || !zone || !buf || size == 0)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG,
                          "recurrence, zone and buffer are required");
    buf[0] = '\0';
    te_err_t err = te_tz_check(zone, errstr, errstr_size);
    if (err)
        return err;
    te_civil_t ls;
    if (te_tz_to_local(zone, dtstart, &ls, NULL) != TE_OK)
        return te__seterr(errstr, errstr_size, TE_ERR_TIME, "the start time is out of range");

    simple_ctx_t ctx = {problems, 0, TE_OK, errstr, errstr_size};
    enum { T_NONE, T_DAILY, T_WEEKLY, T_MONTHLY, T_YEARLY, T_CUSTOM } type = T_NONE;
    if (!s->type || !*s->type) {
        problem(&ctx, "recurrence.type", "is required");
    } else if (strcasecmp(s->type, "daily") == 0) {
        type = T_DAILY;
    } else if (strcasecmp(s->type, "weekly") == 0) {
        type = T_WEEKLY;
    } else if (strcasecmp(s->type, "monthly") == 0) {
        type = T_MONTHLY;
    } else if (strcasecmp(s->type, "yearly") == 0) {
        type = T_YEARLY;
    } else if (strcasecmp(s->type, "custom") == 0) {
        type = T_CUSTOM;
    } else {
        problem(&ctx, "recurrence.type",
                "must be one of daily, weekly, monthly, yearly, custom (got '%.40s')", s->type);
    }
    if (s->interval < 0 || s->interval > TE_SIMPLE_MAX_INTERVAL)
        problem(&ctx, "recurrence.interval", "must be between 1 and %d (0 means 1), got %d",
                TE_SIMPLE_MAX_INTERVAL, s->interval);
    if (s->days_of_week & ~TE_DOW_ALL)
        problem(&ctx, "recurrence.days_of_week",
                "only bits 0 (Monday) to 6 (Sunday) may be set, got 0x%x", s->days_of_week);
    if (s->day_of_month < 0 || s->day_of_month > 31)
        problem(&ctx, "recurrence.day_of_month", "must be between 1 and 31 (0 means none), got %d",
                s->day_of_month);
    if (s->days_of_week && (type == T_MONTHLY || type == T_YEARLY))
        problem(&ctx, "recurrence.days_of_week", "is not used with type %s", s->type);
    if (s->day_of_month && (type == T_DAILY || type == T_WEEKLY || type == T_YEARLY))
        problem(&ctx, "recurrence.day_of_month", "is not used with type %s", s->type);
    if (type == T_CUSTOM && s->days_of_week && s->day_of_month)
        problem(&ctx, "recurrence.day_of_month",
                "cannot be combined with days_of_week for type custom");
    te_time_t until = 0;
    if (s->has_end_date) {
        te_civil_t le;
        te_time_t next_midnight;
        if (te_tz_to_local(zone, s->end_date, &le, NULL) != TE_OK) {
            problem(&ctx, "recurrence.end_date", "is out of range");
        } else {
            te_civil_t d0 = {le.year, le.month, le.day, 0, 0, 0, 0};
            te_civil_t s0 = {ls.year, ls.month, ls.day, 0, 0, 0, 0};
            te_civil_t nd;
            if (floating(&d0) < floating(&s0)) {
                problem(&ctx, "recurrence.end_date",
                        "must not be before the start date (%04d-%02d-%02d)", ls.year, ls.month,
                        ls.day);
            } else if (te_time_to_civil(floating(&d0) + SEC_PER_DAY * USEC, &nd) != TE_OK ||
                       te_tz_from_local(zone, &nd, &next_midnight, NULL) != TE_OK) {
                problem(&ctx, "recurrence.end_date", "is out of range");
            } else {
                /* The end of that local day, in whole seconds. */
                until = next_midnight - USEC;
            }
        }
    }
    if (ctx.err)
        return te__seterr(errstr, errstr_size, TE_ERR_NOMEM, "out of memory");
    if (ctx.n)
        return TE_ERR_INVALID;

    char rule[256];
    size_t len = 0;
    int interval = s->interval ? s->interval : 1;
    int dom = 0; /* day of month to express, 0 = implied by DTSTART */
    int explicit_dom = 0;
    const char *freq;
    unsigned days = s->days_of_week;
    switch (type) {
    case T_DAILY:
        freq = "DAILY";
        break;
    case T_WEEKLY:
        freq = "WEEKLY";
        break;
    case T_MONTHLY:
        freq = "MONTHLY";
        break;
    case T_YEARLY:
        freq = "YEARLY";
        break;
    default: /* T_CUSTOM */
        freq = days ? "WEEKLY" : s->day_of_month ? "MONTHLY" : "DAILY";
        break;
    }
    if (strcmp(freq, "MONTHLY") == 0) {
        explicit_dom = s->day_of_month != 0;
        dom = explicit_dom ? s->day_of_month : ls.day;
    }
    len += (size_t)snprintf(rule + len, sizeof rule - len, "FREQ=%s", freq);
    if (interval > 1)
        len += (size_t)snprintf(rule + len, sizeof rule - len, ";INTERVAL=%d", interval);
    if (days && strcmp(freq, "MONTHLY") != 0) {
        len += (size_t)snprintf(rule + len, sizeof rule - len, ";BYDAY=");
        len += append_days(rule + len, sizeof rule - len, days);
    }
    if (dom >= 29) {
        len += (size_t)snprintf(rule + len, sizeof rule - len, ";BYMONTHDAY=28");
        for (int d = 29; d <= dom; d++)
            len += (size_t)snprintf(rule + len, sizeof rule - len, ",%d", d);
        len += (size_t)snprintf(rule + len, sizeof rule - len, ";BYSETPOS=-1");
    } else if (explicit_dom) {
        len += (size_t)snprintf(rule + len, sizeof rule - len, ";BYMONTHDAY=%d", dom);
    }
    if (type == T_YEARLY && ls.month == 2 && ls.day == 29)
        len += (size_t)snprintf(rule + len, sizeof rule - len,
                                ";BYMONTH=2;BYMONTHDAY=28,29;BYSETPOS=-1");
    if (s->has_end_date) {
        te_civil_t u;
        te_time_to_civil(until, &u);
        len += (size_t)snprintf(rule + len, sizeof rule - len,
                                ";UNTIL=%04d%02d%02dT%02d%02d%02dZ", u.year, u.month, u.day,
                                u.hour, u.minute, u.second);
    }
    if (len >= sizeof rule)
        return te__seterr(errstr, errstr_size, TE_ERR_INTERNAL, "rule text overflow");
    err = te_rrule_validate(rule, errstr, errstr_size);
    if (err)
        return err == TE_ERR_NOMEM ? err : TE_ERR_INTERNAL;
    if (len >= size)
        return te__seterr(errstr, errstr_size, TE_ERR_BUFFER_TOO_SMALL,
                          "the rule needs %zu bytes", len + 1);
    memcpy(buf, rule, len + 1);
    return TE_OK;
}
