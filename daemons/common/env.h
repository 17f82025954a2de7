/* td_common (internal to the daemons) — configuration from the environment.
 *
 * An empty variable ("NAME=") counts as unset everywhere.  None of these
 * functions logs: the caller reports bad values (never a secret's value).
 *
 * Ownership: td_env_str() returns getenv()'s storage (or def) — do not
 * free; td_env_secret*() return malloc'd strings the caller frees (zero
 * them first if you care).
 *
 * Thread-safety: safe to call from any thread as long as no thread
 * modifies the environment (setenv/putenv/unsetenv) at the same time —
 * read the configuration at start-up. */
#ifndef TD_ENV_H
#define TD_ENV_H

#include <stddef.h>

/* getenv(name), or def when unset or "". */
const char *td_env_str(const char *name, const char *def);

/* Decimal integer (surrounding blanks allowed).  Unset/"" -> def (with
 * *bad untouched).  Garbage, overflow or outside [min, max] -> *bad = 1
 * (when bad is not NULL) and def is returned. */
long td_env_long(const char *name, long def, long min, long max, int *bad);

/* 1/0, true/false, yes/no, on/off (case-insensitive).  Unset/"" or
 * anything else -> def. */
int td_env_bool(const char *name, int def);
/* Same, but anything unrecognised also sets *bad = 1 (when not NULL). */
int td_env_bool_checked(const char *name, int def, int *bad);

/* Secret from NAME, or else from the file named by NAME_FILE (contents;
 * one trailing "\n" or "\r\n" stripped).  NAME wins when both are set.
 * Returns a malloc'd string, or NULL when none is set (*err = 0) or
 * on failure (*err = 1: the file can't be read, holds a NUL byte or is
 * larger than 1 MiB; or out of memory).  err may be NULL. */
char *td_env_secret(const char *name, int *err);
/* When NAME and NAME_FILE are unset, NAME_SECRET="<secret>[/<key>]" is
 * given to the resolver set here (the Dapr secret store, dapr.h), which
 * returns a malloc'd value or NULL with a reason in why (never the
 * value).  Set once at start-up, before other threads run. */
typedef char *(*td_secret_resolver_t)(const char *ref, void *arg, char *why, size_t why_size);
void td_env_set_secret_resolver(td_secret_resolver_t fn, void *arg);

/* Same, with a reason in errstr on failure, e.g. "TE_JWT_SECRET_FILE:
 * /run/secrets/jwt: No such file or directory" (never the contents). */
char *td_env_secret_ex(const char *name, int *err, char *errstr, size_t errstr_size);

/* For every environment variable PREFIX<KEY> with a non-empty KEY and a
 * non-empty value, calls cb(key, value, arg) where key is KEY lower-cased
 * with '_' written as '.': prefix "TE_KAFKA_", TE_KAFKA_SECURITY_PROTOCOL=
 * SASL_SSL -> cb("security.protocol", "SASL_SSL", arg).  Variables whose
 * full name is in skip (NULL-terminated list, e.g. {"TE_KAFKA_BROKERS",
 * NULL}; skip may be NULL) are left out.  Order: that of the environment.
 * key is valid only during the callback. */
void td_env_each_prefixed(const char *prefix, const char *const *skip,
                          void (*cb)(const char *key, const char *value, void *arg), void *arg);

#endif /* TD_ENV_H */
