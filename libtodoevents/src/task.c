/* Task model: storage, validation and JSON (json-c) conversion. */
#include "todoevents/task.h"
#include "todoevents/recurrence.h"
#include "internal.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uuid/uuid.h>

struct te_task_s {
    char *id, *user_id, *title, *description, *timezone;
    te_priority_t priority;
    te_status_t status;
    int has_due;
    te_time_t due;
    char **tags;
    size_t ntags;
    te_reminder_t *reminders;
    size_t nreminders;
    char *rrule, *rec_zone, *anchor, *series_id;
    int occurrence;
    te_time_t created_at, updated_at, completed_at;
};

static const char *const priority_names[] = {"low", "medium", "high", "urgent"};
static const char *const status_names[] = {"pending", "completed"};

const char *te_priority_name(te_priority_t p) {
    return (unsigned)p < 4 ? priority_names[p] : "medium";
}

te_err_t te_priority_parse(const char *name, te_priority_t *out) {
    for (int i = 0; name && i < 4; i++)
        if (strcmp(name, priority_names[i]) == 0) {
            *out = (te_priority_t)i;
            return TE_OK;
        }
    return TE_ERR_INVALID_ARG;
}

const char *te_status_name(te_status_t s) { return (unsigned)s < 2 ? status_names[s] : "pending"; }

te_err_t te_status_parse(const char *name, te_status_t *out) {
    for (int i = 0; name && i < 2; i++)
        if (strcmp(name, status_names[i]) == 0) {
            *out = (te_status_t)i;
            return TE_OK;
        }
    return TE_ERR_INVALID_ARG;
}

te_task_t *te_task_new(void) {
    te_task_t *t = calloc(1, sizeof *t);
    if (t)
        t->priority = TE_PRIORITY_MEDIUM;
    return t;
}

void te_task_destroy(te_task_t *t) {
    if (!t)
        return;
    free(t->id);
    free(t->user_id);
    free(t->title);
    free(t->description);
    free(t->timezone);
    te_task_clear_tags(t);
    free(t->tags);
    free(t->reminders);
    free(t->rrule);
    free(t->rec_zone);
    free(t->anchor);
    free(t->series_id);
    free(t);
}

/* Replaces *slot with a copy of s (NULL clears). */
static te_err_t set_str(char **slot, const char *s) {
    char *c = NULL;
    if (s && !(c = te__strdup(s)))
        return TE_ERR_NOMEM;
    free(*slot);
    *slot = c;
    return TE_OK;
}

#define SETTER(field)                                                                      \
    te_err_t te_task_set_##field(te_task_t *t, const char *v) {                            \
        return t ? set_str(&t->field, v) : TE_ERR_INVALID_ARG;                              \
    }                                                                                      \
    const char *te_task_##field(const te_task_t *t) { return t ? t->field : NULL; }
SETTER(id)
SETTER(user_id)
SETTER(title)
SETTER(description)
SETTER(timezone)
#undef SETTER

te_err_t te_task_set_priority(te_task_t *t, te_priority_t p) {
    if (!t || (unsigned)p > TE_PRIORITY_URGENT)
        return TE_ERR_INVALID_ARG;
    t->priority = p;
    return TE_OK;
}

te_err_t te_task_set_status(te_task_t *t, te_status_t s) {
    if (!t || (unsigned)s > TE_STATUS_COMPLETED)
        return TE_ERR_INVALID_ARG;
    t->status = s;
    return TE_OK;
}

te_err_t te_task_set_due(te_task_t *t, int has_due, te_time_t due) {
    if (!t)
        return TE_ERR_INVALID_ARG;
    t->has_due = has_due != 0;
    t->due = has_due ? due : 0;
    return TE_OK;
}

te_err_t te_task_add_tag(te_task_t *t, const char *tag) {
    if (!t || !tag)
        return TE_ERR_INVALID_ARG;
    char **n = realloc(t->tags, (t->ntags + 1) * sizeof *n);
    if (!n)
        return TE_ERR_NOMEM;
    t->tags = n;
    if (!(t->tags[t->ntags] = te__strdup(tag)))
        return TE_ERR_NOMEM;
    t->ntags++;
    return TE_OK;
}

te_err_t te_task_clear_tags(te_task_t *t) {
    if (!t)
        return TE_ERR_INVALID_ARG;
    for (size_t i = 0; i < t->ntags; i++)
        free(t->tags[i]);
    t->ntags = 0;
    return TE_OK;
}

te_err_t te_task_add_reminder(te_task_t *t, const te_reminder_t *r) {
    if (!t || !r)
        return TE_ERR_INVALID_ARG;
    te_reminder_t *n = realloc(t->reminders, (t->nreminders + 1) * sizeof *n);
    if (!n)
        return TE_ERR_NOMEM;
    t->reminders = n;
    t->reminders[t->nreminders++] = *r;
    return TE_OK;
}

te_err_t te_task_clear_reminders(te_task_t *t) {
    if (!t)
        return TE_ERR_INVALID_ARG;
    t->nreminders = 0;
    return TE_OK;
}

te_err_t te_task_set_recurrence(te_task_t *t, const char *rrule, const char *zone,
                                const char *anchor) {
    if (!t)
        return TE_ERR_INVALID_ARG;
    if (!rrule)
        zone = anchor = NULL;
    if (set_str(&t->rrule, rrule) || set_str(&t->rec_zone, zone) || set_str(&t->anchor, anchor))
        return TE_ERR_NOMEM;
    return TE_OK;
}

te_err_t te_task_set_series(te_task_t *t, const char *series_id, int occurrence) {
    if (!t || occurrence < 0)
        return TE_ERR_INVALID_ARG;
    t->occurrence = occurrence;
    return set_str(&t->series_id, series_id);
}

te_err_t te_task_set_created_at(te_task_t *t, te_time_t v) {
    if (!t)
        return TE_ERR_INVALID_ARG;
    t->created_at = v;
    return TE_OK;
}
te_err_t te_task_set_updated_at(te_task_t *t, te_time_t v) {
    if (!t)
        return TE_ERR_INVALID_ARG;
    t->updated_at = v;
    return TE_OK;
}
te_err_t te_task_set_completed_at(te_task_t *t, te_time_t v) {
    if (!t)
        return TE_ERR_INVALID_ARG;
    t->completed_at = v;
    return TE_OK;
}

te_priority_t te_task_priority(const te_task_t *t) { return t ? t->priority : TE_PRIORITY_MEDIUM; }
te_status_t te_task_status(const te_task_t *t) { return t ? t->status : TE_STATUS_PENDING; }
int te_task_due(const te_task_t *t, te_time_t *due) {
    if (!t || !t->has_due)
        return 0;
    if (due)
        *due = t->due;
    return 1;
}
size_t te_task_tag_count(const te_task_t *t) { return t ? t->ntags : 0; }
const char *te_task_tag(const te_task_t *t, size_t i) {
    return t && i < t->ntags ? t->tags[i] : NULL;
}
size_t te_task_reminder_count(const te_task_t *t) { return t ? t->nreminders : 0; }
te_err_t te_task_reminder(const te_task_t *t, size_t i, te_reminder_t *out) {
    if (!t || !out)
        return TE_ERR_INVALID_ARG;
    if (i >= t->nreminders)
        return TE_ERR_NOT_FOUND;
    *out = t->reminders[i];
    return TE_OK;
}
te_err_t te_task_reminder_time(const te_task_t *t, size_t i, te_time_t *out) {
    te_reminder_t r;
    te_err_t err = te_task_reminder(t, i, &r);
    if (err)
        return err;
    if (r.kind == TE_REMINDER_ABSOLUTE) {
        *out = r.at;
        return TE_OK;
    }
    if (!t->has_due)
        return TE_ERR_NOT_FOUND;
    *out = t->due - (te_time_t)r.offset_minutes * 60 * TE_USEC_PER_SEC;
    return TE_OK;
}
const char *te_task_rrule(const te_task_t *t) { return t ? t->rrule : NULL; }
const char *te_task_recurrence_zone(const te_task_t *t) {
    if (!t)
        return NULL;
    return t->rec_zone ? t->rec_zone : t->timezone ? t->timezone : "UTC";
}
const char *te_task_recurrence_anchor(const te_task_t *t) {
    return t && t->anchor ? t->anchor : "schedule";
}
const char *te_task_series_id(const te_task_t *t) { return t ? t->series_id : NULL; }
int te_task_occurrence(const te_task_t *t) { return t ? t->occurrence : 0; }
te_time_t te_task_created_at(const te_task_t *t) { return t ? t->created_at : 0; }
te_time_t te_task_updated_at(const te_task_t *t) { return t ? t->updated_at : 0; }
te_time_t te_task_completed_at(const te_task_t *t) { return t ? t->completed_at : 0; }

int te_task_is_overdue(const te_task_t *t, te_time_t now) {
    return t && t->status == TE_STATUS_PENDING && t->has_due && t->due < now;
}

te_task_t *te_task_clone(const te_task_t *src) {
    if (!src)
        return NULL;
    te_task_t *t = te_task_new();
    if (!t)
        return NULL;
    int bad = set_str(&t->id, src->id) || set_str(&t->user_id, src->user_id) ||
              set_str(&t->title, src->title) || set_str(&t->description, src->description) ||
              set_str(&t->timezone, src->timezone) || set_str(&t->rrule, src->rrule) ||
              set_str(&t->rec_zone, src->rec_zone) || set_str(&t->anchor, src->anchor) ||
              set_str(&t->series_id, src->series_id);
    for (size_t i = 0; !bad && i < src->ntags; i++)
        bad = te_task_add_tag(t, src->tags[i]) != TE_OK;
    for (size_t i = 0; !bad && i < src->nreminders; i++)
        bad = te_task_add_reminder(t, &src->reminders[i]) != TE_OK;
    if (bad) {
        te_task_destroy(t);
        return NULL;
    }
    t->priority = src->priority;
    t->status = src->status;
    t->has_due = src->has_due;
    t->due = src->due;
    t->occurrence = src->occurrence;
    t->created_at = src->created_at;
    t->updated_at = src->updated_at;
    t->completed_at = src->completed_at;
    return t;
}

/* ---- validation ---- */

/* Fields whose JSON had the wrong type: value validation skips them so a
 * field gets one problem, not two. */
enum {
    F_ID = 1 << 0, F_USER = 1 << 1, F_TITLE = 1 << 2, F_DESC = 1 << 3, F_TAGS = 1 << 4,
    F_TZ = 1 << 5, F_REMINDERS = 1 << 6, F_RECUR = 1 << 7, F_SERIES = 1 << 8, F_DUE = 1 << 9
};

typedef struct {
    te_problems_t *problems;
    char *errstr;
    size_t errstr_size;
    int count;
} vctx_t;

static void problem(vctx_t *v, const char *field, const char *fmt, ...) TE_PRINTF(3, 4);
static void problem(vctx_t *v, const char *field, const char *fmt, ...) {
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    if (v->count++ == 0)
        te__seterr(v->errstr, v->errstr_size, TE_ERR_INVALID, "%s: %s", field, reason);
    te_problems_add(v->problems, field, "%s", reason);
}

/* Checks a text field: UTF-8, length in code points, blank, controls. */
static void check_text(vctx_t *v, const char *field, const char *s, long min, long max,
                       bool allow_newlines) {
    long n = te__utf8_count(s, strlen(s));
    if (n < 0) {
        problem(v, field, "must be valid UTF-8");
        return;
    }
    if (min > 0 && (n == 0 || te__utf8_is_blank(s)))
        problem(v, field, "must not be blank");
    else if (n > max)
        problem(v, field, "must be at most %ld characters (got %ld)", max, n);
    if (te__utf8_has_control(s, allow_newlines))
        problem(v, field, "must not contain control characters");
}

static bool is_uuid(const char *s) {
    uuid_t u;
    return strlen(s) == 36 && uuid_parse(s, u) == 0;
}

static void validate_fields(const te_task_t *t, vctx_t *v, int skip) {
    if (!(skip & F_ID) && t->id && !is_uuid(t->id))
        problem(v, "id", "must be a UUID");
    if (!(skip & F_USER) && t->user_id) {
        if (!t->user_id[0])
            problem(v, "user_id", "must not be empty");
        else
            check_text(v, "user_id", t->user_id, 1, 255, false);
    }
    if (!(skip & F_TITLE)) {
        if (!t->title)
            problem(v, "title", "is required");
        else
            check_text(v, "title", t->title, 1, TE_TASK_TITLE_MAX, false);
    }
    if (!(skip & F_DESC) && t->description)
        check_text(v, "description", t->description, 0, TE_TASK_DESCRIPTION_MAX, true);
    if (!(skip & F_TAGS)) {
        if (t->ntags > TE_TASK_MAX_TAGS)
            problem(v, "tags", "must have at most %d tags (got %zu)", TE_TASK_MAX_TAGS, t->ntags);
        for (size_t i = 0; i < t->ntags; i++) {
            char f[32];
            snprintf(f, sizeof f, "tags[%zu]", i);
            check_text(v, f, t->tags[i], 1, TE_TASK_TAG_MAX, false);
            for (size_t j = 0; j < i; j++)
                if (strcasecmp(t->tags[i], t->tags[j]) == 0) {
                    problem(v, f, "duplicates tags[%zu] ('%s')", j, t->tags[j]);
                    break;
                }
        }
    }
    if (!(skip & F_TZ) && t->timezone) {
        char e[128];
        if (te_tz_check(t->timezone, e, sizeof e))
            problem(v, "timezone", "%s", e);
    }
    if (!(skip & F_REMINDERS)) {
        if (t->nreminders > TE_TASK_MAX_REMINDERS)
            problem(v, "reminders", "must have at most %d reminders (got %zu)",
                    TE_TASK_MAX_REMINDERS, t->nreminders);
        for (size_t i = 0; i < t->nreminders; i++) {
            const te_reminder_t *r = &t->reminders[i];
            char f[48];
            if (r->kind == TE_REMINDER_RELATIVE) {
                snprintf(f, sizeof f, "reminders[%zu].offset_minutes", i);
                if (r->offset_minutes < 0 || r->offset_minutes > TE_TASK_REMINDER_MAX_OFFSET_MIN)
                    problem(v, f, "must be between 0 and %d minutes (7 days) before the due date",
                            TE_TASK_REMINDER_MAX_OFFSET_MIN);
                else if (!t->has_due && !(skip & F_DUE))
                    problem(v, f, "a reminder relative to the due date needs a due_date");
            } else {
                snprintf(f, sizeof f, "reminders[%zu].at", i);
            }
            for (size_t j = 0; j < i; j++) {
                const te_reminder_t *o = &t->reminders[j];
                if (o->kind == r->kind && (r->kind == TE_REMINDER_RELATIVE
                                               ? o->offset_minutes == r->offset_minutes
                                               : o->at == r->at)) {
                    problem(v, f, "duplicates reminders[%zu]", j);
                    break;
                }
            }
        }
    }
    if (!(skip & F_RECUR) && t->rrule) {
        char e[256];
        if (!t->has_due && !(skip & F_DUE))
            problem(v, "recurrence", "a recurring task needs a due_date (its first occurrence)");
        if (te_rrule_validate(t->rrule, e, sizeof e))
            problem(v, "recurrence.rrule", "%s", e);
        if (t->rec_zone && te_tz_check(t->rec_zone, e, sizeof e))
            problem(v, "recurrence.timezone", "%s", e);
        te_anchor_t a;
        if (t->anchor && te_anchor_parse(t->anchor, &a))
            problem(v, "recurrence.anchor", "must be \"schedule\" or \"completion\"");
    }
    if (!(skip & F_SERIES)) {
        if (t->series_id && !is_uuid(t->series_id))
            problem(v, "recurrence.series_id", "must be a UUID");
        if (t->occurrence < 0)
            problem(v, "recurrence.occurrence", "must be at least 1");
    }
}

te_err_t te_task_validate(const te_task_t *t, te_problems_t *problems, char *errstr,
                          size_t errstr_size) {
    if (!t)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "no task");
    vctx_t v = {problems, errstr, errstr_size, 0};
    validate_fields(t, &v, 0);
    return v.count ? TE_ERR_INVALID : TE_OK;
}

/* ---- JSON in ---- */

/* Member lookup that treats JSON null as absent. */
static struct json_object *member(const struct json_object *o, const char *key) {
    struct json_object *m = NULL;
    if (!json_object_object_get_ex(o, key, &m))
        return NULL;
    return m && json_object_get_type(m) != json_type_null ? m : NULL;
}

/* String member into a setter; returns false (and records) on wrong type. */
static bool get_string(vctx_t *v, const struct json_object *o, const char *key,
                       const char **out) {
    struct json_object *m = member(o, key);
    *out = NULL;
    if (!m)
        return true;
    if (!json_object_is_type(m, json_type_string)) {
        problem(v, key, "must be a string");
        return false;
    }
    *out = json_object_get_string(m);
    return true;
}

static bool get_time(vctx_t *v, const struct json_object *o, const char *key, const char *field,
                     int *has, te_time_t *out) {
    struct json_object *m = member(o, key);
    *has = 0;
    if (!m)
        return true;
    char e[160];
    if (!json_object_is_type(m, json_type_string)) {
        problem(v, field, "must be an RFC 3339 date-time string");
        return false;
    }
    if (te_time_parse(json_object_get_string(m), out, NULL, e, sizeof e)) {
        problem(v, field, "%s", e);
        return false;
    }
    *has = 1;
    return true;
}

/* Integer member within [lo, hi]; *ok false on a problem. */
static bool get_int(vctx_t *v, const struct json_object *m, const char *field, int64_t lo,
                    int64_t hi, int64_t *out) {
    if (!json_object_is_type(m, json_type_int)) {
        problem(v, field, "must be an integer");
        return false;
    }
    int64_t x = json_object_get_int64(m);
    if (x < lo || x > hi) {
        problem(v, field, "must be between %lld and %lld", (long long)lo, (long long)hi);
        return false;
    }
    *out = x;
    return true;
}

#define NOMEM_IF(expr)                                                                     \
    do {                                                                                   \
        if ((expr) == TE_ERR_NOMEM) {                                                      \
            oom = true;                                                                    \
        }                                                                                  \
    } while (0)

static void parse_reminders(vctx_t *v, te_task_t *t, const struct json_object *o, int *skip,
                            bool *oomp) {
    bool oom = false;
    struct json_object *arr = member(o, "reminders");
    if (arr) {
        if (!json_object_is_type(arr, json_type_array)) {
            problem(v, "reminders", "must be an array");
            *skip |= F_REMINDERS;
        } else {
            size_t n = json_object_array_length(arr);
            for (size_t i = 0; i < n; i++) {
                struct json_object *r = json_object_array_get_idx(arr, i);
                char f[48];
                snprintf(f, sizeof f, "reminders[%zu]", i);
                if (!json_object_is_type(r, json_type_object)) {
                    problem(v, f, "must be an object with offset_minutes or at");
                    *skip |= F_REMINDERS;
                    continue;
                }
                struct json_object *off = member(r, "offset_minutes");
                struct json_object *at = member(r, "at");
                te_reminder_t rem = {0};
                if ((off != NULL) == (at != NULL)) {
                    problem(v, f, "must have exactly one of offset_minutes and at");
                    *skip |= F_REMINDERS;
                    continue;
                }
                if (off) {
                    char ff[64];
                    int64_t x;
                    snprintf(ff, sizeof ff, "%s.offset_minutes", f);
                    if (!get_int(v, off, ff, 0, TE_TASK_REMINDER_MAX_OFFSET_MIN, &x)) {
                        *skip |= F_REMINDERS;
                        continue;
                    }
                    rem.kind = TE_REMINDER_RELATIVE;
                    rem.offset_minutes = (int)x;
                } else {
                    char ff[64];
                    int has;
                    snprintf(ff, sizeof ff, "%s.at", f);
                    if (!get_time(v, r, "at", ff, &has, &rem.at)) {
                        *skip |= F_REMINDERS;
                        continue;
                    }
                    rem.kind = TE_REMINDER_ABSOLUTE;
                }
                NOMEM_IF(te_task_add_reminder(t, &rem));
            }
        }
    }
    /* The seed API's single relative reminder. */
    struct json_object *seed = member(o, "reminder_offset_minutes");
    if (seed) {
        int64_t x;
        if (!get_int(v, seed, "reminder_offset_minutes", 0, TE_TASK_REMINDER_MAX_OFFSET_MIN, &x)) {
            *skip |= F_REMINDERS;
        } else {
            bool dup = false;
            for (size_t i = 0; i < t->nreminders; i++)
                dup |= t->reminders[i].kind == TE_REMINDER_RELATIVE &&
                       t->reminders[i].offset_minutes == x;
            te_reminder_t rem = {TE_REMINDER_RELATIVE, (int)x, 0};
            if (!dup)
                NOMEM_IF(te_task_add_reminder(t, &rem));
        }
    }
    *oomp |= oom;
}

static void parse_recurrence(vctx_t *v, te_task_t *t, const struct json_object *o, int *skip,
                             bool *oomp) {
    bool oom = false;
    struct json_object *rec = member(o, "recurrence");
    if (!rec)
        return;
    if (!json_object_is_type(rec, json_type_object)) {
        problem(v, "recurrence", "must be an object");
        *skip |= F_RECUR;
        return;
    }
    const char *zone = NULL, *anchor = NULL, *series = NULL, *rrule = NULL;
    int bad = 0;
    struct json_object *m;
#define STR_MEMBER(key, var)                                                               \
    if ((m = member(rec, key))) {                                                          \
        if (json_object_is_type(m, json_type_string))                                      \
            var = json_object_get_string(m);                                               \
        else {                                                                             \
            problem(v, "recurrence." key, "must be a string");                            \
            bad = 1;                                                                       \
        }                                                                                  \
    }
    STR_MEMBER("rrule", rrule)
    STR_MEMBER("timezone", zone)
    STR_MEMBER("anchor", anchor)
    STR_MEMBER("series_id", series)
#undef STR_MEMBER
    int64_t occ = 0;
    if ((m = member(rec, "occurrence")) && !get_int(v, m, "recurrence.occurrence", 1, INT32_MAX, &occ))
        bad = 1;
    if (bad) {
        *skip |= F_RECUR | F_SERIES;
        return;
    }
    if (series || occ)
        NOMEM_IF(te_task_set_series(t, series, (int)occ));
    struct json_object *type = member(rec, "type");
    if (rrule && type) {
        problem(v, "recurrence", "give either rrule or the simple form (type...), not both");
        *skip |= F_RECUR;
        return;
    }
    if (rrule) {
        NOMEM_IF(te_task_set_recurrence(t, rrule, zone, anchor));
        *oomp |= oom;
        return;
    }
    if (!type) {
        problem(v, "recurrence", "needs rrule or type");
        *skip |= F_RECUR;
        return;
    }
    /* The seed's simple form, converted to an RRULE at the due date. */
    te_simple_recurrence_t s = {0};
    if (!json_object_is_type(type, json_type_string)) {
        problem(v, "recurrence.type", "must be a string");
        bad = 1;
    } else {
        s.type = json_object_get_string(type);
    }
    int64_t x;
    if ((m = member(rec, "interval"))) {
        if (get_int(v, m, "recurrence.interval", 1, 1000, &x))
            s.interval = (int)x;
        else
            bad = 1;
    }
    if ((m = member(rec, "day_of_month"))) {
        if (get_int(v, m, "recurrence.day_of_month", 1, 31, &x))
            s.day_of_month = (int)x;
        else
            bad = 1;
    }
    if ((m = member(rec, "days_of_week"))) {
        if (!json_object_is_type(m, json_type_array)) {
            problem(v, "recurrence.days_of_week", "must be an array of 0 (Monday) to 6 (Sunday)");
            bad = 1;
        } else {
            for (size_t i = 0; i < json_object_array_length(m); i++) {
                char f[48];
                snprintf(f, sizeof f, "recurrence.days_of_week[%zu]", i);
                if (get_int(v, json_object_array_get_idx(m, i), f, 0, 6, &x))
                    s.days_of_week |= 1u << x;
                else
                    bad = 1;
            }
        }
    }
    /* end_date: a date-time, or the seed's plain date ("2026-12-31"),
     * which is that day in the recurrence's zone (resolved below). */
    te_civil_t end_day = {0};
    m = member(rec, "end_date");
    const char *es = m && json_object_is_type(m, json_type_string) ? json_object_get_string(m) : NULL;
    if (es && strlen(es) == 10 &&
        sscanf(es, "%4d-%2d-%2d", &end_day.year, &end_day.month, &end_day.day) == 3 &&
        es[4] == '-' && es[7] == '-') {
        te_time_t probe;
        te_civil_t c = end_day;
        c.hour = 12;
        if (te_civil_to_time(&c, &probe) != TE_OK) {
            problem(v, "recurrence.end_date", "is not a valid date");
            bad = 1;
        } else {
            s.has_end_date = 1;
        }
    } else if (m) {
        end_day.year = 0;
        if (!get_time(v, rec, "end_date", "recurrence.end_date", &s.has_end_date, &s.end_date))
            bad = 1;
    }
    if (bad || (*skip & (F_DUE | F_TZ))) {
        *skip |= F_RECUR;
        return;
    }
    if (!t->has_due) {
        problem(v, "recurrence", "a recurring task needs a due_date (its first occurrence)");
        *skip |= F_RECUR;
        return;
    }
    const char *z = zone ? zone : t->timezone ? t->timezone : "UTC";
    if (end_day.year) {
        end_day.hour = 12; /* noon exists on every local day */
        if (te_tz_from_local(z, &end_day, &s.end_date, NULL) != TE_OK) {
            problem(v, "recurrence.end_date", "is out of range");
            *skip |= F_RECUR;
            return;
        }
    }
    char rule[512], e[256];
    size_t before = te_problems_count(v->problems);
    te_err_t err = te_simple_recurrence_to_rrule(&s, t->due, z, rule, sizeof rule, v->problems,
                                                 e, sizeof e);
    if (err) {
        /* The converter appended its own problems; count them for errstr. */
        if (te_problems_count(v->problems) == before || !v->problems)
            problem(v, "recurrence", "%s", e);
        else if (v->count++ == 0)
            te__seterr(v->errstr, v->errstr_size, TE_ERR_INVALID, "%s", e);
        *skip |= F_RECUR;
        return;
    }
    NOMEM_IF(te_task_set_recurrence(t, rule, zone, anchor));
    *oomp |= oom;
}

te_err_t te_task_from_json_object(const struct json_object *o, te_task_t **out,
                                  te_problems_t *problems, char *errstr, size_t errstr_size) {
    if (!o || !out)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "no input");
    *out = NULL;
    if (!json_object_is_type(o, json_type_object))
        return te__seterr(errstr, errstr_size, TE_ERR_PARSE, "a task must be a JSON object");
    te_task_t *t = te_task_new();
    if (!t)
        return TE_ERR_NOMEM;
    vctx_t v = {problems, errstr, errstr_size, 0};
    int skip = 0;
    bool oom = false;
    const char *s;

    static const struct {
        const char *key;
        int flag;
        size_t off;
    } strs[] = {
        {"id", F_ID, offsetof(te_task_t, id)},
        {"user_id", F_USER, offsetof(te_task_t, user_id)},
        {"title", F_TITLE, offsetof(te_task_t, title)},
        {"description", F_DESC, offsetof(te_task_t, description)},
        {"timezone", F_TZ, offsetof(te_task_t, timezone)},
    };
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++) {
        if (!get_string(&v, o, strs[i].key, &s))
            skip |= strs[i].flag;
        else if (s)
            NOMEM_IF(set_str((char **)((char *)t + strs[i].off), s));
    }
    if (!get_string(&v, o, "priority", &s)) {
    } else if (s && te_priority_parse(s, &t->priority)) {
        problem(&v, "priority", "must be one of low, medium, high, urgent");
    }
    if (!get_string(&v, o, "status", &s)) {
    } else if (s && te_status_parse(s, &t->status)) {
        problem(&v, "status", "must be pending or completed");
    }
    struct json_object *m = member(o, "completed");
    if (m) {
        if (!json_object_is_type(m, json_type_boolean))
            problem(&v, "completed", "must be a boolean");
        else
            t->status = json_object_get_boolean(m) ? TE_STATUS_COMPLETED : TE_STATUS_PENDING;
    }
    if ((m = member(o, "tags"))) {
        if (!json_object_is_type(m, json_type_array)) {
            problem(&v, "tags", "must be an array of strings");
            skip |= F_TAGS;
        } else {
            for (size_t i = 0; i < json_object_array_length(m); i++) {
                struct json_object *tag = json_object_array_get_idx(m, i);
                if (!json_object_is_type(tag, json_type_string)) {
                    char f[32];
                    snprintf(f, sizeof f, "tags[%zu]", i);
                    problem(&v, f, "must be a string");
                    skip |= F_TAGS;
                } else {
                    NOMEM_IF(te_task_add_tag(t, json_object_get_string(tag)));
                }
            }
        }
    }
    if (!get_time(&v, o, "due_date", "due_date", &t->has_due, &t->due))
        skip |= F_DUE;
    /* Zone problems are reported once by validation; the recurrence
     * conversion needs a valid zone, so check it first. */
    if (t->timezone && te_tz_check(t->timezone, NULL, 0))
        skip |= F_TZ, problem(&v, "timezone", "unknown time zone '%s'", t->timezone);
    int has;
    te_time_t ts;
    if (get_time(&v, o, "created_at", "created_at", &has, &ts) && has)
        t->created_at = ts;
    if (get_time(&v, o, "updated_at", "updated_at", &has, &ts) && has)
        t->updated_at = ts;
    if (get_time(&v, o, "completed_at", "completed_at", &has, &ts) && has)
        t->completed_at = ts;
    parse_reminders(&v, t, o, &skip, &oom);
    parse_recurrence(&v, t, o, &skip, &oom);

    if (oom) {
        te_task_destroy(t);
        return te__seterr(errstr, errstr_size, TE_ERR_NOMEM, "out of memory");
    }
    validate_fields(t, &v, skip | F_TZ);
    if (v.count) {
        te_task_destroy(t);
        return TE_ERR_INVALID;
    }
    *out = t;
    return TE_OK;
}

te_err_t te_task_from_json(const char *json, size_t len, te_task_t **out, te_problems_t *problems,
                           char *errstr, size_t errstr_size) {
    if (!json || !out)
        return te__seterr(errstr, errstr_size, TE_ERR_INVALID_ARG, "no input");
    *out = NULL;
    struct json_object *o = NULL;
    te_err_t err = te__json_parse_strict(json, len, &o, errstr, errstr_size);
    if (err == TE_OK)
        err = o ? te_task_from_json_object(o, out, problems, errstr, errstr_size)
                : te__seterr(errstr, errstr_size, TE_ERR_PARSE, "a task must be a JSON object");
    json_object_put(o);
    return err;
}

/* ---- JSON out ---- */

static struct json_object *time_or_null(te_time_t t, bool has) {
    char buf[TE_TIME_STRLEN];
    if (!has || te_time_format_utc(t, buf, sizeof buf))
        return NULL;
    return json_object_new_string(buf);
}

static struct json_object *str_or_null(const char *s) {
    return s ? json_object_new_string(s) : NULL;
}

te_err_t te_task_to_json_object(const te_task_t *t, te_time_t now, struct json_object **out) {
    if (!t || !out)
        return TE_ERR_INVALID_ARG;
    struct json_object *o = json_object_new_object();
    if (!o)
        return TE_ERR_NOMEM;
    json_object_object_add(o, "id", str_or_null(t->id));
    json_object_object_add(o, "user_id", str_or_null(t->user_id));
    json_object_object_add(o, "title", str_or_null(t->title));
    json_object_object_add(o, "description", str_or_null(t->description));
    json_object_object_add(o, "priority", json_object_new_string(te_priority_name(t->priority)));
    json_object_object_add(o, "status", json_object_new_string(te_status_name(t->status)));
    struct json_object *tags = json_object_new_array();
    for (size_t i = 0; i < t->ntags; i++)
        json_object_array_add(tags, json_object_new_string(t->tags[i]));
    json_object_object_add(o, "tags", tags);
    json_object_object_add(o, "due_date", time_or_null(t->due, t->has_due));
    json_object_object_add(o, "timezone", str_or_null(t->timezone));
    struct json_object *rems = json_object_new_array();
    for (size_t i = 0; i < t->nreminders; i++) {
        struct json_object *r = json_object_new_object();
        if (t->reminders[i].kind == TE_REMINDER_RELATIVE)
            json_object_object_add(r, "offset_minutes",
                                   json_object_new_int(t->reminders[i].offset_minutes));
        else
            json_object_object_add(r, "at", time_or_null(t->reminders[i].at, true));
        json_object_array_add(rems, r);
    }
    json_object_object_add(o, "reminders", rems);
    struct json_object *rec = NULL;
    if (t->rrule) {
        rec = json_object_new_object();
        json_object_object_add(rec, "rrule", json_object_new_string(t->rrule));
        json_object_object_add(rec, "timezone", json_object_new_string(te_task_recurrence_zone(t)));
        json_object_object_add(rec, "anchor", json_object_new_string(te_task_recurrence_anchor(t)));
        json_object_object_add(rec, "series_id", str_or_null(t->series_id));
        if (t->occurrence > 0)
            json_object_object_add(rec, "occurrence", json_object_new_int(t->occurrence));
    }
    json_object_object_add(o, "recurrence", rec);
    json_object_object_add(o, "overdue", json_object_new_boolean(te_task_is_overdue(t, now)));
    json_object_object_add(o, "created_at", time_or_null(t->created_at, t->created_at != 0));
    json_object_object_add(o, "updated_at", time_or_null(t->updated_at, t->updated_at != 0));
    json_object_object_add(o, "completed_at", time_or_null(t->completed_at, t->completed_at != 0));
    *out = o;
    return TE_OK;
}

te_err_t te_task_to_json(const te_task_t *t, te_time_t now, char **out) {
    if (!out)
        return TE_ERR_INVALID_ARG;
    struct json_object *o;
    te_err_t err = te_task_to_json_object(t, now, &o);
    if (err)
        return err;
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                          JSON_C_TO_STRING_NOSLASHESCAPE);
    *out = s ? te__strdup(s) : NULL;
    json_object_put(o);
    return *out ? TE_OK : TE_ERR_NOMEM;
}
