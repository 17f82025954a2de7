/* Validation problem list: a growable array of (field, reason) strings. */
#include "todoevents/problems.h"
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct te_problems_s {
    size_t n, cap;
    char **field;
    char **reason;
};

te_problems_t *te_problems_new(void) { return calloc(1, sizeof(te_problems_t)); }

void te_problems_clear(te_problems_t *p) {
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++) {
        free(p->field[i]);
        free(p->reason[i]);
    }
    p->n = 0;
}

void te_problems_destroy(te_problems_t *p) {
    if (!p)
        return;
    te_problems_clear(p);
    free(p->field);
    free(p->reason);
    free(p);
}

size_t te_problems_count(const te_problems_t *p) { return p ? p->n : 0; }

const char *te_problems_field(const te_problems_t *p, size_t i) {
    return p && i < p->n ? p->field[i] : NULL;
}

const char *te_problems_reason(const te_problems_t *p, size_t i) {
    return p && i < p->n ? p->reason[i] : NULL;
}

te_err_t te_problems_add(te_problems_t *p, const char *field, const char *fmt, ...) {
    if (!p)
        return TE_OK;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        char **f = realloc(p->field, cap * sizeof(char *));
        if (!f)
            return TE_ERR_NOMEM;
        p->field = f;
        char **r = realloc(p->reason, cap * sizeof(char *));
        if (!r)
            return TE_ERR_NOMEM;
        p->reason = r;
        p->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *reason = len >= 0 ? malloc((size_t)len + 1) : NULL;
    char *f = te__strdup(field ? field : "");
    if (!reason || !f) {
        free(reason);
        free(f);
        return TE_ERR_NOMEM;
    }
    va_start(ap, fmt);
    vsnprintf(reason, (size_t)len + 1, fmt, ap);
    va_end(ap);
    p->field[p->n] = f;
    p->reason[p->n] = reason;
    p->n++;
    return TE_OK;
}

char *te_problems_format(const te_problems_t *p, size_t i, char *buf, size_t size) {
    if (!buf || size == 0)
        return buf;
    if (!p || i >= p->n) {
        buf[0] = '\0';
        return buf;
    }
    if (p->field[i][0])
        snprintf(buf, size, "%s: %s", p->field[i], p->reason[i]);
    else
        snprintf(buf, size, "%s", p->reason[i]);
    return buf;
}
