/* JSON-lines logger: see log.h. */
#include "log.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static char g_service[128] = "unknown";
static atomic_int g_level = TD_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

const char *td_log_level_name(td_log_level_t lvl) {
    if ((int)lvl < TD_LOG_DEBUG || lvl > TD_LOG_ERROR)
        return "info";
    return level_names[lvl];
}

int td_log_level_parse(const char *s, td_log_level_t *out) {
    if (!s)
        return -1;
    td_log_level_t l;
    if (!strcasecmp(s, "debug"))
        l = TD_LOG_DEBUG;
    else if (!strcasecmp(s, "info"))
        l = TD_LOG_INFO;
    else if (!strcasecmp(s, "warn") || !strcasecmp(s, "warning"))
        l = TD_LOG_WARN;
    else if (!strcasecmp(s, "error"))
        l = TD_LOG_ERROR;
    else
        return -1;
    if (out)
        *out = l;
    return 0;
}

void td_log_set_level(td_log_level_t lvl) {
    if ((int)lvl < TD_LOG_DEBUG)
        lvl = TD_LOG_DEBUG;
    if (lvl > TD_LOG_ERROR)
        lvl = TD_LOG_ERROR;
    atomic_store(&g_level, (int)lvl);
}

td_log_level_t td_log_get_level(void) { return (td_log_level_t)atomic_load(&g_level); }

int td_log_enabled(td_log_level_t lvl) { return (int)lvl >= atomic_load(&g_level); }

void td_log_init(const char *service) {
    if (service && *service) {
        strncpy(g_service, service, sizeof g_service - 1);
        g_service[sizeof g_service - 1] = '\0';
    }
    const char *env = getenv("TE_LOG_LEVEL");
    td_log_level_t lvl = TD_LOG_INFO;
    int bad = env && *env && td_log_level_parse(env, &lvl) != 0;
    td_log_set_level(bad ? TD_LOG_INFO : lvl);
    if (bad) {
        struct json_object *f = json_object_new_object();
        json_object_object_add(f, "value", json_object_new_string(env));
        td_log(TD_LOG_WARN, NULL, "invalid TE_LOG_LEVEL (debug|info|warn|error), using info", f);
    }
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

static void write_all(const char *buf, size_t len) {
    while (len > 0) {
        ssize_t w = write(STDERR_FILENO, buf, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere left to report it */
        }
        buf += w;
        len -= (size_t)w;
    }
}

static void format_ts(char *buf, size_t size) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03dZ", (int)(ts.tv_nsec / 1000000));
}

static int reserved(const char *key, int have_trace) {
    return !strcmp(key, "ts") || !strcmp(key, "level") || !strcmp(key, "service") ||
           !strcmp(key, "msg") || (have_trace && !strcmp(key, "trace_id"));
}

void td_log(td_log_level_t lvl, const char *trace_id, const char *msg, struct json_object *fields) {
    if (!td_log_enabled(lvl)) {
        json_object_put(fields);
        return;
    }
    char ts[48];
    format_ts(ts, sizeof ts);
    struct json_object *o = json_object_new_object();
    if (!o) {
        json_object_put(fields);
        return;
    }
    json_object_object_add(o, "ts", json_object_new_string(ts));
    json_object_object_add(o, "level", json_object_new_string(td_log_level_name(lvl)));
    json_object_object_add(o, "service", json_object_new_string(g_service));
    json_object_object_add(o, "msg", json_object_new_string(msg ? msg : ""));
    if (trace_id)
        json_object_object_add(o, "trace_id", json_object_new_string(trace_id));
    if (fields && json_object_is_type(fields, json_type_object)) {
        json_object_object_foreach(fields, key, val) {
            if (reserved(key, trace_id != NULL))
                continue;
            json_object_object_add(o, key, json_object_get(val));
        }
    }
    json_object_put(fields);

    size_t jlen = 0;
    const char *js = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &jlen);
    /* Worst case: every byte becomes U+FFFD (3 bytes), plus '\n'. */
    char stackbuf[2048];
    char *line = jlen * 3 + 1 <= sizeof stackbuf ? stackbuf : malloc(jlen * 3 + 1);
    if (line && js) {
        const unsigned char *s = (const unsigned char *)js;
        size_t n = 0;
        for (size_t i = 0; i < jlen;) {
            size_t k = utf8_seq(s + i, jlen - i);
            if (k == 0) {
                memcpy(line + n, "\xEF\xBF\xBD", 3);
                n += 3;
                i++;
            } else {
                memcpy(line + n, s + i, k);
                n += k;
                i += k;
            }
        }
        line[n++] = '\n';
        write_all(line, n);
    }
    if (line != stackbuf)
        free(line);
    json_object_put(o);
}

void td_vlogf(td_log_level_t lvl, const char *trace_id, const char *fmt, va_list ap) {
    if (!td_log_enabled(lvl))
        return;
    char buf[1024];
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    if (n < 0) {
        va_end(ap2);
        td_log(lvl, trace_id, fmt, NULL);
        return;
    }
    if ((size_t)n < sizeof buf) {
        va_end(ap2);
        td_log(lvl, trace_id, buf, NULL);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (big)
        vsnprintf(big, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    td_log(lvl, trace_id, big ? big : buf, NULL);
    free(big);
}

void td_logf(td_log_level_t lvl, const char *trace_id, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    td_vlogf(lvl, trace_id, fmt, ap);
    va_end(ap);
}
