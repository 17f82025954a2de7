/* CloudEvents 1.0: every rule of the core spec and the JSON event format,
 * the spec's own examples, the event object API, and the Kafka binding
 * (mode detection, binary/structured encode/decode, round trips). */
#include <check.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <todoevents/cloudevent.h>
#include <uuid/uuid.h>

#include "internal.h"

/* ---- helpers -------------------------------------------------------------- */

/* Test JSON is written with ' for " (no test needs a literal '); returned
 * from a small ring of static buffers. */
static const char *J(const char *s) {
    static char ring[8][16384];
    static int k;
    char *b = ring[k++ % 8];
    size_t n = strlen(s);
    ck_assert_uint_lt(n, sizeof ring[0]);
    for (size_t i = 0; i <= n; i++)
        b[i] = s[i] == '\'' ? '"' : s[i];
    return b;
}

#define BASE "'specversion':'1.0','id':'A234-1234-1234','source':'/mycontext','type':'com.example.someevent'"

static te_problems_t *P;

static void dump(void) {
    for (size_t i = 0; i < te_problems_count(P); i++)
        fprintf(stderr, "    problem %s: %s\n", te_problems_field(P, i), te_problems_reason(P, i));
}

/* Decodes json (already in real JSON syntax); expects success. */
static te_event_t *ok_raw(const char *json, size_t len) {
    te_event_t *ev = (te_event_t *)1;
    char e[TE_ERRSTR_SIZE] = "";
    te_problems_clear(P);
    te_err_t err = te_event_from_json(json, len, &ev, P, e, sizeof e);
    if (err != TE_OK)
        dump();
    ck_assert_msg(err == TE_OK, "rejected %s: %s %s", json, te_err_name(err), e);
    ck_assert_uint_eq(te_problems_count(P), 0);
    ck_assert_ptr_nonnull(ev);
    return ev;
}

static te_event_t *ok(const char *quoted) {
    const char *j = J(quoted);
    return ok_raw(j, strlen(j));
}

static void valid(const char *quoted) { te_event_destroy(ok(quoted)); }

static int has_problem(const char *field, const char *reason_part) {
    for (size_t i = 0; i < te_problems_count(P); i++)
        if (strcmp(te_problems_field(P, i), field) == 0 &&
            (!reason_part || strstr(te_problems_reason(P, i), reason_part)))
            return 1;
    return 0;
}

/* Decodes raw JSON, expects TE_ERR_INVALID with a problem on field. */
static void bad_raw(const char *json, size_t len, const char *field, const char *reason_part) {
    te_event_t *ev = (te_event_t *)1;
    char e[TE_ERRSTR_SIZE] = "";
    te_problems_clear(P);
    te_err_t err = te_event_from_json(json, len, &ev, P, e, sizeof e);
    ck_assert_msg(err == TE_ERR_INVALID, "expected invalid for %s, got %s (%s)", json,
                  te_err_name(err), e);
    ck_assert_ptr_null(ev);
    ck_assert_msg(e[0] != '\0', "no errstr summary");
    if (!has_problem(field, reason_part))
        dump();
    ck_assert_msg(has_problem(field, reason_part), "%s: no problem '%s: ...%s...'", json, field,
                  reason_part ? reason_part : "");
}

static void bad(const char *quoted, const char *field, const char *reason_part) {
    const char *j = J(quoted);
    bad_raw(j, strlen(j), field, reason_part);
}

/* Expects TE_ERR_PARSE (malformed JSON / not an object) and no problems. */
static void malformed_raw(const char *json, size_t len) {
    te_event_t *ev = (te_event_t *)1;
    char e[TE_ERRSTR_SIZE] = "";
    te_problems_clear(P);
    te_err_t err = te_event_from_json(json, len, &ev, P, e, sizeof e);
    ck_assert_msg(err == TE_ERR_PARSE, "expected parse error for '%s', got %s", json,
                  te_err_name(err));
    ck_assert_ptr_null(ev);
    ck_assert_msg(e[0] != '\0', "no errstr for parse error");
    ck_assert_uint_eq(te_problems_count(P), 0);
}

static void malformed(const char *raw) { malformed_raw(raw, strlen(raw)); }

static char *enc(const te_event_t *ev) {
    char *out = NULL;
    char e[TE_ERRSTR_SIZE] = "";
    size_t len = 0;
    ck_assert_int_eq(te_event_to_json(ev, 0, &out, &len, e, sizeof e), TE_OK);
    ck_assert_uint_eq(len, strlen(out));
    return out;
}

/* decode(encode(ev)) must equal ev; returns nothing, frees nothing of ev. */
static void json_round_trip(const te_event_t *ev) {
    char *text = enc(ev);
    te_event_t *back = ok_raw(text, strlen(text));
    ck_assert_msg(te_event_equal(ev, back), "round trip changed the event: %s", text);
    char *again = enc(back);
    ck_assert_str_eq(text, again);
    te_free(again);
    te_free(text);
    te_event_destroy(back);
}

static void setup(void) { P = te_problems_new(); }
static void teardown(void) { te_problems_destroy(P); }

/* ---- the specs' own examples ------------------------------------------------ */

START_TEST(spec_core_example) {
    /* CloudEvents spec "Example" section */
    te_event_t *ev = ok("{'specversion':'1.0','type':'com.github.pull_request.opened',"
                        "'source':'https://github.com/cloudevents/spec/pull','subject':'123',"
                        "'id':'A234-1234-1234','time':'2018-04-05T17:31:00Z',"
                        "'comexampleextension1':'value','comexampleothervalue':5,"
                        "'datacontenttype':'text/xml','data':'<much wow=\\'xml\\'/>'}");
    ck_assert_str_eq(te_event_type(ev), "com.github.pull_request.opened");
    ck_assert_str_eq(te_event_subject(ev), "123");
    ck_assert_str_eq(te_event_datacontenttype(ev), "text/xml");
    int32_t n = 0;
    ck_assert_int_eq(te_event_get_integer(ev, "comexampleothervalue", &n), TE_OK);
    ck_assert_int_eq(n, 5);
    ck_assert_str_eq(te_event_get_string(ev, "comexampleextension1"), "value");
    ck_assert_int_eq(te_event_data_kind(ev), TE_EVENT_DATA_JSON);
    const struct json_object *d = te_event_data_object(ev);
    ck_assert(json_object_is_type(d, json_type_string));
    ck_assert_str_eq(json_object_get_string((struct json_object *)d), "<much wow=\"xml\"/>");
    json_round_trip(ev);
    te_event_destroy(ev);
}
END_TEST

START_TEST(spec_json_format_examples) {
    /* Binary-valued data */
    te_event_t *ev = ok("{'specversion':'1.0','type':'com.example.someevent','source':'/mycontext',"
                        "'id':'A234-1234-1234','time':'2018-04-05T17:31:00Z',"
                        "'comexampleextension1':'value','comexampleothervalue':5,"
                        "'datacontenttype':'application/vnd.apache.thrift.binary',"
                        "'data_base64':'AAECA/7/'}");
    size_t len = 0;
    const unsigned char *b = te_event_data_binary(ev, &len);
    ck_assert_int_eq(te_event_data_kind(ev), TE_EVENT_DATA_BINARY);
    ck_assert_uint_eq(len, 6);
    ck_assert_mem_eq(b, "\x00\x01\x02\x03\xfe\xff", 6);
    json_round_trip(ev);
    te_event_destroy(ev);

    /* XML string data and an unset extension (null) */
    ev = ok("{'specversion':'1.0','type':'com.example.someevent','source':'/mycontext',"
            "'id':'B234-1234-1234','time':'2018-04-05T17:31:00Z','comexampleextension1':'value',"
            "'comexampleothervalue':5,'unsetextension':null,'datacontenttype':'application/xml',"
            "'data':'<much wow=\\'xml\\'/>'}");
    te_ce_attr_t a;
    ck_assert_int_eq(te_event_get(ev, "unsetextension", &a), TE_ERR_NOT_FOUND);
    ck_assert_uint_eq(te_event_attr_count(ev), 8);
    te_event_destroy(ev);

    /* JSON object data, subject null */
    ev = ok("{'specversion':'1.0','type':'com.example.someevent','source':'/mycontext',"
            "'subject':null,'id':'C234-1234-1234','time':'2018-04-05T17:31:00Z',"
            "'comexampleextension1':'value','comexampleothervalue':5,"
            "'datacontenttype':'application/json',"
            "'data':{'appinfoA':'abc','appinfoB':123,'appinfoC':true}}");
    ck_assert_ptr_null(te_event_subject(ev));
    char *data = NULL;
    ck_assert_int_eq(te_event_data_to_json(ev, &data, NULL), TE_OK);
    ck_assert_str_eq(data, "{\"appinfoA\":\"abc\",\"appinfoB\":123,\"appinfoC\":true}");
    te_free(data);
    te_event_destroy(ev);

    /* a literal JSON string as data, no datacontenttype */
    ev = ok("{'specversion':'1.0','type':'com.example.someevent','source':'/mycontext',"
            "'subject':null,'id':'D234-1234-1234','time':'2018-04-05T17:31:00Z',"
            "'comexampleextension1':'value','comexampleothervalue':5,"
            "'data':'I\\u0027m just a string'}");
    ck_assert_int_eq(te_event_data_to_json(ev, &data, NULL), TE_OK);
    ck_assert_str_eq(data, "\"I'm just a string\"");
    te_free(data);
    ck_assert_ptr_null(te_event_datacontenttype(ev));
    te_event_destroy(ev);
}
END_TEST

START_TEST(spec_source_examples) {
    const char *sources[] = {"https://github.com/cloudevents",
                             "mailto:cncf-wg-serverless@lists.cncf.io",
                             "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
                             "/cloudevents/spec/pull/123",
                             "/sensors/tn-1234567/alerts",
                             "1-555-123-4567",
                             "https://example.com/storage/tenant/container",
                             "#frag",
                             "?query=1",
                             "//authority/path"};
    for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++) {
        char buf[512];
        snprintf(buf, sizeof buf,
                 "{'specversion':'1.0','id':'1','type':'t','source':'%s'}", sources[i]);
        te_event_t *ev = ok(buf);
        ck_assert_str_eq(te_event_source(ev), sources[i]);
        te_event_destroy(ev);
    }
}
END_TEST

/* ---- REQUIRED attributes ----------------------------------------------------- */

START_TEST(required_attributes) {
    bad("{'specversion':'1.0','source':'/s','type':'t'}", "id", "is required");
    bad("{'specversion':'1.0','id':'1','type':'t'}", "source", "is required");
    bad("{'id':'1','source':'/s','type':'t'}", "specversion", "is required");
    bad("{'specversion':'1.0','id':'1','source':'/s'}", "type", "is required");
    /* every missing one is reported */
    bad("{}", "id", "is required");
    ck_assert_uint_eq(te_problems_count(P), 4);
    ck_assert(has_problem("specversion", "is required") && has_problem("source", "is required") &&
              has_problem("type", "is required"));
}
END_TEST

START_TEST(specversion_rule) {
    valid("{" BASE "}");
    bad("{'specversion':'0.3','id':'1','source':'/s','type':'t'}", "specversion", "\"1.0\"");
    bad("{'specversion':'1.0.2','id':'1','source':'/s','type':'t'}", "specversion", "\"1.0\"");
    bad("{'specversion':'','id':'1','source':'/s','type':'t'}", "specversion", "\"1.0\"");
    bad("{'specversion':1.0,'id':'1','source':'/s','type':'t'}", "specversion", "must be a string");
    /* a wrong type is not also reported as missing */
    ck_assert(!has_problem("specversion", "is required"));
}
END_TEST

START_TEST(id_rule) {
    bad("{'specversion':'1.0','id':'','source':'/s','type':'t'}", "id", "non-empty");
    bad("{'specversion':'1.0','id':5,'source':'/s','type':'t'}", "id", "must be a string");
    bad("{'specversion':'1.0','id':true,'source':'/s','type':'t'}", "id", "must be a string");
    bad("{'specversion':'1.0','id':['1'],'source':'/s','type':'t'}", "id", "must be a string");
    valid("{'specversion':'1.0','id':' ','source':'/s','type':'t'}");
}
END_TEST

START_TEST(type_rule) {
    bad("{'specversion':'1.0','id':'1','source':'/s','type':''}", "type", "non-empty");
    bad("{'specversion':'1.0','id':'1','source':'/s','type':{}}", "type", "must be a string");
    valid("{'specversion':'1.0','id':'1','source':'/s','type':'com.example.object.deleted.v2'}");
}
END_TEST

START_TEST(source_rule) {
    bad("{'specversion':'1.0','id':'1','source':'','type':'t'}", "source", "non-empty");
    bad("{'specversion':'1.0','id':'1','source':'a b','type':'t'}", "source", "URI-reference");
    bad("{'specversion':'1.0','id':'1','source':'http://exa mple.com','type':'t'}", "source",
        "URI-reference");
    bad("{'specversion':'1.0','id':'1','source':'%zz','type':'t'}", "source", "URI-reference");
    bad("{'specversion':'1.0','id':'1','source':'://x','type':'t'}", "source", "URI-reference");
    bad("{'specversion':'1.0','id':'1','source':'http://[::1','type':'t'}", "source",
        "URI-reference");
    bad("{'specversion':'1.0','id':'1','source':'/caf\\u00e9','type':'t'}", "source",
        "URI-reference");
    bad("{'specversion':'1.0','id':'1','source':5,'type':'t'}", "source", "must be a string");
}
END_TEST

START_TEST(dataschema_rule) {
    valid("{" BASE ",'dataschema':'https://example.com/schemas/x.json'}");
    valid("{" BASE ",'dataschema':'urn:todoevents:schema:com.todo.task.created'}");
    valid("{" BASE ",'dataschema':null}");
    bad("{" BASE ",'dataschema':'/schemas/x.json'}", "dataschema", "absolute URI");
    bad("{" BASE ",'dataschema':'x.json'}", "dataschema", "absolute URI");
    bad("{" BASE ",'dataschema':''}", "dataschema", "non-empty");
    bad("{" BASE ",'dataschema':'http://a b'}", "dataschema", "absolute URI");
    bad("{" BASE ",'dataschema':1}", "dataschema", "must be a string");
}
END_TEST

START_TEST(time_rule) {
    const char *good[] = {"2018-04-05T17:31:00Z", "2018-04-05T17:31:00.123Z",
                          "2018-04-05T17:31:00.123456789+02:00", "2018-04-05t17:31:00z",
                          "1985-04-12T23:20:50.52Z", "1990-12-31T23:59:60Z",
                          "1996-12-19T16:39:57-08:00"};
    const char *wrong[] = {"2018-04-05", "2018-04-05 17:31:00Z", "2018-04-05T17:31:00",
                           "2018-02-30T00:00:00Z", "2018-04-05T24:00:00Z", "18-04-05T17:31:00Z",
                           "2018-04-05T17:31:00+2:00", "2018-04-05T17:31:00Zjunk", "now", ""};
    char buf[256];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        snprintf(buf, sizeof buf, "{" BASE ",'time':'%s'}", good[i]);
        valid(buf);
    }
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        snprintf(buf, sizeof buf, "{" BASE ",'time':'%s'}", wrong[i]);
        bad(buf, "time", "RFC 3339");
    }
    bad("{" BASE ",'time':1522949460}", "time", "must be a string");
    valid("{" BASE ",'time':null}");
}
END_TEST

START_TEST(subject_rule) {
    valid("{" BASE ",'subject':'mynewfile.jpg'}");
    valid("{" BASE ",'subject':'partnerid/5/clientid/100'}");
    valid("{" BASE ",'subject':null}");
    bad("{" BASE ",'subject':''}", "subject", "non-empty");
    bad("{" BASE ",'subject':123}", "subject", "must be a string");
}
END_TEST

START_TEST(datacontenttype_rule) {
    const char *good[] = {"application/json",
                          "text/plain; charset=utf-8",
                          "text/plain;charset=UTF-8",
                          "application/vnd.apache.thrift.binary",
                          "application/cloudevents+json; charset=UTF-8",
                          "multipart/form-data; boundary=\\'a b;c\\'",
                          "Application/XML",
                          "text/plain; a=1; b=2"};
    const char *wrong[] = {"json",         "application/",       "/json",
                           "text/plain;",  "text/plain; charset", "text/ plain",
                           " text/plain",  "text/plain ",         "text/plain; a=\\'x",
                           "te(x)t/plain", "text/plain, text/html", ""};
    char buf[256];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        snprintf(buf, sizeof buf, "{" BASE ",'datacontenttype':'%s'}", good[i]);
        valid(buf);
    }
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        snprintf(buf, sizeof buf, "{" BASE ",'datacontenttype':'%s'}", wrong[i]);
        bad(buf, "datacontenttype", "media type");
    }
    bad("{" BASE ",'datacontenttype':{}}", "datacontenttype", "must be a string");
    /* allowed without data */
    valid("{" BASE ",'datacontenttype':'application/json'}");
}
END_TEST

/* ---- attribute values and names --------------------------------------------- */

START_TEST(extension_types) {
    te_event_t *ev = ok("{" BASE ",'s':'x','i':-7,'b':false,'max':2147483647,"
                        "'min':-2147483648,'zero':-0,'t':true}");
    te_ce_attr_t a;
    ck_assert_int_eq(te_event_get(ev, "s", &a), TE_OK);
    ck_assert_int_eq(a.type, TE_CE_TYPE_STRING);
    ck_assert(a.is_extension);
    ck_assert_int_eq(te_event_get(ev, "i", &a), TE_OK);
    ck_assert_int_eq(a.type, TE_CE_TYPE_INTEGER);
    ck_assert_int_eq(a.integer, -7);
    ck_assert_str_eq(a.value, "-7");
    ck_assert_int_eq(te_event_get(ev, "b", &a), TE_OK);
    ck_assert_int_eq(a.type, TE_CE_TYPE_BOOLEAN);
    ck_assert_int_eq(a.boolean, 0);
    ck_assert_str_eq(a.value, "false");
    int32_t v;
    ck_assert_int_eq(te_event_get_integer(ev, "max", &v), TE_OK);
    ck_assert_int_eq(v, INT32_MAX);
    ck_assert_int_eq(te_event_get_integer(ev, "min", &v), TE_OK);
    ck_assert_int_eq(v, INT32_MIN);
    ck_assert_int_eq(te_event_get_integer(ev, "zero", &v), TE_OK);
    ck_assert_int_eq(v, 0);
    int bv = 0;
    ck_assert_int_eq(te_event_get_boolean(ev, "t", &bv), TE_OK);
    ck_assert_int_eq(bv, 1);
    ck_assert_int_eq(te_event_get_integer(ev, "s", &v), TE_ERR_INVALID_ARG);
    ck_assert_int_eq(te_event_get_boolean(ev, "i", &bv), TE_ERR_INVALID_ARG);
    ck_assert_int_eq(te_event_get_integer(ev, "nope", &v), TE_ERR_NOT_FOUND);
    ck_assert_ptr_null(te_event_get_string(ev, "i"));
    json_round_trip(ev); /* typed extensions survive */
    te_event_destroy(ev);
}
END_TEST

START_TEST(extension_invalid_values) {
    bad("{" BASE ",'ext':{}}", "ext", "objects and arrays");
    bad("{" BASE ",'ext':{'a':1}}", "ext", "objects and arrays");
    bad("{" BASE ",'ext':[1,2]}", "ext", "objects and arrays");
    bad("{" BASE ",'ext':1.5}", "ext", "integer");
    bad("{" BASE ",'ext':5.0}", "ext", "integer");
    bad("{" BASE ",'ext':1e3}", "ext", "integer");
    bad("{" BASE ",'ext':-1E-2}", "ext", "integer");
    bad("{" BASE ",'ext':2147483648}", "ext", "out of range");
    bad("{" BASE ",'ext':-2147483649}", "ext", "out of range");
    bad("{" BASE ",'ext':99999999999999999999999}", "ext", "out of range");
}
END_TEST

START_TEST(attribute_names) {
    bad("{" BASE ",'myExt':'x'}", "myExt", "lower-case");
    bad("{" BASE ",'my_ext':'x'}", "my_ext", "lower-case");
    bad("{" BASE ",'my-ext':'x'}", "my-ext", "lower-case");
    bad("{" BASE ",'\\u00e4xt':'x'}", "\xc3\xa4xt", "lower-case");
    bad("{" BASE ",'':'x'}", "", "empty");
    bad("{" BASE ",'ID':'x'}", "ID", "lower-case");
    valid("{" BASE ",'abc123':'x','0':'y'}");
    /* more than 20 characters: discouraged (SHOULD NOT), still valid */
    valid("{" BASE ",'averyveryverylongextensionname':'x'}");
    char e[TE_ERRSTR_SIZE];
    ck_assert_int_eq(te_ce_name_check("abc", e, sizeof e), TE_OK);
    ck_assert_int_eq(te_ce_name_check("data", e, sizeof e), TE_ERR_INVALID);
    ck_assert_int_eq(te_ce_name_check("", e, sizeof e), TE_ERR_INVALID);
    ck_assert_int_eq(te_ce_name_check(NULL, e, sizeof e), TE_ERR_INVALID);
    ck_assert_int_eq(te_ce_name_check("a.b", e, sizeof e), TE_ERR_INVALID);
    ck_assert_int_eq(te_ce_name_check("abcdefghijklmnopqrstuvwxyz0123456789", e, sizeof e),
                     TE_OK);
}
END_TEST

START_TEST(string_characters) {
    bad("{" BASE ",'subject':'a\\u0000b'}", "subject", "control");
    bad("{" BASE ",'subject':'tab\\there'}", "subject", "control");
    bad("{" BASE ",'subject':'\\u001f'}", "subject", "control");
    bad("{" BASE ",'subject':'\\u007f'}", "subject", "control");
    bad("{" BASE ",'subject':'\\u0085'}", "subject", "control");
    bad("{" BASE ",'subject':'\\u009f'}", "subject", "control");
    bad("{'specversion':'1.0','id':'a\\nb','source':'/s','type':'t'}", "id", "control");
    bad("{" BASE ",'ext':'\\ufdd0'}", "ext", "noncharacter");
    bad("{" BASE ",'ext':'\\ufdef'}", "ext", "noncharacter");
    bad("{" BASE ",'ext':'\\ufffe'}", "ext", "noncharacter");
    bad("{" BASE ",'ext':'\\uffff'}", "ext", "noncharacter");
    bad("{" BASE ",'ext':'\\ud83f\\udfff'}", "ext", "noncharacter"); /* U+1FFFF */
    bad("{" BASE ",'ext':'\\udbff\\udffe'}", "ext", "noncharacter"); /* U+10FFFE */
    /* unpaired surrogates */
    bad("{" BASE ",'ext':'\\uDEAD'}", "ext", "surrogate");
    bad("{" BASE ",'ext':'x\\uD800'}", "ext", "surrogate");
    bad("{" BASE ",'ext':'\\uD800x'}", "ext", "surrogate");
    bad("{" BASE ",'ext':'\\uDC00\\uD800'}", "ext", "surrogate");
    bad("{" BASE ",'subject':'\\uD83D\\u0041'}", "subject", "surrogate");
    bad("{'specversion':'1.0','id':'\\uDEAD','source':'/s','type':'t'}", "id", "surrogate");
    /* properly paired surrogates and other characters are fine */
    te_event_t *ev = ok("{" BASE ",'ext':'\\uD800\\uDEAD','subject':'caf\\u00e9 \\ud83d\\ude00',"
                        "'other':'\xe2\x82\xac \xf0\x9f\x98\x80 \\u00a0 \\ufffd'}");
    ck_assert_str_eq(te_event_get_string(ev, "ext"), "\xf0\x90\x8a\xad");
    ck_assert_str_eq(te_event_subject(ev), "caf\xc3\xa9 \xf0\x9f\x98\x80");
    json_round_trip(ev);
    te_event_destroy(ev);
    /* surrogates inside data are not attribute values */
    valid("{" BASE ",'data':{'x':'\\uDEAD'}}");
}
END_TEST

START_TEST(null_means_absent) {
    bad("{'specversion':'1.0','id':null,'source':'/s','type':'t'}", "id", "is required");
    bad("{'specversion':null,'id':'1','source':'/s','type':'t'}", "specversion", "is required");
    te_event_t *ev = ok("{" BASE ",'subject':null,'time':null,'datacontenttype':null,"
                        "'dataschema':null,'myext':null,'MyBad':null,'data_base64':null}");
    ck_assert_uint_eq(te_event_attr_count(ev), 4);
    ck_assert_int_eq(te_event_data_kind(ev), TE_EVENT_DATA_NONE);
    char *text = enc(ev);
    ck_assert_ptr_null(strstr(text, "null"));
    te_free(text);
    te_event_destroy(ev);
    /* data: null is an explicit null payload, distinct from no data */
    ev = ok("{" BASE ",'data':null}");
    ck_assert_int_eq(te_event_data_kind(ev), TE_EVENT_DATA_JSON);
    ck_assert_ptr_null(te_event_data_object(ev));
    text = enc(ev);
    ck_assert_ptr_nonnull(strstr(text, "\"data\":null"));
    te_free(text);
    json_round_trip(ev);
    te_event_destroy(ev);
    /* data_base64: null beside data is fine */
    ev = ok("{" BASE ",'data':{'a':1},'data_base64':null}");
    ck_assert_int_eq(te_event_data_kind(ev), TE_EVENT_DATA_JSON);
    te_event_destroy(ev);
}
END_TEST

START_TEST(duplicate_members) {
    bad("{" BASE ",'id':'again'}", "id", "at most once");
    bad("{" BASE ",'ext':1,'ext':2}", "ext", "at most once");
    bad("{" BASE ",'data':1,'data':2}", "data", "at most once");
    /* an escaped spelling is the same name */
    bad("{" BASE ",'i\\u0064':'again'}", "id", "at most once");
    /* duplicates inside data are data's business */
    valid("{" BASE ",'data':{'a':1,'b':{'id':1,'id':2}}}");
}
END_TEST

/* ---- data ------------------------------------------------------------------ */

START_TEST(data_exclusive) {
    bad("{" BASE ",'data':'x','data_base64':'QQ=='}", "data_base64", "mutually exclusive");
    bad("{" BASE ",'data':null,'data_base64':'QQ=='}", "data_base64", "mutually exclusive");
}
END_TEST

START_TEST(base64_rules) {
    struct {
        const char *b64;
        const char *bytes;
        size_t n;
    } good[] = {{"", "", 0},          {"QQ==", "A", 1},         {"QUI=", "AB", 2},
                {"QUJD", "ABC", 3},   {"QUJDRA==", "ABCD", 4},  {"AA==", "\0", 1},
                {"+/+/", "\xfb\xff\xbf", 3}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char buf[256];
        snprintf(buf, sizeof buf, "{" BASE ",'data_base64':'%s'}", good[i].b64);
        te_event_t *ev = ok(buf);
        size_t n = 99;
        const void *p = te_event_data_binary(ev, &n);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq(n, good[i].n);
        ck_assert_mem_eq(p, good[i].bytes, n);
        ck_assert_ptr_null(te_event_data_object(ev));
        te_event_destroy(ev);
    }
    const char *wrong[] = {"QQ=",  "QQ",   "Q===", "====",     "QQ==QQ==", "-QQ==",
                           "QQ ==", "QU\\nJD", "@@@@", "QUJ$", "QUJDRA", "Q=Q=",
                           "QUJD-_-_", "\\u00e9AAA"};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        char buf[256];
        snprintf(buf, sizeof buf, "{" BASE ",'data_base64':'%s'}", wrong[i]);
        bad(buf, "data_base64", "base64");
    }
    bad("{" BASE ",'data_base64':5}", "data_base64", "base64 string");
    bad("{" BASE ",'data_base64':['QQ==']}", "data_base64", "base64 string");
}
END_TEST

START_TEST(binary_round_trip) {
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    te_event_t *ev = te_event_new();
    ck_assert_int_eq(te_event_set_id(ev, "1", NULL, 0), TE_OK);
    ck_assert_int_eq(te_event_set_source(ev, "/s", NULL, 0), TE_OK);
    ck_assert_int_eq(te_event_set_type(ev, "t", NULL, 0), TE_OK);
    for (size_t n = 0; n <= 256; n += (n < 8 ? 1 : 61)) {
        ck_assert_int_eq(te_event_set_data_binary(ev, all, n), TE_OK);
        json_round_trip(ev);
    }
    ck_assert_int_eq(te_event_set_data_binary(ev, NULL, 0), TE_OK);
    ck_assert_int_eq(te_event_data_kind(ev), TE_EVENT_DATA_BINARY);
    char *text = enc(ev);
    ck_assert_ptr_nonnull(strstr(text, "\"data_base64\":\"\""));
    te_free(text);
    ck_assert_int_eq(te_event_set_data_binary(ev, NULL, 3), TE_ERR_INVALID_ARG);
    te_event_destroy(ev);
}
END_TEST

START_TEST(data_values) {
    /* any JSON value is data */
    const char *datas[] = {"{'a':[1,2,{'b':null}]}", "[1,'x',true]", "'str'", "42", "-1.5e3",
                           "true", "false", "null", "{}", "[]"};
    for (size_t i = 0; i < sizeof datas / sizeof datas[0]; i++) {
        char buf[256];
        snprintf(buf, sizeof buf, "{" BASE ",'data':%s}", datas[i]);
        te_event_t *ev = ok(buf);
        ck_assert_int_eq(te_event_data_kind(ev), TE_EVENT_DATA_JSON);
        json_round_trip(ev);
        te_event_destroy(ev);
    }
    /* a data string is never parsed further */
    te_event_t *ev = ok("{" BASE ",'datacontenttype':'application/json','data':'{\\'a\\':1}'}");
    ck_assert(json_object_is_type(te_event_data_object(ev), json_type_string));
    te_event_destroy(ev);
}
END_TEST

/* ---- malformed input ------------------------------------------------------- */

START_TEST(malformed_json) {
    malformed("");
    malformed("   ");
    malformed("{");
    malformed("{\"specversion\":\"1.0\"");
    malformed("[]");
    malformed("[{\"specversion\":\"1.0\"}]");
    malformed("123");
    malformed("\"x\"");
    malformed("null");
    malformed("true");
    malformed("{} {}");
    malformed("{} x");
    malformed("{\"a\":1,}");
    malformed("{\"a\":NaN}");
    malformed("{\"a\":Infinity}");
    malformed("{\"a\":-Infinity}");
    malformed("{'a':1}");
    malformed("{\"a\":'b'}");
    malformed("{\"a\":01}");
    malformed("{\"a\":-01}");
    malformed("{\"a\":1.}");
    malformed("{\"a\":.5}");
    malformed("{\"a\":+1}");
    malformed("{\"a\":0x10}");
    malformed("{\"a\":tru}");
    malformed("{\"a\":\"\\x\"}");
    malformed("{/*c*/\"a\":1}");
    malformed("{\"a\":1}//");
    malformed("{a:1}");
    malformed("{\"a\":\"x\ty\"}");     /* raw control character in a string */
    malformed("{\"a\":\"x\x01y\"}");
    malformed("\xef\xbb\xbf{}");       /* byte order mark */
    malformed("{\"a\":\"\xff\"}");     /* invalid UTF-8 */
    malformed("{\"a\":\"\xed\xa0\x80\"}"); /* UTF-8-encoded surrogate */
    malformed("{\"a\":\"\xc0\xaf\"}");     /* overlong */
    malformed_raw("{}\0", 3);              /* trailing NUL */
    malformed_raw("{\"a\":\"x\0y\"}", 11); /* raw NUL in a string */
    /* deep nesting beyond the parser's limit */
    char deep[400];
    size_t n = 0;
    n += (size_t)snprintf(deep, sizeof deep, "{\"data\":");
    for (int i = 0; i < 100; i++)
        deep[n++] = '[';
    for (int i = 0; i < 100; i++)
        deep[n++] = ']';
    deep[n++] = '}';
    deep[n] = 0;
    malformed(deep);
    /* white space around the object is fine */
    te_event_destroy(ok_raw(" \r\n\t{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\","
                            "\"type\":\"t\"} \n",
                            strlen(" \r\n\t{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\","
                                   "\"type\":\"t\"} \n")));
    /* bad arguments */
    te_event_t *ev = NULL;
    ck_assert_int_eq(te_event_from_json(NULL, 0, &ev, P, NULL, 0), TE_ERR_INVALID_ARG);
    ck_assert_int_eq(te_event_from_json("{}", 2, NULL, P, NULL, 0), TE_ERR_INVALID_ARG);
}
END_TEST

START_TEST(many_problems_at_once) {
    bad("{'specversion':'0.3','id':'','source':'a b','type':5,'time':'x','myExt':1,"
        "'big':2147483648,'f':1.5,'o':{},'data':1,'data_base64':'QQ==','s':'\\uDEAD',"
        "'dataschema':'/rel','datacontenttype':'json','subject':''}",
        "specversion", "1.0");
    const char *fields[] = {"specversion", "id",  "source", "type", "time",        "myExt",
                            "big",         "f",   "o",      "s",    "dataschema",  "datacontenttype",
                            "subject",     "data_base64"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        ck_assert_msg(has_problem(fields[i], NULL), "no problem for %s", fields[i]);
    ck_assert_uint_eq(te_problems_count(P), sizeof fields / sizeof fields[0]);
    /* problems may be NULL: still TE_ERR_INVALID with a summary */
    te_event_t *ev = NULL;
    char e[TE_ERRSTR_SIZE] = "";
    const char *j = J("{'id':''}");
    ck_assert_int_eq(te_event_from_json(j, strlen(j), &ev, NULL, e, sizeof e), TE_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(e, "problems"));
}
END_TEST

/* ---- extensions we use ---------------------------------------------------- */

START_TEST(traceparent_rules) {
    const char *good[] = {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                          "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
                          "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                          "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future"};
    const char *wrong[] = {
        "",
        "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01",
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
        "00-0af7651916cd43dd8448eb211c80319-cb7ad6b7169203331-01",
        "00_0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331_01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0g",
        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.x",
        "0-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    };
    char e[TE_ERRSTR_SIZE], buf[256];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        ck_assert_msg(te_traceparent_check(good[i], e, sizeof e) == TE_OK, "%s: %s", good[i], e);
        snprintf(buf, sizeof buf, "{" BASE ",'traceparent':'%s'}", good[i]);
        valid(buf);
    }
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        ck_assert_msg(te_traceparent_check(wrong[i], e, sizeof e) == TE_ERR_INVALID, "%s",
                      wrong[i]);
        snprintf(buf, sizeof buf, "{" BASE ",'traceparent':'%s'}", wrong[i]);
        bad(buf, "traceparent", "traceparent");
    }
    ck_assert_int_eq(te_traceparent_check(NULL, e, sizeof e), TE_ERR_INVALID);
    bad("{" BASE ",'traceparent':1}", "traceparent", "must be a string");
    te_event_t *ev = te_event_new();
    ck_assert_int_eq(te_event_set_traceparent(ev, good[0], e, sizeof e), TE_OK);
    ck_assert_str_eq(te_event_traceparent(ev), good[0]);
    ck_assert_int_eq(te_event_set_traceparent(ev, wrong[1], e, sizeof e), TE_ERR_INVALID);
    ck_assert_str_eq(te_event_traceparent(ev), good[0]);
    ck_assert_int_eq(te_event_set_integer(ev, "traceparent", 1, e, sizeof e), TE_ERR_INVALID_ARG);
    te_event_destroy(ev);
}
END_TEST

START_TEST(partitionkey_rules) {
    te_event_t *ev = ok("{" BASE ",'partitionkey':'user-42'}");
    ck_assert_str_eq(te_event_partitionkey(ev), "user-42");
    ck_assert_str_eq(te_event_kafka_key(ev), "user-42");
    te_event_destroy(ev);
    bad("{" BASE ",'partitionkey':''}", "partitionkey", "non-empty");
    bad("{" BASE ",'partitionkey':42}", "partitionkey", "must be a string");
    bad("{" BASE ",'partitionkey':true}", "partitionkey", "must be a string");
    ev = te_event_new();
    char e[TE_ERRSTR_SIZE];
    ck_assert_ptr_null(te_event_kafka_key(ev));
    ck_assert_int_eq(te_event_set_partitionkey(ev, "", e, sizeof e), TE_ERR_INVALID);
    ck_assert_int_eq(te_event_set_partitionkey(ev, "u1", e, sizeof e), TE_OK);
    ck_assert_int_eq(te_event_set_boolean(ev, "partitionkey", 1, e, sizeof e), TE_ERR_INVALID_ARG);
    ck_assert_str_eq(te_event_kafka_key(ev), "u1");
    ck_assert_int_eq(te_event_set_partitionkey(ev, NULL, e, sizeof e), TE_OK);
    ck_assert_ptr_null(te_event_partitionkey(ev));
    te_event_destroy(ev);
}
END_TEST

/* ---- media type helpers ---------------------------------------------------- */

START_TEST(media_type_helpers) {
    ck_assert(te_media_type_is_json("application/json"));
    ck_assert(te_media_type_is_json("APPLICATION/JSON; charset=utf-8"));
    ck_assert(te_media_type_is_json("text/json"));
    ck_assert(te_media_type_is_json("application/cloudevents+json"));
    ck_assert(te_media_type_is_json("application/vnd.todo.task+json;v=1"));
    ck_assert(!te_media_type_is_json("application/jsonx"));
    ck_assert(!te_media_type_is_json("application/json-seq"));
    ck_assert(!te_media_type_is_json("text/plain"));
    ck_assert(!te_media_type_is_json("json"));
    ck_assert(!te_media_type_is_json("+json"));
    ck_assert(!te_media_type_is_json("/json"));
    ck_assert(!te_media_type_is_json(""));
    ck_assert(!te_media_type_is_json(NULL));
    char e[TE_ERRSTR_SIZE];
    ck_assert_int_eq(te_media_type_check("a/b", e, sizeof e), TE_OK);
    ck_assert_int_eq(te_media_type_check("a/b ; c=\"d\\\"e\"", e, sizeof e), TE_OK);
    ck_assert_int_eq(te_media_type_check("a/b; c=\"unterminated", e, sizeof e), TE_ERR_INVALID);
    ck_assert_int_eq(te_media_type_check("a/b; c=\"caf\xc3\xa9\"", e, sizeof e), TE_ERR_INVALID);
    ck_assert_int_eq(te_media_type_check("a/b/c", e, sizeof e), TE_ERR_INVALID);
    ck_assert_int_eq(te_media_type_check(NULL, e, sizeof e), TE_ERR_INVALID);
}
END_TEST

/* ---- event object API -------------------------------------------------------- */

START_TEST(create_event) {
    te_event_t *ev = NULL;
    char e[TE_ERRSTR_SIZE];
    te_time_t before = te_time_now();
    ck_assert_int_eq(te_event_create(&ev, "com.todo.task.created", "/api/tasks", e, sizeof e),
                     TE_OK);
    te_time_t after = te_time_now();
    ck_assert_str_eq(te_event_specversion(ev), "1.0");
    ck_assert_str_eq(te_event_type(ev), "com.todo.task.created");
    ck_assert_str_eq(te_event_source(ev), "/api/tasks");
    const char *id = te_event_id(ev);
    ck_assert_uint_eq(strlen(id), 36);
    uuid_t u;
    ck_assert_int_eq(uuid_parse(id, u), 0);
    ck_assert_int_eq(uuid_type(u), UUID_TYPE_DCE_RANDOM);
    ck_assert_int_eq(uuid_variant(u), UUID_VARIANT_DCE);
    for (const char *p = id; *p; p++)
        ck_assert(!(*p >= 'A' && *p <= 'F'));
    const char *ts = te_event_time_str(ev);
    ck_assert_uint_eq(strlen(ts), 24); /* YYYY-MM-DDThh:mm:ss.sssZ */
    ck_assert_int_eq(ts[19], '.');
    ck_assert_int_eq(ts[23], 'Z');
    te_time_t t;
    ck_assert_int_eq(te_event_time(ev, &t), TE_OK);
    ck_assert(t >= before / 1000 * 1000 && t <= after);
    ck_assert_int_eq(te_event_validate(ev, P), TE_OK);
    te_event_t *ev2 = NULL;
    ck_assert_int_eq(te_event_create(&ev2, "t", "/s", e, sizeof e), TE_OK);
    ck_assert_str_ne(te_event_id(ev), te_event_id(ev2));
    te_event_destroy(ev2);
    te_event_destroy(ev);
    ev = (te_event_t *)1;
    ck_assert_int_eq(te_event_create(&ev, "", "/s", e, sizeof e), TE_ERR_INVALID);
    ck_assert_ptr_null(ev);
    ck_assert_int_eq(te_event_create(&ev, "t", "a b", e, sizeof e), TE_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(e, "source"));
    ck_assert_int_eq(te_event_create(&ev, NULL, "/s", e, sizeof e), TE_ERR_INVALID_ARG);
    te_event_destroy(NULL);
}
END_TEST

START_TEST(setters_and_getters) {
    te_event_t *ev = te_event_new();
    char e[TE_ERRSTR_SIZE];
    ck_assert_uint_eq(te_event_attr_count(ev), 1);
    ck_assert_str_eq(te_event_specversion(ev), "1.0");
    ck_assert_int_eq(te_event_validate(ev, P), TE_ERR_INVALID);
    ck_assert_uint_eq(te_problems_count(P), 3); /* id, source, type */
    char *out = NULL;
    ck_assert_int_eq(te_event_to_json(ev, 0, &out, NULL, e, sizeof e), TE_ERR_INVALID);
    ck_assert_ptr_null(out);
    ck_assert_ptr_nonnull(strstr(e, "is required"));

    ck_assert_int_eq(te_event_set_string(ev, "specversion", "0.3", e, sizeof e), TE_ERR_INVALID);
    ck_assert_int_eq(te_event_set_string(ev, "data", "x", e, sizeof e), TE_ERR_INVALID_ARG);
    ck_assert_int_eq(te_event_set_string(ev, "Bad", "x", e, sizeof e), TE_ERR_INVALID_ARG);
    ck_assert_int_eq(te_event_set_string(ev, NULL, "x", e, sizeof e), TE_ERR_INVALID_ARG);
    ck_assert_int_eq(te_event_set_string(NULL, "id", "x", e, sizeof e), TE_ERR_INVALID_ARG);
    ck_assert_int_eq(te_event_set_id(ev, "", e, sizeof e), TE_ERR_INVALID);
    ck_assert_int_eq(te_event_set_id(ev, "bad\x01", e, sizeof e), TE_ERR_INVALID);
    ck_assert_int_eq(te_event_set_id(ev, "\xff", e, sizeof e), TE_ERR_INVALID);
    ck_assert_int_eq(te_event_set_id(ev, "e-1", e, sizeof e), TE_OK);
    ck_assert_int_eq(te_event_set_source(ev, "not a uri", e, sizeof e), TE_ERR_INVALID);
    ck_assert_int_eq(te_event_set_source(ev, "/s", e, sizeof e), TE_OK);
    ck_assert_int_eq(te_event_set_type(ev, "t.x", e, sizeof e), TE_OK);
    ck_assert_int_eq(te_event_set_subject(ev, "", e, sizeof e), TE_ERR_INVALID);
    ck_assert_int_eq(te_event_set_subject(ev, "sub", e, sizeof e), TE_OK);
    ck_assert_int_eq(te_event_set_dataschema(ev, "rel/x", e, sizeof e), TE_ERR_INVALID);
    ck_assert_int_eq(te_event_set_dataschema(ev, "https://x/y", e, sizeof e), TE_OK);
    ck_assert_int_eq(te_event_set_datacontenttype(ev, "bad", e, sizeof e), TE_ERR_INVALID);
    ck_assert_int_eq(te_event_set_datacontenttype(ev, "application/json", e, sizeof e), TE_OK);
    ck_assert_int_eq(te_event_set_string(ev, "time", "yesterday", e, sizeof e), TE_ERR_INVALID);
    ck_assert_int_eq(te_event_set_string(ev, "time", "2024-03-01T10:00:00+01:00", e, sizeof e),
                     TE_OK);
    te_time_t t;
    ck_assert_int_eq(te_event_time(ev, &t), TE_OK);
    char tb[64];
    te_time_format_utc(t, tb, sizeof tb);
    ck_assert_str_eq(tb, "2024-03-01T09:00:00Z");
    ck_assert_int_eq(te_event_set_integer(ev, "id", 1, e, sizeof e), TE_ERR_INVALID_ARG);
    ck_assert_int_eq(te_event_set_integer(ev, "time", 1, e, sizeof e), TE_ERR_INVALID_ARG);
    ck_assert_int_eq(te_event_set_integer(ev, "count", -3, e, sizeof e), TE_OK);
    ck_assert_int_eq(te_event_set_boolean(ev, "flag", 7, e, sizeof e), TE_OK);
    ck_assert_int_eq(te_event_set_string(ev, "note", "n", e, sizeof e), TE_OK);
    ck_assert_int_eq(te_event_validate(ev, NULL), TE_OK);

    /* iteration: core in spec order, then extensions in insertion order */
    const char *order[] = {"specversion", "id",   "source", "type",  "datacontenttype",
                           "dataschema",  "subject", "time", "count", "flag", "note"};
    ck_assert_uint_eq(te_event_attr_count(ev), 11);
    for (size_t i = 0; i < 11; i++) {
        te_ce_attr_t a;
        ck_assert_int_eq(te_event_attr_at(ev, i, &a), TE_OK);
        ck_assert_str_eq(a.name, order[i]);
        ck_assert_int_eq(a.is_extension, i >= 8);
    }
    te_ce_attr_t a;
    ck_assert_int_eq(te_event_attr_at(ev, 11, &a), TE_ERR_NOT_FOUND);
    ck_assert_int_eq(te_event_get(ev, "source", &a), TE_OK);
    ck_assert_int_eq(a.type, TE_CE_TYPE_URI_REF);
    ck_assert_int_eq(te_event_get(ev, "dataschema", &a), TE_OK);
    ck_assert_int_eq(a.type, TE_CE_TYPE_URI);
    ck_assert_int_eq(te_event_get(ev, "time", &a), TE_OK);
    ck_assert_int_eq(a.type, TE_CE_TYPE_TIMESTAMP);
    ck_assert_int_eq(te_event_get(ev, "flag", &a), TE_OK);
    ck_assert_str_eq(a.value, "true");
    ck_assert_int_eq(a.boolean, 1);
    ck_assert_int_eq(te_event_get(ev, "count", &a), TE_OK);
    ck_assert_str_eq(a.value, "-3");
    ck_assert_str_eq(te_event_get_string(ev, "time"), "2024-03-01T10:00:00+01:00");
    ck_assert_str_eq(te_event_get_string(ev, "source"), "/s");

    /* replacing keeps the position; removing keeps the others' order */
    ck_assert_int_eq(te_event_set_integer(ev, "count", 4, e, sizeof e), TE_OK);
    ck_assert_int_eq(te_event_attr_at(ev, 8, &a), TE_OK);
    ck_assert_str_eq(a.name, "count");
    ck_assert_int_eq(a.integer, 4);
    ck_assert_int_eq(te_event_remove(ev, "flag"), TE_OK);
    ck_assert_int_eq(te_event_remove(ev, "flag"), TE_ERR_NOT_FOUND);
    ck_assert_int_eq(te_event_attr_at(ev, 9, &a), TE_OK);
    ck_assert_str_eq(a.name, "note");
    ck_assert_int_eq(te_event_set_string(ev, "note", NULL, e, sizeof e), TE_OK);
    ck_assert_int_eq(te_event_set_string(ev, "note", NULL, e, sizeof e), TE_OK);
    ck_assert_int_eq(te_event_remove(ev, "subject"), TE_OK);
    ck_assert_ptr_null(te_event_subject(ev));
    ck_assert_int_eq(te_event_remove(ev, "subject"), TE_ERR_NOT_FOUND);
    ck_assert_uint_eq(te_event_attr_count(ev), 8);

    /* a string extension can become an integer one and back */
    ck_assert_int_eq(te_event_set_string(ev, "count", "many", e, sizeof e), TE_OK);
    ck_assert_int_eq(te_event_get(ev, "count", &a), TE_OK);
    ck_assert_int_eq(a.type, TE_CE_TYPE_STRING);

    ck_assert_int_eq(te_event_remove(ev, "id"), TE_OK);
    ck_assert_int_eq(te_event_validate(ev, NULL), TE_ERR_INVALID);
    ck_assert_int_eq(te_event_set_id_uuid(ev), TE_OK);
    ck_assert_uint_eq(strlen(te_event_id(ev)), 36);
    json_round_trip(ev);
    te_event_destroy(ev);
}
END_TEST

START_TEST(time_setter) {
    te_event_t *ev = te_event_new();
    te_time_t t;
    ck_assert_int_eq(te_time_parse("2024-02-29T23:59:58.123Z", &t, NULL, NULL, 0), TE_OK);
    ck_assert_int_eq(te_event_set_time(ev, t), TE_OK);
    ck_assert_str_eq(te_event_time_str(ev), "2024-02-29T23:59:58.123Z");
    ck_assert_int_eq(te_event_set_time(ev, t + 456), TE_OK);
    ck_assert_str_eq(te_event_time_str(ev), "2024-02-29T23:59:58.123456Z");
    ck_assert_int_eq(te_time_parse("1970-01-01T00:00:00Z", &t, NULL, NULL, 0), TE_OK);
    ck_assert_int_eq(te_event_set_time(ev, t), TE_OK);
    ck_assert_str_eq(te_event_time_str(ev), "1970-01-01T00:00:00.000Z");
    te_time_t back;
    ck_assert_int_eq(te_event_time(ev, &back), TE_OK);
    ck_assert(back == t);
    ck_assert_int_eq(te_event_remove(ev, "time"), TE_OK);
    ck_assert_int_eq(te_event_time(ev, &back), TE_ERR_NOT_FOUND);
    te_event_destroy(ev);
}
END_TEST

START_TEST(data_api) {
    te_event_t *ev = te_event_new();
    char e[TE_ERRSTR_SIZE];
    char *out = NULL;
    ck_assert_int_eq(te_event_data_kind(ev), TE_EVENT_DATA_NONE);
    ck_assert_int_eq(te_event_data_to_json(ev, &out, NULL), TE_ERR_NOT_FOUND);
    const char *dj = "{\"a\": [1, 2.50, \"\\u00e9\"]}";
    ck_assert_int_eq(te_event_set_data_json(ev, dj, strlen(dj), e, sizeof e), TE_OK);
    ck_assert_int_eq(te_event_data_to_json(ev, &out, NULL), TE_OK);
    ck_assert_str_eq(out, "{\"a\":[1,2.50,\"\xc3\xa9\"]}");
    te_free(out);
    ck_assert_int_eq(te_event_set_data_json(ev, "{\"a\":NaN}", 9, e, sizeof e), TE_ERR_PARSE);
    ck_assert_int_eq(te_event_set_data_json(ev, "{\"a\":1} x", 9, e, sizeof e), TE_ERR_PARSE);
    ck_assert_int_eq(te_event_set_data_json(ev, "", 0, e, sizeof e), TE_ERR_PARSE);
    ck_assert_int_eq(te_event_set_data_json(ev, NULL, 0, e, sizeof e), TE_ERR_INVALID_ARG);
    /* the failed calls left the data alone */
    ck_assert(json_object_is_type(te_event_data_object(ev), json_type_object));
    ck_assert_int_eq(te_event_set_data_json(ev, "7", 1, e, sizeof e), TE_OK);
    ck_assert_int_eq(json_object_get_int(te_event_data_object(ev) ? (struct json_object *)
                                                                        te_event_data_object(ev)
                                                                  : NULL),
                     7);
    ck_assert_int_eq(te_event_set_data_json(ev, "null", 4, e, sizeof e), TE_OK);
    ck_assert_int_eq(te_event_data_kind(ev), TE_EVENT_DATA_JSON);
    ck_assert_ptr_null(te_event_data_object(ev));
    ck_assert_int_eq(te_event_data_to_json(ev, &out, NULL), TE_OK);
    ck_assert_str_eq(out, "null");
    te_free(out);
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "k", json_object_new_string("v/w"));
    ck_assert_int_eq(te_event_set_data_object(ev, o), TE_OK);
    ck_assert_ptr_eq(te_event_data_object(ev), o);
    size_t len = 0;
    ck_assert_int_eq(te_event_data_to_json(ev, &out, &len), TE_OK);
    ck_assert_str_eq(out, "{\"k\":\"v/w\"}");
    ck_assert_uint_eq(len, strlen(out));
    te_free(out);
    ck_assert_int_eq(te_event_set_data_binary(ev, "xyz", 3), TE_OK);
    ck_assert_ptr_null(te_event_data_object(ev));
    ck_assert_int_eq(te_event_data_to_json(ev, &out, NULL), TE_ERR_NOT_FOUND);
    te_event_clear_data(ev);
    ck_assert_int_eq(te_event_data_kind(ev), TE_EVENT_DATA_NONE);
    ck_assert_ptr_null(te_event_data_binary(ev, &len));
    ck_assert_uint_eq(len, 0);
    te_event_clear_data(NULL);
    te_event_destroy(ev);
}
END_TEST

START_TEST(equal_and_dup) {
    te_event_t *a = ok("{" BASE ",'x':1,'y':'s','z':true,'data':{'n':[1,2]}}");
    te_event_t *b = ok("{'z':true,'y':'s','x':1," BASE ",'data':{'n':[1,2]}}");
    ck_assert(te_event_equal(a, b)); /* order does not matter */
    te_event_t *c = te_event_dup(a);
    ck_assert_ptr_nonnull(c);
    ck_assert(te_event_equal(a, c));
    te_event_set_integer(c, "x", 2, NULL, 0);
    ck_assert(!te_event_equal(a, c));
    te_event_set_string(c, "x", "1", NULL, 0); /* same text, other type */
    ck_assert(!te_event_equal(a, c));
    te_event_set_integer(c, "x", 1, NULL, 0);
    ck_assert(te_event_equal(a, c));
    te_event_set_data_json(c, "{\"n\":[1,3]}", 11, NULL, 0);
    ck_assert(!te_event_equal(a, c));
    te_event_clear_data(c);
    ck_assert(!te_event_equal(a, c));
    te_event_set_data_binary(c, "ab", 2);
    te_event_t *d = te_event_dup(c);
    ck_assert(te_event_equal(c, d));
    te_event_set_data_binary(d, "ac", 2);
    ck_assert(!te_event_equal(c, d));
    te_event_set_string(d, "w", "extra", NULL, 0);
    ck_assert(!te_event_equal(c, d));
    ck_assert(te_event_equal(NULL, NULL));
    ck_assert(!te_event_equal(a, NULL));
    ck_assert_ptr_null(te_event_dup(NULL));
    te_event_t *n1 = ok("{" BASE ",'data':null}");
    te_event_t *n2 = te_event_dup(n1);
    ck_assert(te_event_equal(n1, n2));
    te_event_destroy(n1);
    te_event_destroy(n2);
    te_event_destroy(a);
    te_event_destroy(b);
    te_event_destroy(c);
    te_event_destroy(d);
}
END_TEST

START_TEST(encode_json) {
    te_event_t *ev = ok("{'data':{'b':1},'x':'1'," BASE ",'time':'2018-04-05T17:31:00Z'}");
    char *s = enc(ev);
    /* attributes in iteration order, data last; slashes not escaped */
    ck_assert_str_eq(s, "{\"specversion\":\"1.0\",\"id\":\"A234-1234-1234\",\"source\":\"/mycontext\","
                        "\"type\":\"com.example.someevent\",\"time\":\"2018-04-05T17:31:00Z\","
                        "\"x\":\"1\",\"data\":{\"b\":1}}");
    te_free(s);
    char *pretty = NULL;
    ck_assert_int_eq(te_event_to_json(ev, TE_JSON_PRETTY, &pretty, NULL, NULL, 0), TE_OK);
    ck_assert_ptr_nonnull(strchr(pretty, '\n'));
    te_event_t *back = ok_raw(pretty, strlen(pretty));
    ck_assert(te_event_equal(ev, back));
    te_free(pretty);
    te_event_destroy(back);
    ck_assert_int_eq(te_event_to_json(NULL, 0, &s, NULL, NULL, 0), TE_ERR_INVALID_ARG);
    ck_assert_int_eq(te_event_to_json(ev, 0, NULL, NULL, NULL, 0), TE_ERR_INVALID_ARG);
    te_event_destroy(ev);
}
END_TEST

START_TEST(round_trips) {
    const char *events[] = {
        "{" BASE "}",
        "{" BASE ",'subject':'s','time':'2018-04-05T17:31:00.5+05:30','dataschema':'urn:x:y',"
        "'datacontenttype':'application/json; charset=utf-8','data':{'k':[true,null,1.25]}}",
        "{" BASE ",'i':2147483647,'j':-2147483648,'b':true,'c':false,'s':'\\u00fcml\\u00e4ut'}",
        "{" BASE ",'datacontenttype':'image/png','data_base64':'iVBORw0KGgo='}",
        "{" BASE ",'data':'plain string'}",
        "{" BASE ",'data':''}",
        "{" BASE ",'data':null}",
        "{" BASE ",'partitionkey':'u1','traceparent':"
        "'00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01','data':[]}",
    };
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
        te_event_t *ev = ok(events[i]);
        json_round_trip(ev);
        te_event_destroy(ev);
    }
}
END_TEST

/* ---- Kafka ----------------------------------------------------------------- */

static const char *hget(const te_headers_t *h, const char *name) {
    const void *v = NULL;
    size_t n = 0;
    if (te_headers_get(h, name, &v, &n) != TE_OK)
        return NULL;
    return v;
}

START_TEST(headers_api) {
    te_headers_t *h = te_headers_new();
    ck_assert_uint_eq(te_headers_count(h), 0);
    ck_assert_int_eq(te_headers_add(h, "a", "1", 1), TE_OK);
    ck_assert_int_eq(te_headers_add(h, "b", NULL, 5), TE_OK);
    ck_assert_int_eq(te_headers_add(h, "a", "2\0x", 3), TE_OK);
    ck_assert_int_eq(te_headers_add(h, NULL, "x", 1), TE_ERR_INVALID_ARG);
    ck_assert_int_eq(te_headers_add(NULL, "n", "x", 1), TE_ERR_INVALID_ARG);
    ck_assert_uint_eq(te_headers_count(h), 3);
    ck_assert_str_eq(te_headers_name(h, 1), "b");
    size_t n = 9;
    ck_assert_ptr_null(te_headers_value(h, 1, &n));
    ck_assert_uint_eq(n, 0);
    const void *v = NULL;
    ck_assert_int_eq(te_headers_get(h, "a", &v, &n), TE_OK);
    ck_assert_uint_eq(n, 3);
    ck_assert_mem_eq(v, "2\0x", 4); /* NUL-terminated copy */
    ck_assert_int_eq(te_headers_get(h, "b", &v, &n), TE_OK);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(te_headers_get(h, "A", &v, &n), TE_ERR_NOT_FOUND);
    ck_assert_ptr_null(te_headers_name(h, 3));
    ck_assert_ptr_null(te_headers_value(h, 3, &n));
    te_headers_clear(h);
    ck_assert_uint_eq(te_headers_count(h), 0);
    te_headers_destroy(h);
    te_headers_destroy(NULL);
    ck_assert_uint_eq(te_headers_count(NULL), 0);
}
END_TEST

static te_headers_t *H(const char *const *pairs) {
    te_headers_t *h = te_headers_new();
    for (; pairs[0]; pairs += 2)
        te_headers_add(h, pairs[0], pairs[1], pairs[1] ? strlen(pairs[1]) : 0);
    return h;
}

START_TEST(kafka_mode_detection) {
    te_kafka_mode_t m;
    struct {
        const char *const h[9];
        te_err_t err;
        te_kafka_mode_t mode;
    } cases[] = {
        {{"content-type", "application/cloudevents+json; charset=UTF-8", NULL}, TE_OK,
         TE_KAFKA_STRUCTURED},
        {{"content-type", "APPLICATION/CloudEvents+JSON", NULL}, TE_OK, TE_KAFKA_STRUCTURED},
        {{"Content-Type", "application/cloudevents+json", NULL}, TE_OK, TE_KAFKA_STRUCTURED},
        {{"content-type", "application/cloudevents+avro", NULL}, TE_OK, TE_KAFKA_STRUCTURED},
        {{"content-type", "application/cloudevents-batch+json", NULL}, TE_OK,
         TE_KAFKA_STRUCTURED},
        /* structured wins even with ce_ headers present */
        {{"ce_specversion", "1.0", "content-type", "application/cloudevents+json", NULL}, TE_OK,
         TE_KAFKA_STRUCTURED},
        {{"ce_specversion", "1.0", "content-type", "application/json", NULL}, TE_OK,
         TE_KAFKA_BINARY},
        {{"ce_specversion", "1.0", NULL}, TE_OK, TE_KAFKA_BINARY},
        {{"content-type", "application/json", NULL}, TE_ERR_NOT_FOUND, 0},
        {{"ce_id", "1", "ce_type", "t", NULL}, TE_ERR_NOT_FOUND, 0},
        {{"CE_SPECVERSION", "1.0", NULL}, TE_ERR_NOT_FOUND, 0},
        {{"x", "y", NULL}, TE_ERR_NOT_FOUND, 0},
        {{NULL}, TE_ERR_NOT_FOUND, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        te_headers_t *h = H(cases[i].h);
        te_err_t err = te_kafka_detect_mode(h, &m);
        ck_assert_msg(err == cases[i].err, "case %zu: %s", i, te_err_name(err));
        if (err == TE_OK)
            ck_assert_msg(m == cases[i].mode, "case %zu: mode %d", i, (int)m);
        te_headers_destroy(h);
    }
    ck_assert_int_eq(te_kafka_detect_mode(NULL, &m), TE_ERR_NOT_FOUND);
    /* decoding a record that is not a CloudEvent */
    te_headers_t *h = H((const char *const[]){"content-type", "application/json", NULL});
    te_event_t *ev = (te_event_t *)1;
    char e[TE_ERRSTR_SIZE];
    ck_assert_int_eq(te_event_from_kafka(h, "{}", 2, &ev, &m, P, e, sizeof e), TE_ERR_NOT_FOUND);
    ck_assert_ptr_null(ev);
    ck_assert_ptr_nonnull(strstr(e, "not a CloudEvent"));
    ck_assert_int_eq(te_event_from_kafka(NULL, "{}", 2, &ev, &m, P, e, sizeof e), TE_ERR_NOT_FOUND);
    te_headers_destroy(h);
    /* unsupported structured formats */
    h = H((const char *const[]){"content-type", "application/cloudevents+avro", NULL});
    ck_assert_int_eq(te_event_from_kafka(h, "x", 1, &ev, &m, P, e, sizeof e), TE_ERR_UNSUPPORTED);
    te_headers_destroy(h);
    h = H((const char *const[]){"content-type", "application/cloudevents-batch+json", NULL});
    ck_assert_int_eq(te_event_from_kafka(h, "[]", 2, &ev, &m, P, e, sizeof e), TE_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(e, "batch"));
    te_headers_destroy(h);
    h = H((const char *const[]){"content-type", "application/cloudevents+json", NULL});
    ck_assert_int_eq(te_event_from_kafka(h, NULL, 0, &ev, &m, P, e, sizeof e), TE_ERR_PARSE);
    ck_assert_int_eq(te_event_from_kafka(h, "{", 1, &ev, &m, P, e, sizeof e), TE_ERR_PARSE);
    te_headers_destroy(h);
}
END_TEST

START_TEST(kafka_binary_encode) {
    te_event_t *ev = ok("{" BASE ",'time':'2018-04-05T03:56:24Z','subject':'s','n':5,'b':true,"
                        "'partitionkey':'u1','data':{'x':'a/b'}}");
    te_headers_t *h = te_headers_new();
    te_headers_add(h, "mine", "kept", 4);
    void *value = NULL;
    size_t len = 0;
    char e[TE_ERRSTR_SIZE];
    ck_assert_int_eq(te_event_to_kafka(ev, TE_KAFKA_BINARY, h, &value, &len, e, sizeof e), TE_OK);
    const char *expect[][2] = {{"mine", "kept"},
                               {"ce_specversion", "1.0"},
                               {"ce_id", "A234-1234-1234"},
                               {"ce_source", "/mycontext"},
                               {"ce_type", "com.example.someevent"},
                               {"ce_subject", "s"},
                               {"ce_time", "2018-04-05T03:56:24Z"},
                               {"ce_n", "5"},
                               {"ce_b", "true"},
                               {"ce_partitionkey", "u1"},
                               {"content-type", "application/json"}};
    ck_assert_uint_eq(te_headers_count(h), sizeof expect / sizeof expect[0]);
    for (size_t i = 0; i < te_headers_count(h); i++) {
        size_t n;
        ck_assert_str_eq(te_headers_name(h, i), expect[i][0]);
        ck_assert_str_eq(te_headers_value(h, i, &n), expect[i][1]);
        ck_assert_uint_eq(n, strlen(expect[i][1]));
    }
    ck_assert_uint_eq(len, strlen("{\"x\":\"a/b\"}"));
    ck_assert_mem_eq(value, "{\"x\":\"a/b\"}", len);
    ck_assert_str_eq(te_event_kafka_key(ev), "u1");
    te_free(value);
    te_event_destroy(ev);

    /* no data: no value (a tombstone-shaped record), no content-type */
    te_headers_clear(h);
    ev = ok("{" BASE "}");
    ck_assert_int_eq(te_event_to_kafka(ev, TE_KAFKA_BINARY, h, &value, &len, e, sizeof e), TE_OK);
    ck_assert_ptr_null(value);
    ck_assert_uint_eq(len, 0);
    ck_assert_ptr_null(hget(h, "content-type"));
    ck_assert_uint_eq(te_headers_count(h), 4);
    te_event_destroy(ev);

    /* datacontenttype becomes content-type, never ce_datacontenttype; a
     * string under a non-JSON type travels as its characters */
    te_headers_clear(h);
    ev = ok("{" BASE ",'datacontenttype':'application/xml','data':'<much wow=\\'xml\\'/>'}");
    ck_assert_int_eq(te_event_to_kafka(ev, TE_KAFKA_BINARY, h, &value, &len, e, sizeof e), TE_OK);
    ck_assert_str_eq(hget(h, "content-type"), "application/xml");
    ck_assert_ptr_null(hget(h, "ce_datacontenttype"));
    ck_assert_uint_eq(len, 17);
    ck_assert_mem_eq(value, "<much wow=\"xml\"/>", 17);
    te_free(value);
    te_event_destroy(ev);

    /* a JSON string under a JSON type stays JSON text (quoted) */
    te_headers_clear(h);
    ev = ok("{" BASE ",'data':'I am a string'}");
    ck_assert_int_eq(te_event_to_kafka(ev, TE_KAFKA_BINARY, h, &value, &len, e, sizeof e), TE_OK);
    ck_assert_str_eq(hget(h, "content-type"), "application/json");
    ck_assert_uint_eq(len, 15);
    ck_assert_mem_eq(value, "\"I am a string\"", 15);
    te_free(value);
    te_event_destroy(ev);

    /* binary data: raw bytes, content-type only when datacontenttype is set */
    te_headers_clear(h);
    ev = ok("{" BASE ",'data_base64':'AAEC'}");
    ck_assert_int_eq(te_event_to_kafka(ev, TE_KAFKA_BINARY, h, &value, &len, e, sizeof e), TE_OK);
    ck_assert_ptr_null(hget(h, "content-type"));
    ck_assert_uint_eq(len, 3);
    ck_assert_mem_eq(value, "\x00\x01\x02", 3);
    te_free(value);
    te_event_destroy(ev);

    /* invalid events are refused and leave the list alone */
    te_headers_clear(h);
    te_headers_add(h, "mine", "kept", 4);
    ev = te_event_new();
    ck_assert_int_eq(te_event_to_kafka(ev, TE_KAFKA_BINARY, h, &value, &len, e, sizeof e),
                     TE_ERR_INVALID);
    ck_assert_int_eq(te_event_to_kafka(ev, 7, h, &value, &len, e, sizeof e), TE_ERR_INVALID_ARG);
    ck_assert_uint_eq(te_headers_count(h), 1);
    te_event_destroy(ev);
    te_headers_destroy(h);
}
END_TEST

START_TEST(kafka_structured_encode) {
    te_event_t *ev = ok("{" BASE ",'n':5,'data_base64':'AAEC'}");
    te_headers_t *h = te_headers_new();
    void *value = NULL;
    size_t len = 0;
    ck_assert_int_eq(te_event_to_kafka(ev, TE_KAFKA_STRUCTURED, h, &value, &len, NULL, 0), TE_OK);
    ck_assert_uint_eq(te_headers_count(h), 1);
    ck_assert_str_eq(te_headers_name(h, 0), "content-type");
    ck_assert_str_eq(hget(h, "content-type"), "application/cloudevents+json; charset=UTF-8");
    char *json = enc(ev);
    ck_assert_uint_eq(len, strlen(json));
    ck_assert_mem_eq(value, json, len);
    te_kafka_mode_t m;
    te_event_t *back = NULL;
    ck_assert_int_eq(te_event_from_kafka(h, value, len, &back, &m, P, NULL, 0), TE_OK);
    ck_assert_int_eq(m, TE_KAFKA_STRUCTURED);
    ck_assert(te_event_equal(ev, back)); /* typed extensions and binary data survive */
    te_event_destroy(back);
    te_free(json);
    te_free(value);
    te_headers_destroy(h);
    te_event_destroy(ev);
}
END_TEST

/* binary → event; expects success */
static te_event_t *from_binary(const char *const *pairs, const void *value, size_t len) {
    te_headers_t *h = H(pairs);
    te_event_t *ev = NULL;
    te_kafka_mode_t m = TE_KAFKA_STRUCTURED;
    char e[TE_ERRSTR_SIZE] = "";
    te_problems_clear(P);
    te_err_t err = te_event_from_kafka(h, value, len, &ev, &m, P, e, sizeof e);
    if (err)
        dump();
    ck_assert_msg(err == TE_OK, "binary decode failed: %s %s", te_err_name(err), e);
    ck_assert_int_eq(m, TE_KAFKA_BINARY);
    te_headers_destroy(h);
    return ev;
}

static void binary_bad(const char *const *pairs, const void *value, size_t len,
                       const char *field, const char *reason_part) {
    te_headers_t *h = H(pairs);
    te_event_t *ev = (te_event_t *)1;
    char e[TE_ERRSTR_SIZE] = "";
    te_problems_clear(P);
    te_err_t err = te_event_from_kafka(h, value, len, &ev, NULL, P, e, sizeof e);
    ck_assert_msg(err == TE_ERR_INVALID, "expected invalid, got %s", te_err_name(err));
    ck_assert_ptr_null(ev);
    if (!has_problem(field, reason_part))
        dump();
    ck_assert_msg(has_problem(field, reason_part), "no problem %s: %s", field, reason_part);
    te_headers_destroy(h);
}

#define CE_MIN "ce_specversion", "1.0", "ce_id", "1", "ce_source", "/s", "ce_type", "t"

START_TEST(kafka_binary_decode) {
    /* the Kafka binding's example */
    const char *const example[] = {"ce_specversion", "1.0",
                                   "ce_type", "com.example.someevent",
                                   "ce_source", "/mycontext/subcontext",
                                   "ce_id", "1234-1234-1234",
                                   "ce_time", "2018-04-05T03:56:24Z",
                                   "content-type", "application/avro",
                                   NULL};
    te_event_t *ev = from_binary(example, "\x00\x02\x04", 3);
    ck_assert_str_eq(te_event_datacontenttype(ev), "application/avro");
    ck_assert_str_eq(te_event_time_str(ev), "2018-04-05T03:56:24Z");
    size_t n;
    ck_assert_mem_eq(te_event_data_binary(ev, &n), "\x00\x02\x04", 3);
    ck_assert_uint_eq(n, 3);
    te_event_destroy(ev);

    /* extensions stay strings; other headers are not attributes */
    ev = from_binary((const char *const[]){CE_MIN, "ce_count", "5", "ce_flag", "true",
                                           "traceparent", "x", "key", "v", NULL},
                     NULL, 0);
    te_ce_attr_t a;
    ck_assert_int_eq(te_event_get(ev, "count", &a), TE_OK);
    ck_assert_int_eq(a.type, TE_CE_TYPE_STRING);
    ck_assert_str_eq(a.value, "5");
    ck_assert_str_eq(te_event_get_string(ev, "flag"), "true");
    ck_assert_int_eq(te_event_get(ev, "traceparent", &a), TE_ERR_NOT_FOUND);
    ck_assert_uint_eq(te_event_attr_count(ev), 6);
    ck_assert_int_eq(te_event_data_kind(ev), TE_EVENT_DATA_NONE);
    te_event_destroy(ev);

    /* JSON content types parse the value */
    const char *json_types[] = {"application/json", "application/json; charset=utf-8",
                                "text/json", "application/vnd.todo+json"};
    for (size_t i = 0; i < 4; i++) {
        ev = from_binary((const char *const[]){CE_MIN, "content-type", json_types[i], NULL},
                         "{\"a\":[1,2]}", 11);
        ck_assert_int_eq(te_event_data_kind(ev), TE_EVENT_DATA_JSON);
        ck_assert_str_eq(te_event_datacontenttype(ev), json_types[i]);
        te_event_destroy(ev);
    }
    ev = from_binary((const char *const[]){CE_MIN, "content-type", "application/json", NULL},
                     "null", 4);
    ck_assert_int_eq(te_event_data_kind(ev), TE_EVENT_DATA_JSON);
    ck_assert_ptr_null(te_event_data_object(ev));
    te_event_destroy(ev);
    /* other or no content type: bytes */
    ev = from_binary((const char *const[]){CE_MIN, "content-type", "text/plain", NULL}, "hi", 2);
    ck_assert_int_eq(te_event_data_kind(ev), TE_EVENT_DATA_BINARY);
    te_event_destroy(ev);
    ev = from_binary((const char *const[]){CE_MIN, NULL}, "{}", 2);
    ck_assert_int_eq(te_event_data_kind(ev), TE_EVENT_DATA_BINARY);
    ck_assert_ptr_null(te_event_datacontenttype(ev));
    te_event_destroy(ev);
    /* an empty value is data (zero bytes), unlike no value */
    ev = from_binary((const char *const[]){CE_MIN, NULL}, "", 0);
    ck_assert_int_eq(te_event_data_kind(ev), TE_EVENT_DATA_BINARY);
    te_event_destroy(ev);
    /* ce_datacontenttype is accepted when there is no content-type */
    ev = from_binary((const char *const[]){CE_MIN, "ce_datacontenttype", "application/json", NULL},
                     "[1]", 3);
    ck_assert_int_eq(te_event_data_kind(ev), TE_EVENT_DATA_JSON);
    te_event_destroy(ev);
    /* header name of content-type is matched case-insensitively */
    ev = from_binary((const char *const[]){CE_MIN, "Content-Type", "application/json", NULL},
                     "[1]", 3);
    ck_assert_str_eq(te_event_datacontenttype(ev), "application/json");
    te_event_destroy(ev);
}
END_TEST

START_TEST(kafka_binary_decode_problems) {
    binary_bad((const char *const[]){"ce_specversion", "1.0", "ce_source", "/s", "ce_type", "t",
                                     NULL},
               NULL, 0, "id", "is required");
    binary_bad((const char *const[]){"ce_specversion", "0.3", "ce_id", "1", "ce_source", "/s",
                                     "ce_type", "t", NULL},
               NULL, 0, "specversion", "1.0");
    binary_bad((const char *const[]){CE_MIN, "ce_time", "yesterday", NULL}, NULL, 0, "time",
               "RFC 3339");
    binary_bad((const char *const[]){"ce_specversion", "1.0", "ce_id", "", "ce_source", "/s",
                                     "ce_type", "t", NULL},
               NULL, 0, "id", "non-empty");
    binary_bad((const char *const[]){"ce_specversion", "1.0", "ce_id", "1", "ce_source", "a b",
                                     "ce_type", "t", NULL},
               NULL, 0, "source", "URI-reference");
    binary_bad((const char *const[]){CE_MIN, "ce_myExt", "x", NULL}, NULL, 0, "myExt",
               "lower-case");
    binary_bad((const char *const[]){CE_MIN, "ce_data", "x", NULL}, NULL, 0, "data", "reserved");
    binary_bad((const char *const[]){CE_MIN, "ce_ext", NULL, NULL}, NULL, 0, "ext", "null");
    binary_bad((const char *const[]){CE_MIN, "ce_ext", "\xff", NULL}, NULL, 0, "ext", "UTF-8");
    binary_bad((const char *const[]){CE_MIN, "ce_ext", "a\x01", NULL}, NULL, 0, "ext", "control");
    binary_bad((const char *const[]){CE_MIN, "ce_id", "2", NULL}, NULL, 0, "id", "at most once");
    binary_bad((const char *const[]){CE_MIN, "content-type", "json", NULL}, "{}", 2,
               "datacontenttype", "media type");
    binary_bad((const char *const[]){CE_MIN, "content-type", "application/json", NULL}, "{x}", 3,
               "data", "not valid JSON");
    binary_bad((const char *const[]){CE_MIN, "content-type", "application/json", NULL}, "", 0,
               "data", "not valid JSON");
    binary_bad((const char *const[]){CE_MIN, "content-type", "application/json", "content-type",
                                     "text/plain", NULL},
               "{}", 2, "datacontenttype", "at most once");
    binary_bad((const char *const[]){CE_MIN, "content-type", "application/json",
                                     "ce_datacontenttype", "text/plain", NULL},
               "{}", 2, "datacontenttype", "disagrees");
    binary_bad((const char *const[]){CE_MIN, "ce_traceparent", "nope", NULL}, NULL, 0,
               "traceparent", "traceparent");
    /* a NUL inside a header value is a control character */
    te_headers_t *h = H((const char *const[]){CE_MIN, NULL});
    te_headers_add(h, "ce_ext", "a\0b", 3);
    te_event_t *ev = (te_event_t *)1;
    te_problems_clear(P);
    ck_assert_int_eq(te_event_from_kafka(h, NULL, 0, &ev, NULL, P, NULL, 0), TE_ERR_INVALID);
    ck_assert(has_problem("ext", "control"));
    te_headers_destroy(h);
}
END_TEST

/* event → Kafka (mode) → event */
static te_event_t *kafka_trip(const te_event_t *ev, te_kafka_mode_t mode) {
    te_headers_t *h = te_headers_new();
    void *value = NULL;
    size_t len = 0;
    char e[TE_ERRSTR_SIZE] = "";
    ck_assert_int_eq(te_event_to_kafka(ev, mode, h, &value, &len, e, sizeof e), TE_OK);
    te_event_t *back = NULL;
    te_kafka_mode_t m;
    te_problems_clear(P);
    te_err_t err = te_event_from_kafka(h, value, len, &back, &m, P, e, sizeof e);
    if (err)
        dump();
    ck_assert_msg(err == TE_OK, "%s", e);
    ck_assert_int_eq(m, mode);
    te_free(value);
    te_headers_destroy(h);
    return back;
}

START_TEST(kafka_round_trips) {
    const char *exact[] = {
        /* binary mode is exact when extensions are strings and the content
         * type is explicit */
        "{" BASE ",'time':'2018-04-05T17:31:00Z','subject':'x','dataschema':'https://x/s',"
        "'ext':'v','partitionkey':'u1','datacontenttype':'application/json',"
        "'data':{'a':[1,'b',null],'c':{'d':true}}}",
        "{" BASE ",'datacontenttype':'application/octet-stream','data_base64':'AAECAwQFBgc='}",
        "{" BASE ",'datacontenttype':'text/plain'}",
        "{" BASE "}",
        "{" BASE ",'datacontenttype':'application/json','data':null}",
    };
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++) {
        te_event_t *ev = ok(exact[i]);
        for (int mode = 0; mode < 2; mode++) {
            te_event_t *back = kafka_trip(ev, (te_kafka_mode_t)mode);
            ck_assert_msg(te_event_equal(ev, back), "mode %d changed event %zu", mode, i);
            te_event_destroy(back);
        }
        te_event_destroy(ev);
    }
    /* binary mode: typed extensions come back as strings, the implied
     * application/json becomes explicit, text data becomes bytes */
    te_event_t *ev = ok("{" BASE ",'n':5,'b':false,'data':{'k':1}}");
    te_event_t *back = kafka_trip(ev, TE_KAFKA_BINARY);
    ck_assert(!te_event_equal(ev, back));
    te_ce_attr_t a;
    ck_assert_int_eq(te_event_get(back, "n", &a), TE_OK);
    ck_assert_int_eq(a.type, TE_CE_TYPE_STRING);
    ck_assert_str_eq(a.value, "5");
    ck_assert_str_eq(te_event_get_string(back, "b"), "false");
    ck_assert_str_eq(te_event_datacontenttype(back), "application/json");
    ck_assert(json_object_equal((struct json_object *)te_event_data_object(ev),
                                (struct json_object *)te_event_data_object(back)));
    te_event_destroy(back);
    back = kafka_trip(ev, TE_KAFKA_STRUCTURED);
    ck_assert(te_event_equal(ev, back));
    te_event_destroy(back);
    te_event_destroy(ev);

    /* data that is itself a structured CloudEvent cannot go in binary mode:
     * its content-type would make receivers read the record as structured */
    ev = ok("{" BASE ",'datacontenttype':'application/cloudevents+json','data':{'nested':'ce'}}");
    te_headers_t *h = te_headers_new();
    void *value = NULL;
    size_t len = 0;
    char e[TE_ERRSTR_SIZE];
    ck_assert_int_eq(te_event_to_kafka(ev, TE_KAFKA_BINARY, h, &value, &len, e, sizeof e),
                     TE_ERR_UNSUPPORTED);
    ck_assert_uint_eq(te_headers_count(h), 0);
    back = kafka_trip(ev, TE_KAFKA_STRUCTURED);
    ck_assert(te_event_equal(ev, back));
    te_event_destroy(back);
    te_headers_destroy(h);
    te_event_destroy(ev);
}
END_TEST

START_TEST(kafka_binary_to_structured) {
    /* The JSON format spec's example C234 in binary mode, re-encoded as a
     * structured JSON event. */
    const char *const hdr[] = {"ce_specversion", "1.0",
                               "ce_type", "com.example.someevent",
                               "ce_source", "/mycontext",
                               "ce_id", "C234-1234-1234",
                               "ce_time", "2018-04-05T17:31:00Z",
                               "ce_comexampleextension1", "value",
                               "ce_comexampleothervalue", "5",
                               "content-type", "application/json",
                               NULL};
    const char *value = "{\n  \"appinfoA\" : \"abc\",\n  \"appinfoB\" : 123,\n  \"appinfoC\" : true\n}";
    te_event_t *ev = from_binary(hdr, value, strlen(value));
    char *json = enc(ev);
    ck_assert_str_eq(json,
                     "{\"specversion\":\"1.0\",\"id\":\"C234-1234-1234\",\"source\":\"/mycontext\","
                     "\"type\":\"com.example.someevent\",\"datacontenttype\":\"application/json\","
                     "\"time\":\"2018-04-05T17:31:00Z\",\"comexampleextension1\":\"value\","
                     "\"comexampleothervalue\":\"5\",\"data\":{\"appinfoA\":\"abc\","
                     "\"appinfoB\":123,\"appinfoC\":true}}");
    /* and that JSON decodes to an event equal to the binary-decoded one */
    te_event_t *again = ok_raw(json, strlen(json));
    ck_assert(te_event_equal(ev, again));
    te_event_destroy(again);
    te_free(json);
    te_event_destroy(ev);

    /* D234: a JSON string value */
    const char *const hdr2[] = {"ce_specversion", "1.0", "ce_type", "com.example.someevent",
                                "ce_source", "/mycontext", "ce_id", "D234-1234-1234",
                                "content-type", "application/json", NULL};
    ev = from_binary(hdr2, "\"I'm just a string\"", 19);
    json = enc(ev);
    ck_assert_str_eq(json, "{\"specversion\":\"1.0\",\"id\":\"D234-1234-1234\",\"source\":"
                           "\"/mycontext\",\"type\":\"com.example.someevent\",\"datacontenttype\":"
                           "\"application/json\",\"data\":\"I'm just a string\"}");
    te_free(json);
    te_event_destroy(ev);

    /* XML in binary mode is bytes, so structured output uses data_base64 */
    const char *const hdr3[] = {"ce_specversion", "1.0", "ce_type", "t", "ce_source", "/c",
                                "ce_id", "B", "content-type", "application/xml", NULL};
    ev = from_binary(hdr3, "<much wow=\"xml\"/>", 17);
    json = enc(ev);
    ck_assert_str_eq(json, "{\"specversion\":\"1.0\",\"id\":\"B\",\"source\":\"/c\",\"type\":\"t\","
                           "\"datacontenttype\":\"application/xml\","
                           "\"data_base64\":\"PG11Y2ggd293PSJ4bWwiLz4=\"}");
    te_free(json);
    te_event_destroy(ev);
}
END_TEST

/* ---- internal UTF-8 helpers used by the checks ---------------------------- */

START_TEST(utf8_helpers) {
    ck_assert_int_eq(te__utf8_count("a\xc3\xa9\xf0\x9f\x98\x80", 7), 3);
    ck_assert_int_eq(te__utf8_count("\xed\xa0\x80", 3), -1);
    ck_assert_int_eq(te__utf8_count("\xf4\x90\x80\x80", 4), -1);
    ck_assert_int_eq(te__utf8_count("\xc3", 1), -1);
}
END_TEST

int main(void) {
    Suite *s = suite_create("cloudevent");
    TCase *spec = tcase_create("spec");
    tcase_add_checked_fixture(spec, setup, teardown);
    tcase_add_test(spec, spec_core_example);
    tcase_add_test(spec, spec_json_format_examples);
    tcase_add_test(spec, spec_source_examples);
    tcase_add_test(spec, required_attributes);
    tcase_add_test(spec, specversion_rule);
    tcase_add_test(spec, id_rule);
    tcase_add_test(spec, type_rule);
    tcase_add_test(spec, source_rule);
    tcase_add_test(spec, dataschema_rule);
    tcase_add_test(spec, time_rule);
    tcase_add_test(spec, subject_rule);
    tcase_add_test(spec, datacontenttype_rule);
    tcase_add_test(spec, extension_types);
    tcase_add_test(spec, extension_invalid_values);
    tcase_add_test(spec, attribute_names);
    tcase_add_test(spec, string_characters);
    tcase_add_test(spec, null_means_absent);
    tcase_add_test(spec, duplicate_members);
    tcase_add_test(spec, data_exclusive);
    tcase_add_test(spec, base64_rules);
    tcase_add_test(spec, binary_round_trip);
    tcase_add_test(spec, data_values);
    tcase_add_test(spec, malformed_json);
    tcase_add_test(spec, many_problems_at_once);
    tcase_add_test(spec, traceparent_rules);
    tcase_add_test(spec, partitionkey_rules);
    tcase_add_test(spec, media_type_helpers);
    tcase_add_test(spec, utf8_helpers);
    suite_add_tcase(s, spec);

    TCase *api = tcase_create("api");
    tcase_add_checked_fixture(api, setup, teardown);
    tcase_add_test(api, create_event);
    tcase_add_test(api, setters_and_getters);
    tcase_add_test(api, time_setter);
    tcase_add_test(api, data_api);
    tcase_add_test(api, equal_and_dup);
    tcase_add_test(api, encode_json);
    tcase_add_test(api, round_trips);
    suite_add_tcase(s, api);

    TCase *kafka = tcase_create("kafka");
    tcase_add_checked_fixture(kafka, setup, teardown);
    tcase_add_test(kafka, headers_api);
    tcase_add_test(kafka, kafka_mode_detection);
    tcase_add_test(kafka, kafka_binary_encode);
    tcase_add_test(kafka, kafka_structured_encode);
    tcase_add_test(kafka, kafka_binary_decode);
    tcase_add_test(kafka, kafka_binary_decode_problems);
    tcase_add_test(kafka, kafka_round_trips);
    tcase_add_test(kafka, kafka_binary_to_structured);
    suite_add_tcase(s, kafka);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
