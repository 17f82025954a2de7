/* RFC 3339 parsing/formatting, civil-time arithmetic and zone conversion.
 *
 * Zone offsets come from libical's reading of the system tz database;
 * local→UTC resolution is done here (not with libical's own conversion,
 * which picks the later offset for ambiguous times). */
#include "todoevents/datetime.h"
#include "internal.h"
#include "ical_time.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define USEC TE_USEC_PER_SEC
#define SEC_PER_DAY INT64_C(86400)

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d) {
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const int64_t doe = z - era * 146097;
    const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

int te__is_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int te__days_in_month(int y, int m) {
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && te__is_leap(y) ? 29 : dim[m - 1];
}

struct icaltimetype te__civil_to_ical(const te_civil_t *c) {
    struct icaltimetype t = icaltime_null_time();
    t.year = c->year;
    t.month = c->month;
    t.day = c->day;
    t.hour = c->hour;
    t.minute = c->minute;
    t.second = c->second;
    t.is_date = 0;
    return t;
}

static int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* Bounds: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999Z */
#define TE_TIME_MIN (days_from_civil(1, 1, 1) * SEC_PER_DAY * USEC)
#define TE_TIME_MAX ((days_from_civil(9999, 12, 31) + 1) * SEC_PER_DAY * USEC - 1)

te_err_t te_time_to_civil(te_time_t t, te_civil_t *out) {
    if (!out)
        return TE_ERR_INVALID_ARG;
    if (t < TE_TIME_MIN || t > TE_TIME_MAX)
        return TE_ERR_TIME;
    int64_t secs = floor_div(t, USEC);
    int64_t days = floor_div(secs, SEC_PER_DAY);
    int64_t sod = secs - days * SEC_PER_DAY;
    civil_from_days(days, &out->year, &out->month, &out->day);
    out->hour = (int)(sod / 3600);
    out->minute = (int)(sod / 60 % 60);
    out->second = (int)(sod % 60);
    out->usec = (int)(t - secs * USEC);
    return TE_OK;
}

static int civil_valid(const te_civil_t *c) {
    return c->year >= 1 && c->year <= 9999 && c->month >= 1 && c->month <= 12 && c->day >= 1 &&
           c->day <= te__days_in_month(c->year, c->month) && c->hour >= 0 && c->hour <= 23 &&
           c->minute >= 0 && c->minute <= 59 && c->second >= 0 && c->second <= 59 &&
           c->usec >= 0 && c->usec <= 999999;
}

static te_time_t civil_to_time_unchecked(const te_civil_t *c) {
    int64_t days = days_from_civil(c->year, c->month, c->day);
    return ((days * SEC_PER_DAY + c->hour * 3600 + c->minute * 60 + c->second) * USEC) + c->usec;
}

te_err_t te_civil_to_time(const te_civil_t *c, te_time_t *out) {
    if (!c || !out)
        return TE_ERR_INVALID_ARG;
    if (!civil_valid(c))
        return TE_ERR_TIME;
    *out = civil_to_time_unchecked(c);
    return TE_OK;
}

te_time_t te_time_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (te_time_t)ts.tv_sec * USEC + ts.tv_nsec / 1000;
}

/* Reads exactly n decimal digits. */
static int digits(const char *s, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

te_err_t te_time_parse(const char *text, te_time_t *out, int *offset_sec, char *errstr,
                       size_t errstr_size) {
    if (!text || !out)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "no text");
    const char *s = text;
    te_civil_t c = {0};
    int sec;
#define BAD(...) return te__seterr(errstr, errstr_size, TE_ERR_TIME, __VA_ARGS__)
    if (!digits(s, 4, &c.year) || s[4] != '-' || !digits(s + 5, 2, &c.month) || s[7] != '-' ||
        !digits(s + 8, 2, &c.day))
        BAD("'%s' is not an RFC 3339 date-time (expected YYYY-MM-DDThh:mm:ss[.frac](Z|+hh:mm))",
            text);
    s += 10;
    if (*s != 'T' && *s != 't')
        BAD("'%s': expected 'T' between date and time", text);
    s++;
    if (!digits(s, 2, &c.hour) || s[2] != ':' || !digits(s + 3, 2, &c.minute) || s[5] != ':' ||
        !digits(s + 6, 2, &sec))
        BAD("'%s': time must be hh:mm:ss", text);
    s += 8;
    if (*s == '.') {
        s++;
        int n = 0, us = 0;
        while (*s >= '0' && *s <= '9') {
            if (n < 6)
                us = us * 10 + (*s - '0');
            n++;
            s++;
        }
        if (n == 0)
            BAD("'%s': '.' must be followed by digits", text);
        for (int k = n; k < 6; k++)
            us *= 10;
        c.usec = us;
    }
    int off = 0;
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        int oh, om;
        if (!digits(s + 1, 2, &oh) || s[3] != ':' || !digits(s + 4, 2, &om))
            BAD("'%s': offset must be Z or +hh:mm / -hh:mm", text);
        if (oh > 23 || om > 59)
            BAD("'%s': offset out of range", text);
        off = (oh * 3600 + om * 60) * (*s == '-' ? -1 : 1);
        s += 6;
    } else {
        BAD("'%s': missing time zone offset (Z or +hh:mm)", text);
    }
    if (*s)
        BAD("'%s': unexpected text after the date-time", text);
    if (c.year < 1)
        BAD("'%s': year must be 0001-9999", text);
    if (c.month < 1 || c.month > 12)
        BAD("'%s': month out of range", text);
    if (c.day < 1 || c.day > te__days_in_month(c.year, c.month))
        BAD("'%s': day out of range for the month", text);
    if (c.hour > 23 || c.minute > 59 || sec > 60)
        BAD("'%s': time of day out of range", text);
    /* RFC 3339 allows a leap second; POSIX time has none: read as +1s. */
    c.second = sec == 60 ? 59 : sec;
    te_time_t t = civil_to_time_unchecked(&c) + (sec == 60 ? USEC : 0) - (te_time_t)off * USEC;
    if (t < TE_TIME_MIN || t > TE_TIME_MAX)
        BAD("'%s': outside the supported range 0001-9999 (UTC)", text);
#undef BAD
    *out = t;
    if (offset_sec)
        *offset_sec = off;
    return TE_OK;
}

te_err_t te_time_format(te_time_t t, int offset_sec, int use_z, char *buf, size_t size) {
    if (!buf)
        return TE_ERR_INVALID_ARG;
    if (offset_sec % 60 != 0 || offset_sec <= -86400 || offset_sec >= 86400)
        return TE_ERR_INVALID_ARG;
    te_civil_t c;
    if (te_time_to_civil(t + (te_time_t)offset_sec * USEC, &c) != TE_OK)
        return TE_ERR_TIME;
    char frac[16] = "";
    if (c.usec % 1000 == 0 && c.usec)
        snprintf(frac, sizeof frac, ".%03d", c.usec / 1000);
    else if (c.usec)
        snprintf(frac, sizeof frac, ".%06d", c.usec);
    char zone[16];
    if (offset_sec == 0 && use_z) {
        strcpy(zone, "Z");
    } else {
        int a = offset_sec < 0 ? -offset_sec : offset_sec;
        snprintf(zone, sizeof zone, "%c%02d:%02d", offset_sec < 0 ? '-' : '+', a / 3600,
                 a / 60 % 60);
    }
    int n = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d%s%s", c.year, c.month, c.day,
                     c.hour, c.minute, c.second, frac, zone);
    if (n < 0 || (size_t)n >= size)
        return TE_ERR_BUFFER_TOO_SMALL;
    return TE_OK;
}

te_err_t te_time_format_utc(te_time_t t, char *buf, size_t size) {
    return te_time_format(t, 0, 1, buf, size);
}

/* ---- zones ---- */

static const char *const utc_names[] = {"UTC", "Etc/UTC", "Etc/Universal", "Etc/Zulu",
                                        "Universal", "Zulu"};

int te_tz_is_utc(const char *zone) {
    if (!zone)
        return 0;
    for (size_t i = 0; i < sizeof utc_names / sizeof *utc_names; i++)
        if (strcmp(zone, utc_names[i]) == 0)
            return 1;
    return 0;
}

static int zone_name_shape_ok(const char *z) {
    size_t n = strlen(z);
    if (n == 0 || n > 64 || z[0] == '/' || z[n - 1] == '/')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = z[i];
        int ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                 ch == '/' || ch == '_' || ch == '+' || ch == '-';
        if (!ok)
            return 0;
        if (ch == '/' && z[i + 1] == '/')
            return 0;
    }
    return 1;
}

/* Zones looked up recently.  libical finds a zone by a linear search of
 * its ~600 names on every call (a quarter of a next-occurrence query), so
 * remember the last few; libical keeps each zone for the life of the
 * process, so the pointers never dangle. */
#define ZONE_CACHE_SIZE 16
static struct {
    char name[65];
    icaltimezone *tz;
} zone_cache[ZONE_CACHE_SIZE];
static unsigned zone_cache_next;
static pthread_mutex_t zone_cache_lock = PTHREAD_MUTEX_INITIALIZER;

/* libical's zone object for name, or NULL. */
static icaltimezone *zone_lookup(const char *zone) {
    if (!zone || !zone_name_shape_ok(zone))
        return NULL;
    if (te_tz_is_utc(zone))
        return icaltimezone_get_utc_timezone();
    icaltimezone *tz = NULL;
    pthread_mutex_lock(&zone_cache_lock);
    for (unsigned i = 0; i < ZONE_CACHE_SIZE && !tz; i++)
        if (zone_cache[i].tz && strcmp(zone_cache[i].name, zone) == 0)
            tz = zone_cache[i].tz;
    pthread_mutex_unlock(&zone_cache_lock);
    if (tz)
        return tz;
    tz = icaltimezone_get_builtin_timezone(zone);
    if (tz) {
        pthread_mutex_lock(&zone_cache_lock);
        unsigned slot = zone_cache_next++ % ZONE_CACHE_SIZE;
        snprintf(zone_cache[slot].name, sizeof zone_cache[slot].name, "%s", zone);
        zone_cache[slot].tz = tz;
        pthread_mutex_unlock(&zone_cache_lock);
    }
    return tz;
}

te_err_t te_tz_check(const char *zone, char *errstr, size_t errstr_size) {
    if (!zone)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "no zone name");
    if (!zone_name_shape_ok(zone))
        return te__seterr(errstr, errstr_size, TE_ERR_ZONE,
                          "'%s' is not an IANA time zone name", zone);
    if (!zone_lookup(zone))
        return te__seterr(errstr, errstr_size, TE_ERR_ZONE, "unknown time zone '%s'", zone);
    return TE_OK;
}

static int offset_at_secs(icaltimezone *tz, int64_t utc_secs) {
    te_civil_t c;
    if (te_time_to_civil(utc_secs * USEC, &c) != TE_OK)
        return 0;
    struct icaltimetype tt = te__civil_to_ical(&c);
    tt.zone = icaltimezone_get_utc_timezone();
    int is_dst = 0;
    return icaltimezone_get_utc_offset_of_utc_time(tz, &tt, &is_dst);
}

te_err_t te_tz_offset_at(const char *zone, te_time_t t, int *offset_sec) {
    if (!offset_sec)
        return TE_ERR_INVALID_ARG;
    icaltimezone *tz = zone_lookup(zone);
    if (!tz)
        return TE_ERR_ZONE;
    if (t < TE_TIME_MIN || t > TE_TIME_MAX)
        return TE_ERR_TIME;
    *offset_sec = offset_at_secs(tz, floor_div(t, USEC));
    return TE_OK;
}

te_err_t te_tz_to_local(const char *zone, te_time_t t, te_civil_t *local, int *offset_sec) {
    if (!local)
        return TE_ERR_INVALID_ARG;
    int off;
    te_err_t err = te_tz_offset_at(zone, t, &off);
    if (err)
        return err;
    if (offset_sec)
        *offset_sec = off;
    return te_time_to_civil(t + (te_time_t)off * USEC, local) ? TE_ERR_TIME : TE_OK;
}

te_err_t te_tz_from_local(const char *zone, const te_civil_t *local, te_time_t *out, int *flags) {
    if (!local || !out)
        return TE_ERR_INVALID_ARG;
    icaltimezone *tz = zone_lookup(zone);
    if (!tz)
        return TE_ERR_ZONE;
    if (!civil_valid(local))
        return TE_ERR_TIME;
    te_time_t lt = civil_to_time_unchecked(local);
    int64_t ls = floor_div(lt, USEC);
    te_time_t frac = lt - ls * USEC;
    /* The offsets in force a day either side bound every candidate. */
    int before = offset_at_secs(tz, ls - SEC_PER_DAY);
    int after = offset_at_secs(tz, ls + SEC_PER_DAY);
    int cand[2] = {before, after};
    int found = 0;
    int64_t best = 0;
    for (int i = 0; i < 2; i++) {
        int64_t u = ls - cand[i];
        if (offset_at_secs(tz, u) == cand[i]) {
            if (!found || u < best)
                best = u;
            found |= 1 << i;
        }
    }
    int f = TE_LOCAL_EXACT;
    if (!found) {
        /* In a gap: read with the offset before it, i.e. shift forward. */
        best = ls - before;
        f = TE_LOCAL_GAP;
    } else if (found == 3 && before != after) {
        f = TE_LOCAL_AMBIGUOUS;
    }
    if (flags)
        *flags = f;
    te_time_t r = best * USEC + frac;
    if (r < TE_TIME_MIN || r > TE_TIME_MAX)
        return TE_ERR_TIME;
    *out = r;
    return TE_OK;
}

te_err_t te_time_format_in_zone(te_time_t t, const char *zone, char *buf, size_t size) {
    int off;
    te_err_t err = te_tz_offset_at(zone, t, &off);
    if (err)
        return err;
    /* Offsets with seconds (historic LMT) are rounded to the minute for
     * RFC 3339, which has no seconds in offsets. */
    int rounded = (off / 60) * 60;
    return te_time_format(t, rounded, te_tz_is_utc(zone), buf, size);
}
