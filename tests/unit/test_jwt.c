/* JWT verification and HS256 minting.
 *
 * Tokens are built here independently of the library: a hand-written
 * base64url encoder, HMAC() for HS256, and keys generated at test time
 * (EVP_PKEY_Q_keygen) signed with EVP_DigestSign for RS256/ES256 (the
 * DER ECDSA signature converted to the raw r||s JWS uses).  The HS256
 * known-answer token was computed with python3's hmac module. */
#include <check.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <todoevents/todoevents.h>

#define NOW_S 1767225600LL /* 2026-01-01T00:00:00Z */
#define NOW ((te_time_t)NOW_S * TE_USEC_PER_SEC)

static const char SECRET[] = "unit-test-secret-0123456789abcdefghijklmnop";
#define SECRET_LEN (sizeof SECRET - 1)

static EVP_PKEY *rsa_key, *ec_key;
static char *rsa_pub_pem, *ec_pub_pem;

/* ---- building tokens ----------------------------------------------------- */

static char *b64url(const unsigned char *p, size_t n) {
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = malloc(n / 3 * 4 + 5);
    ck_assert_ptr_nonnull(out);
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        out[o++] = al[v >> 18 & 63];
        out[o++] = al[v >> 12 & 63];
        out[o++] = al[v >> 6 & 63];
        out[o++] = al[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)p[i] << 16;
        out[o++] = al[v >> 18 & 63];
        out[o++] = al[v >> 12 & 63];
    } else if (n - i == 2) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
        out[o++] = al[v >> 18 & 63];
        out[o++] = al[v >> 12 & 63];
        out[o++] = al[v >> 6 & 63];
    }
    out[o] = '\0';
    return out;
}

static char *b64url_str(const char *s) { return b64url((const unsigned char *)s, strlen(s)); }

typedef enum { SIG_NONE, SIG_HS256, SIG_RS256, SIG_ES256, SIG_ES256_DER } signer_t;

/* Signature over input; returns its length in sig (>= 600 bytes). */
static size_t sign(signer_t how, const void *hkey, size_t hkey_len, const char *input,
                   unsigned char *sig) {
    if (how == SIG_HS256) {
        unsigned int n = 0;
        ck_assert_ptr_nonnull(HMAC(EVP_sha256(), hkey, (int)hkey_len,
                                   (const unsigned char *)input, strlen(input), sig, &n));
        return n;
    }
    if (how == SIG_NONE)
        return 0;
    EVP_PKEY *k = how == SIG_RS256 ? rsa_key : ec_key;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char der[600];
    size_t n = sizeof der;
    ck_assert_int_eq(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k), 1);
    ck_assert_int_eq(EVP_DigestSign(ctx, der, &n, (const unsigned char *)input, strlen(input)), 1);
    EVP_MD_CTX_free(ctx);
    if (how != SIG_ES256) {
        memcpy(sig, der, n);
        return n;
    }
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
    ck_assert_ptr_nonnull(es);
    ck_assert_int_eq(BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32), 32);
    ck_assert_int_eq(BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32), 32);
    ECDSA_SIG_free(es);
    return 64;
}

/* header.payload.signature from JSON texts; caller frees. */
static char *make_keyed(const char *header, const char *payload, signer_t how, const void *hkey,
                        size_t hkey_len) {
    char *h = b64url_str(header), *p = b64url_str(payload);
    size_t n = strlen(h) + strlen(p) + 2;
    char *input = malloc(n);
    snprintf(input, n, "%s.%s", h, p);
    unsigned char sig[600];
    size_t sl = sign(how, hkey, hkey_len, input, sig);
    char *s = b64url(sig, sl);
    size_t tn = n + strlen(s) + 1;
    char *tok = malloc(tn);
    snprintf(tok, tn, "%s.%s", input, s);
    free(h);
    free(p);
    free(s);
    free(input);
    return tok;
}

static char *make(const char *header, const char *payload, signer_t how) {
    return make_keyed(header, payload, how, SECRET, SECRET_LEN);
}

static const char *hdr(signer_t how) {
    switch (how) {
    case SIG_RS256:
        return "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
    case SIG_ES256:
    case SIG_ES256_DER:
        return "{\"alg\":\"ES256\",\"typ\":\"JWT\"}";
    default:
        return "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    }
}

/* Claims {"sub":sub,"exp":NOW+exp_delta} plus extra members (",..."). */
static char *claims(const char *sub, long long exp_delta, const char *extra) {
    static char buf[4][1024];
    static int k;
    char *b = buf[k++ % 4];
    snprintf(b, sizeof buf[0], "{\"sub\":\"%s\",\"exp\":%lld%s}", sub, NOW_S + exp_delta,
             extra ? extra : "");
    return b;
}

/* ---- verifiers ------------------------------------------------------------ */

static te_jwt_verifier_t *verifier(int secret, const char *pem) {
    te_jwt_verifier_t *v = NULL;
    ck_assert_int_eq(te_jwt_verifier_new(&v), TE_OK);
    if (secret)
        ck_assert_int_eq(te_jwt_verifier_set_secret(v, SECRET, SECRET_LEN), TE_OK);
    if (pem) {
        char e[TE_ERRSTR_SIZE] = "";
        ck_assert_msg(te_jwt_verifier_set_public_key_pem(v, pem, strlen(pem), e, sizeof e) ==
                          TE_OK,
                      "%s", e);
    }
    return v;
}

static void accept_at(const te_jwt_verifier_t *v, const char *tok, te_time_t now,
                      const char *want_sub) {
    char sub[TE_JWT_SUB_MAX + 1] = "x", e[TE_ERRSTR_SIZE] = "";
    long long exp = -1;
    te_err_t r = te_jwt_verify(v, tok, strlen(tok), now, sub, sizeof sub, &exp, e, sizeof e);
    ck_assert_msg(r == TE_OK, "rejected (%s): %s", te_err_name(r), e);
    ck_assert_str_eq(sub, want_sub);
    ck_assert(exp >= 0);
}

static void accept(const te_jwt_verifier_t *v, const char *tok, const char *want_sub) {
    accept_at(v, tok, NOW, want_sub);
}

static void reject_at(const te_jwt_verifier_t *v, const char *tok, size_t len, te_time_t now,
                      const char *reason, int line) {
    char sub[TE_JWT_SUB_MAX + 1] = "x", e[TE_ERRSTR_SIZE] = "";
    long long exp = -1;
    te_err_t r = te_jwt_verify(v, tok, len, now, sub, sizeof sub, &exp, e, sizeof e);
    ck_assert_msg(r == TE_ERR_UNAUTHORIZED, "line %d: %s, expected TE_ERR_UNAUTHORIZED (%s)",
                  line, te_err_name(r), e);
    ck_assert_msg(strstr(e, reason) != NULL, "line %d: reason '%s', expected '%s'", line, e,
                  reason);
    ck_assert_msg(sub[0] == '\0', "line %d: sub not cleared", line);
    ck_assert_int_eq(exp, -1);
    /* the reason never quotes the token */
    const char *dot = strchr(tok, '.');
    if (dot && dot - tok > 8)
        ck_assert_msg(strstr(e, "eyJ") == NULL, "line %d: errstr quotes the token", line);
}

#define REJECT(v, tok, reason) reject_at((v), (tok), strlen(tok), NOW, (reason), __LINE__)
#define REJECT_AT(v, tok, now, reason) reject_at((v), (tok), strlen(tok), (now), (reason), __LINE__)

/* Makes and checks a token that must be refused; frees it. */
#define REJECT_MADE(v, hdr_, pay_, how, reason)                                                   \
    do {                                                                                          \
        char *t_ = make((hdr_), (pay_), (how));                                                   \
        REJECT((v), t_, (reason));                                                                \
        free(t_);                                                                                 \
    } while (0)

/* ---- tests ------------------------------------------------------------------ */

START_TEST(hs256_round_trip) {
    char *tok = NULL;
    ck_assert_int_eq(te_jwt_sign_hs256(SECRET, SECRET_LEN, "alice", NOW + 999999, 3600,
                                       "https://auth.example", "todo-api", &tok),
                     TE_OK);
    ck_assert_ptr_nonnull(tok);
    te_jwt_verifier_t *v = verifier(1, NULL);
    te_jwt_verifier_set_issuer(v, "https://auth.example");
    te_jwt_verifier_set_audience(v, "todo-api");
    char sub[TE_JWT_SUB_MAX + 1], e[TE_ERRSTR_SIZE] = "";
    long long exp = 0;
    ck_assert_int_eq(te_jwt_verify(v, tok, strlen(tok), NOW, sub, sizeof sub, &exp, e, sizeof e),
                     TE_OK);
    ck_assert_str_eq(sub, "alice");
    ck_assert_int_eq(exp, NOW_S + 3600);
    /* valid up to exp + leeway (30 s), expired one microsecond later */
    accept_at(v, tok, (NOW_S + 3600 + 30) * TE_USEC_PER_SEC, "alice");
    REJECT_AT(v, tok, (NOW_S + 3600 + 30) * TE_USEC_PER_SEC + 1, "token expired");
    te_jwt_verifier_destroy(v);
    te_free(tok);

    /* without iss/aud; sub with non-ASCII UTF-8 */
    ck_assert_int_eq(te_jwt_sign_hs256(SECRET, SECRET_LEN, "j\xc3\xbcrgen", NOW, 60, NULL, NULL,
                                       &tok),
                     TE_OK);
    v = verifier(1, NULL);
    accept(v, tok, "j\xc3\xbcrgen");
    /* a different secret of the same length fails */
    te_jwt_verifier_t *w = NULL;
    ck_assert_int_eq(te_jwt_verifier_new(&w), TE_OK);
    char other[] = "unit-test-secret-0123456789abcdefghijklmnoP";
    ck_assert_int_eq(te_jwt_verifier_set_secret(w, other, sizeof other - 1), TE_OK);
    REJECT(w, tok, "bad signature");
    te_jwt_verifier_destroy(w);
    te_jwt_verifier_destroy(v);
    te_free(tok);
}
END_TEST

START_TEST(hs256_known_answer) {
    /* python3: hmac.new(secret, b64url(header) + "." + b64url(payload), sha256) */
    static const char secret[] = "libtodoevents-known-answer-secret-0123456789";
    static const char kat[] =
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
        "eyJzdWIiOiJhbGljZSIsImlhdCI6MTc2NzIyNTYwMCwibmJmIjoxNzY3MjI1NjAwLCJleHAiOjE3NjcyMjkyMDAs"
        "ImlzcyI6Imh0dHBzOi8vYXV0aC5leGFtcGxlIiwiYXVkIjoidG9kby1hcGkifQ."
        "pdLt38JmqXwhfWjKe1XSK-E-vaHvtTAzRYnoXSkjG38";
    te_jwt_verifier_t *v = NULL;
    ck_assert_int_eq(te_jwt_verifier_new(&v), TE_OK);
    ck_assert_int_eq(te_jwt_verifier_set_secret(v, secret, sizeof secret - 1), TE_OK);
    ck_assert_int_eq(te_jwt_verifier_set_issuer(v, "https://auth.example"), TE_OK);
    ck_assert_int_eq(te_jwt_verifier_set_audience(v, "todo-api"), TE_OK);
    char sub[16];
    long long exp = 0;
    char e[TE_ERRSTR_SIZE] = "";
    ck_assert_int_eq(te_jwt_verify(v, kat, strlen(kat), NOW + 5 * TE_USEC_PER_SEC, sub, sizeof sub,
                                   &exp, e, sizeof e),
                     TE_OK);
    ck_assert_str_eq(sub, "alice");
    ck_assert_int_eq(exp, 1767229200LL);
    /* minting the same claims gives the same bytes */
    char *tok = NULL;
    ck_assert_int_eq(te_jwt_sign_hs256(secret, sizeof secret - 1, "alice", NOW + 123, 3600,
                                       "https://auth.example", "todo-api", &tok),
                     TE_OK);
    ck_assert_str_eq(tok, kat);
    te_free(tok);
    te_jwt_verifier_destroy(v);

    /* RFC 7515 appendix A.1: the signature verifies; the claims have no sub. */
    static const unsigned char rfc_key[64] = {
        0x03, 0x23, 0x35, 0x4b, 0x2b, 0x0f, 0xa5, 0xbc, 0x83, 0x7e, 0x06, 0x65, 0x77,
        0x7b, 0xa6, 0x8f, 0x5a, 0xb3, 0x28, 0xe6, 0xf0, 0x54, 0xc9, 0x28, 0xa9, 0x0f,
        0x84, 0xb2, 0xd2, 0x50, 0x2e, 0xbf, 0xd3, 0xfb, 0x5a, 0x92, 0xd2, 0x06, 0x47,
        0xef, 0x96, 0x8a, 0xb4, 0xc3, 0x77, 0x62, 0x3d, 0x22, 0x3d, 0x2e, 0x21, 0x72,
        0x05, 0x2e, 0x4f, 0x08, 0xc0, 0xcd, 0x9a, 0xf5, 0x67, 0xd0, 0x80, 0xa3};
    static const char rfc[] =
        "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
        "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0"
        "cnVlfQ."
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    ck_assert_int_eq(te_jwt_verifier_new(&v), TE_OK);
    ck_assert_int_eq(te_jwt_verifier_set_secret(v, rfc_key, sizeof rfc_key), TE_OK);
    REJECT_AT(v, rfc, (te_time_t)1300819380 * TE_USEC_PER_SEC, "missing sub");
    te_jwt_verifier_destroy(v);
    unsigned char wrong[64];
    memcpy(wrong, rfc_key, 64);
    wrong[63] ^= 1;
    ck_assert_int_eq(te_jwt_verifier_new(&v), TE_OK);
    ck_assert_int_eq(te_jwt_verifier_set_secret(v, wrong, sizeof wrong), TE_OK);
    REJECT_AT(v, rfc, (te_time_t)1300819380 * TE_USEC_PER_SEC, "bad signature");
    te_jwt_verifier_destroy(v);
}
END_TEST

START_TEST(rs256_es256_good) {
    te_jwt_verifier_t *rv = verifier(0, rsa_pub_pem), *ev = verifier(0, ec_pub_pem),
                      *both = verifier(1, rsa_pub_pem);
    char *rt = make(hdr(SIG_RS256), claims("bob", 60, NULL), SIG_RS256);
    char *et = make(hdr(SIG_ES256), claims("carol", 60, NULL), SIG_ES256);
    char *ht = make(hdr(SIG_HS256), claims("dave", 60, NULL), SIG_HS256);
    accept(rv, rt, "bob");
    accept(ev, et, "carol");
    accept(both, rt, "bob");
    accept(both, ht, "dave");
    /* each verifier refuses the others' algorithms */
    REJECT(rv, et, "algorithm not allowed");
    REJECT(ev, rt, "algorithm not allowed");
    REJECT(rv, ht, "algorithm not allowed");
    REJECT(ev, ht, "algorithm not allowed");
    REJECT(both, et, "algorithm not allowed");
    /* no typ header is fine */
    char *nt = make("{\"alg\":\"ES256\"}", claims("carol", 60, NULL), SIG_ES256);
    accept(ev, nt, "carol");
    free(nt);
    /* ES256 with a DER signature (not r||s) */
    nt = make(hdr(SIG_ES256), claims("carol", 60, NULL), SIG_ES256_DER);
    REJECT(ev, nt, "bad signature");
    free(nt);
    free(rt);
    free(et);
    free(ht);
    te_jwt_verifier_destroy(rv);
    te_jwt_verifier_destroy(ev);
    te_jwt_verifier_destroy(both);
}
END_TEST

/* Replaces segment i (0..2) of tok with seg. */
static char *with_segment(const char *tok, int i, const char *seg) {
    char *copy = strdup(tok);
    char *parts[3];
    char *save = NULL;
    parts[0] = strtok_r(copy, ".", &save);
    parts[1] = strtok_r(NULL, ".", &save);
    parts[2] = strtok_r(NULL, ".", &save);
    parts[i] = (char *)seg;
    size_t n = strlen(tok) + strlen(seg) + 3;
    char *out = malloc(n);
    snprintf(out, n, "%s.%s.%s", parts[0], parts[1], parts[2] ? parts[2] : "");
    free(copy);
    return out;
}

START_TEST(tampering) {
    signer_t algs[] = {SIG_HS256, SIG_RS256, SIG_ES256};
    te_jwt_verifier_t *v = verifier(1, NULL), *rv = verifier(0, rsa_pub_pem),
                      *ev = verifier(0, ec_pub_pem);
    te_jwt_verifier_t *vs[] = {v, rv, ev};
    for (int a = 0; a < 3; a++) {
        char *tok = make(hdr(algs[a]), claims("alice", 60, NULL), algs[a]);
        accept(vs[a], tok, "alice");
        /* payload swapped for another user's, signature kept */
        char *p = b64url_str(claims("mallory", 60, NULL));
        char *t2 = with_segment(tok, 1, p);
        REJECT(vs[a], t2, "bad signature");
        free(t2);
        free(p);
        /* a flipped signature character (the first: stays canonical) */
        char *t3 = strdup(tok);
        char *s = strrchr(t3, '.') + 1;
        s[0] = s[0] == 'A' ? 'B' : 'A';
        REJECT(vs[a], t3, "bad signature");
        free(t3);
        /* a flipped bit in the middle of the payload */
        char *t4 = strdup(tok);
        char *pl = strchr(t4, '.') + 5;
        *pl = *pl == 'x' ? 'y' : 'x';
        char e[TE_ERRSTR_SIZE] = "";
        ck_assert_int_eq(te_jwt_verify(vs[a], t4, strlen(t4), NOW, NULL, 0, NULL, e, sizeof e),
                         TE_ERR_UNAUTHORIZED);
        free(t4);
        /* signature segment empty */
        char *t5 = with_segment(tok, 2, "");
        REJECT(vs[a], t5, "bad signature");
        free(t5);
        free(tok);
    }
    /* wrong-length signatures */
    unsigned char zeros[257] = {0};
    size_t lens[] = {31, 33, 63, 65, 255, 257};
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
        char *seg = b64url(zeros, lens[i]);
        for (int a = 0; a < 3; a++) {
            char *tok = make(hdr(algs[a]), claims("alice", 60, NULL), algs[a]);
            char *t = with_segment(tok, 2, seg);
            REJECT(vs[a], t, "bad signature");
            free(t);
            free(tok);
        }
        free(seg);
    }
    te_jwt_verifier_destroy(v);
    te_jwt_verifier_destroy(rv);
    te_jwt_verifier_destroy(ev);
}
END_TEST

START_TEST(algorithms_refused) {
    te_jwt_verifier_t *v = verifier(1, NULL), *rv = verifier(0, rsa_pub_pem),
                      *ev = verifier(0, ec_pub_pem), *all = verifier(1, rsa_pub_pem);
    te_jwt_verifier_t *vs[] = {v, rv, ev, all};
    const char *pay = claims("alice", 60, NULL);
    for (int i = 0; i < 4; i++) {
        /* alg none: without a signature, and with an HS256 signature */
        REJECT_MADE(vs[i], "{\"alg\":\"none\",\"typ\":\"JWT\"}", pay, SIG_NONE,
                    "algorithm not allowed");
        REJECT_MADE(vs[i], "{\"alg\":\"none\"}", pay, SIG_HS256, "algorithm not allowed");
        REJECT_MADE(vs[i], "{\"alg\":\"None\"}", pay, SIG_NONE, "algorithm not allowed");
        REJECT_MADE(vs[i], "{\"alg\":\"HS384\"}", pay, SIG_HS256, "algorithm not allowed");
        REJECT_MADE(vs[i], "{\"alg\":\"HS512\"}", pay, SIG_HS256, "algorithm not allowed");
        REJECT_MADE(vs[i], "{\"alg\":\"RS512\"}", pay, SIG_RS256, "algorithm not allowed");
        REJECT_MADE(vs[i], "{\"alg\":\"PS256\"}", pay, SIG_RS256, "algorithm not allowed");
        REJECT_MADE(vs[i], "{\"alg\":\"ES384\"}", pay, SIG_ES256, "algorithm not allowed");
        REJECT_MADE(vs[i], "{\"alg\":\"EdDSA\"}", pay, SIG_ES256, "algorithm not allowed");
        REJECT_MADE(vs[i], "{\"alg\":\"hs256\"}", pay, SIG_HS256, "algorithm not allowed");
        REJECT_MADE(vs[i], "{\"alg\":\"HS256 \"}", pay, SIG_HS256, "algorithm not allowed");
        REJECT_MADE(vs[i], "{\"alg\":\"\"}", pay, SIG_HS256, "algorithm not allowed");
        REJECT_MADE(vs[i], "{\"alg\":[\"HS256\"]}", pay, SIG_HS256, "missing alg");
        REJECT_MADE(vs[i], "{\"alg\":null}", pay, SIG_HS256, "missing alg");
        REJECT_MADE(vs[i], "{\"typ\":\"JWT\"}", pay, SIG_HS256, "missing alg");
        REJECT_MADE(vs[i], "{\"alg\":\"HS256\\u0000x\"}", pay, SIG_HS256, "NUL");
        REJECT_MADE(vs[i], "{\"alg\\u0000\":\"HS256\"}", pay, SIG_HS256, "NUL");
    }
    /* two segments (alg none written without the trailing dot) */
    char *h = b64url_str("{\"alg\":\"none\"}"), *p = b64url_str(pay);
    char two[512];
    snprintf(two, sizeof two, "%s.%s", h, p);
    REJECT(v, two, "three segments");
    free(h);
    free(p);
    te_jwt_verifier_destroy(v);
    te_jwt_verifier_destroy(rv);
    te_jwt_verifier_destroy(ev);
    te_jwt_verifier_destroy(all);
}
END_TEST

START_TEST(key_confusion) {
    /* HS256 signed with the public key's PEM text as the HMAC secret,
     * presented to a verifier that holds only that public key. */
    const char *pems[] = {rsa_pub_pem, ec_pub_pem};
    for (int i = 0; i < 2; i++) {
        te_jwt_verifier_t *v = verifier(0, pems[i]);
        char *tok = make_keyed(hdr(SIG_HS256), claims("mallory", 60, NULL), SIG_HS256, pems[i],
                               strlen(pems[i]));
        REJECT(v, tok, "algorithm not allowed");
        free(tok);
        /* and the same with the DER bytes of the key */
        unsigned char *der = NULL;
        int dl = i2d_PUBKEY(i == 0 ? rsa_key : ec_key, &der);
        ck_assert_int_gt(dl, 0);
        tok = make_keyed(hdr(SIG_HS256), claims("mallory", 60, NULL), SIG_HS256, der,
                         (size_t)dl);
        REJECT(v, tok, "algorithm not allowed");
        free(tok);
        OPENSSL_free(der);
        te_jwt_verifier_destroy(v);
    }
    /* RS256 token presented to an HS256-only verifier */
    te_jwt_verifier_t *hv = verifier(1, NULL);
    REJECT_MADE(hv, hdr(SIG_RS256), claims("bob", 60, NULL), SIG_RS256, "algorithm not allowed");
    REJECT_MADE(hv, hdr(SIG_ES256), claims("bob", 60, NULL), SIG_ES256, "algorithm not allowed");
    te_jwt_verifier_destroy(hv);
}
END_TEST

START_TEST(time_claims) {
    te_jwt_verifier_t *v = verifier(1, NULL);
    char *t;
    /* exp: leeway 30 s by default; expired when now > exp + leeway */
    REJECT_MADE(v, hdr(SIG_HS256), claims("a", -31, NULL), SIG_HS256, "token expired");
    t = make(hdr(SIG_HS256), claims("a", -30, NULL), SIG_HS256);
    accept(v, t, "a");                                      /* within leeway */
    REJECT_AT(v, t, NOW + 1, "token expired");              /* one microsecond later */
    te_jwt_verifier_set_leeway(v, 0);
    REJECT(v, t, "token expired");
    te_jwt_verifier_set_leeway(v, 60);
    accept(v, t, "a");
    te_jwt_verifier_set_leeway(v, -5); /* counts as 0 */
    REJECT(v, t, "token expired");
    free(t);
    te_jwt_verifier_set_leeway(v, 30);
    t = make(hdr(SIG_HS256), claims("a", 0, NULL), SIG_HS256);
    accept(v, t, "a"); /* now == exp */
    free(t);
    /* fractional NumericDate */
    t = make(hdr(SIG_HS256), "{\"sub\":\"a\",\"exp\":1767225569.5}", SIG_HS256);
    accept_at(v, t, NOW - 500000, "a");
    REJECT_AT(v, t, NOW - 499999, "token expired");
    free(t);

    /* nbf */
    REJECT_MADE(v, hdr(SIG_HS256), claims("a", 600, ",\"nbf\":1767225631"), SIG_HS256,
                "token not yet valid");
    t = make(hdr(SIG_HS256), claims("a", 600, ",\"nbf\":1767225630"), SIG_HS256);
    accept(v, t, "a");
    free(t);
    t = make(hdr(SIG_HS256), claims("a", 600, ",\"nbf\":1767225000,\"iat\":1767225000"), SIG_HS256);
    accept(v, t, "a");
    free(t);

    /* missing / malformed time claims */
    REJECT_MADE(v, hdr(SIG_HS256), "{\"sub\":\"a\"}", SIG_HS256, "missing exp");
    REJECT_MADE(v, hdr(SIG_HS256), "{\"sub\":\"a\",\"exp\":\"1767229200\"}", SIG_HS256,
                "invalid exp");
    REJECT_MADE(v, hdr(SIG_HS256), "{\"sub\":\"a\",\"exp\":null}", SIG_HS256, "invalid exp");
    REJECT_MADE(v, hdr(SIG_HS256), "{\"sub\":\"a\",\"exp\":true}", SIG_HS256, "invalid exp");
    REJECT_MADE(v, hdr(SIG_HS256), "{\"sub\":\"a\",\"exp\":-1}", SIG_HS256, "invalid exp");
    REJECT_MADE(v, hdr(SIG_HS256), "{\"sub\":\"a\",\"exp\":1e300}", SIG_HS256, "invalid exp");
    REJECT_MADE(v, hdr(SIG_HS256), "{\"sub\":\"a\",\"exp\":99999999999999999999999}", SIG_HS256,
                "invalid exp");
    REJECT_MADE(v, hdr(SIG_HS256), "{\"sub\":\"a\",\"exp\":253402300800}", SIG_HS256,
                "invalid exp");
    t = make(hdr(SIG_HS256), "{\"sub\":\"a\",\"exp\":253402300799}", SIG_HS256);
    accept(v, t, "a");
    free(t);
    REJECT_MADE(v, hdr(SIG_HS256), claims("a", 60, ",\"nbf\":\"soon\""), SIG_HS256,
                "invalid nbf");
    REJECT_MADE(v, hdr(SIG_HS256), claims("a", 60, ",\"iat\":\"now\""), SIG_HS256,
                "invalid iat");
    REJECT_MADE(v, hdr(SIG_HS256), claims("a", 60, ",\"iat\":{}"), SIG_HS256, "invalid iat");
    te_jwt_verifier_destroy(v);
}
END_TEST

START_TEST(sub_claim) {
    te_jwt_verifier_t *v = verifier(1, NULL);
    char *t;
    REJECT_MADE(v, hdr(SIG_HS256), "{\"exp\":1767229200}", SIG_HS256, "missing sub");
    REJECT_MADE(v, hdr(SIG_HS256), "{\"sub\":null,\"exp\":1767229200}", SIG_HS256,
                "missing sub");
    REJECT_MADE(v, hdr(SIG_HS256), claims("", 60, NULL), SIG_HS256, "missing sub");
    REJECT_MADE(v, hdr(SIG_HS256), "{\"sub\":42,\"exp\":1767229200}", SIG_HS256, "invalid sub");
    REJECT_MADE(v, hdr(SIG_HS256), "{\"sub\":[\"a\"],\"exp\":1767229200}", SIG_HS256,
                "invalid sub");
    REJECT_MADE(v, hdr(SIG_HS256), claims("a\\u0001b", 60, NULL), SIG_HS256, "invalid sub");
    REJECT_MADE(v, hdr(SIG_HS256), claims("a\\nb", 60, NULL), SIG_HS256, "invalid sub");
    REJECT_MADE(v, hdr(SIG_HS256), claims("a\\u007fb", 60, NULL), SIG_HS256, "invalid sub");
    REJECT_MADE(v, hdr(SIG_HS256), claims("a\\u0085b", 60, NULL), SIG_HS256, "invalid sub");
    REJECT_MADE(v, hdr(SIG_HS256), claims("a\\u0000b", 60, NULL), SIG_HS256, "NUL");
    char s128[129], s129[130];
    memset(s128, 'u', 128);
    s128[128] = '\0';
    memset(s129, 'u', 129);
    s129[129] = '\0';
    t = make(hdr(SIG_HS256), claims(s128, 60, NULL), SIG_HS256);
    accept(v, t, s128);
    /* sub buffer too small; NULL sub accepted */
    char small[128];
    char e[TE_ERRSTR_SIZE] = "";
    ck_assert_int_eq(te_jwt_verify(v, t, strlen(t), NOW, small, sizeof small, NULL, e, sizeof e),
                     TE_ERR_BUFFER_TOO_SMALL);
    ck_assert_str_eq(small, "");
    ck_assert_int_eq(te_jwt_verify(v, t, strlen(t), NOW, NULL, 0, NULL, NULL, 0), TE_OK);
    free(t);
    REJECT_MADE(v, hdr(SIG_HS256), claims(s129, 60, NULL), SIG_HS256, "invalid sub");
    /* 64 two-byte characters = 128 bytes fit; 65 do not */
    char u[200] = "";
    for (int i = 0; i < 64; i++)
        strcat(u, "\xc3\xa9");
    t = make(hdr(SIG_HS256), claims(u, 60, NULL), SIG_HS256);
    accept(v, t, u);
    free(t);
    strcat(u, "\xc3\xa9");
    REJECT_MADE(v, hdr(SIG_HS256), claims(u, 60, NULL), SIG_HS256, "invalid sub");
    te_jwt_verifier_destroy(v);
}
END_TEST

START_TEST(issuer_audience) {
    te_jwt_verifier_t *v = verifier(1, NULL);
    ck_assert_int_eq(te_jwt_verifier_set_issuer(v, "https://auth.example"), TE_OK);
    ck_assert_int_eq(te_jwt_verifier_set_audience(v, "todo-api"), TE_OK);
    char *t;
    t = make(hdr(SIG_HS256),
             claims("a", 60, ",\"iss\":\"https://auth.example\",\"aud\":\"todo-api\""), SIG_HS256);
    accept(v, t, "a");
    free(t);
    t = make(hdr(SIG_HS256),
             claims("a", 60,
                    ",\"iss\":\"https://auth.example\",\"aud\":[\"other\",7,\"todo-api\"]"),
             SIG_HS256);
    accept(v, t, "a");
    free(t);
    REJECT_MADE(v, hdr(SIG_HS256),
                claims("a", 60, ",\"iss\":\"https://evil.example\",\"aud\":\"todo-api\""),
                SIG_HS256, "wrong issuer");
    REJECT_MADE(v, hdr(SIG_HS256), claims("a", 60, ",\"aud\":\"todo-api\""), SIG_HS256,
                "wrong issuer");
    REJECT_MADE(v, hdr(SIG_HS256),
                claims("a", 60, ",\"iss\":[\"https://auth.example\"],\"aud\":\"todo-api\""),
                SIG_HS256, "wrong issuer");
    REJECT_MADE(v, hdr(SIG_HS256),
                claims("a", 60, ",\"iss\":\"https://auth.example\",\"aud\":\"todo-sync\""),
                SIG_HS256, "wrong audience");
    REJECT_MADE(v, hdr(SIG_HS256),
                claims("a", 60, ",\"iss\":\"https://auth.example\",\"aud\":[\"todo-sync\"]"),
                SIG_HS256, "wrong audience");
    REJECT_MADE(v, hdr(SIG_HS256),
                claims("a", 60, ",\"iss\":\"https://auth.example\",\"aud\":[]"), SIG_HS256,
                "wrong audience");
    REJECT_MADE(v, hdr(SIG_HS256), claims("a", 60, ",\"iss\":\"https://auth.example\""),
                SIG_HS256, "wrong audience");
    REJECT_MADE(v, hdr(SIG_HS256),
                claims("a", 60, ",\"iss\":\"https://auth.example\",\"aud\":\"todo-api \""),
                SIG_HS256, "wrong audience");
    /* unset again: not checked */
    ck_assert_int_eq(te_jwt_verifier_set_issuer(v, NULL), TE_OK);
    ck_assert_int_eq(te_jwt_verifier_set_audience(v, NULL), TE_OK);
    t = make(hdr(SIG_HS256), claims("a", 60, ",\"iss\":\"x\",\"aud\":\"y\""), SIG_HS256);
    accept(v, t, "a");
    free(t);
    te_jwt_verifier_destroy(v);
}
END_TEST

START_TEST(encoding) {
    te_jwt_verifier_t *v = verifier(1, NULL);
    char *tok = make(hdr(SIG_HS256), claims("alice", 60, NULL), SIG_HS256);
    size_t n = strlen(tok);
    char buf[1024];
    accept(v, tok, "alice");
    /* padding '=' on any segment */
    char *dot1 = strchr(tok, '.'), *dot2 = strrchr(tok, '.');
    snprintf(buf, sizeof buf, "%.*s=%s", (int)(dot1 - tok), tok, dot1);
    REJECT(v, buf, "not base64url");
    snprintf(buf, sizeof buf, "%.*s=%s", (int)(dot2 - tok), tok, dot2);
    REJECT(v, buf, "not base64url");
    snprintf(buf, sizeof buf, "%s=", tok);
    REJECT(v, buf, "not base64url");
    /* the HS256 signature is 43 characters; with padding it would be 44 */
    ck_assert_int_eq((int)strlen(dot2 + 1), 43);
    /* standard-alphabet, white space and other characters */
    const char *bad[] = {"+", "/", " ", "\n", "\t", "*", "\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(buf, sizeof buf, "%s%s", tok, bad[i]);
        REJECT(v, buf, "malformed token");
        snprintf(buf, sizeof buf, "%s%s", bad[i], tok);
        REJECT(v, buf, "malformed token");
        snprintf(buf, sizeof buf, "%.*s%s%s", (int)(dot1 - tok), tok, bad[i], dot1);
        REJECT(v, buf, "malformed token");
    }
    /* non-canonical last character (unused bits set): same bytes, other text.
     * 43 characters: the last one carries 2 unused bits. */
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    strcpy(buf, tok);
    int val = (int)(strchr(al, buf[n - 1]) - al);
    ck_assert_int_eq(val & 3, 0);
    for (int bits = 1; bits < 4; bits++) {
        buf[n - 1] = al[val | bits];
        REJECT(v, buf, "not base64url");
    }
    /* the payload segment: its length mod 4 */
    size_t plen = (size_t)(dot2 - dot1 - 1);
    if (plen % 4 == 2 || plen % 4 == 3) {
        strcpy(buf, tok);
        char *pl = buf + (dot2 - tok) - 1;
        val = (int)(strchr(al, *pl) - al);
        *pl = al[val | 1];
        REJECT(v, buf, "not base64url");
    }
    /* trailing data, embedded NUL, length */
    reject_at(v, tok, n - 1, NOW, "", __LINE__);
    char withnul[1024];
    memcpy(withnul, tok, n);
    withnul[n] = '\0';
    withnul[n + 1] = 'A';
    reject_at(v, withnul, n + 2, NOW, "malformed token", __LINE__);
    /* 2 and 4 segments, empty segments */
    snprintf(buf, sizeof buf, "%.*s", (int)(dot2 - tok), tok);
    REJECT(v, buf, "three segments");
    snprintf(buf, sizeof buf, "%s.%s", tok, dot2 + 1);
    REJECT(v, buf, "three segments");
    snprintf(buf, sizeof buf, "%s.", tok);
    REJECT(v, buf, "three segments");
    REJECT(v, "..", "not base64url");
    REJECT(v, "...", "three segments");
    REJECT(v, "", "malformed token");
    snprintf(buf, sizeof buf, "%s", dot1); /* ".payload.sig" */
    REJECT(v, buf, "not base64url");
    /* too long */
    char *huge = malloc(TE_JWT_MAX_TOKEN + 2);
    memset(huge, 'A', TE_JWT_MAX_TOKEN + 1);
    huge[TE_JWT_MAX_TOKEN + 1] = '\0';
    REJECT(v, huge, "too long");
    free(huge);
    free(tok);
    te_jwt_verifier_destroy(v);
}
END_TEST

START_TEST(json_structure) {
    te_jwt_verifier_t *v = verifier(1, NULL);
    const char *pay = claims("alice", 60, NULL);
    REJECT_MADE(v, "not json", pay, SIG_HS256, "header is not a JSON object");
    REJECT_MADE(v, "[\"HS256\"]", pay, SIG_HS256, "header is not a JSON object");
    REJECT_MADE(v, "\"HS256\"", pay, SIG_HS256, "header is not a JSON object");
    REJECT_MADE(v, "{\"alg\":\"HS256\",}", pay, SIG_HS256, "header is not a JSON object");
    REJECT_MADE(v, "{'alg':'HS256'}", pay, SIG_HS256, "header is not a JSON object");
    REJECT_MADE(v, "{\"alg\":\"HS256\"} x", pay, SIG_HS256, "header is not a JSON object");
    REJECT_MADE(v, "{\"alg\":\"HS256\"}{}", pay, SIG_HS256, "header is not a JSON object");
    REJECT_MADE(v, "{\"alg\":\"HS256\",\"x\":\"\xff\"}", pay, SIG_HS256,
                "header is not a JSON object");
    REJECT_MADE(v, "", pay, SIG_HS256, "not base64url"); /* empty segment */
    /* white space around the JSON is fine */
    char *t = make(" {\"alg\" : \"HS256\"}\r\n", pay, SIG_HS256);
    accept(v, t, "alice");
    free(t);
    /* duplicate header members, either order */
    REJECT_MADE(v, "{\"alg\":\"HS256\",\"alg\":\"none\"}", pay, SIG_HS256, "duplicate member");
    REJECT_MADE(v, "{\"alg\":\"none\",\"alg\":\"HS256\"}", pay, SIG_HS256, "duplicate member");
    REJECT_MADE(v, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"typ\":\"JWT\"}", pay, SIG_HS256,
                "duplicate member");
    REJECT_MADE(v, "{\"alg\":\"HS256\",\"a\\u006cg\":\"HS256\"}", pay, SIG_HS256,
                "duplicate member");
    /* nested objects do not count as top-level members */
    t = make("{\"alg\":\"HS256\",\"jwk\":{\"alg\":\"x\",\"k\":[{\"a\":1}]},\"s\":\"a:b{\\\"\"}",
             pay, SIG_HS256);
    accept(v, t, "alice");
    free(t);
    /* crit */
    REJECT_MADE(v, "{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}", pay, SIG_HS256,
                "unsupported critical header");
    REJECT_MADE(v, "{\"alg\":\"HS256\",\"crit\":[]}", pay, SIG_HS256,
                "unsupported critical header");
    REJECT_MADE(v, "{\"alg\":\"HS256\",\"b64\":false,\"crit\":[\"b64\"]}", pay, SIG_HS256,
                "unsupported critical header");
    /* typ */
    const char *typ_ok[] = {"JWT", "jwt", "at+jwt", "AT+JWT", "application/jwt",
                            "application/at+jwt"};
    for (size_t i = 0; i < sizeof typ_ok / sizeof *typ_ok; i++) {
        char h[128];
        snprintf(h, sizeof h, "{\"alg\":\"HS256\",\"typ\":\"%s\"}", typ_ok[i]);
        t = make(h, pay, SIG_HS256);
        accept(v, t, "alice");
        free(t);
    }
    REJECT_MADE(v, "{\"alg\":\"HS256\",\"typ\":\"JWS\"}", pay, SIG_HS256,
                "unsupported token type");
    REJECT_MADE(v, "{\"alg\":\"HS256\",\"typ\":\"JOSE+JSON\"}", pay, SIG_HS256,
                "unsupported token type");
    REJECT_MADE(v, "{\"alg\":\"HS256\",\"typ\":1}", pay, SIG_HS256, "unsupported token type");
    REJECT_MADE(v, "{\"alg\":\"HS256\",\"typ\":\"\"}", pay, SIG_HS256, "unsupported token type");
    /* payload */
    REJECT_MADE(v, hdr(SIG_HS256), "[1]", SIG_HS256, "payload is not a JSON object");
    REJECT_MADE(v, hdr(SIG_HS256), "null", SIG_HS256, "payload is not a JSON object");
    REJECT_MADE(v, hdr(SIG_HS256), "{\"sub\":\"a\",\"exp\":01767229200}", SIG_HS256,
                "payload is not a JSON object");
    REJECT_MADE(v, hdr(SIG_HS256), "{\"sub\":\"a\",\"exp\":NaN}", SIG_HS256,
                "payload is not a JSON object");
    REJECT_MADE(v, hdr(SIG_HS256), "{\"sub\":\"alice\",\"sub\":\"admin\",\"exp\":1767229200}",
                SIG_HS256, "duplicate member in the payload");
    REJECT_MADE(v, hdr(SIG_HS256),
                "{\"sub\":\"alice\",\"exp\":1767229200,\"exp\":9999999999}", SIG_HS256,
                "duplicate member in the payload");
    te_jwt_verifier_destroy(v);
}
END_TEST

static char *pem_of(EVP_PKEY *k, int private_key) {
    /* no ck_assert here: main() calls it outside a test */
    BIO *b = BIO_new(BIO_s_mem());
    int ok = b && (private_key ? PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL)
                               : PEM_write_bio_PUBKEY(b, k)) == 1;
    char *data = NULL;
    long n = ok ? BIO_get_mem_data(b, &data) : -1;
    char *s = n > 0 ? malloc((size_t)n + 1) : NULL;
    if (!s) {
        fprintf(stderr, "cannot write a PEM key\n");
        abort();
    }
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    BIO_free(b);
    return s;
}

static void key_refused(const char *pem, const char *why) {
    te_jwt_verifier_t *v = NULL;
    char e[TE_ERRSTR_SIZE] = "";
    ck_assert_int_eq(te_jwt_verifier_new(&v), TE_OK);
    ck_assert_msg(te_jwt_verifier_set_public_key_pem(v, pem, strlen(pem), e, sizeof e) ==
                      TE_ERR_INVALID_ARG,
                  "key accepted (expected: %s)", why);
    ck_assert_msg(strstr(e, why) != NULL, "reason '%s', expected '%s'", e, why);
    /* still no key */
    ck_assert_int_eq(te_jwt_verify(v, "a.b.c", 5, NOW, NULL, 0, NULL, NULL, 0),
                     TE_ERR_INVALID_ARG);
    te_jwt_verifier_destroy(v);
}

START_TEST(key_loading) {
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    ck_assert(small && p384 && ed);
    char *pem;
    pem = pem_of(small, 0);
    key_refused(pem, "1024 bits");
    free(pem);
    pem = pem_of(p384, 0);
    key_refused(pem, "P-256");
    free(pem);
    pem = pem_of(ed, 0);
    key_refused(pem, "unsupported key type");
    free(pem);
    pem = pem_of(rsa_key, 1);
    key_refused(pem, "private key");
    free(pem);
    key_refused("hello", "BEGIN PUBLIC KEY");
    key_refused("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
                "cannot be decoded");
    /* PKCS#1 "RSA PUBLIC KEY" */
    OSSL_ENCODER_CTX *ec = OSSL_ENCODER_CTX_new_for_pkey(rsa_key, EVP_PKEY_PUBLIC_KEY, "PEM",
                                                         "type-specific", NULL);
    unsigned char *data = NULL;
    size_t dlen = 0;
    ck_assert_int_eq(OSSL_ENCODER_to_data(ec, &data, &dlen), 1);
    OSSL_ENCODER_CTX_free(ec);
    pem = strndup((const char *)data, dlen);
    OPENSSL_free(data);
    ck_assert_ptr_nonnull(strstr(pem, "BEGIN RSA PUBLIC KEY"));
    te_jwt_verifier_t *pv = verifier(0, pem); /* OpenSSL reads PKCS#1 as well */
    char *pt = make(hdr(SIG_RS256), claims("bob", 60, NULL), SIG_RS256);
    accept(pv, pt, "bob");
    free(pt);
    te_jwt_verifier_destroy(pv);
    free(pem);
    EVP_PKEY_free(small);
    EVP_PKEY_free(p384);
    EVP_PKEY_free(ed);

    /* a failed load leaves an earlier key in place */
    te_jwt_verifier_t *v = verifier(0, rsa_pub_pem);
    char e[TE_ERRSTR_SIZE];
    ck_assert_int_eq(te_jwt_verifier_set_public_key_pem(v, "junk", 4, e, sizeof e),
                     TE_ERR_INVALID_ARG);
    char *t = make(hdr(SIG_RS256), claims("bob", 60, NULL), SIG_RS256);
    accept(v, t, "bob");
    free(t);
    /* replacing the key switches the algorithm */
    ck_assert_int_eq(te_jwt_verifier_set_public_key_pem(v, ec_pub_pem, strlen(ec_pub_pem), e,
                                                        sizeof e),
                     TE_OK);
    REJECT_MADE(v, hdr(SIG_RS256), claims("bob", 60, NULL), SIG_RS256, "algorithm not allowed");
    t = make(hdr(SIG_ES256), claims("bob", 60, NULL), SIG_ES256);
    accept(v, t, "bob");
    free(t);
    te_jwt_verifier_destroy(v);
}
END_TEST

START_TEST(arguments) {
    te_jwt_verifier_t *v = NULL;
    ck_assert_int_eq(te_jwt_verifier_new(NULL), TE_ERR_INVALID_ARG);
    ck_assert_int_eq(te_jwt_verifier_new(&v), TE_OK);
    te_jwt_verifier_destroy(NULL);
    te_jwt_verifier_set_leeway(NULL, 5);
    ck_assert_int_eq(te_jwt_verifier_set_secret(v, "short", 5), TE_ERR_INVALID_ARG);
    ck_assert_int_eq(te_jwt_verifier_set_secret(v, SECRET, 31), TE_ERR_INVALID_ARG);
    ck_assert_int_eq(te_jwt_verifier_set_secret(v, NULL, 40), TE_ERR_INVALID_ARG);
    ck_assert_int_eq(te_jwt_verifier_set_secret(NULL, SECRET, SECRET_LEN), TE_ERR_INVALID_ARG);
    ck_assert_int_eq(te_jwt_verifier_set_issuer(NULL, "x"), TE_ERR_INVALID_ARG);
    ck_assert_int_eq(te_jwt_verifier_set_audience(NULL, "x"), TE_ERR_INVALID_ARG);
    char e[TE_ERRSTR_SIZE] = "";
    ck_assert_int_eq(te_jwt_verifier_set_public_key_pem(v, NULL, 0, e, sizeof e),
                     TE_ERR_INVALID_ARG);
    /* no key: a configuration error, not the client's */
    char *tok = make(hdr(SIG_HS256), claims("a", 60, NULL), SIG_HS256);
    ck_assert_int_eq(te_jwt_verify(v, tok, strlen(tok), NOW, NULL, 0, NULL, e, sizeof e),
                     TE_ERR_INVALID_ARG);
    ck_assert_int_eq(te_jwt_verifier_set_secret(v, SECRET, 32), TE_OK);
    ck_assert_int_eq(te_jwt_verify(v, NULL, 0, NOW, NULL, 0, NULL, e, sizeof e),
                     TE_ERR_INVALID_ARG);
    ck_assert_int_eq(te_jwt_verify(NULL, tok, strlen(tok), NOW, NULL, 0, NULL, e, sizeof e),
                     TE_ERR_INVALID_ARG);
    /* only the first 32 bytes were set: the token (full secret) fails */
    REJECT(v, tok, "bad signature");
    free(tok);
    te_jwt_verifier_destroy(v);

    /* minting */
    char *out = (char *)1;
    ck_assert_int_eq(te_jwt_sign_hs256(SECRET, 31, "a", NOW, 60, NULL, NULL, &out),
                     TE_ERR_INVALID_ARG);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(te_jwt_sign_hs256(SECRET, SECRET_LEN, "", NOW, 60, NULL, NULL, &out),
                     TE_ERR_INVALID_ARG);
    ck_assert_int_eq(te_jwt_sign_hs256(SECRET, SECRET_LEN, NULL, NOW, 60, NULL, NULL, &out),
                     TE_ERR_INVALID_ARG);
    ck_assert_int_eq(te_jwt_sign_hs256(SECRET, SECRET_LEN, "a\tb", NOW, 60, NULL, NULL, &out),
                     TE_ERR_INVALID_ARG);
    ck_assert_int_eq(te_jwt_sign_hs256(SECRET, SECRET_LEN, "a\xff", NOW, 60, NULL, NULL, &out),
                     TE_ERR_INVALID_ARG);
    char s129[130];
    memset(s129, 'x', 129);
    s129[129] = '\0';
    ck_assert_int_eq(te_jwt_sign_hs256(SECRET, SECRET_LEN, s129, NOW, 60, NULL, NULL, &out),
                     TE_ERR_INVALID_ARG);
    ck_assert_int_eq(te_jwt_sign_hs256(SECRET, SECRET_LEN, "a", NOW, 0, NULL, NULL, &out),
                     TE_ERR_INVALID_ARG);
    ck_assert_int_eq(te_jwt_sign_hs256(SECRET, SECRET_LEN, "a", NOW, TE_JWT_MAX_TTL + 1, NULL,
                                       NULL, &out),
                     TE_ERR_INVALID_ARG);
    ck_assert_int_eq(te_jwt_sign_hs256(SECRET, SECRET_LEN, "a", -1, 60, NULL, NULL, &out),
                     TE_ERR_INVALID_ARG);
    ck_assert_int_eq(te_jwt_sign_hs256(SECRET, SECRET_LEN, "a", NOW, 60, "", NULL, &out),
                     TE_ERR_INVALID_ARG);
    ck_assert_int_eq(te_jwt_sign_hs256(SECRET, SECRET_LEN, "a", NOW, 60, NULL, NULL, NULL),
                     TE_ERR_INVALID_ARG);
    ck_assert_ptr_null(out);
    /* escaping in the minted JSON round-trips */
    ck_assert_int_eq(te_jwt_sign_hs256(SECRET, SECRET_LEN, "a\"b\\c/d", NOW, TE_JWT_MAX_TTL,
                                       "i\"ss", NULL, &out),
                     TE_OK);
    v = verifier(1, NULL);
    te_jwt_verifier_set_issuer(v, "i\"ss");
    accept(v, out, "a\"b\\c/d");
    te_jwt_verifier_destroy(v);
    te_free(out);
}
END_TEST

START_TEST(error_code) {
    ck_assert_str_eq(te_err_name(TE_ERR_UNAUTHORIZED), "TE_ERR_UNAUTHORIZED");
    ck_assert_str_eq(te_err2str(TE_ERR_UNAUTHORIZED), "authentication failed");
    ck_assert_int_eq(te_err_is_retriable(TE_ERR_UNAUTHORIZED), 0);
    ck_assert_int_eq(TE_ERR_UNAUTHORIZED + 1, TE_ERR__END);
}
END_TEST

/* Many threads verifying with shared verifiers at once. */
struct shared {
    te_jwt_verifier_t *v;
    char *good[3], *bad[3];
    int failures;
};

static void *worker(void *arg) {
    struct shared *s = arg;
    int fails = 0;
    for (int i = 0; i < 150; i++) {
        for (int a = 0; a < 3; a++) {
            char sub[TE_JWT_SUB_MAX + 1], e[TE_ERRSTR_SIZE];
            if (te_jwt_verify(s->v, s->good[a], strlen(s->good[a]), NOW, sub, sizeof sub, NULL,
                              e, sizeof e) != TE_OK ||
                strcmp(sub, "t") != 0)
                fails++;
            if (te_jwt_verify(s->v, s->bad[a], strlen(s->bad[a]), NOW, sub, sizeof sub, NULL, e,
                              sizeof e) != TE_ERR_UNAUTHORIZED)
                fails++;
        }
    }
    __atomic_add_fetch(&s->failures, fails, __ATOMIC_SEQ_CST);
    return NULL;
}

START_TEST(threads) {
    /* one verifier per key type; HS256 shares the RSA verifier */
    te_jwt_verifier_t *rv = verifier(1, rsa_pub_pem), *ev = verifier(1, ec_pub_pem);
    struct shared s[2] = {{rv, {NULL}, {NULL}, 0}, {ev, {NULL}, {NULL}, 0}};
    signer_t pk[2] = {SIG_RS256, SIG_ES256};
    for (int k = 0; k < 2; k++) {
        signer_t algs[3] = {SIG_HS256, pk[k], pk[k]};
        for (int a = 0; a < 3; a++) {
            s[k].good[a] = make(hdr(algs[a]), claims("t", 60, NULL), algs[a]);
            s[k].bad[a] = make(hdr(algs[a]), claims("t", -60, NULL), algs[a]);
        }
    }
    pthread_t th[8];
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, worker, &s[i % 2]), 0);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(s[k].failures, 0);
        for (int a = 0; a < 3; a++) {
            free(s[k].good[a]);
            free(s[k].bad[a]);
        }
    }
    te_jwt_verifier_destroy(rv);
    te_jwt_verifier_destroy(ev);
}
END_TEST

int main(void) {
    /* Keys once, before Check forks, so every test shares them. */
    rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    ec_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!rsa_key || !ec_key) {
        fprintf(stderr, "test key generation failed\n");
        return 1;
    }
    rsa_pub_pem = pem_of(rsa_key, 0);
    ec_pub_pem = pem_of(ec_key, 0);

    Suite *s = suite_create("jwt");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, hs256_round_trip);
    tcase_add_test(tc, hs256_known_answer);
    tcase_add_test(tc, rs256_es256_good);
    tcase_add_test(tc, tampering);
    tcase_add_test(tc, algorithms_refused);
    tcase_add_test(tc, key_confusion);
    tcase_add_test(tc, time_claims);
    tcase_add_test(tc, sub_claim);
    tcase_add_test(tc, issuer_audience);
    tcase_add_test(tc, encoding);
    tcase_add_test(tc, json_structure);
    tcase_add_test(tc, key_loading);
    tcase_add_test(tc, arguments);
    tcase_add_test(tc, error_code);
    tcase_add_test(tc, threads);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    free(rsa_pub_pem);
    free(ec_pub_pem);
    EVP_PKEY_free(rsa_key);
    EVP_PKEY_free(ec_key);
    return failed ? 1 : 0;
}
