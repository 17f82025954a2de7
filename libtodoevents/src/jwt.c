/* JSON Web Tokens: verification of JWS compact tokens (HS256, RS256, ES256)
 * and minting of HS256 development tokens.  All cryptography is OpenSSL's
 * (libcrypto 3.0): HMAC(), EVP_DigestVerify*, PEM_read_bio_PUBKEY.
 *
 * Nothing here ever writes the token, the secret or the key into an errstr:
 * the reasons are fixed, client-safe strings. */
#include "todoevents/jwt.h"
#include "internal.h"

#include <json-c/json.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* 9999-12-31T23:59:59Z: the last NumericDate the library can represent. */
#define NUMERICDATE_MAX INT64_C(253402300799)
#define RSA_MIN_BITS 2048
#define RSA_MAX_BITS 16384
#define HS256_LEN 32
#define ES256_LEN 64

typedef enum { KEY_NONE = 0, KEY_RSA, KEY_EC_P256 } key_kind_t;

struct te_jwt_verifier_s {
    unsigned char *secret; /* NULL: HS256 not enabled */
    size_t secret_len;
    EVP_PKEY *pkey; /* NULL: no public key */
    key_kind_t kind;
    char *iss, *aud; /* NULL: not checked */
    int leeway;      /* seconds */
};

/* ------------------------------------------------------------------------ */
/* verifier configuration                                                   */

te_err_t te_jwt_verifier_new(te_jwt_verifier_t **out) {
    if (!out)
        return TE_ERR_INVALID_ARG;
    *out = calloc(1, sizeof **out);
    if (!*out)
        return TE_ERR_NOMEM;
    (*out)->leeway = TE_JWT_DEFAULT_LEEWAY;
    return TE_OK;
}

static void free_secret(te_jwt_verifier_t *v) {
    if (v->secret) {
        OPENSSL_cleanse(v->secret, v->secret_len);
        free(v->secret);
    }
    v->secret = NULL;
    v->secret_len = 0;
}

void te_jwt_verifier_destroy(te_jwt_verifier_t *v) {
    if (!v)
        return;
    free_secret(v);
    EVP_PKEY_free(v->pkey);
    free(v->iss);
    free(v->aud);
    free(v);
}

te_err_t te_jwt_verifier_set_secret(te_jwt_verifier_t *v, const void *secret, size_t len) {
    if (!v || !secret || len < TE_JWT_HS256_MIN_SECRET || len > INT_MAX)
        return TE_ERR_INVALID_ARG;
    unsigned char *copy = malloc(len);
    if (!copy)
        return TE_ERR_NOMEM;
    memcpy(copy, secret, len);
    free_secret(v);
    v->secret = copy;
    v->secret_len = len;
    return TE_OK;
}

/* Public keys are never encrypted; refuse to prompt for a passphrase. */
static int no_passphrase(char *buf, int size, int rwflag, void *u) {
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

static int contains(const char *s, size_t n, const char *needle) {
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(s + i, needle, k) == 0)
            return 1;
    return 0;
}

te_err_t te_jwt_verifier_set_public_key_pem(te_jwt_verifier_t *v, const char *pem, size_t len,
                                            char *errstr, size_t errstr_size) {
    if (!v || !pem)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "no verifier or PEM text");
    if (len == 0 || len > 1024 * 1024)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG,
                          "PEM text is empty or too large");
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio)
        return TE_ERR_NOMEM;
    EVP_PKEY *k = PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    ERR_clear_error();
    if (!k) {
        const char *why = "no PEM public key found (expected -----BEGIN PUBLIC KEY-----)";
        if (contains(pem, len, "PRIVATE KEY-----"))
            why = "this is a private key; give the public key (-----BEGIN PUBLIC KEY-----)";
        else if (contains(pem, len, "PUBLIC KEY-----"))
            why = "the PEM public key cannot be decoded";
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "%s", why);
    }
    key_kind_t kind = KEY_NONE;
    te_err_t err = TE_OK;
    if (EVP_PKEY_is_a(k, "RSA")) {
        int bits = EVP_PKEY_get_bits(k);
        if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS)
            err = te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG,
                             "RSA key has %d bits; RS256 needs %d to %d", bits, RSA_MIN_BITS,
                             RSA_MAX_BITS);
        else
            kind = KEY_RSA;
    } else if (EVP_PKEY_is_a(k, "EC")) {
        char group[80] = "";
        size_t glen = 0;
        if (EVP_PKEY_get_group_name(k, group, sizeof group, &glen) != 1)
            err = te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG,
                             "EC key without a named curve; ES256 needs P-256");
        else if (strcmp(group, SN_X9_62_prime256v1) != 0)
            err = te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG,
                             "EC key on curve %s; only P-256 (ES256) is supported", group);
        else
            kind = KEY_EC_P256;
    } else {
        const char *name = EVP_PKEY_get0_type_name(k);
        err = te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG,
                         "unsupported key type %s; RSA (RS256) or EC P-256 (ES256) needed",
                         name ? name : "(unknown)");
    }
    ERR_clear_error();
    if (err != TE_OK) {
        EVP_PKEY_free(k);
        return err;
    }
    EVP_PKEY_free(v->pkey);
    v->pkey = k;
    v->kind = kind;
    return TE_OK;
}

static te_err_t set_string(char **dst, const char *s) {
    char *copy = NULL;
    if (s && !(copy = te__strdup(s)))
        return TE_ERR_NOMEM;
    free(*dst);
    *dst = copy;
    return TE_OK;
}

te_err_t te_jwt_verifier_set_issuer(te_jwt_verifier_t *v, const char *iss) {
    return v ? set_string(&v->iss, iss) : TE_ERR_INVALID_ARG;
}

te_err_t te_jwt_verifier_set_audience(te_jwt_verifier_t *v, const char *aud) {
    return v ? set_string(&v->aud, aud) : TE_ERR_INVALID_ARG;
}

void te_jwt_verifier_set_leeway(te_jwt_verifier_t *v, int seconds) {
    if (!v)
        return;
    v->leeway = seconds < 0 ? 0 : seconds > TE_JWT_MAX_LEEWAY ? TE_JWT_MAX_LEEWAY : seconds;
}

/* ------------------------------------------------------------------------ */
/* base64url (RFC 4648 §5) without padding, as JWS requires                 */

static int b64url_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Only the base64url alphabet, a possible length, and the unused bits of
 * the last character zero (one encoding per byte string). */
static int b64url_syntax_ok(const char *s, size_t n) {
    if (n % 4 == 1)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (b64url_value((unsigned char)s[i]) < 0)
            return 0;
    if (n % 4 == 2 && (b64url_value((unsigned char)s[n - 1]) & 0x0F))
        return 0;
    if (n % 4 == 3 && (b64url_value((unsigned char)s[n - 1]) & 0x03))
        return 0;
    return 1;
}

/* Decodes a segment whose syntax was checked (b64url_syntax_ok).  1 ok
 * (*out malloc'd, NUL-terminated, never NULL), 0 invalid, -1 no memory. */
static int b64url_decode(const char *s, size_t n, unsigned char **out, size_t *out_len) {
    if (n > (size_t)INT_MAX / 2)
        return 0;
    size_t pad = (4 - n % 4) % 4, m = n + pad;
    char *std = malloc(m + 1);
    unsigned char *buf = malloc(m / 4 * 3 + 1);
    if (!std || !buf) {
        free(std);
        free(buf);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        std[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
    for (size_t i = n; i < m; i++)
        std[i] = '=';
    std[m] = '\0';
    int r = EVP_DecodeBlock(buf, (const unsigned char *)std, (int)m);
    free(std);
    if (r < 0 || (size_t)r != m / 4 * 3) {
        free(buf);
        return 0;
    }
    *out_len = (size_t)r - pad;
    buf[*out_len] = '\0';
    *out = buf;
    return 1;
}

/* malloc'd, NUL-terminated base64url of p (no padding); NULL: no memory. */
static char *b64url_encode(const unsigned char *p, size_t n) {
    if (n > (size_t)INT_MAX / 4 * 3 - 3)
        return NULL;
    char *buf = malloc(4 * ((n + 2) / 3) + 1);
    if (!buf)
        return NULL;
    int r = EVP_EncodeBlock((unsigned char *)buf, p, (int)n);
    size_t len = r < 0 ? 0 : (size_t)r;
    while (len > 0 && buf[len - 1] == '=')
        len--;
    buf[len] = '\0';
    for (size_t i = 0; i < len; i++)
        buf[i] = buf[i] == '+' ? '-' : buf[i] == '/' ? '_' : buf[i];
    return buf;
}

/* ------------------------------------------------------------------------ */
/* JSON                                                                     */

/* Walks JSON text that the strict parser accepted: counts the members of
 * the top-level object (duplicates included) and spots "\u0000" escapes
 * (json-c cuts names at a NUL, so "alg\u0000x" would read as "alg").
 * Returns the count, or -1 when a NUL escape is present. */
static long top_level_members(const char *s, size_t n) {
    long count = 0;
    int depth = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '"') {
            for (i++; i < n && s[i] != '"'; i++) {
                if (s[i] != '\\')
                    continue;
                if (i + 5 < n && s[i + 1] == 'u' && memcmp(s + i + 2, "0000", 4) == 0)
                    return -1;
                i++; /* the escaped character */
            }
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            depth--;
        } else if (c == ':' && depth == 1) {
            count++;
        }
    }
    return count;
}

/* Strict parse of a decoded segment into a JSON object without duplicate
 * member names or NUL escapes.  TE_OK, TE_ERR_NOMEM, or TE_ERR_PARSE with
 * *why a fixed reason (never the parser's detail: it may quote the input). */
static te_err_t parse_object(const unsigned char *text, size_t len, struct json_object **out,
                             const char *what, char *why, size_t why_size) {
    *out = NULL;
    struct json_object *o = NULL;
    te_err_t e = te__json_parse_strict((const char *)text, len, &o, NULL, 0);
    if (e == TE_ERR_NOMEM)
        return e;
    if (e != TE_OK || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return te__seterr(why, why_size, TE_ERR_PARSE,
                          "malformed token: %s is not a JSON object", what);
    }
    long members = top_level_members((const char *)text, len);
    if (members < 0 || (size_t)members != (size_t)json_object_object_length(o)) {
        json_object_put(o);
        return te__seterr(why, why_size, TE_ERR_PARSE,
                          members < 0 ? "malformed token: NUL character in the %s"
                                      : "malformed token: duplicate member in the %s",
                          what);
    }
    *out = o;
    return TE_OK;
}

/* A NumericDate (RFC 7519 §2) within 0..NUMERICDATE_MAX → microseconds. */
static int numeric_date(struct json_object *o, te_time_t *us) {
    if (json_object_is_type(o, json_type_int)) {
        int64_t s = json_object_get_int64(o); /* clamps beyond int64 */
        if (s < 0 || s > NUMERICDATE_MAX)
            return 0;
        *us = s * TE_USEC_PER_SEC;
        return 1;
    }
    if (json_object_is_type(o, json_type_double)) {
        double d = json_object_get_double(o);
        if (!isfinite(d) || d < 0 || d > (double)NUMERICDATE_MAX)
            return 0;
        *us = (te_time_t)(d * 1e6);
        return 1;
    }
    return 0;
}

/* Exact string member equal to want (no embedded NUL). */
static int string_equals(struct json_object *o, const char *want) {
    if (!json_object_is_type(o, json_type_string))
        return 0;
    size_t n = (size_t)json_object_get_string_len(o);
    return n == strlen(want) && memcmp(json_object_get_string(o), want, n) == 0;
}

/* ------------------------------------------------------------------------ */
/* signatures                                                               */

typedef enum { ALG_HS256, ALG_RS256, ALG_ES256 } alg_t;

static int verify_hs256(const te_jwt_verifier_t *v, const unsigned char *input, size_t n,
                        const unsigned char *sig, size_t siglen) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (siglen != HS256_LEN)
        return 0;
    if (!HMAC(EVP_sha256(), v->secret, (int)v->secret_len, input, n, mac, &maclen) ||
        maclen != HS256_LEN) {
        ERR_clear_error();
        return 0;
    }
    return CRYPTO_memcmp(mac, sig, HS256_LEN) == 0;
}

/* 1 valid, 0 invalid, -1 no memory.  Every call has its own contexts, so
 * one shared (read-only) EVP_PKEY serves any number of threads. */
static int verify_pkey(const te_jwt_verifier_t *v, alg_t alg, const unsigned char *input,
                       size_t n, const unsigned char *sig, size_t siglen) {
    unsigned char *der = NULL;
    const unsigned char *s = sig;
    size_t slen = siglen;
    int rc = 0;
    if (alg == ALG_RS256) {
        if (v->kind != KEY_RSA || siglen != (size_t)EVP_PKEY_get_size(v->pkey))
            return 0;
    } else {
        /* JWS carries ECDSA signatures as raw r||s (RFC 7518 §3.4). */
        if (v->kind != KEY_EC_P256 || siglen != ES256_LEN)
            return 0;
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, ES256_LEN / 2, NULL);
        BIGNUM *sv = BN_bin2bn(sig + ES256_LEN / 2, ES256_LEN / 2, NULL);
        if (!es || !r || !sv || !ECDSA_SIG_set0(es, r, sv)) {
            ECDSA_SIG_free(es);
            BN_free(r);
            BN_free(sv);
            ERR_clear_error();
            return -1;
        }
        int dlen = i2d_ECDSA_SIG(es, &der);
        ECDSA_SIG_free(es); /* frees r and sv */
        if (dlen <= 0) {
            ERR_clear_error();
            return -1;
        }
        s = der;
        slen = (size_t)dlen;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx) {
        rc = -1;
    } else if (EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, v->pkey) != 1) {
        rc = 0;
    } else {
        rc = EVP_DigestVerify(ctx, s, slen, input, n) == 1;
    }
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    ERR_clear_error();
    return rc;
}

/* ------------------------------------------------------------------------ */
/* verification                                                             */

static int typ_ok(struct json_object *typ) {
    if (!json_object_is_type(typ, json_type_string))
        return 0;
    const char *t = json_object_get_string(typ);
    size_t n = (size_t)json_object_get_string_len(typ);
    if (n != strlen(t))
        return 0;
    if (strncasecmp(t, "application/", 12) == 0)
        t += 12;
    return strcasecmp(t, "JWT") == 0 || strcasecmp(t, "at+jwt") == 0;
}

#define UNAUTH(reason) te__seterr(errstr, errstr_size, TE_ERR_UNAUTHORIZED, "%s", reason)

/* Header checks: chooses the algorithm.  TE_OK or TE_ERR_UNAUTHORIZED. */
static te_err_t check_header(const te_jwt_verifier_t *v, struct json_object *h, alg_t *alg,
                             char *errstr, size_t errstr_size) {
    struct json_object *a = NULL, *x = NULL;
    if (!json_object_object_get_ex(h, "alg", &a) || !json_object_is_type(a, json_type_string))
        return UNAUTH("malformed token: missing alg");
    if (json_object_object_get_ex(h, "crit", &x))
        return UNAUTH("unsupported critical header");
    if (json_object_object_get_ex(h, "typ", &x) && !typ_ok(x))
        return UNAUTH("unsupported token type");
    if (string_equals(a, "HS256") && v->secret)
        *alg = ALG_HS256;
    else if (string_equals(a, "RS256") && v->kind == KEY_RSA)
        *alg = ALG_RS256;
    else if (string_equals(a, "ES256") && v->kind == KEY_EC_P256)
        *alg = ALG_ES256;
    else
        return UNAUTH("algorithm not allowed");
    return TE_OK;
}

static int audience_ok(struct json_object *aud, const char *want) {
    if (string_equals(aud, want))
        return 1;
    if (!json_object_is_type(aud, json_type_array))
        return 0;
    size_t n = json_object_array_length(aud);
    for (size_t i = 0; i < n; i++)
        if (string_equals(json_object_array_get_idx(aud, i), want))
            return 1;
    return 0;
}

/* Claim checks.  TE_OK (with *sub_out, *exp_us) or TE_ERR_UNAUTHORIZED. */
static te_err_t check_claims(const te_jwt_verifier_t *v, struct json_object *c, te_time_t now,
                             const char **sub_out, size_t *sub_len, te_time_t *exp_us,
                             char *errstr, size_t errstr_size) {
    struct json_object *x = NULL;
    te_time_t nbf_us = 0, iat_us = 0;
    if (!json_object_object_get_ex(c, "exp", &x))
        return UNAUTH("missing exp");
    if (!numeric_date(x, exp_us))
        return UNAUTH("invalid exp");
    int has_nbf = json_object_object_get_ex(c, "nbf", &x);
    if (has_nbf && !numeric_date(x, &nbf_us))
        return UNAUTH("invalid nbf");
    if (json_object_object_get_ex(c, "iat", &x) && !numeric_date(x, &iat_us))
        return UNAUTH("invalid iat");

    if (!json_object_object_get_ex(c, "sub", &x) || json_object_is_type(x, json_type_null))
        return UNAUTH("missing sub");
    if (!json_object_is_type(x, json_type_string))
        return UNAUTH("invalid sub");
    const char *sub = json_object_get_string(x);
    size_t n = (size_t)json_object_get_string_len(x);
    if (n == 0)
        return UNAUTH("missing sub");
    if (n > TE_JWT_SUB_MAX || n != strlen(sub) || te__utf8_count(sub, n) < 0 ||
        te__utf8_has_control(sub, false))
        return UNAUTH("invalid sub");

    if (v->iss && (!json_object_object_get_ex(c, "iss", &x) || !string_equals(x, v->iss)))
        return UNAUTH("wrong issuer");
    if (v->aud && (!json_object_object_get_ex(c, "aud", &x) || !audience_ok(x, v->aud)))
        return UNAUTH("wrong audience");

    te_time_t leeway_us = (te_time_t)v->leeway * TE_USEC_PER_SEC;
    if (now > *exp_us + leeway_us)
        return UNAUTH("token expired");
    if (has_nbf && nbf_us - leeway_us > now)
        return UNAUTH("token not yet valid");
    *sub_out = sub;
    *sub_len = n;
    return TE_OK;
}

te_err_t te_jwt_verify(const te_jwt_verifier_t *v, const char *token, size_t len, te_time_t now,
                       char *sub, size_t sub_size, long long *exp_out, char *errstr,
                       size_t errstr_size) {
    if (sub && sub_size > 0)
        sub[0] = '\0';
    if (!v || !token || (!sub && sub_size > 0))
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "no verifier or token");
    if (!v->secret && !v->pkey)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG,
                          "the verifier has neither a secret nor a public key");
    if (len == 0)
        return UNAUTH("malformed token: empty");
    if (len > TE_JWT_MAX_TOKEN)
        return UNAUTH("malformed token: too long");

    /* Exactly three segments: header.payload.signature */
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
        return UNAUTH("malformed token: expected three segments");
    const char *h64 = token, *p64 = dot1 + 1, *s64 = dot2 + 1;
    size_t hlen = (size_t)(dot1 - token), plen = (size_t)(dot2 - p64),
           slen = len - (size_t)(s64 - token);
    if (hlen == 0 || plen == 0 || !b64url_syntax_ok(h64, hlen) ||
        !b64url_syntax_ok(p64, plen) || !b64url_syntax_ok(s64, slen))
        return UNAUTH("malformed token: not base64url");

    te_err_t err = TE_ERR_UNAUTHORIZED;
    unsigned char *hdr = NULL, *sig = NULL, *pay = NULL;
    size_t hdr_len = 0, sig_len = 0, pay_len = 0;
    struct json_object *h = NULL, *c = NULL;
    int r;
    char why[80];
    alg_t alg = ALG_HS256;

    /* Header: decides the algorithm before the signature is looked at. */
    if ((r = b64url_decode(h64, hlen, &hdr, &hdr_len)) <= 0) {
        err = r < 0 ? TE_ERR_NOMEM : UNAUTH("malformed token: not base64url");
        goto out;
    }
    if ((err = parse_object(hdr, hdr_len, &h, "header", why, sizeof why)) != TE_OK) {
        if (err != TE_ERR_NOMEM)
            err = UNAUTH(why);
        goto out;
    }
    if ((err = check_header(v, h, &alg, errstr, errstr_size)) != TE_OK)
        goto out;

    /* Signature over the ASCII "header.payload". */
    if ((r = b64url_decode(s64, slen, &sig, &sig_len)) <= 0) {
        err = r < 0 ? TE_ERR_NOMEM : UNAUTH("malformed token: not base64url");
        goto out;
    }
    const unsigned char *input = (const unsigned char *)token;
    size_t input_len = (size_t)(dot2 - token);
    r = alg == ALG_HS256 ? verify_hs256(v, input, input_len, sig, sig_len)
                         : verify_pkey(v, alg, input, input_len, sig, sig_len);
    if (r <= 0) {
        err = r < 0 ? TE_ERR_NOMEM : UNAUTH("bad signature");
        goto out;
    }

    /* Claims. */
    if ((r = b64url_decode(p64, plen, &pay, &pay_len)) <= 0) {
        err = r < 0 ? TE_ERR_NOMEM : UNAUTH("malformed token: not base64url");
        goto out;
    }
    if ((err = parse_object(pay, pay_len, &c, "payload", why, sizeof why)) != TE_OK) {
        if (err != TE_ERR_NOMEM)
            err = UNAUTH(why);
        goto out;
    }
    const char *s = NULL;
    size_t n = 0;
    te_time_t exp_us = 0;
    if ((err = check_claims(v, c, now, &s, &n, &exp_us, errstr, errstr_size)) != TE_OK)
        goto out;
    if (sub_size > 0 || sub) {
        if (n + 1 > sub_size) {
            err = te__seterr(errstr, errstr_size, TE_ERR_BUFFER_TOO_SMALL,
                             "sub does not fit the buffer (%zu bytes needed)", n + 1);
            goto out;
        }
        memcpy(sub, s, n);
        sub[n] = '\0';
    }
    if (exp_out)
        *exp_out = (long long)(exp_us / TE_USEC_PER_SEC);
    err = TE_OK;
out:
    json_object_put(h);
    json_object_put(c);
    free(hdr);
    free(sig);
    free(pay);
    return err;
}

/* ------------------------------------------------------------------------ */
/* minting                                                                  */

static int add_member(struct json_object *o, const char *key, struct json_object *val) {
    if (!val)
        return 0;
    if (json_object_object_add(o, key, val) != 0) {
        json_object_put(val);
        return 0;
    }
    return 1;
}

static int claim_string_ok(const char *s, size_t max) {
    size_t n = strlen(s);
    return n >= 1 && n <= max && te__utf8_count(s, n) >= 0 && !te__utf8_has_control(s, false);
}

te_err_t te_jwt_sign_hs256(const void *secret, size_t len, const char *sub, te_time_t now,
                           long ttl_seconds, const char *iss, const char *aud, char **out) {
    if (out)
        *out = NULL;
    if (!out || !secret || len < TE_JWT_HS256_MIN_SECRET || len > INT_MAX || !sub ||
        !claim_string_ok(sub, TE_JWT_SUB_MAX) || ttl_seconds < 1 ||
        ttl_seconds > TE_JWT_MAX_TTL || now < 0 || (iss && !claim_string_ok(iss, 4096)) ||
        (aud && !claim_string_ok(aud, 4096)))
        return TE_ERR_INVALID_ARG;
    int64_t iat = now / TE_USEC_PER_SEC;
    if (iat + ttl_seconds > NUMERICDATE_MAX)
        return TE_ERR_INVALID_ARG;

    struct json_object *c = json_object_new_object();
    if (!c || !add_member(c, "sub", json_object_new_string(sub)) ||
        !add_member(c, "iat", json_object_new_int64(iat)) ||
        !add_member(c, "nbf", json_object_new_int64(iat)) ||
        !add_member(c, "exp", json_object_new_int64(iat + ttl_seconds)) ||
        (iss && !add_member(c, "iss", json_object_new_string(iss))) ||
        (aud && !add_member(c, "aud", json_object_new_string(aud)))) {
        json_object_put(c);
        return TE_ERR_NOMEM;
    }
    size_t clen = 0;
    const int flags = JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE;
    const char *cj = json_object_to_json_string_length(c, flags, &clen);
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    char *h64 = b64url_encode((const unsigned char *)header, sizeof header - 1);
    char *p64 = cj ? b64url_encode((const unsigned char *)cj, clen) : NULL;
    json_object_put(c);
    char *tok = NULL, *s64 = NULL;
    te_err_t err = TE_ERR_NOMEM;
    if (!h64 || !p64)
        goto done;
    size_t hl = strlen(h64), pl = strlen(p64);
    tok = malloc(hl + 1 + pl + 1 + 43 + 1); /* 43 = base64url of 32 bytes */
    if (!tok)
        goto done;
    memcpy(tok, h64, hl);
    tok[hl] = '.';
    memcpy(tok + hl + 1, p64, pl);
    size_t input_len = hl + 1 + pl;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (!HMAC(EVP_sha256(), secret, (int)len, (const unsigned char *)tok, input_len, mac,
              &maclen) ||
        maclen != HS256_LEN) {
        ERR_clear_error();
        err = TE_ERR_INTERNAL;
        goto done;
    }
    if (!(s64 = b64url_encode(mac, maclen)))
        goto done;
    tok[input_len] = '.';
    memcpy(tok + input_len + 1, s64, strlen(s64) + 1);
    *out = tok;
    tok = NULL;
    err = TE_OK;
done:
    free(h64);
    free(p64);
    free(s64);
    free(tok);
    return err;
}
