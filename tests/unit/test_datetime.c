/* RFC 3339 parse/format and IANA zone conversion. Expected instants are
 * worked out by hand from the published DST rules of each zone. */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <todoevents/todoevents.h>

static te_time_t P(const char *s) {
    te_time_t t;
    char e[TE_ERRSTR_SIZE];
    ck_assert_msg(te_time_parse(s, &t, NULL, e, sizeof e) == TE_OK, "%s: %s", s, e);
    return t;
}

static te_time_t civil(int y, int mo, int d, int h, int mi, int s) {
    te_civil_t c = {y, mo, d, h, mi, s, 0};
    te_time_t t;
    ck_assert_int_eq(te_civil_to_time(&c, &t), TE_OK);
    return t;
}

START_TEST(parse_basic) {
    int off;
    te_time_t t;
    ck_assert_int_eq(te_time_parse("1970-01-01T00:00:00Z", &t, &off, NULL, 0), TE_OK);
    ck_assert_int_eq(t, 0);
    ck_assert_int_eq(off, 0);
    ck_assert_int_eq(te_time_parse("2026-02-03T10:30:00+05:30", &t, &off, NULL, 0), TE_OK);
    ck_assert_int_eq(off, 5 * 3600 + 1800);
    ck_assert_int_eq(t, P("2026-02-03T05:00:00Z"));
    ck_assert_int_eq(P("2026-02-03T10:30:00-08:00"), P("2026-02-03T18:30:00Z"));
    ck_assert_int_eq(P("2026-02-03t10:30:00z"), P("2026-02-03T10:30:00Z"));
    ck_assert_int_eq(P("1985-04-12T23:20:50.52Z"), civil(1985, 4, 12, 23, 20, 50) + 520000);
    ck_assert_int_eq(P("1985-04-12T23:20:50.123456789Z"), civil(1985, 4, 12, 23, 20, 50) + 123456);
    ck_assert_int_eq(P("1996-12-19T16:39:57-08:00"), P("1996-12-20T00:39:57Z"));
    /* -00:00 is allowed ("UTC, local offset unknown"). */
    ck_assert_int_eq(P("2026-01-01T00:00:00-00:00"), P("2026-01-01T00:00:00Z"));
    /* Leap second, read as the next second. */
    ck_assert_int_eq(P("1990-12-31T23:59:60Z"), P("1991-01-01T00:00:00Z"));
    ck_assert_int_eq(P("0001-01-01T00:00:00Z"), civil(1, 1, 1, 0, 0, 0));
    ck_assert(P("1969-12-31T23:59:59.5Z") == -500000);
}
END_TEST

START_TEST(parse_calendar) {
    te_time_t t;
    ck_assert_int_eq(te_time_parse("2024-02-29T00:00:00Z", &t, NULL, NULL, 0), TE_OK);
    ck_assert_int_eq(te_time_parse("2000-02-29T00:00:00Z", &t, NULL, NULL, 0), TE_OK);
    ck_assert_int_eq(te_time_parse("2023-02-29T00:00:00Z", &t, NULL, NULL, 0), TE_ERR_TIME);
    ck_assert_int_eq(te_time_parse("2100-02-29T00:00:00Z", &t, NULL, NULL, 0), TE_ERR_TIME);
    ck_assert_int_eq(te_time_parse("2026-04-31T00:00:00Z", &t, NULL, NULL, 0), TE_ERR_TIME);
}
END_TEST

START_TEST(parse_invalid) {
    static const char *bad[] = {
        "", "2026-01-01", "2026-01-01T10:00:00", "2026-01-01 10:00:00Z", "2026-1-01T10:00:00Z",
        "2026-13-01T10:00:00Z", "2026-00-10T10:00:00Z", "2026-01-00T10:00:00Z",
        "2026-01-01T24:00:00Z", "2026-01-01T10:60:00Z", "2026-01-01T10:00:61Z",
        "2026-01-01T10:00:00.Z", "2026-01-01T10:00:00+24:00", "2026-01-01T10:00:00+01:60",
        "2026-01-01T10:00:00+0100", "2026-01-01T10:00:00Zjunk", "0000-01-01T00:00:00Z",
        "2026-01-01T10:00Z", " 2026-01-01T10:00:00Z", "2026-01-01T10:00:00+01", "+2026-01-01T10:00:00Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        te_time_t t;
        char e[TE_ERRSTR_SIZE] = "";
        ck_assert_msg(te_time_parse(bad[i], &t, NULL, e, sizeof e) == TE_ERR_TIME,
                      "accepted '%s'", bad[i]);
        ck_assert_msg(e[0] != '\0', "no detail for '%s'", bad[i]);
    }
    ck_assert_int_eq(te_time_parse(NULL, NULL, NULL, NULL, 0), TE_ERR_INVALID_ARG);
}
END_TEST

START_TEST(format) {
    char b[TE_TIME_STRLEN];
    ck_assert_int_eq(te_time_format_utc(0, b, sizeof b), TE_OK);
    ck_assert_str_eq(b, "1970-01-01T00:00:00Z");
    ck_assert_int_eq(te_time_format_utc(P("2026-02-03T10:30:00.250Z"), b, sizeof b), TE_OK);
    ck_assert_str_eq(b, "2026-02-03T10:30:00.250Z");
    ck_assert_int_eq(te_time_format_utc(P("2026-02-03T10:30:00.000001Z"), b, sizeof b), TE_OK);
    ck_assert_str_eq(b, "2026-02-03T10:30:00.000001Z");
    ck_assert_int_eq(te_time_format(P("2026-02-03T10:30:00Z"), -(3 * 3600 + 1800), 1, b, sizeof b),
                     TE_OK);
    ck_assert_str_eq(b, "2026-02-03T07:00:00-03:30");
    ck_assert_int_eq(te_time_format(P("2026-02-03T10:30:00Z"), 0, 0, b, sizeof b), TE_OK);
    ck_assert_str_eq(b, "2026-02-03T10:30:00+00:00");
    ck_assert_int_eq(te_time_format_utc(-500000, b, sizeof b), TE_OK);
    ck_assert_str_eq(b, "1969-12-31T23:59:59.500Z");
    ck_assert_int_eq(te_time_format_utc(0, b, 10), TE_ERR_BUFFER_TOO_SMALL);
    ck_assert_int_eq(te_time_format(0, 30, 1, b, sizeof b), TE_ERR_INVALID_ARG);
}
END_TEST

START_TEST(round_trip) {
    /* Every day of 2024 at a few offsets parses back to the same instant. */
    te_time_t start = P("2024-01-01T00:00:00Z");
    for (int d = 0; d < 366; d++) {
        te_time_t t = start + (te_time_t)d * 86400 * TE_USEC_PER_SEC + d * 1234567;
        int offs[] = {0, 3600, -34200, 50400};
        for (int k = 0; k < 4; k++) {
            char b[TE_TIME_STRLEN];
            ck_assert_int_eq(te_time_format(t, offs[k], 1, b, sizeof b), TE_OK);
            int off;
            te_time_t back;
            ck_assert_int_eq(te_time_parse(b, &back, &off, NULL, 0), TE_OK);
            ck_assert_int_eq(back, t);
            ck_assert_int_eq(off, offs[k]);
        }
    }
}
END_TEST

START_TEST(zone_check) {
    char e[TE_ERRSTR_SIZE];
    ck_assert_int_eq(te_tz_check("Europe/Berlin", e, sizeof e), TE_OK);
    ck_assert_int_eq(te_tz_check("America/Argentina/Buenos_Aires", e, sizeof e), TE_OK);
    ck_assert_int_eq(te_tz_check("UTC", e, sizeof e), TE_OK);
    ck_assert_int_eq(te_tz_check("Etc/GMT+5", e, sizeof e), TE_OK);
    static const char *bad[] = {"Foo/Bar", "../../etc/passwd", "", "/etc/localtime",
                                "Europe/Berlin ", "Europe//Berlin", "Europe/../Europe/Berlin"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        e[0] = 0;
        ck_assert_msg(te_tz_check(bad[i], e, sizeof e) == TE_ERR_ZONE, "accepted '%s'", bad[i]);
        ck_assert(e[0]);
    }
    ck_assert(te_tz_is_utc("UTC") && te_tz_is_utc("Etc/UTC"));
    ck_assert(!te_tz_is_utc("Europe/London"));
}
END_TEST

START_TEST(zone_offsets) {
    int off;
    ck_assert_int_eq(te_tz_offset_at("Europe/Berlin", P("2026-01-15T12:00:00Z"), &off), TE_OK);
    ck_assert_int_eq(off, 3600);
    ck_assert_int_eq(te_tz_offset_at("Europe/Berlin", P("2026-07-15T12:00:00Z"), &off), TE_OK);
    ck_assert_int_eq(off, 7200);
    /* Transition instants: 2026-03-29T01:00Z (Berlin), 2026-03-08T07:00Z (NY). */
    te_tz_offset_at("Europe/Berlin", P("2026-03-29T00:59:59Z"), &off);
    ck_assert_int_eq(off, 3600);
    te_tz_offset_at("Europe/Berlin", P("2026-03-29T01:00:00Z"), &off);
    ck_assert_int_eq(off, 7200);
    te_tz_offset_at("America/New_York", P("2026-03-08T06:59:59Z"), &off);
    ck_assert_int_eq(off, -5 * 3600);
    te_tz_offset_at("America/New_York", P("2026-03-08T07:00:00Z"), &off);
    ck_assert_int_eq(off, -4 * 3600);
    /* Far future: rules still apply (no 2038 cut-off). */
    te_tz_offset_at("Europe/Berlin", P("2090-07-01T12:00:00Z"), &off);
    ck_assert_int_eq(off, 7200);
    te_tz_offset_at("Australia/Sydney", P("2026-01-01T00:00:00Z"), &off);
    ck_assert_int_eq(off, 11 * 3600);
    ck_assert_int_eq(te_tz_offset_at("Nowhere/City", 0, &off), TE_ERR_ZONE);
}
END_TEST

static void expect_local(const char *zone, int y, int mo, int d, int h, int mi, const char *utc,
                         int flags) {
    te_civil_t c = {y, mo, d, h, mi, 0, 0};
    te_time_t t;
    int f = -1;
    ck_assert_int_eq(te_tz_from_local(zone, &c, &t, &f), TE_OK);
    char b[TE_TIME_STRLEN];
    te_time_format_utc(t, b, sizeof b);
    ck_assert_msg(t == P(utc), "%s %04d-%02d-%02d %02d:%02d -> %s, expected %s", zone, y, mo, d, h,
                  mi, b, utc);
    ck_assert_int_eq(f, flags);
}

START_TEST(zone_from_local) {
    expect_local("Europe/Berlin", 2026, 7, 1, 12, 0, "2026-07-01T10:00:00Z", TE_LOCAL_EXACT);
    expect_local("Europe/Berlin", 2026, 1, 1, 12, 0, "2026-01-01T11:00:00Z", TE_LOCAL_EXACT);
    /* Gaps: shifted forward by the gap (read with the offset before it). */
    expect_local("Europe/Berlin", 2026, 3, 29, 2, 30, "2026-03-29T01:30:00Z", TE_LOCAL_GAP);
    expect_local("America/New_York", 2026, 3, 8, 2, 30, "2026-03-08T07:30:00Z", TE_LOCAL_GAP);
    expect_local("Australia/Sydney", 2026, 10, 4, 2, 30, "2026-10-03T16:30:00Z", TE_LOCAL_GAP);
    expect_local("Pacific/Auckland", 2026, 9, 27, 2, 30, "2026-09-26T14:30:00Z", TE_LOCAL_GAP);
    /* Overlaps: the first (earlier) instant. */
    expect_local("Europe/Berlin", 2026, 10, 25, 2, 30, "2026-10-25T00:30:00Z", TE_LOCAL_AMBIGUOUS);
    expect_local("America/New_York", 2026, 11, 1, 1, 30, "2026-11-01T05:30:00Z",
                 TE_LOCAL_AMBIGUOUS);
    expect_local("Australia/Sydney", 2026, 4, 5, 2, 30, "2026-04-04T15:30:00Z", TE_LOCAL_AMBIGUOUS);
    expect_local("Pacific/Auckland", 2026, 4, 5, 2, 30, "2026-04-04T13:30:00Z", TE_LOCAL_AMBIGUOUS);
    /* Edges of the overlap/gap are exact. */
    expect_local("Europe/Berlin", 2026, 10, 25, 3, 0, "2026-10-25T02:00:00Z", TE_LOCAL_EXACT);
    expect_local("Europe/Berlin", 2026, 3, 29, 3, 0, "2026-03-29T01:00:00Z", TE_LOCAL_EXACT);
    expect_local("UTC", 2026, 3, 29, 2, 30, "2026-03-29T02:30:00Z", TE_LOCAL_EXACT);
    /* Half-hour DST shift. */
    expect_local("Australia/Lord_Howe", 2026, 10, 4, 2, 15, "2026-10-03T15:45:00Z", TE_LOCAL_GAP);
}
END_TEST

START_TEST(zone_to_local) {
    te_civil_t c;
    int off;
    ck_assert_int_eq(te_tz_to_local("America/New_York", P("2026-11-01T05:30:00Z"), &c, &off), TE_OK);
    ck_assert_int_eq(c.hour, 1);
    ck_assert_int_eq(c.minute, 30);
    ck_assert_int_eq(off, -4 * 3600);
    ck_assert_int_eq(te_tz_to_local("America/New_York", P("2026-11-01T06:30:00Z"), &c, &off), TE_OK);
    ck_assert_int_eq(c.hour, 1);
    ck_assert_int_eq(off, -5 * 3600);
    char b[TE_TIME_STRLEN];
    ck_assert_int_eq(te_time_format_in_zone(P("2026-01-10T09:00:00Z"), "Europe/London", b, sizeof b),
                     TE_OK);
    ck_assert_str_eq(b, "2026-01-10T09:00:00+00:00");
    ck_assert_int_eq(te_time_format_in_zone(P("2026-01-10T09:00:00Z"), "UTC", b, sizeof b), TE_OK);
    ck_assert_str_eq(b, "2026-01-10T09:00:00Z");
    ck_assert_int_eq(te_time_format_in_zone(P("2026-07-10T07:00:00Z"), "Europe/Berlin", b, sizeof b),
                     TE_OK);
    ck_assert_str_eq(b, "2026-07-10T09:00:00+02:00");
}
END_TEST

START_TEST(errors_table) {
    ck_assert_int_eq(TE_OK, 0);
    ck_assert_str_eq(te_err2str(TE_OK), "success");
    ck_assert_str_eq(te_err_name(TE_ERR_ZONE), "TE_ERR_ZONE");
    ck_assert_str_eq(te_err2str((te_err_t)9999), "unknown error");
    ck_assert_str_eq(te_err_name((te_err_t)-1), "TE_ERR_UNKNOWN");
    for (int e = 0; e < TE_ERR__END; e++) {
        ck_assert(te_err2str((te_err_t)e)[0]);
        ck_assert(strncmp(te_err_name((te_err_t)e), "TE_", 3) == 0);
    }
    ck_assert(te_err_is_retriable(TE_ERR_NOMEM));
    ck_assert(!te_err_is_retriable(TE_ERR_INVALID));
    ck_assert_int_eq(te_version(), TE_VERSION_NUM);
    char v[32];
    snprintf(v, sizeof v, "%d.%d.%d", TE_VERSION_MAJOR, TE_VERSION_MINOR, TE_VERSION_PATCH);
    ck_assert_str_eq(te_version_str(), v);
}
END_TEST

START_TEST(problems_list) {
    te_problems_t *p = te_problems_new();
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(te_problems_count(p), 0);
    ck_assert_int_eq(te_problems_add(p, "title", "must be at most %d characters", 200), TE_OK);
    for (int i = 0; i < 40; i++)
        te_problems_add(p, "tags", "x%d", i);
    ck_assert_int_eq(te_problems_count(p), 41);
    ck_assert_str_eq(te_problems_field(p, 0), "title");
    ck_assert_str_eq(te_problems_reason(p, 0), "must be at most 200 characters");
    ck_assert_str_eq(te_problems_reason(p, 40), "x39");
    ck_assert_ptr_null(te_problems_field(p, 41));
    char b[64];
    ck_assert_str_eq(te_problems_format(p, 0, b, sizeof b), "title: must be at most 200 characters");
    te_problems_clear(p);
    ck_assert_int_eq(te_problems_count(p), 0);
    ck_assert_int_eq(te_problems_add(NULL, "x", "y"), TE_OK);
    te_problems_destroy(p);
    te_problems_destroy(NULL);
}
END_TEST

int main(void) {
    Suite *s = suite_create("datetime");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, parse_basic);
    tcase_add_test(tc, parse_calendar);
    tcase_add_test(tc, parse_invalid);
    tcase_add_test(tc, format);
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, zone_check);
    tcase_add_test(tc, zone_offsets);
    tcase_add_test(tc, zone_from_local);
    tcase_add_test(tc, zone_to_local);
    tcase_add_test(tc, errors_table);
    tcase_add_test(tc, problems_list);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
