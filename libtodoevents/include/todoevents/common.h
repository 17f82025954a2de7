/* libtodoevents — definitions shared by every public header. */
#ifndef TODOEVENTS_COMMON_H
#define TODOEVENTS_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* Symbols are hidden by default (-fvisibility=hidden); TE_API exports. */
#if defined(_WIN32)
#  define TE_API
#elif defined(__GNUC__) && __GNUC__ >= 4
#  define TE_API __attribute__((visibility("default")))
#else
#  define TE_API
#endif

#if defined(__GNUC__)
#  define TE_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#  define TE_WARN_UNUSED __attribute__((warn_unused_result))
#else
#  define TE_PRINTF(fmt, args)
#  define TE_WARN_UNUSED
#endif

/* Recommended size of caller-provided error detail buffers (errstr). Any
 * size works: detail text is truncated and always NUL-terminated when the
 * size is > 0. */
#define TE_ERRSTR_SIZE 512

#ifdef __cplusplus
extern "C" {
#endif

/* Frees memory the library returned with "caller frees with te_free()"
 * (strings, buffers).  te_free(NULL) is a no-op.  Thread-safe. */
TE_API void te_free(void *ptr);

#ifdef __cplusplus
}
#endif
#endif
