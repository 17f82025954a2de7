/* libtodoevents — RFC 3339 date-times and IANA time zones.
 *
 * Instants are int64_t microseconds since 1970-01-01T00:00:00Z ("te_time",
 * leap seconds not counted, as in POSIX).  Supported years: 0001–9999.
 *
 * Zones are IANA names ("Europe/Berlin", "UTC") resolved against the
 * system tz database (/usr/share/zoneinfo, via libical).  Local→UTC
 * conversion is our own, per RFC 5545 §3.3.5: a local time inside a DST
 * gap is shifted forward by the length of the gap (it is read with the
 * offset in force before the gap); an ambiguous local time (fall-back
 * overlap) takes the first, earlier instant.
 *
 * All functions are thread-safe (zone data is loaded once and shared). */
#ifndef TODOEVENTS_DATETIME_H
#define TODOEVENTS_DATETIME_H

#include "todoevents/common.h"
#include "todoevents/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef int64_t te_time_t; /* microseconds since the Unix epoch, UTC */

#define TE_USEC_PER_SEC INT64_C(1000000)

/* A wall-clock (civil) date-time without zone. */
typedef struct te_civil_s {
    int year;   /* 1..9999 */
    int month;  /* 1..12 */
    int day;    /* 1..31 */
    int hour;   /* 0..23 */
    int minute; /* 0..59 */
    int second; /* 0..59 */
    int usec;   /* 0..999999 */
} te_civil_t;

/* Parses an RFC 3339 date-time (section 5.6 "date-time"): a full date, "T"
 * (or "t"), a time with optional fraction of any length (kept to the
 * microsecond, extra digits truncated), and "Z"/"z" or ±hh:mm.  Leap
 * second ":60" is accepted and read as the next second.  Nothing may
 * follow.  On success *out is the instant and, if offset_sec is not NULL,
 * *offset_sec the written offset in seconds (0 for Z).
 * Errors: TE_ERR_INVALID_ARG (NULL), TE_ERR_TIME (detail in errstr). */
TE_API te_err_t te_time_parse(const char *text, te_time_t *out, int *offset_sec,
                              char *errstr, size_t errstr_size);

/* Formats t as RFC 3339 with the given UTC offset (seconds, a whole
 * number of minutes, |offset| < 24 h): "Z" when use_z is non-zero and the
 * offset is 0, otherwise "+hh:mm".  Fraction: none when whole seconds,
 * else 3 digits when whole milliseconds, else 6.  Output is at most
 * TE_TIME_STRLEN bytes including the NUL.  Returns TE_ERR_BUFFER_TOO_SMALL
 * or TE_ERR_TIME (out of range). */
#define TE_TIME_STRLEN 40
TE_API te_err_t te_time_format(te_time_t t, int offset_sec, int use_z, char *buf,
                               size_t size);

/* Shorthand: te_time_format(t, 0, 1, ...) — "...Z". */
TE_API te_err_t te_time_format_utc(te_time_t t, char *buf, size_t size);

/* Current time (CLOCK_REALTIME). */
TE_API te_time_t te_time_now(void);

/* Civil (proleptic Gregorian) UTC breakdown and its inverse; no zone.
 * te_civil_to_time validates every field (TE_ERR_TIME). */
TE_API te_err_t te_time_to_civil(te_time_t t, te_civil_t *out);
TE_API te_err_t te_civil_to_time(const te_civil_t *c, te_time_t *out);

/* Checks that zone is a known IANA zone name.  Names are also checked for
 * shape (no "..", no leading "/", at most 64 bytes of [A-Za-z0-9/_+-]).
 * TE_OK or TE_ERR_ZONE with detail. */
TE_API te_err_t te_tz_check(const char *zone, char *errstr, size_t errstr_size);

/* 1 if zone names UTC itself ("UTC", "Etc/UTC", "Z", ...), else 0. */
TE_API int te_tz_is_utc(const char *zone);

/* UTC offset (seconds east) in force in zone at instant t. */
TE_API te_err_t te_tz_offset_at(const char *zone, te_time_t t, int *offset_sec);

/* Instant t as wall-clock time in zone; offset_sec may be NULL. */
TE_API te_err_t te_tz_to_local(const char *zone, te_time_t t, te_civil_t *local,
                               int *offset_sec);

/* How a local time mapped to an instant (bit flags, for callers that care). */
#define TE_LOCAL_EXACT     0
#define TE_LOCAL_GAP       1 /* did not exist; shifted forward by the gap */
#define TE_LOCAL_AMBIGUOUS 2 /* existed twice; the earlier instant taken */

/* Wall-clock time in zone → instant, with the gap/overlap rules above.
 * flags (may be NULL) receives TE_LOCAL_*. */
TE_API te_err_t te_tz_from_local(const char *zone, const te_civil_t *local,
                                 te_time_t *out, int *flags);

/* Formats t with the offset zone has at t: "Z" only when the zone is UTC
 * itself (te_tz_is_utc), "+00:00" for e.g. Europe/London in winter. */
TE_API te_err_t te_time_format_in_zone(te_time_t t, const char *zone, char *buf,
                                       size_t size);

#ifdef __cplusplus
}
#endif
#endif
