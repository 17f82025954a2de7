/* todo-reminder's transports without services: the Standard Webhooks
 * signature (the specification's published example), the private-address
 * guard for webhooks, and the RFC 2047 Subject header. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "reminder.h"
#include "whsec.h"

/* ---- signature ------------------------------------------------------------ */

START_TEST(sign_matches_the_standard_webhooks_example) {
    /* the example of the Standard Webhooks specification and its libraries */
    char sig[64];
    ck_assert_int_eq(channels_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
                                   "1614265330", "{\"test\": 2432232314}", sig),
                     0);
    ck_assert_str_eq(sig, "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}
END_TEST

START_TEST(sign_covers_id_timestamp_and_body) {
    const char *secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    char a[64], b[64];
    ck_assert_int_eq(channels_sign(secret, "id1", "100", "{}", a), 0);
    ck_assert_int_eq(channels_sign(secret, "id2", "100", "{}", b), 0);
    ck_assert_str_ne(a, b);
    ck_assert_int_eq(channels_sign(secret, "id1", "101", "{}", b), 0);
    ck_assert_str_ne(a, b);
    ck_assert_int_eq(channels_sign(secret, "id1", "100", "{ }", b), 0);
    ck_assert_str_ne(a, b);
    /* padding: a 32-byte key (44 base64 characters, one '=') */
    ck_assert_int_eq(channels_sign("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "i", "1", "x", b), 0);
    ck_assert_uint_eq(strlen(b), 44);
}
END_TEST

START_TEST(sign_refuses_bad_secrets) {
    char sig[64];
    ck_assert_int_eq(channels_sign(NULL, "i", "1", "x", sig), -1);
    ck_assert_int_eq(channels_sign("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "i", "1", "x", sig), -1); /* no prefix */
    ck_assert_int_eq(channels_sign("whsec_", "i", "1", "x", sig), -1);
    ck_assert_int_eq(channels_sign("whsec_abc", "i", "1", "x", sig), -1);          /* not base64 length */
    ck_assert_int_eq(channels_sign("whsec_ab!d", "i", "1", "x", sig), -1);         /* not base64 */
}
END_TEST

START_TEST(whsec_keys_are_strict_base64) {
    unsigned char key[TD_WHSEC_MAX_KEY];
    /* 24 bytes (no padding), 32 bytes (one '='), 64 bytes (two '=') */
    ck_assert_int_eq(td_whsec_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", key, sizeof key), 24);
    ck_assert_int_eq(td_whsec_key("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", key, sizeof key), 32);
    ck_assert_uint_eq(key[31], 31);
    char s64[6 + 89] = "whsec_";
    for (int i = 0; i < 84; i++) s64[6 + i] = 'A';
    strcpy(s64 + 6 + 84, "AA==");
    ck_assert_int_eq(td_whsec_key(s64, key, sizeof key), 64);
    static const char *const bad[] = {
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",            /* no prefix */
        "whsec_",                                      /* empty */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa",        /* 21 bytes: too short */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",       /* not a multiple of 4 */
        "whsec_MfKQ9r8GKYqrTwjUPD8I=PZIo2LaLaSw",      /* '=' inside */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa==",      /* 22 bytes with padding: too short */
        "whsec_MfKQ9r8GKYqrTwjUPD8IL ZIo2LaLaSw",      /* whitespace */
        "whsec_MfKQ9r8GKYqrTwjUPD8IL-ZIo2LaLaSw",      /* base64url is not the format */
        "whsec_A===",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(td_whsec_key(bad[i], key, sizeof key) == -1, "%s accepted", bad[i]);
    char fresh[64];
    ck_assert_int_eq(td_whsec_new(fresh, sizeof fresh), 0);
    ck_assert_int_eq(td_whsec_key(fresh, key, sizeof key), 32);
}
END_TEST

/* ---- private addresses ---------------------------------------------------- */

static int blocked4(const char *ip) {
    struct sockaddr_in a = {.sin_family = AF_INET};
    ck_assert_int_eq(inet_pton(AF_INET, ip, &a.sin_addr), 1);
    return channels_address_blocked((const struct sockaddr *)&a);
}

static int blocked6(const char *ip) {
    struct sockaddr_in6 a = {.sin6_family = AF_INET6};
    ck_assert_int_eq(inet_pton(AF_INET6, ip, &a.sin6_addr), 1);
    return channels_address_blocked((const struct sockaddr *)&a);
}

START_TEST(private_ipv4_blocked) {
    static const char *const blocked[] = {"0.0.0.0",       "10.0.0.1",       "10.255.255.255", "127.0.0.1",
                                          "127.8.9.10",    "169.254.169.254", "172.16.0.1",    "172.31.255.255",
                                          "192.168.0.1",   "192.168.255.254", "100.64.0.1",    "100.127.255.255",
                                          "224.0.0.1",     "239.255.255.250", "255.255.255.255"};
    static const char *const allowed[] = {"8.8.8.8",     "1.1.1.1",     "172.15.255.255", "172.32.0.1",
                                          "192.167.1.1", "192.169.0.1", "100.63.255.255", "100.128.0.1",
                                          "169.253.0.1", "11.0.0.1",    "126.255.255.255", "223.255.255.255"};
    for (size_t i = 0; i < sizeof blocked / sizeof *blocked; i++)
        ck_assert_msg(blocked4(blocked[i]), "%s should be refused", blocked[i]);
    for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++)
        ck_assert_msg(!blocked4(allowed[i]), "%s should be allowed", allowed[i]);
}
END_TEST

START_TEST(private_ipv6_blocked) {
    static const char *const blocked[] = {"::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1",
                                          "::ffff:127.0.0.1", "::ffff:10.1.2.3", "::ffff:169.254.169.254"};
    static const char *const allowed[] = {"2001:4860:4860::8888", "2a00:1450::1", "::ffff:8.8.8.8"};
    for (size_t i = 0; i < sizeof blocked / sizeof *blocked; i++)
        ck_assert_msg(blocked6(blocked[i]), "%s should be refused", blocked[i]);
    for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++)
        ck_assert_msg(!blocked6(allowed[i]), "%s should be allowed", allowed[i]);
}
END_TEST

/* ---- Subject -------------------------------------------------------------- */

START_TEST(subject_ascii_is_plain) {
    char buf[256] = "To: x@example.test\r\n";
    channels_subject(buf, sizeof buf, "Pay rent");
    ck_assert_str_eq(buf, "To: x@example.test\r\nSubject: Reminder: Pay rent\r\n");
}
END_TEST

START_TEST(subject_control_characters_cannot_add_headers) {
    char buf[256] = "";
    channels_subject(buf, sizeof buf, "x\r\nBcc: victim@example.test");
    ck_assert_str_eq(buf, "Subject: Reminder: x  Bcc: victim@example.test\r\n");
}
END_TEST

/* Decodes the encoded words of a Subject produced by channels_subject. */
static void decode_subject(const char *hdr, char *out, size_t size) {
    size_t len = 0;
    const char *p = hdr;
    ck_assert(strncmp(p, "Subject:", 8) == 0);
    while ((p = strstr(p, "=?UTF-8?B?")) != NULL) {
        const char *start = p + 10, *end = strstr(start, "?=");
        ck_assert_ptr_nonnull(end);
        ck_assert_uint_le((size_t)(end + 2 - p), 75); /* RFC 2047 §2: at most 75 characters */
        unsigned char chunk[128];
        int n = EVP_DecodeBlock(chunk, (const unsigned char *)start, (int)(end - start));
        ck_assert_int_ge(n, 0);
        for (const char *q = end - 1; q >= start && *q == '='; q--) n--;
        /* each word holds whole UTF-8 characters (RFC 2047 §5) */
        ck_assert((chunk[0] & 0xC0) != 0x80);
        ck_assert_uint_lt(len + (size_t)n, size);
        memcpy(out + len, chunk, (size_t)n);
        len += (size_t)n;
        p = end + 2;
        ck_assert(strncmp(p, "\r\n", 2) == 0); /* folded: every word on its own line */
        if (p[2]) ck_assert(p[2] == ' ');
    }
    out[len] = '\0';
}

START_TEST(subject_utf8_is_encoded_words) {
    const char *title = "Zahnarzt — Überweisung mitbringen ☕ and a long tail to need several encoded words";
    char buf[1024] = "", decoded[512], want[512];
    channels_subject(buf, sizeof buf, title);
    for (const char *c = buf; *c; c++) ck_assert_int_lt((unsigned char)*c, 0x80); /* 7-bit header */
    decode_subject(buf, decoded, sizeof decoded);
    snprintf(want, sizeof want, "Reminder: %s", title);
    ck_assert_str_eq(decoded, want);
    ck_assert_ptr_nonnull(strstr(strstr(buf, "?=\r\n") + 4, "=?UTF-8?B?")); /* more than one word */
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("td_reminder");
    TCase *t = tcase_create("signature");
    tcase_add_test(t, sign_matches_the_standard_webhooks_example);
    tcase_add_test(t, sign_covers_id_timestamp_and_body);
    tcase_add_test(t, sign_refuses_bad_secrets);
    tcase_add_test(t, whsec_keys_are_strict_base64);
    suite_add_tcase(s, t);
    t = tcase_create("addresses");
    tcase_add_test(t, private_ipv4_blocked);
    tcase_add_test(t, private_ipv6_blocked);
    suite_add_tcase(s, t);
    t = tcase_create("subject");
    tcase_add_test(t, subject_ascii_is_plain);
    tcase_add_test(t, subject_control_characters_cannot_add_headers);
    tcase_add_test(t, subject_utf8_is_encoded_words);
    suite_add_tcase(s, t);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
