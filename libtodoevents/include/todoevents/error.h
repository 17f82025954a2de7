/* libtodoevents — error codes.
 *
 * Every fallible function returns a te_err_t (TE_OK == 0) and, where it can
 * say more, writes a human-readable detail into a caller buffer
 * (char *errstr, size_t errstr_size; NULL/0 allowed).  There is no errno and
 * no thread-local "last error".
 *
 * The enum is append-only: a value never changes meaning between releases.
 * Names, messages and retriability come from one table (src/error.c). */
#ifndef TODOEVENTS_ERROR_H
#define TODOEVENTS_ERROR_H

#include "todoevents/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X-macro table: name, message, retriable (1 = trying again later may work). */
#define TE_ERROR_TABLE(X)                                                        \
    X(TE_OK,                 "success",                                  0)      \
    X(TE_ERR_INVALID_ARG,    "invalid argument",                         0)      \
    X(TE_ERR_NOMEM,          "out of memory",                            1)      \
    X(TE_ERR_PARSE,          "malformed input",                          0)      \
    X(TE_ERR_INVALID,        "validation failed",                        0)      \
    X(TE_ERR_TIME,           "invalid date-time",                        0)      \
    X(TE_ERR_ZONE,           "unknown time zone",                        0)      \
    X(TE_ERR_RRULE,          "invalid recurrence rule",                  0)      \
    X(TE_ERR_SERIES_ENDED,   "recurrence series has no further occurrence", 0)   \
    X(TE_ERR_NOT_FOUND,      "not found",                                0)      \
    X(TE_ERR_BUFFER_TOO_SMALL, "buffer too small",                       0)      \
    X(TE_ERR_UNSUPPORTED,    "unsupported",                              0)      \
    X(TE_ERR_IO,             "input/output error",                       1)      \
    X(TE_ERR_UNKNOWN_KEY,    "unknown configuration key",                0)      \
    X(TE_ERR_INTERNAL,       "internal error",                           0)      \
    X(TE_ERR_KAFKA,          "Kafka error",                              1)      \
    X(TE_ERR_QUEUE_FULL,     "queue full",                               1)      \
    X(TE_ERR_TIMEOUT,        "timed out",                                1)      \
    X(TE_ERR_CLOSED,         "handle is closed or closing",              0)      \
    X(TE_ERR_UNAUTHORIZED,   "authentication failed",                    0)

typedef enum te_err_e {
#define TE_ERR_ENUM_(name, msg, retriable) name,
    TE_ERROR_TABLE(TE_ERR_ENUM_)
#undef TE_ERR_ENUM_
    TE_ERR__END /* not an error: one past the last code; grows with releases */
} te_err_t;

/* Message for err ("unknown error" for values outside the enum). Static
 * string: do not free.  Thread-safe. */
TE_API const char *te_err2str(te_err_t err);

/* Symbolic name for err, e.g. "TE_ERR_ZONE" ("TE_ERR_UNKNOWN" outside the
 * enum).  Static string.  Thread-safe. */
TE_API const char *te_err_name(te_err_t err);

/* 1 if repeating the operation later may succeed (e.g. out of memory,
 * I/O), 0 otherwise.  Thread-safe. */
TE_API int te_err_is_retriable(te_err_t err);

#ifdef __cplusplus
}
#endif
#endif
