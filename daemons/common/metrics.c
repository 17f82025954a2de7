/* Prometheus metrics registry: see metrics.h. */
#include "metrics.h"

#include <json-c/json.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

typedef enum { T_COUNTER, T_GAUGE, T_HISTOGRAM } mtype_t;

typedef struct series_s {
    struct series_s *hnext; /* hash chain */
    uint64_t hash;
    char **values;          /* nlabels copies */
    double value;           /* counter, gauge */
    uint64_t *counts;       /* histogram: nb + 1 (last = +Inf), not cumulative */
    double sum;
    uint64_t count;
} series_t;

struct td_metric_s {
    char *name;
    char *help;
    mtype_t type;
    size_t nlabels;
    char **labels;
    size_t nb;      /* finite bucket bounds */
    double *bounds; /* nb ascending */
    pthread_mutex_t mu;
    series_t **order; /* first-use order */
    size_t nseries, cap;
    series_t **table; /* hash table, tsize a power of two */
    size_t tsize;
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static td_metric_t **g_fams;
static size_t g_nfams, g_capfams;

static const double default_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1,    0.25,  0.5,    1,     2.5,  5,     10};

static const char *type_name(mtype_t t) {
    return t == T_COUNTER ? "counter" : t == T_GAUGE ? "gauge" : "histogram";
}

static void log_misuse(const char *name, const char *why) {
    struct json_object *f = json_object_new_object();
    json_object_object_add(f, "metric", json_object_new_string(name ? name : "(null)"));
    json_object_object_add(f, "error", json_object_new_string(why));
    td_log(TD_LOG_ERROR, NULL, "metric registration refused", f);
}

/* ---- names ---------------------------------------------------------------- */

static int valid_metric_name(const char *s) {
    if (!s || !*s)
        return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        if (!alpha && !(p != s && c >= '0' && c <= '9'))
            return 0;
    }
    return 1;
}

static int valid_label_name(const char *s) {
    if (!s || !*s || (s[0] == '_' && s[1] == '_'))
        return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        if (!alpha && !(p != s && c >= '0' && c <= '9'))
            return 0;
    }
    return 1;
}

/* ---- families ------------------------------------------------------------- */

static void series_free(series_t *s, size_t nlabels) {
    if (!s)
        return;
    if (s->values)
        for (size_t i = 0; i < nlabels; i++)
            free(s->values[i]);
    free(s->values);
    free(s->counts);
    free(s);
}

static void family_free(td_metric_t *m) {
    if (!m)
        return;
    for (size_t i = 0; i < m->nseries; i++)
        series_free(m->order[i], m->nlabels);
    free(m->order);
    free(m->table);
    for (size_t i = 0; i < m->nlabels; i++)
        free(m->labels[i]);
    free(m->labels);
    free(m->bounds);
    free(m->name);
    free(m->help);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static uint64_t hash_values(const char *const *values, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        const char *v = values && values[i] ? values[i] : "";
        for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
            h ^= *p;
            h *= 1099511628211ULL;
        }
        h ^= 0xFF; /* separator: ("a","b") != ("ab","") */
        h *= 1099511628211ULL;
    }
    return h;
}

static int values_equal(const series_t *s, const char *const *values, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const char *v = values && values[i] ? values[i] : "";
        if (strcmp(s->values[i], v) != 0)
            return 0;
    }
    return 1;
}

static int table_grow(td_metric_t *m) {
    size_t nsize = m->tsize ? m->tsize * 2 : 16;
    series_t **nt = calloc(nsize, sizeof *nt);
    if (!nt)
        return -1;
    for (size_t i = 0; i < m->nseries; i++) {
        series_t *s = m->order[i];
        size_t b = (size_t)(s->hash & (nsize - 1));
        s->hnext = nt[b];
        nt[b] = s;
    }
    free(m->table);
    m->table = nt;
    m->tsize = nsize;
    return 0;
}

/* Finds or creates the label set; m->mu held.  NULL only when out of memory. */
static series_t *series_get(td_metric_t *m, const char *const *values) {
    uint64_t h = hash_values(values, m->nlabels);
    if (m->tsize) {
        for (series_t *s = m->table[h & (m->tsize - 1)]; s; s = s->hnext)
            if (s->hash == h && values_equal(s, values, m->nlabels))
                return s;
    }
    if (m->nseries == m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 8;
        series_t **no = realloc(m->order, ncap * sizeof *no);
        if (!no)
            return NULL;
        m->order = no;
        m->cap = ncap;
    }
    if (m->nseries + 1 > m->tsize / 2 && table_grow(m) != 0)
        return NULL;
    series_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->hash = h;
    if (m->nlabels) {
        s->values = calloc(m->nlabels, sizeof *s->values);
        if (!s->values) {
            free(s);
            return NULL;
        }
        for (size_t i = 0; i < m->nlabels; i++) {
            s->values[i] = strdup(values && values[i] ? values[i] : "");
            if (!s->values[i]) {
                series_free(s, m->nlabels);
                return NULL;
            }
        }
    }
    if (m->type == T_HISTOGRAM) {
        s->counts = calloc(m->nb + 1, sizeof *s->counts);
        if (!s->counts) {
            series_free(s, m->nlabels);
            return NULL;
        }
    }
    m->order[m->nseries++] = s;
    size_t b = (size_t)(h & (m->tsize - 1));
    s->hnext = m->table[b];
    m->table[b] = s;
    return s;
}

static td_metric_t *family_new(const char *name, const char *help, mtype_t type,
                               const char *const *label_names, const double *bounds, size_t nb) {
    td_metric_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    pthread_mutex_init(&m->mu, NULL);
    m->type = type;
    m->name = strdup(name);
    m->help = strdup(help ? help : "");
    if (!m->name || !m->help)
        goto oom;
    if (label_names)
        while (label_names[m->nlabels])
            m->nlabels++;
    if (m->nlabels) {
        m->labels = calloc(m->nlabels, sizeof *m->labels);
        if (!m->labels)
            goto oom;
        for (size_t i = 0; i < m->nlabels; i++)
            if (!(m->labels[i] = strdup(label_names[i])))
                goto oom;
    }
    if (nb) {
        m->bounds = malloc(nb * sizeof *m->bounds);
        if (!m->bounds)
            goto oom;
        memcpy(m->bounds, bounds, nb * sizeof *m->bounds);
    }
    m->nb = nb;
    /* An unlabelled family has its one series from the start. */
    if (m->nlabels == 0 && !series_get(m, NULL))
        goto oom;
    return m;
oom:
    family_free(m);
    return NULL;
}

static int same_shape(const td_metric_t *m, mtype_t type, const char *const *label_names,
                      const double *bounds, size_t nb) {
    if (m->type != type)
        return 0;
    size_t n = 0;
    if (label_names)
        while (label_names[n])
            n++;
    if (n != m->nlabels)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(m->labels[i], label_names[i]) != 0)
            return 0;
    if (type == T_HISTOGRAM) {
        if (nb != m->nb)
            return 0;
        for (size_t i = 0; i < nb; i++)
            if (bounds[i] != m->bounds[i])
                return 0;
    }
    return 1;
}

static td_metric_t *reg(const char *name, const char *help, mtype_t type,
                        const char *const *label_names, const double *buckets, size_t nbuckets) {
    if (!valid_metric_name(name)) {
        log_misuse(name, "invalid metric name");
        return NULL;
    }
    if (label_names) {
        for (size_t i = 0; label_names[i]; i++) {
            if (!valid_label_name(label_names[i])) {
                log_misuse(name, "invalid label name");
                return NULL;
            }
            if (type == T_HISTOGRAM && !strcmp(label_names[i], "le")) {
                log_misuse(name, "\"le\" is reserved for histogram buckets");
                return NULL;
            }
            for (size_t j = 0; j < i; j++)
                if (!strcmp(label_names[i], label_names[j])) {
                    log_misuse(name, "duplicate label name");
                    return NULL;
                }
        }
    }
    const double *bounds = NULL;
    size_t nb = 0;
    if (type == T_HISTOGRAM) {
        bounds = buckets ? buckets : default_buckets;
        nb = buckets ? nbuckets : sizeof default_buckets / sizeof default_buckets[0];
        if (nb && isinf(bounds[nb - 1]) && bounds[nb - 1] > 0)
            nb--; /* +Inf is implicit */
        for (size_t i = 0; i < nb; i++) {
            if (isnan(bounds[i]) || isinf(bounds[i]) || (i && !(bounds[i] > bounds[i - 1]))) {
                log_misuse(name, "bucket bounds must be finite and strictly ascending");
                return NULL;
            }
        }
    }

    td_metric_t *found = NULL;
    int mismatch = 0;
    pthread_mutex_lock(&g_mu);
    for (size_t i = 0; i < g_nfams; i++) {
        if (!strcmp(g_fams[i]->name, name)) {
            if (same_shape(g_fams[i], type, label_names, bounds, nb))
                found = g_fams[i];
            else
                mismatch = 1;
            break;
        }
    }
    if (!found && !mismatch) {
        if (g_nfams == g_capfams) {
            size_t ncap = g_capfams ? g_capfams * 2 : 16;
            td_metric_t **nf = realloc(g_fams, ncap * sizeof *nf);
            if (nf) {
                g_fams = nf;
                g_capfams = ncap;
            }
        }
        if (g_nfams < g_capfams) {
            found = family_new(name, help, type, label_names, bounds, nb);
            if (found)
                g_fams[g_nfams++] = found;
        }
    }
    pthread_mutex_unlock(&g_mu);
    if (mismatch)
        log_misuse(name, "already registered with another type, labels or buckets");
    return found;
}

td_metric_t *td_counter(const char *name, const char *help, const char *const *label_names) {
    return reg(name, help, T_COUNTER, label_names, NULL, 0);
}

td_metric_t *td_gauge(const char *name, const char *help, const char *const *label_names) {
    return reg(name, help, T_GAUGE, label_names, NULL, 0);
}

td_metric_t *td_histogram(const char *name, const char *help, const char *const *label_names,
                          const double *buckets, size_t nbuckets) {
    return reg(name, help, T_HISTOGRAM, label_names, buckets, nbuckets);
}

/* ---- updates -------------------------------------------------------------- */

void td_metric_inc(td_metric_t *m, const char *const *label_values, double by) {
    if (!m || m->type == T_HISTOGRAM || isnan(by) || (m->type == T_COUNTER && by < 0))
        return;
    pthread_mutex_lock(&m->mu);
    series_t *s = series_get(m, label_values);
    if (s)
        s->value += by;
    pthread_mutex_unlock(&m->mu);
}

void td_metric_set(td_metric_t *m, const char *const *label_values, double v) {
    if (!m || m->type == T_HISTOGRAM)
        return;
    pthread_mutex_lock(&m->mu);
    series_t *s = series_get(m, label_values);
    if (s)
        s->value = v;
    pthread_mutex_unlock(&m->mu);
}

void td_metric_observe(td_metric_t *m, const char *const *label_values, double v) {
    if (!m || m->type != T_HISTOGRAM || isnan(v))
        return;
    /* The bucket index does not depend on the label set: find it unlocked. */
    size_t lo = 0, hi = m->nb; /* first bound >= v, or nb (+Inf) */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v <= m->bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    pthread_mutex_lock(&m->mu);
    series_t *s = series_get(m, label_values);
    if (s) {
        s->counts[lo]++;
        s->count++;
        s->sum += v;
    }
    pthread_mutex_unlock(&m->mu);
}

double td_metric_value(td_metric_t *m, const char *const *label_values) {
    if (!m)
        return 0;
    double v = 0;
    pthread_mutex_lock(&m->mu);
    uint64_t h = hash_values(label_values, m->nlabels);
    if (m->tsize) {
        for (series_t *s = m->table[h & (m->tsize - 1)]; s; s = s->hnext) {
            if (s->hash == h && values_equal(s, label_values, m->nlabels)) {
                v = m->type == T_HISTOGRAM ? (double)s->count : s->value;
                break;
            }
        }
    }
    pthread_mutex_unlock(&m->mu);
    return v;
}

/* ---- rendering ------------------------------------------------------------ */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} sbuf_t;

static void sb_put(sbuf_t *b, const char *s, size_t n) {
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 4096;
        while (b->len + n + 1 > ncap)
            ncap *= 2;
        char *np = realloc(b->p, ncap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(sbuf_t *b, const char *s) { sb_put(b, s, strlen(s)); }

/* Escapes backslash and newline, and the double quote when quote is set. */
static void sb_escaped(sbuf_t *b, const char *s, int quote) {
    const char *run = s;
    for (const char *p = s; *p; p++) {
        const char *rep = NULL;
        if (*p == '\\')
            rep = "\\\\";
        else if (*p == '\n')
            rep = "\\n";
        else if (quote && *p == '"')
            rep = "\\\"";
        if (rep) {
            sb_put(b, run, (size_t)(p - run));
            sb_str(b, rep);
            run = p + 1;
        }
    }
    sb_str(b, run);
}

/* Shortest of %.15g / %.17g that reads back exactly; Prometheus spellings
 * of the special values. */
static void fmt_double(char *buf, size_t size, double v) {
    if (isnan(v)) {
        snprintf(buf, size, "NaN");
    } else if (isinf(v)) {
        snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
    } else {
        snprintf(buf, size, "%.15g", v);
        if (strtod(buf, NULL) != v)
            snprintf(buf, size, "%.17g", v);
    }
}

static void sb_double(sbuf_t *b, double v) {
    char num[40];
    fmt_double(num, sizeof num, v);
    sb_str(b, num);
}

static void sb_u64(sbuf_t *b, uint64_t v) {
    char num[24];
    snprintf(num, sizeof num, "%llu", (unsigned long long)v);
    sb_str(b, num);
}

/* {a="x",b="y"[,le="..."]} — nothing when there are no labels and no le. */
static void sb_labels(sbuf_t *b, const td_metric_t *m, const series_t *s, const char *le) {
    if (m->nlabels == 0 && !le)
        return;
    sb_str(b, "{");
    for (size_t i = 0; i < m->nlabels; i++) {
        if (i)
            sb_str(b, ",");
        sb_str(b, m->labels[i]);
        sb_str(b, "=\"");
        sb_escaped(b, s->values[i], 1);
        sb_str(b, "\"");
    }
    if (le) {
        if (m->nlabels)
            sb_str(b, ",");
        sb_str(b, "le=\"");
        sb_str(b, le);
        sb_str(b, "\"");
    }
    sb_str(b, "}");
}

static void render_family(sbuf_t *b, td_metric_t *m) {
    sb_str(b, "# HELP ");
    sb_str(b, m->name);
    sb_str(b, " ");
    sb_escaped(b, m->help, 0);
    sb_str(b, "\n# TYPE ");
    sb_str(b, m->name);
    sb_str(b, " ");
    sb_str(b, type_name(m->type));
    sb_str(b, "\n");
    for (size_t i = 0; i < m->nseries; i++) {
        const series_t *s = m->order[i];
        if (m->type != T_HISTOGRAM) {
            sb_str(b, m->name);
            sb_labels(b, m, s, NULL);
            sb_str(b, " ");
            sb_double(b, s->value);
            sb_str(b, "\n");
            continue;
        }
        uint64_t cum = 0;
        for (size_t k = 0; k <= m->nb; k++) {
            char le[40];
            if (k < m->nb)
                fmt_double(le, sizeof le, m->bounds[k]);
            else
                snprintf(le, sizeof le, "+Inf");
            cum += s->counts[k];
            sb_str(b, m->name);
            sb_str(b, "_bucket");
            sb_labels(b, m, s, le);
            sb_str(b, " ");
            sb_u64(b, cum);
            sb_str(b, "\n");
        }
        sb_str(b, m->name);
        sb_str(b, "_sum");
        sb_labels(b, m, s, NULL);
        sb_str(b, " ");
        sb_double(b, s->sum);
        sb_str(b, "\n");
        sb_str(b, m->name);
        sb_str(b, "_count");
        sb_labels(b, m, s, NULL);
        sb_str(b, " ");
        sb_u64(b, s->count);
        sb_str(b, "\n");
    }
}

char *td_metrics_render(size_t *len) {
    sbuf_t b = {0};
    sb_put(&b, "", 0); /* an empty registry renders as "" */
    pthread_mutex_lock(&g_mu);
    for (size_t i = 0; i < g_nfams; i++) {
        td_metric_t *m = g_fams[i];
        pthread_mutex_lock(&m->mu);
        render_family(&b, m);
        pthread_mutex_unlock(&m->mu);
    }
    pthread_mutex_unlock(&g_mu);
    if (b.oom) {
        free(b.p);
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.p;
}

void td_metrics_shutdown(void) {
    pthread_mutex_lock(&g_mu);
    for (size_t i = 0; i < g_nfams; i++)
        family_free(g_fams[i]);
    free(g_fams);
    g_fams = NULL;
    g_nfams = g_capfams = 0;
    pthread_mutex_unlock(&g_mu);
}
