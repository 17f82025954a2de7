/* libtodoevents — validation problem lists.
 *
 * Validators report every problem they find, not just the first, as
 * (field, reason) pairs: field is a path into the input ("title",
 * "tags[3]", "reminders[0].offset_minutes", "data.task_id", "source") and
 * reason a short English sentence ("must not be blank").  An HTTP server
 * turns the list into an RFC 7807 problem; a CLI prints one line each.
 *
 * Thread-safety: a list is not thread-safe; use one per thread or lock. */
#ifndef TODOEVENTS_PROBLEMS_H
#define TODOEVENTS_PROBLEMS_H

#include "todoevents/common.h"
#include "todoevents/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct te_problems_s te_problems_t;

/* New empty list; NULL only when out of memory.  Free with
 * te_problems_destroy(). */
TE_API te_problems_t *te_problems_new(void);

/* Frees the list and every string it returned.  NULL is a no-op. */
TE_API void te_problems_destroy(te_problems_t *p);

/* Removes every entry (strings returned earlier become invalid). */
TE_API void te_problems_clear(te_problems_t *p);

/* Number of entries; 0 for NULL. */
TE_API size_t te_problems_count(const te_problems_t *p);

/* Field path / reason of entry i (0-based), or NULL when i is out of
 * range.  Owned by the list: valid until clear/destroy. */
TE_API const char *te_problems_field(const te_problems_t *p, size_t i);
TE_API const char *te_problems_reason(const te_problems_t *p, size_t i);

/* Appends an entry; field and the formatted reason are copied.  A NULL
 * list is allowed (the call does nothing), so validators can be run
 * without collecting.  Returns TE_ERR_NOMEM when out of memory. */
TE_API te_err_t te_problems_add(te_problems_t *p, const char *field,
                                const char *reason_fmt, ...) TE_PRINTF(3, 4);

/* Writes "field: reason" of entry i into buf (truncated, NUL-terminated).
 * Returns buf, or "" written to buf when i is out of range. */
TE_API char *te_problems_format(const te_problems_t *p, size_t i, char *buf,
                                size_t size);

#ifdef __cplusplus
}
#endif
#endif
