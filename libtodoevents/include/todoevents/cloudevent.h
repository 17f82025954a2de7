/* libtodoevents — CloudEvents 1.0 (spec 1.0.2): event object, JSON event
 * format (structured mode, application/cloudevents+json) and the Kafka
 * protocol binding (binary and structured content modes) expressed as a
 * plain header list that does not depend on librdkafka.
 *
 * Attribute model (CloudEvents type system):
 *   - Core context attributes: specversion, id, source, type (REQUIRED);
 *     datacontenttype, dataschema, subject, time (OPTIONAL).  All are
 *     strings in the JSON format; their abstract types are reported by
 *     te_ce_attr_t.type (source = URI-reference, dataschema = URI, time =
 *     Timestamp, the rest String).
 *   - Extension attributes: typed String, Integer (32-bit signed range) or
 *     Boolean.  Names consist of 'a'–'z' and '0'–'9' only; more than 20
 *     characters is discouraged by the spec (SHOULD NOT) but accepted.
 *     "data" is reserved and never an attribute name.
 *   - Known extensions with extra rules: partitionkey (Partitioning
 *     extension: non-empty String — this project sets it to the user id)
 *     and traceparent (Distributed Tracing extension: a W3C Trace Context
 *     traceparent string, see te_traceparent_check()).
 *   - String values must be valid UTF-8 without control characters
 *     (U+0000–U+001F, U+007F–U+009F), Unicode noncharacters or unpaired
 *     surrogates.
 *
 * Data: absent, a JSON value ("data" member; JSON null is a value distinct
 * from absence), or binary bytes ("data_base64" member, RFC 4648 base64).
 *
 * Thread-safety: a te_event_t / te_headers_t is not thread-safe (even
 * encoding touches json-c's internal caches): use one object per thread or
 * lock.  Different objects may be used concurrently from different threads.
 * All free functions without an object argument are thread-safe. */
#ifndef TODOEVENTS_CLOUDEVENT_H
#define TODOEVENTS_CLOUDEVENT_H

#include "todoevents/common.h"
#include "todoevents/datetime.h"
#include "todoevents/error.h"
#include "todoevents/problems.h"

/* json-c's object type; include <json-c/json.h> to use the accessors that
 * return or take it.  The library does not require callers to use json-c. */
struct json_object;

#ifdef __cplusplus
extern "C" {
#endif

#define TE_CE_SPECVERSION "1.0"
/* Media type of the JSON event format, and the Kafka content-type header
 * value written in structured mode. */
#define TE_CE_JSON_MEDIA_TYPE   "application/cloudevents+json"
#define TE_CE_JSON_CONTENT_TYPE "application/cloudevents+json; charset=UTF-8"
/* Attribute names longer than this are discouraged (SHOULD NOT), not invalid. */
#define TE_CE_NAME_RECOMMENDED_MAX 20

typedef struct te_event_s te_event_t;

/* Abstract CloudEvents types.  Extensions only ever have STRING, INTEGER or
 * BOOLEAN; the core attributes report their spec type. */
typedef enum te_ce_type_e {
    TE_CE_TYPE_NONE = 0, /* attribute absent */
    TE_CE_TYPE_STRING,
    TE_CE_TYPE_INTEGER,
    TE_CE_TYPE_BOOLEAN,
    TE_CE_TYPE_URI,       /* dataschema */
    TE_CE_TYPE_URI_REF,   /* source */
    TE_CE_TYPE_TIMESTAMP  /* time */
} te_ce_type_t;

/* One attribute as returned by te_event_get()/te_event_attr_at().  Every
 * pointer is owned by the event and valid until the attribute is changed or
 * removed, or the event destroyed. */
typedef struct te_ce_attr_s {
    const char *name;
    te_ce_type_t type;
    const char *value;   /* canonical string encoding: the string itself,
                            "-5" for integers, "true"/"false" for booleans */
    int32_t integer;     /* the value when type == TE_CE_TYPE_INTEGER */
    int boolean;         /* 0/1 when type == TE_CE_TYPE_BOOLEAN */
    int is_extension;    /* 1 for extension attributes, 0 for core ones */
} te_ce_attr_t;

typedef enum te_event_data_kind_e {
    TE_EVENT_DATA_NONE = 0, /* no data */
    TE_EVENT_DATA_JSON,     /* a JSON value (JSON format member "data") */
    TE_EVENT_DATA_BINARY    /* bytes (JSON format member "data_base64") */
} te_event_data_kind_t;

/* ---- life cycle ------------------------------------------------------- */

/* New event holding only specversion "1.0".  NULL when out of memory.
 * Free with te_event_destroy(). */
TE_API te_event_t *te_event_new(void);

/* New event ready to fill in: specversion "1.0", id = a random UUID v4
 * (lower case), time = now (UTC, millisecond precision), and the given type
 * and source (both copied, validated).  *out receives the event (caller
 * destroys).  Errors: TE_ERR_INVALID_ARG, TE_ERR_INVALID (bad type/source,
 * detail in errstr), TE_ERR_NOMEM. */
TE_API te_err_t te_event_create(te_event_t **out, const char *type, const char *source,
                                char *errstr, size_t errstr_size);

/* Frees the event and everything it owns.  NULL is a no-op. */
TE_API void te_event_destroy(te_event_t *ev);

/* Deep copy (NULL when out of memory or ev is NULL). */
TE_API te_event_t *te_event_dup(const te_event_t *ev);

/* 1 when a and b have the same attributes (name, type and canonical
 * value; order does not matter) and equal data (JSON values compared
 * structurally, bytes exactly), else 0. */
TE_API int te_event_equal(const te_event_t *a, const te_event_t *b);

/* ---- attributes ------------------------------------------------------- */

/* Sets a String-valued attribute (core or extension); value is copied.
 * value NULL removes the attribute.  The value is checked against the
 * attribute's rules (specversion "1.0"; id/type/subject non-empty; source
 * a non-empty URI-reference; dataschema an absolute URI; time RFC 3339;
 * datacontenttype an RFC 2046 media type; partitionkey non-empty;
 * traceparent W3C format; every string: allowed characters only).
 * Errors: TE_ERR_INVALID_ARG (NULL ev/name, invalid or reserved name),
 * TE_ERR_INVALID (value breaks a rule; detail in errstr), TE_ERR_NOMEM. */
TE_API te_err_t te_event_set_string(te_event_t *ev, const char *name, const char *value,
                                    char *errstr, size_t errstr_size);

/* Sets an Integer / Boolean extension attribute.  Core attributes and the
 * String-typed known extensions (partitionkey, traceparent) are refused
 * with TE_ERR_INVALID_ARG. */
TE_API te_err_t te_event_set_integer(te_event_t *ev, const char *name, int32_t value,
                                     char *errstr, size_t errstr_size);
TE_API te_err_t te_event_set_boolean(te_event_t *ev, const char *name, int value,
                                     char *errstr, size_t errstr_size);

/* Removes an attribute.  TE_ERR_NOT_FOUND when it was absent. */
TE_API te_err_t te_event_remove(te_event_t *ev, const char *name);

/* Looks an attribute up.  TE_OK and *out filled, or TE_ERR_NOT_FOUND. */
TE_API te_err_t te_event_get(const te_event_t *ev, const char *name, te_ce_attr_t *out);

/* Value of a String-like attribute (STRING, URI, URI_REF, TIMESTAMP), or
 * NULL when absent or not a string.  Owned by the event. */
TE_API const char *te_event_get_string(const te_event_t *ev, const char *name);

/* TE_OK, TE_ERR_NOT_FOUND (absent) or TE_ERR_INVALID_ARG (other type). */
TE_API te_err_t te_event_get_integer(const te_event_t *ev, const char *name, int32_t *out);
TE_API te_err_t te_event_get_boolean(const te_event_t *ev, const char *name, int *out);

/* Iteration: core attributes first in spec order (specversion, id, source,
 * type, datacontenttype, dataschema, subject, time; absent ones skipped),
 * then extensions in insertion order.  te_event_attr_at returns
 * TE_ERR_NOT_FOUND when i >= count. */
TE_API size_t te_event_attr_count(const te_event_t *ev);
TE_API te_err_t te_event_attr_at(const te_event_t *ev, size_t i, te_ce_attr_t *out);

/* Core attribute shorthands: NULL when absent.  Owned by the event. */
TE_API const char *te_event_specversion(const te_event_t *ev);
TE_API const char *te_event_id(const te_event_t *ev);
TE_API const char *te_event_source(const te_event_t *ev);
TE_API const char *te_event_type(const te_event_t *ev);
TE_API const char *te_event_datacontenttype(const te_event_t *ev);
TE_API const char *te_event_dataschema(const te_event_t *ev);
TE_API const char *te_event_subject(const te_event_t *ev);
TE_API const char *te_event_time_str(const te_event_t *ev);

/* Setters: te_event_set_string(ev, "<attr>", value, ...) in short. */
TE_API te_err_t te_event_set_id(te_event_t *ev, const char *id, char *errstr, size_t errstr_size);
TE_API te_err_t te_event_set_source(te_event_t *ev, const char *source, char *errstr,
                                    size_t errstr_size);
TE_API te_err_t te_event_set_type(te_event_t *ev, const char *type, char *errstr,
                                  size_t errstr_size);
TE_API te_err_t te_event_set_subject(te_event_t *ev, const char *subject, char *errstr,
                                     size_t errstr_size);
TE_API te_err_t te_event_set_datacontenttype(te_event_t *ev, const char *media_type,
                                             char *errstr, size_t errstr_size);
TE_API te_err_t te_event_set_dataschema(te_event_t *ev, const char *uri, char *errstr,
                                        size_t errstr_size);

/* Sets id to a new random UUID v4 (lower-case text). */
TE_API te_err_t te_event_set_id_uuid(te_event_t *ev);

/* time: te_event_set_time writes t in UTC as "YYYY-MM-DDThh:mm:ss.sssZ"
 * (6 fraction digits when t is not a whole millisecond).  te_event_time
 * parses the stored value: TE_OK, TE_ERR_NOT_FOUND. */
TE_API te_err_t te_event_set_time(te_event_t *ev, te_time_t t);
TE_API te_err_t te_event_time(const te_event_t *ev, te_time_t *out);

/* Extensions used by this project.
 * partitionkey — the per-user ordering key (= the user id); also what the
 * opt-in Kafka key mapper uses (te_event_kafka_key).
 * traceparent — W3C Trace Context of the originating trace. */
TE_API te_err_t te_event_set_partitionkey(te_event_t *ev, const char *key, char *errstr,
                                          size_t errstr_size);
TE_API const char *te_event_partitionkey(const te_event_t *ev);
TE_API te_err_t te_event_set_traceparent(te_event_t *ev, const char *traceparent,
                                         char *errstr, size_t errstr_size);
TE_API const char *te_event_traceparent(const te_event_t *ev);

/* Checks a W3C Trace Context traceparent value:
 * version "-" trace-id "-" parent-id "-" trace-flags, lower-case hex
 * (2, 32, 16, 2 digits), version "ff" invalid, trace-id and parent-id not
 * all zeros; version 00 has exactly these 55 characters, a later version
 * may append "-..." fields.  TE_OK or TE_ERR_INVALID (detail). */
TE_API te_err_t te_traceparent_check(const char *traceparent, char *errstr, size_t errstr_size);

/* Checks an attribute name: 1..n characters from 'a'–'z', '0'–'9', not
 * "data".  TE_OK or TE_ERR_INVALID (detail).  Names longer than
 * TE_CE_NAME_RECOMMENDED_MAX pass (the spec only discourages them). */
TE_API te_err_t te_ce_name_check(const char *name, char *errstr, size_t errstr_size);

/* Checks an RFC 2046 media type (type "/" subtype *(";" parameter), tokens
 * and quoted strings per RFC 2045; optional white space around ';').
 * TE_OK or TE_ERR_INVALID (detail). */
TE_API te_err_t te_media_type_check(const char *media_type, char *errstr, size_t errstr_size);

/* 1 when the media type (parameters ignored, case-insensitive) declares
 * JSON content: "*" "/" "json" or "*" "/" "*+json".  NULL → 0. */
TE_API int te_media_type_is_json(const char *media_type);

/* ---- data --------------------------------------------------------------- */

TE_API te_event_data_kind_t te_event_data_kind(const te_event_t *ev);

/* Parses JSON text (strict RFC 8259, UTF-8, nothing but white space after
 * the value) and makes it the data.  Does not touch datacontenttype.
 * Errors: TE_ERR_INVALID_ARG, TE_ERR_PARSE (detail), TE_ERR_NOMEM. */
TE_API te_err_t te_event_set_data_json(te_event_t *ev, const char *json, size_t len,
                                       char *errstr, size_t errstr_size);

/* Makes obj the data, taking ownership of one reference (the event calls
 * json_object_put() on it later).  obj NULL means JSON null. */
TE_API te_err_t te_event_set_data_object(te_event_t *ev, struct json_object *obj);

/* Makes a copy of the bytes the (binary) data; bytes may be NULL when
 * len is 0. */
TE_API te_err_t te_event_set_data_binary(te_event_t *ev, const void *bytes, size_t len);

/* Removes the data. */
TE_API void te_event_clear_data(te_event_t *ev);

/* The JSON data value, owned by the event (do not put/modify); NULL when
 * the data is JSON null or not JSON — tell them apart with
 * te_event_data_kind(). */
TE_API const struct json_object *te_event_data_object(const te_event_t *ev);

/* Serializes JSON data to compact text; *out is NUL-terminated, caller
 * frees with te_free(); len may be NULL.  TE_ERR_NOT_FOUND when the data
 * is not JSON. */
TE_API te_err_t te_event_data_to_json(const te_event_t *ev, char **out, size_t *len);

/* Binary data bytes (owned by the event) and their length; NULL when the
 * data is not binary (an empty binary value returns a non-NULL pointer). */
TE_API const void *te_event_data_binary(const te_event_t *ev, size_t *len);

/* ---- validation ----------------------------------------------------------- */

/* Checks what setters cannot: the REQUIRED attributes are present
 * (specversion, id, source, type).  Appends one problem per missing
 * attribute (problems may be NULL).  TE_OK or TE_ERR_INVALID. */
TE_API te_err_t te_event_validate(const te_event_t *ev, te_problems_t *problems);

/* ---- JSON event format (structured mode) --------------------------------- */

/* Decodes one event.  Malformed JSON (not strict RFC 8259, not UTF-8,
 * trailing garbage) or a JSON value that is not an object: TE_ERR_PARSE
 * with detail in errstr and no problems.  Otherwise every rule violation
 * is appended to problems (may be NULL; field = attribute or member name,
 * e.g. "time", "data_base64", "myExt") and the result is TE_ERR_INVALID,
 * with a summary in errstr.  On TE_OK *out receives the event (caller
 * destroys); on error *out is set to NULL.
 * JSON null members are treated as absent, except "data": null which is
 * an explicit JSON null payload.  Duplicate members are invalid. */
TE_API te_err_t te_event_from_json(const char *json, size_t len, te_event_t **out,
                                   te_problems_t *problems, char *errstr, size_t errstr_size);

#define TE_JSON_PRETTY 0x1 /* indented output instead of compact */

/* Encodes a valid event (te_event_validate) as JSON: attributes in
 * iteration order, then "data" (JSON data) or "data_base64" (binary).
 * *out is NUL-terminated, caller frees with te_free(); len may be NULL.
 * Errors: TE_ERR_INVALID (missing required attribute), TE_ERR_NOMEM. */
TE_API te_err_t te_event_to_json(const te_event_t *ev, int flags, char **out, size_t *len,
                                 char *errstr, size_t errstr_size);

/* ---- Kafka protocol binding -------------------------------------------- */

/* A list of Kafka record headers: (name, value bytes, length) in order.
 * Names may repeat (Kafka allows it).  A value may be NULL (a Kafka header
 * with a null value).  Not thread-safe. */
typedef struct te_headers_s te_headers_t;

TE_API te_headers_t *te_headers_new(void);
TE_API void te_headers_destroy(te_headers_t *h); /* NULL: no-op */
TE_API void te_headers_clear(te_headers_t *h);

/* Appends a header; name and value are copied (value may be NULL = null
 * value; len is then ignored).  TE_ERR_INVALID_ARG, TE_ERR_NOMEM. */
TE_API te_err_t te_headers_add(te_headers_t *h, const char *name, const void *value,
                               size_t len);

TE_API size_t te_headers_count(const te_headers_t *h);

/* Name / value of header i; NULL when out of range (value: also for a null
 * value).  Values are owned by the list and followed by a NUL byte for
 * convenience (they may contain NULs; use len). */
TE_API const char *te_headers_name(const te_headers_t *h, size_t i);
TE_API const void *te_headers_value(const te_headers_t *h, size_t i, size_t *len);

/* Last header named name (exact, case-sensitive match, like librdkafka's
 * rd_kafka_header_get_last): TE_OK with *value (NULL for a null value) and
 * *len, or TE_ERR_NOT_FOUND. */
TE_API te_err_t te_headers_get(const te_headers_t *h, const char *name, const void **value,
                               size_t *len);

typedef enum te_kafka_mode_e {
    TE_KAFKA_BINARY = 0,   /* attributes in ce_* headers, value = data */
    TE_KAFKA_STRUCTURED = 1 /* value = JSON event format */
} te_kafka_mode_t;

/* Maps a valid event onto a Kafka record.  Headers are appended to
 * headers (on error the list is left as it was); *value receives the record
 * value (caller frees with te_free()) and *value_len its length.
 *  - binary: one "ce_<name>" header per attribute (canonical string
 *    encoding, extensions included) except datacontenttype, which becomes the
 *    "content-type" header; JSON data without datacontenttype gets
 *    "content-type: application/json" (the implied type, made explicit).
 *    Value: JSON data as JSON text (a JSON string under a non-JSON content
 *    type: its raw characters), binary data as is, no data: *value = NULL
 *    (a record without value).
 *  - structured: "content-type: application/cloudevents+json; charset=UTF-8",
 *    value = te_event_to_json().
 * The record key is not touched: by default callers keep their own key; the
 * opt-in key mapper is te_event_kafka_key().  Errors: TE_ERR_INVALID_ARG,
 * TE_ERR_INVALID (te_event_validate failed), TE_ERR_UNSUPPORTED (binary mode
 * for a datacontenttype starting with application/cloudevents: receivers
 * would detect structured mode; use structured mode), TE_ERR_NOMEM. */
TE_API te_err_t te_event_to_kafka(const te_event_t *ev, te_kafka_mode_t mode,
                                  te_headers_t *headers, void **value, size_t *value_len,
                                  char *errstr, size_t errstr_size);

/* Opt-in Key Mapper (Kafka binding §3.1): the partitionkey attribute as is
 * (owned by the event), or NULL when absent.  Decoding never adds
 * partitionkey from the record key. */
TE_API const char *te_event_kafka_key(const te_event_t *ev);

/* Content-mode detection (Kafka binding §3): structured when a
 * "content-type" header (name matched case-insensitively) starts with
 * "application/cloudevents" (case-insensitive); otherwise binary when a
 * "ce_specversion" header is present; otherwise TE_ERR_NOT_FOUND: the record
 * is not a CloudEvent.  headers may be NULL (→ TE_ERR_NOT_FOUND). */
TE_API te_err_t te_kafka_detect_mode(const te_headers_t *headers, te_kafka_mode_t *mode);

/* Decodes a Kafka record (value NULL = record without value).
 * Structured mode: the content type must be application/cloudevents+json
 * (other formats and the batch format: TE_ERR_UNSUPPORTED); the value is
 * decoded with te_event_from_json().  Binary mode: every "ce_<name>" header
 * becomes attribute <name> with its value as a string (extensions stay
 * strings), "content-type" becomes datacontenttype, and the value becomes the
 * data — parsed as JSON when the content type declares JSON, else kept as
 * bytes.  Rule violations are collected as with te_event_from_json
 * (TE_ERR_INVALID).  Not a CloudEvent: TE_ERR_NOT_FOUND.  mode may be NULL.
 * On success *out receives the event (caller destroys), else NULL. */
TE_API te_err_t te_event_from_kafka(const te_headers_t *headers, const void *value,
                                    size_t value_len, te_event_t **out,
                                    te_kafka_mode_t *mode, te_problems_t *problems,
                                    char *errstr, size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif
