/* libtodoevents — JSON Web Tokens (RFC 7519) in JWS compact serialisation
 * (RFC 7515): verification of bearer tokens and minting of HS256
 * development tokens.
 *
 * What te_jwt_verify() accepts (docs/jwt.md has the details):
 *  - exactly three base64url segments (RFC 7515 §2: no padding, no white
 *    space, canonical encoding), at most TE_JWT_MAX_TOKEN bytes in all;
 *  - a header and a payload that are strict JSON objects (RFC 8259, UTF-8,
 *    no duplicate member names);
 *  - header "alg" one the verifier is configured for: HS256 only when a
 *    secret is set, RS256 only with an RSA public key, ES256 only with an
 *    EC P-256 public key.  "none", every other algorithm and every
 *    algorithm the configured keys do not match (an HS256 token presented
 *    to a verifier holding only a public key, ...) are refused.  A "crit"
 *    header is refused; "typ", when present, must be "JWT" or "at+jwt"
 *    (optionally with "application/", ASCII case-insensitive);
 *  - the signature (HMAC compared in constant time; ES256 signatures are
 *    the 64-byte r||s of RFC 7518 §3.4);
 *  - claims: "exp" required (a number); the token is expired when
 *    now > exp + leeway.  "nbf", when present, must be a number and
 *    now + leeway >= nbf.  "iat", when present, must be a number.  "sub"
 *    required: a string of 1–TE_JWT_SUB_MAX bytes without control
 *    characters.  "iss" must equal the configured issuer and "aud" (a
 *    string or an array of strings) must contain the configured audience
 *    — each checked only when configured.  Times are NumericDates
 *    (seconds, fractions allowed) between 0 and 253402300799 (9999-12-31).
 *
 * Failures are TE_ERR_UNAUTHORIZED with a short reason that is safe to
 * return to the client ("token expired", "bad signature", "algorithm not
 * allowed", "malformed token: ...", "missing sub", ...).  Neither the
 * token nor the key material ever appears in an errstr.
 *
 * Thread-safety: configure a verifier (the te_jwt_verifier_set_* calls)
 * before sharing it; a configured verifier is then read-only and
 * te_jwt_verify() may be called on it from any number of threads at once
 * (every call uses its own OpenSSL contexts).  Configuring it while
 * another thread verifies with it is not allowed.  te_jwt_sign_hs256() is
 * thread-safe. */
#ifndef TODOEVENTS_JWT_H
#define TODOEVENTS_JWT_H

#include "todoevents/common.h"
#include "todoevents/datetime.h"
#include "todoevents/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest accepted token (bytes, without a NUL). */
#define TE_JWT_MAX_TOKEN 8192
/* Longest accepted "sub" (bytes); a buffer of TE_JWT_SUB_MAX + 1 bytes
 * always holds it. */
#define TE_JWT_SUB_MAX 128
/* Shortest HS256 secret (bytes): RFC 7518 §3.2 requires a key at least as
 * long as the hash output. */
#define TE_JWT_HS256_MIN_SECRET 32
/* Default clock-skew allowance for exp/nbf, in seconds. */
#define TE_JWT_DEFAULT_LEEWAY 30
/* Largest leeway te_jwt_verifier_set_leeway() keeps (seconds). */
#define TE_JWT_MAX_LEEWAY 3600
/* Longest lifetime te_jwt_sign_hs256() mints (seconds; 366 days). */
#define TE_JWT_MAX_TTL (366L * 86400L)

typedef struct te_jwt_verifier_s te_jwt_verifier_t;

/* New verifier with no key (nothing verifies until a secret or a public
 * key is set), no issuer or audience check and the default leeway.
 * Caller destroys it.  TE_ERR_INVALID_ARG (NULL out) or TE_ERR_NOMEM. */
TE_API te_err_t te_jwt_verifier_new(te_jwt_verifier_t **out);

/* Frees v and wipes the secret it holds.  NULL is a no-op. */
TE_API void te_jwt_verifier_destroy(te_jwt_verifier_t *v);

/* Enables HS256 with this shared secret (copied; replaces an earlier
 * one).  TE_ERR_INVALID_ARG when v or secret is NULL or the secret is
 * shorter than TE_JWT_HS256_MIN_SECRET bytes; TE_ERR_NOMEM. */
TE_API te_err_t te_jwt_verifier_set_secret(te_jwt_verifier_t *v, const void *secret,
                                           size_t len);

/* Sets the public key from PEM text (len bytes; SubjectPublicKeyInfo,
 * "-----BEGIN PUBLIC KEY-----"; OpenSSL also reads PKCS#1 "BEGIN RSA
 * PUBLIC KEY"), replacing an earlier one.  An RSA key of 2048–16384 bits
 * enables RS256; an EC key on P-256 (prime256v1) enables ES256.  Anything
 * else (another curve or key type, a short RSA key, a private key,
 * unparsable text) is TE_ERR_INVALID_ARG with the reason in errstr; the
 * verifier is then unchanged.  TE_ERR_NOMEM. */
TE_API te_err_t te_jwt_verifier_set_public_key_pem(te_jwt_verifier_t *v, const char *pem,
                                                   size_t len, char *errstr,
                                                   size_t errstr_size);

/* Required "iss" (copied); NULL = not checked (the default).
 * TE_ERR_INVALID_ARG (NULL v), TE_ERR_NOMEM. */
TE_API te_err_t te_jwt_verifier_set_issuer(te_jwt_verifier_t *v, const char *iss);

/* Required audience (copied): the token's "aud" must be this string or an
 * array containing it; NULL = not checked (the default).
 * TE_ERR_INVALID_ARG (NULL v), TE_ERR_NOMEM. */
TE_API te_err_t te_jwt_verifier_set_audience(te_jwt_verifier_t *v, const char *aud);

/* Clock skew allowed for exp and nbf, in seconds (default
 * TE_JWT_DEFAULT_LEEWAY); negative values count as 0, values above
 * TE_JWT_MAX_LEEWAY as TE_JWT_MAX_LEEWAY.  NULL v is a no-op. */
TE_API void te_jwt_verifier_set_leeway(te_jwt_verifier_t *v, int seconds);

/* Verifies the compact JWS token (len bytes; no "Bearer " prefix, no white
 * space) at instant now (te_time_t microseconds; pass te_time_now()).
 * On success copies "sub" into sub (NUL-terminated; sub may be NULL when
 * sub_size is 0), stores "exp" (whole seconds since the epoch, rounded
 * down) in *exp_out when exp_out is not NULL, and returns TE_OK.
 * Errors:
 *  - TE_ERR_UNAUTHORIZED: the token is not acceptable; a short,
 *    client-safe reason in errstr;
 *  - TE_ERR_BUFFER_TOO_SMALL: valid token, but sub does not fit in
 *    sub_size bytes (TE_JWT_SUB_MAX + 1 always fits);
 *  - TE_ERR_INVALID_ARG: v or token NULL, or v has neither a secret nor a
 *    public key (a configuration error, not the client's);
 *  - TE_ERR_NOMEM.
 * On failure sub (when sub_size > 0) is set to "" and *exp_out is not
 * written. */
TE_API te_err_t te_jwt_verify(const te_jwt_verifier_t *v, const char *token, size_t len,
                              te_time_t now, char *sub, size_t sub_size, long long *exp_out,
                              char *errstr, size_t errstr_size);

/* Mints an HS256 token: header {"alg":"HS256","typ":"JWT"}, claims
 * {"sub", "iat": now, "nbf": now, "exp": now + ttl_seconds, "iss" and
 * "aud" when not NULL} (now in whole seconds, rounded down).  The secret
 * must be at least TE_JWT_HS256_MIN_SECRET bytes; sub 1–TE_JWT_SUB_MAX
 * bytes of UTF-8 without control characters; iss/aud valid UTF-8;
 * 1 <= ttl_seconds <= TE_JWT_MAX_TTL; now >= 0.  *out (caller frees with
 * te_free()) is the NUL-terminated token.  TE_ERR_INVALID_ARG,
 * TE_ERR_NOMEM, TE_ERR_INTERNAL (OpenSSL failure). */
TE_API te_err_t te_jwt_sign_hs256(const void *secret, size_t len, const char *sub,
                                  te_time_t now, long ttl_seconds, const char *iss,
                                  const char *aud, char **out);

#ifdef __cplusplus
}
#endif
#endif
