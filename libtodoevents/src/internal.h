/* Private helpers shared by the library's modules (not installed). */
#ifndef TODOEVENTS_INTERNAL_H
#define TODOEVENTS_INTERNAL_H

#include "todoevents/common.h"
#include "todoevents/error.h"

#include <stdarg.h>
#include <stdbool.h>

/* Writes a formatted detail into errstr (if any) and returns err. */
te_err_t te__seterr(char *errstr, size_t size, te_err_t err, const char *fmt, ...)
    TE_PRINTF(4, 5);

/* strdup that returns NULL for NULL. */
char *te__strdup(const char *s);

/* UTF-8: returns the number of code points, or -1 when s is not valid
 * UTF-8 (overlong forms, surrogates and values > U+10FFFF are invalid). */
long te__utf8_count(const char *s, size_t len);

/* Decodes one code point at s (valid UTF-8 assumed); returns its length. */
int te__utf8_next(const unsigned char *s, uint32_t *cp);

/* true when every code point of the (valid UTF-8) string is white space
 * (Unicode White_Space property). */
bool te__utf8_is_blank(const char *s);

/* true when the (valid UTF-8) string contains a control character
 * (U+0000–U+001F, U+007F–U+009F); allow_newline_tab permits \n, \r, \t. */
bool te__utf8_has_control(const char *s, bool allow_newline_tab);

/* Proleptic Gregorian calendar facts (datetime.c). */
int te__is_leap(int year);
int te__days_in_month(int year, int month); /* month 1..12 */

struct json_object;
/* Strict RFC 8259 parse of len bytes (UTF-8 checked, nothing but white
 * space after the value; rejects what json-c lets through: NaN, leading
 * zeros, single quotes, raw control characters).  TE_ERR_PARSE with
 * detail, or TE_OK with a new object the caller puts (NULL for "null"). */
te_err_t te__json_parse_strict(const char *text, size_t len, struct json_object **out,
                               char *errstr, size_t errstr_size);

#endif
