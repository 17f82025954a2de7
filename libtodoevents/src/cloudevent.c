/* CloudEvents 1.0: event object, JSON event format, Kafka protocol binding.
 *
 * Libraries do the heavy lifting: json-c parses and serializes JSON,
 * liburiparser checks URI(-reference)s, OpenSSL's EVP functions do base64,
 * libuuid makes ids, te_time_parse checks RFC 3339.
 *
 * json-c 0.16's JSON_TOKENER_STRICT still accepts a few things RFC 8259
 * forbids (NaN/Infinity, "1.", "-01", single-quoted member names, raw
 * control characters inside strings) and silently turns unpaired surrogate
 * escapes ("\uDEAD") into U+FFFD; it also keeps only the last of duplicate
 * member names.  After json-c has accepted a document, lex_check() walks
 * the text once more to reject those leftovers, to count the top-level
 * members (duplicates) and to find unpaired surrogate escapes in top-level
 * string values.  It does not build anything: json-c's tree is what we use. */
#include "todoevents/cloudevent.h"
#include "internal.h"

#include <json-c/json.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uriparser/Uri.h>
#include <uuid/uuid.h>

/* ------------------------------------------------------------------------ */
/* Attribute tables                                                          */

enum {
    A_SPECVERSION,
    A_ID,
    A_SOURCE,
    A_TYPE,
    A_DATACONTENTTYPE,
    A_DATASCHEMA,
    A_SUBJECT,
    A_TIME,
    N_CORE
};

static const struct {
    const char *name;
    te_ce_type_t type;
    int required;
} core_attrs[N_CORE] = {
    {"specversion", TE_CE_TYPE_STRING, 1},      {"id", TE_CE_TYPE_STRING, 1},
    {"source", TE_CE_TYPE_URI_REF, 1},          {"type", TE_CE_TYPE_STRING, 1},
    {"datacontenttype", TE_CE_TYPE_STRING, 0},  {"dataschema", TE_CE_TYPE_URI, 0},
    {"subject", TE_CE_TYPE_STRING, 0},          {"time", TE_CE_TYPE_TIMESTAMP, 0},
};

/* Documented extensions whose value rules we enforce (both String-typed). */
enum { X_NONE = -1, X_PARTITIONKEY = 0, X_TRACEPARENT = 1 };
static const char *const known_ext[] = {"partitionkey", "traceparent"};

static int core_index(const char *name) {
    for (int i = 0; i < N_CORE; i++)
        if (strcmp(name, core_attrs[i].name) == 0)
            return i;
    return -1;
}

static int known_ext_index(const char *name) {
    for (int i = 0; i < (int)(sizeof known_ext / sizeof known_ext[0]); i++)
        if (strcmp(name, known_ext[i]) == 0)
            return i;
    return X_NONE;
}

/* ------------------------------------------------------------------------ */
/* Value checks                                                              */

/* CloudEvents String: valid UTF-8 without controls, noncharacters or
 * surrogates (UTF-8-encoded surrogates are invalid UTF-8 to us).  NULL = ok. */
static const char *check_string_chars(const char *s, size_t len) {
    if (te__utf8_count(s, len) < 0)
        return "must be valid UTF-8";
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        i += (size_t)te__utf8_next((const unsigned char *)s + i, &cp);
        if (cp <= 0x1F || (cp >= 0x7F && cp <= 0x9F))
            return "must not contain control characters (U+0000-U+001F, U+007F-U+009F)";
        if ((cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFE) == 0xFFFE)
            return "must not contain Unicode noncharacters";
    }
    return NULL;
}

te_err_t te_ce_name_check(const char *name, char *errstr, size_t errstr_size) {
    if (!name || !*name)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID, "attribute name must not be empty");
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
            return te__seterr(errstr, errstr_size, TE_ERR_INVALID,
                              "invalid attribute name: only lower-case letters a-z and "
                              "digits 0-9 are allowed");
    if (strcmp(name, "data") == 0)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID,
                          "'data' is reserved and cannot be an attribute name");
    return TE_OK;
}

static int is_hex_lc(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

static int hex_run(const char *s, size_t n, int *all_zero) {
    int zero = 1;
    for (size_t i = 0; i < n; i++) {
        if (!is_hex_lc(s[i]))
            return 0;
        if (s[i] != '0')
            zero = 0;
    }
    if (all_zero)
        *all_zero = zero;
    return 1;
}

te_err_t te_traceparent_check(const char *tp, char *errstr, size_t errstr_size) {
#define TP_BAD(...) return te__seterr(errstr, errstr_size, TE_ERR_INVALID, __VA_ARGS__)
    if (!tp)
        TP_BAD("no value");
    size_t len = strlen(tp);
    int zero;
    if (len < 55)
        TP_BAD("expected 00-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>");
    if (!hex_run(tp, 2, NULL) || tp[2] != '-')
        TP_BAD("version must be 2 lower-case hex digits followed by '-'");
    if (tp[0] == 'f' && tp[1] == 'f')
        TP_BAD("version ff is invalid");
    if (!hex_run(tp + 3, 32, &zero) || tp[35] != '-')
        TP_BAD("trace-id must be 32 lower-case hex digits followed by '-'");
    if (zero)
        TP_BAD("trace-id must not be all zeros");
    if (!hex_run(tp + 36, 16, &zero) || tp[52] != '-')
        TP_BAD("parent-id must be 16 lower-case hex digits followed by '-'");
    if (zero)
        TP_BAD("parent-id must not be all zeros");
    if (!hex_run(tp + 53, 2, NULL))
        TP_BAD("trace-flags must be 2 lower-case hex digits");
    if (tp[0] == '0' && tp[1] == '0') {
        if (len != 55)
            TP_BAD("version 00 must be exactly 55 characters long");
    } else if (len > 55 && tp[55] != '-') {
        TP_BAD("fields after trace-flags must start with '-'");
    }
    return TE_OK;
#undef TP_BAD
}

/* RFC 2045 token character: US-ASCII, not SPACE, not CTL, not tspecial. */
static int is_token_char(unsigned char c) {
    return c > 32 && c < 127 && !strchr("()<>@,;:\\\"/[]?=", c);
}

static const char *skip_ows(const char *p) {
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

te_err_t te_media_type_check(const char *mt, char *errstr, size_t errstr_size) {
#define MT_BAD(...) return te__seterr(errstr, errstr_size, TE_ERR_INVALID, __VA_ARGS__)
    if (!mt || !*mt)
        MT_BAD("empty");
    const char *p = mt;
    const char *start = p;
    while (is_token_char((unsigned char)*p))
        p++;
    if (p == start)
        MT_BAD("expected type/subtype, e.g. application/json");
    if (*p != '/')
        MT_BAD("expected type/subtype, e.g. application/json");
    start = ++p;
    while (is_token_char((unsigned char)*p))
        p++;
    if (p == start)
        MT_BAD("subtype missing after '/'");
    for (;;) {
        const char *q = skip_ows(p);
        if (*q == '\0') {
            if (q != p)
                MT_BAD("white space at the end");
            return TE_OK;
        }
        if (*q != ';')
            MT_BAD("unexpected character '%c' (parameters are ;name=value)", *q);
        p = skip_ows(q + 1);
        start = p;
        while (is_token_char((unsigned char)*p))
            p++;
        if (p == start)
            MT_BAD("parameter name missing after ';'");
        if (*p != '=')
            MT_BAD("parameter must be name=value");
        p++;
        if (*p == '"') {
            p++;
            for (;;) {
                unsigned char c = (unsigned char)*p;
                if (c == '\0')
                    MT_BAD("unterminated quoted parameter value");
                if (c == '"')
                    break;
                if (c >= 128 || c == '\r')
                    MT_BAD("invalid character in a quoted parameter value");
                if (c == '\\') {
                    p++;
                    if (*p == '\0' || (unsigned char)*p >= 128)
                        MT_BAD("invalid quoted pair in a parameter value");
                }
                p++;
            }
            p++;
        } else {
            start = p;
            while (is_token_char((unsigned char)*p))
                p++;
            if (p == start)
                MT_BAD("parameter value missing (token or quoted string)");
        }
    }
#undef MT_BAD
}

/* Copies the "type/subtype" part (before parameters and white space),
 * lower-cased, into buf.  0 when it does not fit or there is none. */
static int media_essence(const char *mt, char *buf, size_t size) {
    size_t n = 0;
    if (!mt)
        return 0;
    mt = skip_ows(mt);
    while (mt[n] && mt[n] != ';' && mt[n] != ' ' && mt[n] != '\t') {
        if (n + 1 >= size)
            return 0;
        char c = mt[n];
        buf[n] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
        n++;
    }
    buf[n] = '\0';
    return n > 0;
}

int te_media_type_is_json(const char *mt) {
    char buf[256];
    if (!media_essence(mt, buf, sizeof buf))
        return 0;
    const char *slash = strchr(buf, '/');
    if (!slash || slash == buf)
        return 0;
    const char *sub = slash + 1;
    size_t n = strlen(sub);
    return strcmp(sub, "json") == 0 || (n > 5 && strcmp(sub + n - 5, "+json") == 0);
}

/* 1 when s parses as an RFC 3986 URI-reference; *absolute = has a scheme. */
static int uri_check(const char *s, int *absolute) {
    UriUriA uri;
    const char *err_pos = NULL;
    if (uriParseSingleUriA(&uri, s, &err_pos) != URI_SUCCESS)
        return 0;
    *absolute = uri.scheme.first != NULL;
    uriFreeUriMembersA(&uri);
    return 1;
}

/* Checks a string value of attribute name (core index ci or -1).  Returns
 * NULL when fine, else a reason (static, or written into buf). */
static const char *check_string_attr(const char *name, int ci, const char *v, size_t len,
                                     char *buf, size_t size) {
    const char *r = check_string_chars(v, len);
    if (r)
        return r;
    char detail[256];
    int absolute = 0;
    te_time_t t;
    switch (ci) {
    case A_SPECVERSION:
        if (strcmp(v, TE_CE_SPECVERSION) != 0) {
            snprintf(buf, size, "must be \"1.0\" (got \"%.40s\")", v);
            return buf;
        }
        return NULL;
    case A_ID:
    case A_TYPE:
    case A_SUBJECT:
        return len == 0 ? "must be a non-empty string" : NULL;
    case A_SOURCE:
        if (len == 0)
            return "must be a non-empty URI-reference";
        return uri_check(v, &absolute) ? NULL : "must be a URI-reference (RFC 3986)";
    case A_DATASCHEMA:
        if (len == 0)
            return "must be a non-empty absolute URI";
        if (!uri_check(v, &absolute) || !absolute)
            return "must be an absolute URI (RFC 3986, with a scheme)";
        return NULL;
    case A_TIME:
        if (te_time_parse(v, &t, NULL, detail, sizeof detail) != TE_OK) {
            snprintf(buf, size, "must be an RFC 3339 date-time (%s)", detail);
            return buf;
        }
        return NULL;
    case A_DATACONTENTTYPE:
        if (te_media_type_check(v, detail, sizeof detail) != TE_OK) {
            snprintf(buf, size, "must be an RFC 2046 media type (%s)", detail);
            return buf;
        }
        return NULL;
    default:
        break;
    }
    switch (known_ext_index(name)) {
    case X_PARTITIONKEY:
        return len == 0 ? "must be a non-empty string" : NULL;
    case X_TRACEPARENT:
        if (te_traceparent_check(v, detail, sizeof detail) != TE_OK) {
            snprintf(buf, size, "must be a W3C traceparent (%s)", detail);
            return buf;
        }
        return NULL;
    default:
        return NULL;
    }
}

/* ------------------------------------------------------------------------ */
/* The event object                                                          */

typedef struct attr_s {
    char *name; /* extensions only (core names are static) */
    char *text; /* canonical string encoding; NULL = absent */
    te_ce_type_t type;
    int32_t ival;
} attr_t;

struct te_event_s {
    attr_t core[N_CORE];
    attr_t *ext;
    size_t n_ext, cap_ext;
    te_event_data_kind_t kind;
    struct json_object *data; /* TE_EVENT_DATA_JSON; NULL = JSON null */
    unsigned char *bin;       /* TE_EVENT_DATA_BINARY (never NULL then) */
    size_t bin_len;
};

static char *dup_len(const char *s, size_t len) {
    char *d = malloc(len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

static attr_t *find_attr(const te_event_t *ev, const char *name) {
    int ci = core_index(name);
    if (ci >= 0)
        return ev->core[ci].text ? (attr_t *)&ev->core[ci] : NULL;
    for (size_t i = 0; i < ev->n_ext; i++)
        if (strcmp(ev->ext[i].name, name) == 0)
            return &ev->ext[i];
    return NULL;
}

/* Stores an attribute (name already validated); text is copied. */
static te_err_t store_attr(te_event_t *ev, const char *name, te_ce_type_t type,
                           const char *text, size_t len, int32_t ival) {
    char *copy = dup_len(text, len);
    if (!copy)
        return TE_ERR_NOMEM;
    int ci = core_index(name);
    attr_t *a = NULL;
    if (ci >= 0) {
        a = &ev->core[ci];
    } else {
        for (size_t i = 0; i < ev->n_ext; i++)
            if (strcmp(ev->ext[i].name, name) == 0)
                a = &ev->ext[i];
        if (!a) {
            if (ev->n_ext == ev->cap_ext) {
                size_t cap = ev->cap_ext ? ev->cap_ext * 2 : 4;
                attr_t *n = realloc(ev->ext, cap * sizeof *n);
                if (!n) {
                    free(copy);
                    return TE_ERR_NOMEM;
                }
                ev->ext = n;
                ev->cap_ext = cap;
            }
            char *nm = te__strdup(name);
            if (!nm) {
                free(copy);
                return TE_ERR_NOMEM;
            }
            a = &ev->ext[ev->n_ext++];
            memset(a, 0, sizeof *a);
            a->name = nm;
        }
    }
    free(a->text);
    a->text = copy;
    a->type = type;
    a->ival = ival;
    return TE_OK;
}

te_event_t *te_event_new(void) {
    te_event_t *ev = calloc(1, sizeof *ev);
    if (ev && store_attr(ev, "specversion", TE_CE_TYPE_STRING, TE_CE_SPECVERSION, 3, 0) !=
                  TE_OK) {
        free(ev);
        return NULL;
    }
    return ev;
}

void te_event_clear_data(te_event_t *ev) {
    if (!ev)
        return;
    if (ev->data)
        json_object_put(ev->data);
    free(ev->bin);
    ev->data = NULL;
    ev->bin = NULL;
    ev->bin_len = 0;
    ev->kind = TE_EVENT_DATA_NONE;
}

void te_event_destroy(te_event_t *ev) {
    if (!ev)
        return;
    for (int i = 0; i < N_CORE; i++)
        free(ev->core[i].text);
    for (size_t i = 0; i < ev->n_ext; i++) {
        free(ev->ext[i].name);
        free(ev->ext[i].text);
    }
    free(ev->ext);
    te_event_clear_data(ev);
    free(ev);
}

te_err_t te_event_set_string(te_event_t *ev, const char *name, const char *value,
                             char *errstr, size_t errstr_size) {
    if (!ev || !name)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "no event or name");
    if (te_ce_name_check(name, errstr, errstr_size) != TE_OK)
        return TE_ERR_INVALID_ARG;
    if (!value) {
        te_err_t e = te_event_remove(ev, name);
        return e == TE_ERR_NOT_FOUND ? TE_OK : e;
    }
    char buf[TE_ERRSTR_SIZE];
    int ci = core_index(name);
    size_t len = strlen(value);
    const char *r = check_string_attr(name, ci, value, len, buf, sizeof buf);
    if (r)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID, "%s: %s", name, r);
    return store_attr(ev, name, ci >= 0 ? core_attrs[ci].type : TE_CE_TYPE_STRING, value, len,
                      0);
}

static te_err_t check_typed_ext(const char *name, const char *what, char *errstr,
                                size_t errstr_size) {
    if (!name)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "no name");
    if (te_ce_name_check(name, errstr, errstr_size) != TE_OK)
        return TE_ERR_INVALID_ARG;
    if (core_index(name) >= 0 || known_ext_index(name) != X_NONE)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG,
                          "%s: is a String attribute, it cannot hold %s", name, what);
    return TE_OK;
}

te_err_t te_event_set_integer(te_event_t *ev, const char *name, int32_t value, char *errstr,
                              size_t errstr_size) {
    if (!ev)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "no event");
    te_err_t e = check_typed_ext(name, "an integer", errstr, errstr_size);
    if (e)
        return e;
    char buf[16];
    int n = snprintf(buf, sizeof buf, "%ld", (long)value);
    return store_attr(ev, name, TE_CE_TYPE_INTEGER, buf, (size_t)n, value);
}

te_err_t te_event_set_boolean(te_event_t *ev, const char *name, int value, char *errstr,
                              size_t errstr_size) {
    if (!ev)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "no event");
    te_err_t e = check_typed_ext(name, "a boolean", errstr, errstr_size);
    if (e)
        return e;
    return store_attr(ev, name, TE_CE_TYPE_BOOLEAN, value ? "true" : "false", value ? 4 : 5,
                      value ? 1 : 0);
}

te_err_t te_event_remove(te_event_t *ev, const char *name) {
    if (!ev || !name)
        return TE_ERR_INVALID_ARG;
    int ci = core_index(name);
    if (ci >= 0) {
        if (!ev->core[ci].text)
            return TE_ERR_NOT_FOUND;
        free(ev->core[ci].text);
        ev->core[ci].text = NULL;
        return TE_OK;
    }
    for (size_t i = 0; i < ev->n_ext; i++) {
        if (strcmp(ev->ext[i].name, name) == 0) {
            free(ev->ext[i].name);
            free(ev->ext[i].text);
            memmove(&ev->ext[i], &ev->ext[i + 1], (ev->n_ext - i - 1) * sizeof(attr_t));
            ev->n_ext--;
            return TE_OK;
        }
    }
    return TE_ERR_NOT_FOUND;
}

static void fill_attr(const attr_t *a, const char *name, int is_ext, te_ce_attr_t *out) {
    out->name = name;
    out->type = a->type;
    out->value = a->text;
    out->integer = a->type == TE_CE_TYPE_INTEGER ? a->ival : 0;
    out->boolean = a->type == TE_CE_TYPE_BOOLEAN ? a->ival : 0;
    out->is_extension = is_ext;
}

te_err_t te_event_get(const te_event_t *ev, const char *name, te_ce_attr_t *out) {
    if (!ev || !name || !out)
        return TE_ERR_INVALID_ARG;
    const attr_t *a = find_attr(ev, name);
    if (!a)
        return TE_ERR_NOT_FOUND;
    int ci = core_index(name);
    fill_attr(a, ci >= 0 ? core_attrs[ci].name : a->name, ci < 0, out);
    return TE_OK;
}

const char *te_event_get_string(const te_event_t *ev, const char *name) {
    if (!ev || !name)
        return NULL;
    const attr_t *a = find_attr(ev, name);
    if (!a || a->type == TE_CE_TYPE_INTEGER || a->type == TE_CE_TYPE_BOOLEAN)
        return NULL;
    return a->text;
}

static te_err_t get_typed(const te_event_t *ev, const char *name, te_ce_type_t type,
                          int32_t *out) {
    if (!ev || !name || !out)
        return TE_ERR_INVALID_ARG;
    const attr_t *a = find_attr(ev, name);
    if (!a)
        return TE_ERR_NOT_FOUND;
    if (a->type != type)
        return TE_ERR_INVALID_ARG;
    *out = a->ival;
    return TE_OK;
}

te_err_t te_event_get_integer(const te_event_t *ev, const char *name, int32_t *out) {
    return get_typed(ev, name, TE_CE_TYPE_INTEGER, out);
}

te_err_t te_event_get_boolean(const te_event_t *ev, const char *name, int *out) {
    int32_t v = 0;
    if (!out)
        return TE_ERR_INVALID_ARG;
    te_err_t e = get_typed(ev, name, TE_CE_TYPE_BOOLEAN, &v);
    if (e == TE_OK)
        *out = v ? 1 : 0;
    return e;
}

size_t te_event_attr_count(const te_event_t *ev) {
    if (!ev)
        return 0;
    size_t n = ev->n_ext;
    for (int i = 0; i < N_CORE; i++)
        n += ev->core[i].text != NULL;
    return n;
}

te_err_t te_event_attr_at(const te_event_t *ev, size_t i, te_ce_attr_t *out) {
    if (!ev || !out)
        return TE_ERR_INVALID_ARG;
    for (int c = 0; c < N_CORE; c++) {
        if (!ev->core[c].text)
            continue;
        if (i == 0) {
            fill_attr(&ev->core[c], core_attrs[c].name, 0, out);
            return TE_OK;
        }
        i--;
    }
    if (i >= ev->n_ext)
        return TE_ERR_NOT_FOUND;
    fill_attr(&ev->ext[i], ev->ext[i].name, 1, out);
    return TE_OK;
}

#define CORE_GETTER(fn, idx)                                                                  \
    const char *fn(const te_event_t *ev) { return ev ? ev->core[idx].text : NULL; }
CORE_GETTER(te_event_specversion, A_SPECVERSION)
CORE_GETTER(te_event_id, A_ID)
CORE_GETTER(te_event_source, A_SOURCE)
CORE_GETTER(te_event_type, A_TYPE)
CORE_GETTER(te_event_datacontenttype, A_DATACONTENTTYPE)
CORE_GETTER(te_event_dataschema, A_DATASCHEMA)
CORE_GETTER(te_event_subject, A_SUBJECT)
CORE_GETTER(te_event_time_str, A_TIME)
#undef CORE_GETTER

te_err_t te_event_set_id(te_event_t *ev, const char *v, char *e, size_t n) {
    return te_event_set_string(ev, "id", v, e, n);
}
te_err_t te_event_set_source(te_event_t *ev, const char *v, char *e, size_t n) {
    return te_event_set_string(ev, "source", v, e, n);
}
te_err_t te_event_set_type(te_event_t *ev, const char *v, char *e, size_t n) {
    return te_event_set_string(ev, "type", v, e, n);
}
te_err_t te_event_set_subject(te_event_t *ev, const char *v, char *e, size_t n) {
    return te_event_set_string(ev, "subject", v, e, n);
}
te_err_t te_event_set_datacontenttype(te_event_t *ev, const char *v, char *e, size_t n) {
    return te_event_set_string(ev, "datacontenttype", v, e, n);
}
te_err_t te_event_set_dataschema(te_event_t *ev, const char *v, char *e, size_t n) {
    return te_event_set_string(ev, "dataschema", v, e, n);
}
te_err_t te_event_set_partitionkey(te_event_t *ev, const char *v, char *e, size_t n) {
    return te_event_set_string(ev, "partitionkey", v, e, n);
}
te_err_t te_event_set_traceparent(te_event_t *ev, const char *v, char *e, size_t n) {
    return te_event_set_string(ev, "traceparent", v, e, n);
}
const char *te_event_partitionkey(const te_event_t *ev) {
    return te_event_get_string(ev, "partitionkey");
}
const char *te_event_traceparent(const te_event_t *ev) {
    return te_event_get_string(ev, "traceparent");
}

te_err_t te_event_set_id_uuid(te_event_t *ev) {
    if (!ev)
        return TE_ERR_INVALID_ARG;
    uuid_t u;
    char text[37];
    uuid_generate_random(u);
    uuid_unparse_lower(u, text);
    return store_attr(ev, "id", TE_CE_TYPE_STRING, text, 36, 0);
}

te_err_t te_event_set_time(te_event_t *ev, te_time_t t) {
    if (!ev)
        return TE_ERR_INVALID_ARG;
    te_civil_t c;
    if (te_time_to_civil(t, &c) != TE_OK)
        return TE_ERR_TIME;
    char buf[40];
    int n;
    if (c.usec % 1000 == 0)
        n = snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", c.year, c.month,
                     c.day, c.hour, c.minute, c.second, c.usec / 1000);
    else
        n = snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", c.year, c.month,
                     c.day, c.hour, c.minute, c.second, c.usec);
    return store_attr(ev, "time", TE_CE_TYPE_TIMESTAMP, buf, (size_t)n, 0);
}

te_err_t te_event_time(const te_event_t *ev, te_time_t *out) {
    if (!ev || !out)
        return TE_ERR_INVALID_ARG;
    if (!ev->core[A_TIME].text)
        return TE_ERR_NOT_FOUND;
    return te_time_parse(ev->core[A_TIME].text, out, NULL, NULL, 0);
}

te_err_t te_event_create(te_event_t **out, const char *type, const char *source, char *errstr,
                         size_t errstr_size) {
    if (!out || !type || !source)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "type and source required");
    *out = NULL;
    te_event_t *ev = te_event_new();
    if (!ev)
        return TE_ERR_NOMEM;
    te_err_t e = te_event_set_type(ev, type, errstr, errstr_size);
    if (!e)
        e = te_event_set_source(ev, source, errstr, errstr_size);
    if (!e)
        e = te_event_set_id_uuid(ev);
    if (!e)
        e = te_event_set_time(ev, te_time_now() / 1000 * 1000);
    if (e) {
        te_event_destroy(ev);
        return e;
    }
    *out = ev;
    return TE_OK;
}

/* ---- data ------------------------------------------------------------- */

te_event_data_kind_t te_event_data_kind(const te_event_t *ev) {
    return ev ? ev->kind : TE_EVENT_DATA_NONE;
}

te_err_t te_event_set_data_object(te_event_t *ev, struct json_object *obj) {
    if (!ev) {
        json_object_put(obj);
        return TE_ERR_INVALID_ARG;
    }
    te_event_clear_data(ev);
    ev->data = obj;
    ev->kind = TE_EVENT_DATA_JSON;
    return TE_OK;
}

te_err_t te_event_set_data_binary(te_event_t *ev, const void *bytes, size_t len) {
    if (!ev || (!bytes && len))
        return TE_ERR_INVALID_ARG;
    unsigned char *copy = malloc(len ? len : 1);
    if (!copy)
        return TE_ERR_NOMEM;
    if (len)
        memcpy(copy, bytes, len);
    te_event_clear_data(ev);
    ev->bin = copy;
    ev->bin_len = len;
    ev->kind = TE_EVENT_DATA_BINARY;
    return TE_OK;
}

const struct json_object *te_event_data_object(const te_event_t *ev) {
    return ev && ev->kind == TE_EVENT_DATA_JSON ? ev->data : NULL;
}

const void *te_event_data_binary(const te_event_t *ev, size_t *len) {
    if (!ev || ev->kind != TE_EVENT_DATA_BINARY) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = ev->bin_len;
    return ev->bin;
}

#define TE_JSON_FLAGS_PLAIN (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* Serializes obj (NULL = JSON null) into a malloc'd copy. */
static te_err_t json_text(struct json_object *obj, int flags, char **out, size_t *len) {
    size_t n = 0;
    const char *s = json_object_to_json_string_length(obj, flags, &n);
    if (!s)
        return TE_ERR_NOMEM;
    char *copy = dup_len(s, n);
    if (!copy)
        return TE_ERR_NOMEM;
    *out = copy;
    if (len)
        *len = n;
    return TE_OK;
}

te_err_t te_event_data_to_json(const te_event_t *ev, char **out, size_t *len) {
    if (!ev || !out)
        return TE_ERR_INVALID_ARG;
    *out = NULL;
    if (ev->kind != TE_EVENT_DATA_JSON)
        return TE_ERR_NOT_FOUND;
    return json_text(ev->data, TE_JSON_FLAGS_PLAIN, out, len);
}

/* ------------------------------------------------------------------------ */
/* Strict JSON                                                               */

/* What lex_check learns about a top-level object. */
typedef struct scan_s {
    size_t members; /* members of the top-level object, duplicates included */
    int collect;    /* also record member names whose string value holds an
                       unpaired surrogate escape */
    char **lone;    /* decoded member names (malloc'd) */
    size_t n_lone;
    int nomem;
} scan_t;

static void scan_free(scan_t *s) {
    for (size_t i = 0; i < s->n_lone; i++)
        free(s->lone[i]);
    free(s->lone);
    s->lone = NULL;
    s->n_lone = 0;
}

/* Decodes a member name token (quotes included) that json-c already
 * accepted; uses json-c for escapes.  malloc'd, NULL on failure. */
static char *decode_name(const char *tok, size_t len) {
    if (!memchr(tok, '\\', len))
        return dup_len(tok + 1, len - 2);
    char *copy = dup_len(tok, len);
    struct json_object *o = copy ? json_tokener_parse(copy) : NULL;
    char *r = NULL;
    if (o && json_object_is_type(o, json_type_string))
        r = dup_len(json_object_get_string(o), (size_t)json_object_get_string_len(o));
    json_object_put(o);
    free(copy);
    return r;
}

static int hex4(const char *p, uint32_t *v) {
    uint32_t r = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        r <<= 4;
        if (c >= '0' && c <= '9')
            r |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            r |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            r |= (uint32_t)(c - 'A' + 10);
        else
            return 0;
    }
    *v = r;
    return 1;
}

/* RFC 8259 number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int json_number_ok(const char *s, size_t n) {
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i >= n)
        return 0;
    if (s[i] == '0') {
        i++;
    } else if (s[i] >= '1' && s[i] <= '9') {
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    } else {
        return 0;
    }
    if (i < n && s[i] == '.') {
        size_t d = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d)
            return 0;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t d = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d)
            return 0;
    }
    return i == n;
}

static int is_word_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '-' || c == '.';
}

/* Lexical checks json-c's strict mode leaves out (see the file comment).
 * The text has already been accepted by json-c.  0 = fine. */
static int lex_check(const char *s, size_t len, scan_t *scan, char *errstr,
                     size_t errstr_size) {
    int depth = 0, top_object = -1, expect_name = 0;
    const char *name = NULL; /* current top-level member name token */
    size_t name_len = 0;
    size_t i = 0;
    while (i < len) {
        char c = s[i];
        switch (c) {
        case ' ':
        case '\t':
        case '\n':
        case '\r':
        case ':':
            i++;
            continue;
        case '{':
        case '[':
            if (top_object < 0)
                top_object = c == '{';
            depth++;
            if (depth == 1 && top_object)
                expect_name = 1;
            i++;
            continue;
        case '}':
        case ']':
            depth--;
            i++;
            continue;
        case ',':
            if (depth == 1 && top_object == 1)
                expect_name = 1;
            i++;
            continue;
        case '"': {
            size_t start = i;
            int lone = 0;
            i++;
            for (;;) {
                if (i >= len) {
                    te__seterr(errstr, errstr_size, TE_ERR_PARSE, "unterminated string");
                    return -1;
                }
                unsigned char b = (unsigned char)s[i];
                if (b == '"')
                    break;
                if (b < 0x20) {
                    te__seterr(errstr, errstr_size, TE_ERR_PARSE,
                               "unescaped control character U+%04X in a string at byte %zu",
                               b, i);
                    return -1;
                }
                if (b != '\\') {
                    i++;
                    continue;
                }
                if (i + 1 < len && s[i + 1] == 'u') {
                    uint32_t cp, lo;
                    if (i + 6 > len || !hex4(s + i + 2, &cp)) {
                        te__seterr(errstr, errstr_size, TE_ERR_PARSE,
                                   "bad \\u escape at byte %zu", i);
                        return -1;
                    }
                    i += 6;
                    if (cp >= 0xD800 && cp <= 0xDBFF) {
                        if (i + 6 <= len && s[i] == '\\' && s[i + 1] == 'u' &&
                            hex4(s + i + 2, &lo) && lo >= 0xDC00 && lo <= 0xDFFF)
                            i += 6;
                        else
                            lone = 1;
                    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                        lone = 1;
                    }
                } else {
                    i += 2;
                }
            }
            i++; /* closing quote */
            if (depth == 1 && top_object == 1) {
                if (expect_name) {
                    scan->members++;
                    name = s + start;
                    name_len = i - start;
                    expect_name = 0;
                } else if (lone && scan->collect && name) {
                    char **n = realloc(scan->lone, (scan->n_lone + 1) * sizeof *n);
                    char *nm = n ? decode_name(name, name_len) : NULL;
                    if (n)
                        scan->lone = n;
                    if (!nm) {
                        scan->nomem = 1;
                    } else {
                        scan->lone[scan->n_lone++] = nm;
                    }
                }
            }
            continue;
        }
        default:
            break;
        }
        if (is_word_char(c)) {
            size_t st = i;
            while (i < len && is_word_char(s[i]))
                i++;
            size_t n = i - st;
            const char *w = s + st;
            if ((n == 4 && memcmp(w, "true", 4) == 0) || (n == 5 && memcmp(w, "false", 5) == 0) ||
                (n == 4 && memcmp(w, "null", 4) == 0) || json_number_ok(w, n))
                continue;
            te__seterr(errstr, errstr_size, TE_ERR_PARSE, "invalid literal '%.*s' at byte %zu",
                       (int)(n > 20 ? 20 : n), w, st);
            return -1;
        }
        te__seterr(errstr, errstr_size, TE_ERR_PARSE, "unexpected character '%c' at byte %zu",
                   c, i);
        return -1;
    }
    return 0;
}

/* Strict parse of a complete JSON text.  *out may be NULL on success (the
 * text was "null").  scan may be NULL. */
static te_err_t json_parse_strict(const char *text, size_t len, struct json_object **out,
                                  scan_t *scan, char *errstr, size_t errstr_size) {
    *out = NULL;
    if (!text)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "no input");
    if (len > (size_t)INT_MAX - 1)
        return te__seterr(errstr, errstr_size, TE_ERR_PARSE, "input too large");
    if (te__utf8_count(text, len) < 0)
        return te__seterr(errstr, errstr_size, TE_ERR_PARSE, "input is not valid UTF-8");
    struct json_tokener *tok = json_tokener_new_ex(64);
    if (!tok)
        return TE_ERR_NOMEM;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    struct json_object *obj = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    if (jerr == json_tokener_continue) {
        /* A top-level number or literal ends only at a delimiter. */
        obj = json_tokener_parse_ex(tok, " ", 1);
        jerr = json_tokener_get_error(tok);
        end = len;
        if (jerr == json_tokener_continue) {
            json_tokener_free(tok);
            return te__seterr(errstr, errstr_size, TE_ERR_PARSE,
                              len == 0 ? "empty input" : "unexpected end of input");
        }
    }
    if (jerr != json_tokener_success) {
        te__seterr(errstr, errstr_size, TE_ERR_PARSE, "malformed JSON: %s at byte %zu",
                   json_tokener_error_desc(jerr), end);
        json_object_put(obj);
        json_tokener_free(tok);
        return TE_ERR_PARSE;
    }
    json_tokener_free(tok);
    for (size_t i = end; i < len; i++) {
        char c = text[i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            json_object_put(obj);
            return te__seterr(errstr, errstr_size, TE_ERR_PARSE,
                              "unexpected data after the JSON value at byte %zu", i);
        }
    }
    scan_t local = {0};
    if (lex_check(text, len, scan ? scan : &local, errstr, errstr_size) != 0) {
        json_object_put(obj);
        return TE_ERR_PARSE;
    }
    if (scan && scan->nomem) {
        json_object_put(obj);
        return TE_ERR_NOMEM;
    }
    *out = obj;
    return TE_OK;
}

te_err_t te__json_parse_strict(const char *text, size_t len, struct json_object **out,
                               char *errstr, size_t errstr_size) {
    return json_parse_strict(text, len, out, NULL, errstr, errstr_size);
}

te_err_t te_event_set_data_json(te_event_t *ev, const char *json, size_t len, char *errstr,
                                size_t errstr_size) {
    if (!ev || !json)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "no event or JSON text");
    struct json_object *obj;
    te_err_t e = json_parse_strict(json, len, &obj, NULL, errstr, errstr_size);
    if (e)
        return e;
    return te_event_set_data_object(ev, obj);
}

/* ------------------------------------------------------------------------ */
/* base64 (RFC 4648, padded, no white space)                                */

static int b64_syntax_ok(const char *s, size_t n) {
    if (n % 4 != 0)
        return 0;
    size_t pad = 0;
    while (pad < 2 && pad < n && s[n - 1 - pad] == '=')
        pad++;
    for (size_t i = 0; i < n - pad; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/'))
            return 0;
    }
    return 1;
}

/* 1 on success (out malloc'd, never NULL), 0 invalid, -1 no memory. */
static int b64_decode(const char *s, size_t n, unsigned char **out, size_t *out_len) {
    if (!b64_syntax_ok(s, n) || n > (size_t)INT_MAX)
        return 0;
    unsigned char *buf = malloc(n / 4 * 3 + 4);
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    if (!buf || !ctx) {
        free(buf);
        EVP_ENCODE_CTX_free(ctx);
        return -1;
    }
    int a = 0, b = 0;
    EVP_DecodeInit(ctx);
    int ok = EVP_DecodeUpdate(ctx, buf, &a, (const unsigned char *)s, (int)n) >= 0 &&
             EVP_DecodeFinal(ctx, buf + a, &b) >= 0;
    EVP_ENCODE_CTX_free(ctx);
    if (!ok) {
        free(buf);
        return 0;
    }
    *out = buf;
    *out_len = (size_t)a + (size_t)b;
    return 1;
}

static char *b64_encode(const unsigned char *p, size_t n) {
    if (n > (size_t)INT_MAX / 4 * 3 - 3)
        return NULL;
    char *out = malloc((n + 2) / 3 * 4 + 1);
    if (!out)
        return NULL;
    EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    out[(n + 2) / 3 * 4] = '\0';
    return out;
}

/* ------------------------------------------------------------------------ */
/* Problem collection                                                        */

typedef struct pctx_s {
    te_problems_t *p;
    size_t n;
    int nomem;
    char first[TE_ERRSTR_SIZE];
} pctx_t;

static void padd(pctx_t *c, const char *field, const char *fmt, ...) TE_PRINTF(3, 4);
static void padd(pctx_t *c, const char *field, const char *fmt, ...) {
    char reason[TE_ERRSTR_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    if (c->n == 0)
        snprintf(c->first, sizeof c->first, "%.100s: %.380s", field, reason);
    c->n++;
    if (te_problems_add(c->p, field, "%s", reason) != TE_OK)
        c->nomem = 1;
}

/* Printable copy of a member name for problem fields (controls → '?'). */
static void safe_name(const char *name, char *buf, size_t size) {
    size_t i = 0;
    for (; name[i] && i + 1 < size; i++) {
        unsigned char c = (unsigned char)name[i];
        buf[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    buf[i] = '\0';
}

static te_err_t finish(pctx_t *pc, te_event_t *ev, te_event_t **out, char *errstr,
                       size_t errstr_size) {
    if (pc->nomem) {
        te_event_destroy(ev);
        return TE_ERR_NOMEM;
    }
    if (pc->n) {
        te_event_destroy(ev);
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID, "%zu problem%s; first: %s", pc->n,
                          pc->n == 1 ? "" : "s", pc->first);
    }
    *out = ev;
    return TE_OK;
}

/* Stores a string attribute decoded from a format after checking it. */
static void decode_string_attr(te_event_t *ev, pctx_t *pc, const char *name, const char *v,
                               size_t len) {
    char buf[TE_ERRSTR_SIZE];
    int ci = core_index(name);
    const char *r = check_string_attr(name, ci, v, len, buf, sizeof buf);
    if (r) {
        padd(pc, name, "%s", r);
        return;
    }
    if (store_attr(ev, name, ci >= 0 ? core_attrs[ci].type : TE_CE_TYPE_STRING, v, len, 0))
        pc->nomem = 1;
}

static void check_required(const te_event_t *ev, pctx_t *pc, const char *const *reported,
                           size_t n_reported) {
    for (int i = 0; i < N_CORE; i++) {
        if (!core_attrs[i].required || ev->core[i].text)
            continue;
        int seen = 0;
        for (size_t k = 0; k < n_reported; k++)
            if (reported[k] && strcmp(reported[k], core_attrs[i].name) == 0)
                seen = 1;
        if (!seen)
            padd(pc, core_attrs[i].name, "is required");
    }
}

te_err_t te_event_validate(const te_event_t *ev, te_problems_t *problems) {
    if (!ev)
        return TE_ERR_INVALID_ARG;
    pctx_t pc = {.p = problems};
    check_required(ev, &pc, NULL, 0);
    if (pc.nomem)
        return TE_ERR_NOMEM;
    return pc.n ? TE_ERR_INVALID : TE_OK;
}

/* ------------------------------------------------------------------------ */
/* JSON event format                                                         */

static int name_in(char *const *list, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], name) == 0)
            return 1;
    return 0;
}

/* Finds duplicated top-level member names by re-walking the text. */
static void report_duplicates(const char *s, size_t len, pctx_t *pc) {
    /* Collect the raw name tokens of the top-level object. */
    char **names = NULL;
    size_t n = 0, cap = 0;
    int depth = 0, expect = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '{' || c == '[') {
            depth++;
            if (depth == 1)
                expect = 1;
        } else if (c == '}' || c == ']') {
            depth--;
        } else if (c == ',' && depth == 1) {
            expect = 1;
        } else if (c == '"') {
            size_t st = i++;
            while (i < len && s[i] != '"')
                i += s[i] == '\\' ? 2 : 1;
            if (depth == 1 && expect) {
                expect = 0;
                if (n == cap) {
                    size_t nc = cap ? cap * 2 : 16;
                    char **nn = realloc(names, nc * sizeof *nn);
                    if (!nn) {
                        pc->nomem = 1;
                        break;
                    }
                    names = nn;
                    cap = nc;
                }
                char *nm = decode_name(s + st, i - st + 1);
                if (!nm) {
                    pc->nomem = 1;
                    break;
                }
                names[n++] = nm;
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        int first = 1, dup = 0;
        for (size_t k = 0; k < n; k++) {
            if (k != i && strcmp(names[k], names[i]) == 0) {
                dup = 1;
                if (k < i)
                    first = 0;
            }
        }
        if (dup && first) {
            char safe[128];
            safe_name(names[i], safe, sizeof safe);
            padd(pc, safe, "must appear at most once (duplicate member)");
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static void decode_extension_json(te_event_t *ev, pctx_t *pc, const char *name,
                                  struct json_object *v) {
    char buf[32];
    switch (json_object_get_type(v)) {
    case json_type_string: {
        const char *s = json_object_get_string(v);
        decode_string_attr(ev, pc, name, s, (size_t)json_object_get_string_len(v));
        return;
    }
    case json_type_boolean: {
        int b = json_object_get_boolean(v) ? 1 : 0;
        if (known_ext_index(name) != X_NONE) {
            padd(pc, name, "must be a string");
            return;
        }
        if (store_attr(ev, name, TE_CE_TYPE_BOOLEAN, b ? "true" : "false", b ? 4 : 5, b))
            pc->nomem = 1;
        return;
    }
    case json_type_int: {
        if (known_ext_index(name) != X_NONE) {
            padd(pc, name, "must be a string");
            return;
        }
        int64_t i = json_object_get_int64(v);
        if (i < INT32_MIN || i > INT32_MAX) {
            padd(pc, name,
                 "integer out of range (CloudEvents Integer is -2147483648..2147483647)");
            return;
        }
        int n = snprintf(buf, sizeof buf, "%ld", (long)i);
        if (store_attr(ev, name, TE_CE_TYPE_INTEGER, buf, (size_t)n, (int32_t)i))
            pc->nomem = 1;
        return;
    }
    case json_type_double:
        padd(pc, name,
             known_ext_index(name) != X_NONE
                 ? "must be a string"
                 : "must be an integer without fraction or exponent (CloudEvents Integer)");
        return;
    default:
        padd(pc, name,
             known_ext_index(name) != X_NONE
                 ? "must be a string"
                 : "must be a string, an integer or a boolean (objects and arrays are not "
                   "attribute values)");
        return;
    }
}

static te_err_t decode_json_event(const char *json, size_t len, te_event_t **out,
                                  te_problems_t *problems, char *errstr, size_t errstr_size) {
    if (!out)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "no output pointer");
    *out = NULL;
    struct json_object *root;
    scan_t scan = {.collect = 1};
    te_err_t e = json_parse_strict(json, len, &root, &scan, errstr, errstr_size);
    if (e) {
        scan_free(&scan);
        return e;
    }
    if (!json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        scan_free(&scan);
        return te__seterr(errstr, errstr_size, TE_ERR_PARSE,
                          "not a JSON object (a structured-mode CloudEvent is a JSON object)");
    }
    te_event_t *ev = calloc(1, sizeof *ev);
    if (!ev) {
        json_object_put(root);
        scan_free(&scan);
        return TE_ERR_NOMEM;
    }
    pctx_t pc = {.p = problems};
    int has_data = 0, has_b64 = 0;
    struct json_object *data = NULL;
    unsigned char *bin = NULL;
    size_t bin_len = 0;
    /* names already reported, so that "id": 5 does not also say "id: is required" */
    const char *reported[N_CORE];
    size_t n_reported = 0;
    size_t before;

    json_object_object_foreach(root, key, val) {
        before = pc.n;
        if (strcmp(key, "data") == 0) {
            has_data = 1;
            data = val;
            continue;
        }
        if (strcmp(key, "data_base64") == 0) {
            if (!val)
                continue;
            if (!json_object_is_type(val, json_type_string)) {
                padd(&pc, key, "must be a base64 string");
                continue;
            }
            free(bin);
            bin = NULL;
            int r = b64_decode(json_object_get_string(val), (size_t)json_object_get_string_len(val),
                               &bin, &bin_len);
            if (r < 0)
                pc.nomem = 1;
            else if (r == 0)
                padd(&pc, key, "must be valid base64 (RFC 4648, padded, no white space)");
            else
                has_b64 = 1;
            continue;
        }
        if (!val)
            continue; /* null = absent */
        char detail[TE_ERRSTR_SIZE];
        if (te_ce_name_check(key, detail, sizeof detail) != TE_OK) {
            char safe[128];
            safe_name(key, safe, sizeof safe);
            padd(&pc, safe, "%s", detail);
            continue;
        }
        int ci = core_index(key);
        if (name_in(scan.lone, scan.n_lone, key)) {
            padd(&pc, key, "must not contain unpaired surrogate code points (U+D800-U+DFFF)");
        } else if (ci >= 0) {
            if (!json_object_is_type(val, json_type_string))
                padd(&pc, key, "must be a string");
            else
                decode_string_attr(ev, &pc, key, json_object_get_string(val),
                                   (size_t)json_object_get_string_len(val));
        } else {
            decode_extension_json(ev, &pc, key, val);
        }
        if (ci >= 0 && pc.n != before && n_reported < N_CORE)
            reported[n_reported++] = core_attrs[ci].name;
    }
    if (scan.members != (size_t)json_object_object_length(root))
        report_duplicates(json, len, &pc);
    scan_free(&scan);
    if (has_data && has_b64) {
        padd(&pc, "data_base64", "must not be present together with data (mutually exclusive)");
    } else if (has_b64) {
        ev->kind = TE_EVENT_DATA_BINARY;
        ev->bin = bin;
        ev->bin_len = bin_len;
        bin = NULL;
    } else if (has_data) {
        ev->kind = TE_EVENT_DATA_JSON;
        ev->data = data ? json_object_get(data) : NULL;
    }
    free(bin);
    check_required(ev, &pc, reported, n_reported);
    json_object_put(root);
    return finish(&pc, ev, out, errstr, errstr_size);
}

te_err_t te_event_from_json(const char *json, size_t len, te_event_t **out,
                            te_problems_t *problems, char *errstr, size_t errstr_size) {
    return decode_json_event(json, len, out, problems, errstr, errstr_size);
}

static struct json_object *attr_json(const attr_t *a) {
    switch (a->type) {
    case TE_CE_TYPE_INTEGER:
        return json_object_new_int(a->ival);
    case TE_CE_TYPE_BOOLEAN:
        return json_object_new_boolean(a->ival);
    default:
        return json_object_new_string(a->text);
    }
}

static te_err_t encode_json(const te_event_t *ev, int flags, char **out, size_t *len,
                            char *errstr, size_t errstr_size) {
    struct json_object *root = json_object_new_object();
    if (!root)
        return TE_ERR_NOMEM;
    const unsigned add = JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_KEY_IS_CONSTANT;
    int fail = 0;
    for (int i = 0; i < N_CORE && !fail; i++) {
        if (!ev->core[i].text)
            continue;
        struct json_object *v = attr_json(&ev->core[i]);
        fail = !v || json_object_object_add_ex(root, core_attrs[i].name, v, add) != 0;
    }
    for (size_t i = 0; i < ev->n_ext && !fail; i++) {
        struct json_object *v = attr_json(&ev->ext[i]);
        fail = !v || json_object_object_add_ex(root, ev->ext[i].name, v, add) != 0;
    }
    if (!fail && ev->kind == TE_EVENT_DATA_JSON) {
        fail = json_object_object_add_ex(root, "data", ev->data ? json_object_get(ev->data) : NULL,
                                         add) != 0;
    } else if (!fail && ev->kind == TE_EVENT_DATA_BINARY) {
        char *b64 = b64_encode(ev->bin, ev->bin_len);
        struct json_object *v = b64 ? json_object_new_string(b64) : NULL;
        free(b64);
        fail = !v || json_object_object_add_ex(root, "data_base64", v, add) != 0;
    }
    te_err_t e = TE_ERR_NOMEM;
    if (!fail) {
        int jf = TE_JSON_FLAGS_PLAIN;
        if (flags & TE_JSON_PRETTY)
            jf = JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE;
        e = json_text(root, jf, out, len);
    }
    json_object_put(root);
    if (e)
        te__seterr(errstr, errstr_size, e, "out of memory");
    return e;
}

static te_err_t require_valid(const te_event_t *ev, char *errstr, size_t errstr_size) {
    te_problems_t *p = te_problems_new();
    if (!p)
        return TE_ERR_NOMEM;
    te_err_t e = te_event_validate(ev, p);
    if (e == TE_ERR_INVALID) {
        char line[TE_ERRSTR_SIZE];
        te__seterr(errstr, errstr_size, e, "event is not valid: %s",
                   te_problems_format(p, 0, line, sizeof line));
    }
    te_problems_destroy(p);
    return e;
}

te_err_t te_event_to_json(const te_event_t *ev, int flags, char **out, size_t *len,
                          char *errstr, size_t errstr_size) {
    if (!ev || !out)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "no event or output");
    *out = NULL;
    te_err_t e = require_valid(ev, errstr, errstr_size);
    if (e)
        return e;
    return encode_json(ev, flags, out, len, errstr, errstr_size);
}

/* ------------------------------------------------------------------------ */
/* Equality / copy                                                           */

static int attr_equal(const attr_t *a, const attr_t *b) {
    return a->type == b->type && strcmp(a->text, b->text) == 0;
}

int te_event_equal(const te_event_t *a, const te_event_t *b) {
    if (!a || !b)
        return a == b;
    for (int i = 0; i < N_CORE; i++) {
        if (!a->core[i].text != !b->core[i].text)
            return 0;
        if (a->core[i].text && !attr_equal(&a->core[i], &b->core[i]))
            return 0;
    }
    if (a->n_ext != b->n_ext)
        return 0;
    for (size_t i = 0; i < a->n_ext; i++) {
        const attr_t *o = find_attr(b, a->ext[i].name);
        if (!o || !attr_equal(&a->ext[i], o))
            return 0;
    }
    if (a->kind != b->kind)
        return 0;
    if (a->kind == TE_EVENT_DATA_JSON)
        return json_object_equal(a->data, b->data) != 0;
    if (a->kind == TE_EVENT_DATA_BINARY)
        return a->bin_len == b->bin_len && memcmp(a->bin, b->bin, a->bin_len) == 0;
    return 1;
}

te_event_t *te_event_dup(const te_event_t *ev) {
    if (!ev)
        return NULL;
    te_event_t *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    int fail = 0;
    for (int i = 0; i < N_CORE && !fail; i++)
        if (ev->core[i].text)
            fail = store_attr(d, core_attrs[i].name, ev->core[i].type, ev->core[i].text,
                              strlen(ev->core[i].text), ev->core[i].ival) != TE_OK;
    for (size_t i = 0; i < ev->n_ext && !fail; i++)
        fail = store_attr(d, ev->ext[i].name, ev->ext[i].type, ev->ext[i].text,
                          strlen(ev->ext[i].text), ev->ext[i].ival) != TE_OK;
    if (!fail && ev->kind == TE_EVENT_DATA_JSON) {
        struct json_object *copy = NULL;
        if (ev->data && json_object_deep_copy(ev->data, &copy, NULL) != 0)
            fail = 1;
        else
            te_event_set_data_object(d, copy);
    } else if (!fail && ev->kind == TE_EVENT_DATA_BINARY) {
        fail = te_event_set_data_binary(d, ev->bin, ev->bin_len) != TE_OK;
    }
    if (fail) {
        te_event_destroy(d);
        return NULL;
    }
    return d;
}

/* ------------------------------------------------------------------------ */
/* Kafka header list                                                         */

typedef struct header_s {
    char *name;
    char *value; /* NULL = null value; else len bytes + NUL */
    size_t len;
} header_t;

struct te_headers_s {
    header_t *h;
    size_t n, cap;
};

te_headers_t *te_headers_new(void) { return calloc(1, sizeof(te_headers_t)); }

static void headers_truncate(te_headers_t *h, size_t n) {
    while (h->n > n) {
        h->n--;
        free(h->h[h->n].name);
        free(h->h[h->n].value);
    }
}

void te_headers_clear(te_headers_t *h) {
    if (h)
        headers_truncate(h, 0);
}

void te_headers_destroy(te_headers_t *h) {
    if (!h)
        return;
    headers_truncate(h, 0);
    free(h->h);
    free(h);
}

te_err_t te_headers_add(te_headers_t *h, const char *name, const void *value, size_t len) {
    if (!h || !name)
        return TE_ERR_INVALID_ARG;
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 8;
        header_t *n = realloc(h->h, cap * sizeof *n);
        if (!n)
            return TE_ERR_NOMEM;
        h->h = n;
        h->cap = cap;
    }
    char *nm = te__strdup(name);
    char *v = value ? dup_len(value, len) : NULL;
    if (!nm || (value && !v)) {
        free(nm);
        free(v);
        return TE_ERR_NOMEM;
    }
    h->h[h->n].name = nm;
    h->h[h->n].value = v;
    h->h[h->n].len = value ? len : 0;
    h->n++;
    return TE_OK;
}

size_t te_headers_count(const te_headers_t *h) { return h ? h->n : 0; }

const char *te_headers_name(const te_headers_t *h, size_t i) {
    return h && i < h->n ? h->h[i].name : NULL;
}

const void *te_headers_value(const te_headers_t *h, size_t i, size_t *len) {
    if (!h || i >= h->n) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = h->h[i].len;
    return h->h[i].value;
}

te_err_t te_headers_get(const te_headers_t *h, const char *name, const void **value,
                        size_t *len) {
    if (!h || !name)
        return TE_ERR_INVALID_ARG;
    for (size_t i = h->n; i-- > 0;) {
        if (strcmp(h->h[i].name, name) == 0) {
            if (value)
                *value = h->h[i].value;
            if (len)
                *len = h->h[i].len;
            return TE_OK;
        }
    }
    return TE_ERR_NOT_FOUND;
}

/* ------------------------------------------------------------------------ */
/* Kafka protocol binding                                                    */

static const char *content_type_of(const te_event_t *ev) {
    if (ev->core[A_DATACONTENTTYPE].text)
        return ev->core[A_DATACONTENTTYPE].text;
    return ev->kind == TE_EVENT_DATA_JSON ? "application/json" : NULL;
}

static te_err_t binary_value(const te_event_t *ev, void **value, size_t *value_len) {
    *value = NULL;
    *value_len = 0;
    if (ev->kind == TE_EVENT_DATA_NONE)
        return TE_OK;
    if (ev->kind == TE_EVENT_DATA_BINARY) {
        char *copy = dup_len((const char *)ev->bin, ev->bin_len);
        if (!copy)
            return TE_ERR_NOMEM;
        *value = copy;
        *value_len = ev->bin_len;
        return TE_OK;
    }
    const char *ct = content_type_of(ev);
    if (ev->data && json_object_is_type(ev->data, json_type_string) && !te_media_type_is_json(ct)) {
        /* an encoded content string (e.g. XML) travels as its characters */
        char *copy = dup_len(json_object_get_string(ev->data),
                             (size_t)json_object_get_string_len(ev->data));
        if (!copy)
            return TE_ERR_NOMEM;
        *value = copy;
        *value_len = (size_t)json_object_get_string_len(ev->data);
        return TE_OK;
    }
    char *text;
    te_err_t e = json_text(ev->data, TE_JSON_FLAGS_PLAIN, &text, value_len);
    if (!e)
        *value = text;
    return e;
}

te_err_t te_event_to_kafka(const te_event_t *ev, te_kafka_mode_t mode, te_headers_t *headers,
                           void **value, size_t *value_len, char *errstr, size_t errstr_size) {
    if (!ev || !headers || !value || !value_len ||
        (mode != TE_KAFKA_BINARY && mode != TE_KAFKA_STRUCTURED))
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "invalid argument");
    *value = NULL;
    *value_len = 0;
    te_err_t e = require_valid(ev, errstr, errstr_size);
    if (e)
        return e;
    size_t mark = headers->n;
    if (mode == TE_KAFKA_STRUCTURED) {
        char *json;
        size_t len;
        e = encode_json(ev, 0, &json, &len, errstr, errstr_size);
        if (e)
            return e;
        e = te_headers_add(headers, "content-type", TE_CE_JSON_CONTENT_TYPE,
                           strlen(TE_CE_JSON_CONTENT_TYPE));
        if (e) {
            free(json);
            return te__seterr(errstr, errstr_size, e, "out of memory");
        }
        *value = json;
        *value_len = len;
        return TE_OK;
    }
    const char *dct = ev->core[A_DATACONTENTTYPE].text;
    if (dct && strncasecmp(skip_ows(dct), "application/cloudevents", 23) == 0)
        return te__seterr(errstr, errstr_size, TE_ERR_UNSUPPORTED,
                          "datacontenttype %.80s cannot be sent in binary mode (receivers "
                          "would take the record for a structured-mode event); use structured "
                          "mode",
                          dct);
    char name[64 + 4];
    for (size_t i = 0; i < te_event_attr_count(ev) && !e; i++) {
        te_ce_attr_t a;
        te_event_attr_at(ev, i, &a);
        if (strcmp(a.name, "datacontenttype") == 0)
            continue;
        const char *n = a.name;
        char *big = NULL;
        if (strlen(a.name) + 4 > sizeof name) {
            big = malloc(strlen(a.name) + 4);
            if (!big) {
                e = TE_ERR_NOMEM;
                break;
            }
            n = big;
            sprintf(big, "ce_%s", a.name);
        } else {
            snprintf(name, sizeof name, "ce_%s", a.name);
            n = name;
        }
        e = te_headers_add(headers, n, a.value, strlen(a.value));
        free(big);
    }
    const char *ct = content_type_of(ev);
    if (!e && ct)
        e = te_headers_add(headers, "content-type", ct, strlen(ct));
    if (!e)
        e = binary_value(ev, value, value_len);
    if (e) {
        headers_truncate(headers, mark);
        return te__seterr(errstr, errstr_size, e, "out of memory");
    }
    return TE_OK;
}

const char *te_event_kafka_key(const te_event_t *ev) { return te_event_partitionkey(ev); }

static int is_content_type(const char *name) { return strcasecmp(name, "content-type") == 0; }

/* The last content-type header (NULL when none or null-valued). */
static const header_t *find_content_type(const te_headers_t *h) {
    for (size_t i = h ? h->n : 0; i-- > 0;)
        if (is_content_type(h->h[i].name))
            return h->h[i].value ? &h->h[i] : NULL;
    return NULL;
}

te_err_t te_kafka_detect_mode(const te_headers_t *headers, te_kafka_mode_t *mode) {
    static const char prefix[] = "application/cloudevents";
    const header_t *ct = find_content_type(headers);
    if (ct) {
        const char *v = skip_ows(ct->value);
        if (strncasecmp(v, prefix, sizeof prefix - 1) == 0) {
            if (mode)
                *mode = TE_KAFKA_STRUCTURED;
            return TE_OK;
        }
    }
    if (headers && te_headers_get(headers, "ce_specversion", NULL, NULL) == TE_OK) {
        if (mode)
            *mode = TE_KAFKA_BINARY;
        return TE_OK;
    }
    return TE_ERR_NOT_FOUND;
}

static te_err_t decode_binary(const te_headers_t *h, const void *value, size_t value_len,
                              te_event_t **out, te_problems_t *problems, char *errstr,
                              size_t errstr_size) {
    te_event_t *ev = calloc(1, sizeof *ev);
    if (!ev)
        return TE_ERR_NOMEM;
    pctx_t pc = {.p = problems};
    const char *reported[N_CORE];
    size_t n_reported = 0;
    const char *ce_dct = NULL; /* ce_datacontenttype header, if any */
    for (size_t i = 0; i < h->n; i++) {
        const header_t *hd = &h->h[i];
        if (strncmp(hd->name, "ce_", 3) != 0)
            continue;
        const char *name = hd->name + 3;
        char detail[TE_ERRSTR_SIZE], safe[128];
        safe_name(name, safe, sizeof safe);
        size_t before = pc.n;
        int dup = 0;
        for (size_t k = 0; k < i; k++)
            if (strcmp(h->h[k].name, hd->name) == 0)
                dup = 1;
        if (dup) {
            padd(&pc, safe, "must appear at most once (duplicate header %s)", hd->name);
        } else if (te_ce_name_check(name, detail, sizeof detail) != TE_OK) {
            padd(&pc, safe, "%s (header %s)", detail, hd->name);
        } else if (!hd->value) {
            padd(&pc, name, "header value must be a UTF-8 string, not null");
        } else if (strcmp(name, "datacontenttype") == 0) {
            ce_dct = hd->value;
        } else {
            decode_string_attr(ev, &pc, name, hd->value, hd->len);
        }
        int ci = core_index(name);
        if (ci >= 0 && pc.n != before && n_reported < N_CORE)
            reported[n_reported++] = core_attrs[ci].name;
    }
    /* content-type → datacontenttype */
    const header_t *ct = NULL;
    size_t n_ct = 0;
    for (size_t i = 0; i < h->n; i++)
        if (is_content_type(h->h[i].name)) {
            ct = &h->h[i];
            n_ct++;
        }
    const char *dct = NULL;
    size_t dct_len = 0;
    if (n_ct > 1) {
        padd(&pc, "datacontenttype", "the content-type header must appear at most once");
    } else if (ct && !ct->value) {
        padd(&pc, "datacontenttype", "the content-type header must not be null");
    } else if (ct) {
        dct = ct->value;
        dct_len = ct->len;
        if (ce_dct && strcmp(ce_dct, ct->value) != 0)
            padd(&pc, "datacontenttype",
                 "ce_datacontenttype header disagrees with the content-type header");
    } else if (ce_dct) {
        dct = ce_dct;
        dct_len = strlen(ce_dct);
    }
    if (dct)
        decode_string_attr(ev, &pc, "datacontenttype", dct, dct_len);
    /* value → data */
    if (value) {
        if (dct && te_media_type_is_json(dct)) {
            struct json_object *obj;
            char detail[TE_ERRSTR_SIZE];
            te_err_t e = json_parse_strict(value, value_len, &obj, NULL, detail, sizeof detail);
            if (e == TE_ERR_NOMEM)
                pc.nomem = 1;
            else if (e)
                padd(&pc, "data", "value is not valid JSON for content type %.60s: %s", dct,
                     detail);
            else
                te_event_set_data_object(ev, obj);
        } else if (te_event_set_data_binary(ev, value, value_len) != TE_OK) {
            pc.nomem = 1;
        }
    }
    check_required(ev, &pc, reported, n_reported);
    return finish(&pc, ev, out, errstr, errstr_size);
}

te_err_t te_event_from_kafka(const te_headers_t *headers, const void *value, size_t value_len,
                             te_event_t **out, te_kafka_mode_t *mode, te_problems_t *problems,
                             char *errstr, size_t errstr_size) {
    if (!out)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "no output pointer");
    *out = NULL;
    te_kafka_mode_t m;
    if (te_kafka_detect_mode(headers, &m) != TE_OK)
        return te__seterr(errstr, errstr_size, TE_ERR_NOT_FOUND,
                          "not a CloudEvent: no content-type application/cloudevents* header "
                          "and no ce_specversion header");
    if (mode)
        *mode = m;
    if (m == TE_KAFKA_BINARY)
        return decode_binary(headers, value, value_len, out, problems, errstr, errstr_size);
    const header_t *ct = find_content_type(headers);
    char essence[128] = "";
    if (!media_essence(ct->value, essence, sizeof essence) ||
        strcmp(essence, TE_CE_JSON_MEDIA_TYPE) != 0) {
        if (strncmp(essence, "application/cloudevents-batch", 29) == 0)
            return te__seterr(errstr, errstr_size, TE_ERR_UNSUPPORTED,
                              "the Kafka binding has no batch mode (content-type %.80s)",
                              ct->value);
        return te__seterr(errstr, errstr_size, TE_ERR_UNSUPPORTED,
                          "unsupported event format %.80s (only %s)", ct->value,
                          TE_CE_JSON_MEDIA_TYPE);
    }
    if (!value)
        return te__seterr(errstr, errstr_size, TE_ERR_PARSE,
                          "structured-mode record has no value");
    return decode_json_event(value, value_len, out, problems, errstr, errstr_size);
}
