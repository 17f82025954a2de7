/* td_common (internal to the daemons) — structured JSON-lines logging.
 *
 * Every record is one JSON object on one line of stderr:
 *   {"ts":"2026-03-27T08:00:00.123Z","level":"info","service":"todo-api",
 *    "msg":"...","trace_id":"...", <fields...>}
 * "ts" is RFC 3339 UTC with milliseconds; "trace_id" is omitted when NULL.
 * The extra fields follow in their insertion order; a field may not
 * override ts/level/service/msg (nor trace_id when one is given): such
 * members are dropped.  Bytes that are not valid UTF-8 (in msg, trace_id
 * or string fields) are written as U+FFFD, so a line is always valid JSON.
 * Secrets must never be passed in msg or fields.
 *
 * Ownership: td_log() takes ownership of `fields` (it is released with
 * json_object_put() even when the level is filtered out).  The service
 * name given to td_log_init() is copied.
 *
 * Thread-safety: td_log_init() is meant to be called once from main()
 * before other threads start; td_log_set_level() may be called at any
 * time (atomic); td_log(), td_logf() and td_log_enabled() are thread-safe
 * and each line is written with a single write(2) (retried only if the
 * kernel writes part of it), so lines of different threads never
 * interleave. */
#ifndef TD_LOG_H
#define TD_LOG_H

#include <stdarg.h>

struct json_object;

typedef enum { TD_LOG_DEBUG, TD_LOG_INFO, TD_LOG_WARN, TD_LOG_ERROR } td_log_level_t;

/* Sets the service name (copied, at most 127 bytes kept) and the minimum
 * level from TE_LOG_LEVEL (debug|info|warn|error, case-insensitive;
 * default info).  An unknown TE_LOG_LEVEL logs a warning and uses info.
 * Before td_log_init() the service is "unknown" and the level info. */
void td_log_init(const char *service);

/* Parses "debug"/"info"/"warn"/"warning"/"error" (case-insensitive);
 * returns 0 and sets *out, or -1. */
int td_log_level_parse(const char *s, td_log_level_t *out);

/* Changes / reads the minimum level. */
void td_log_set_level(td_log_level_t lvl);
td_log_level_t td_log_get_level(void);

/* 1 when a record of this level would be written. */
int td_log_enabled(td_log_level_t lvl);

/* Writes one record.  trace_id may be NULL (omitted); msg NULL is "".
 * fields: a json-c object whose members are appended (ownership taken;
 * may be NULL). */
void td_log(td_log_level_t lvl, const char *trace_id, const char *msg, struct json_object *fields);

/* printf-style message, no extra fields. */
void td_logf(td_log_level_t lvl, const char *trace_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void td_vlogf(td_log_level_t lvl, const char *trace_id, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* The name of a level: "debug", "info", "warn", "error". */
const char *td_log_level_name(td_log_level_t lvl);

#endif /* TD_LOG_H */
