/* libtodoevents — version.  The single source of the version number:
 * CMake reads the three TE_VERSION_* lines below. */
#ifndef TODOEVENTS_VERSION_H
#define TODOEVENTS_VERSION_H

#include "todoevents/common.h"

#define TE_VERSION_MAJOR 0
#define TE_VERSION_MINOR 1
#define TE_VERSION_PATCH 0

/* 0xMMmmpp: compare with TE_VERSION_NUM >= 0x000100 in preprocessor tests. */
#define TE_VERSION_NUM ((TE_VERSION_MAJOR << 16) | (TE_VERSION_MINOR << 8) | TE_VERSION_PATCH)

#ifdef __cplusplus
extern "C" {
#endif

/* Version of the library actually loaded at run time, as TE_VERSION_NUM.
 * Thread-safe. */
TE_API int te_version(void);

/* Same as a static string "MAJOR.MINOR.PATCH". Never NULL; do not free.
 * Thread-safe. */
TE_API const char *te_version_str(void);

#ifdef __cplusplus
}
#endif
#endif
