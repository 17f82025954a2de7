/* Standard Webhooks signing secrets: "whsec_" + the base64 (RFC 4648,
 * padded) of 24 to 64 random bytes.  Used by todo-api (validation) and
 * todo-reminder (signing).  Thread-safe. */
#ifndef TD_WHSEC_H
#define TD_WHSEC_H

#include <stddef.h>

#define TD_WHSEC_MIN_KEY 24
#define TD_WHSEC_MAX_KEY 64

/* Decodes the key of secret into key (cap >= TD_WHSEC_MAX_KEY).  Strict:
 * the base64 alphabet only, padding only at the end, no whitespace.
 * Returns the key length, or -1 when secret is not such a secret. */
int td_whsec_key(const char *secret, unsigned char *key, size_t cap);

/* A new secret of 32 random bytes into out (size >= 51).  0 or -1. */
int td_whsec_new(char *out, size_t size);

#endif
