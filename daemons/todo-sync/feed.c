/* Events into messages (docs/sync.md): com.todo.sync.task.* become
 * {type: "task.<op>", seq, data: {task_id, task, changes, at}}, and
 * com.todo.notification.send becomes {type: "notification", seq: null,
 * data}.  Each is built once and handed to the service thread, which sends
 * it to the user's sessions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sync.h"
#include "task_store.h"

#include <libwebsockets.h>

msg_t *msg_new(const char *type, long long seq, long long event_us, const char *json) {
    size_t len = strlen(json);
    msg_t *m = calloc(1, sizeof *m);
    if (!m || !(m->buf = malloc(LWS_PRE + len + 1))) {
        free(m);
        return NULL;
    }
    memcpy(m->buf + LWS_PRE, json, len + 1);
    m->len = len;
    m->refs = 1;
    m->seq = seq;
    m->event_us = event_us;
    m->type = type;
    return m;
}

void msg_unref(msg_t *m) {
    if (m && --m->refs == 0) {
        free(m->buf);
        free(m);
    }
}

static const char *str_member(json_object *o, const char *k) {
    json_object *v = NULL;
    return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

const char *sync_change_type(const char *op) {
    static const char *const T[][2] = {{"created", "task.created"},
                                       {"updated", "task.updated"},
                                       {"completed", "task.completed"},
                                       {"deleted", "task.deleted"}};
    for (size_t i = 0; op && i < sizeof T / sizeof T[0]; i++)
        if (strcmp(op, T[i][0]) == 0) return T[i][1];
    return NULL;
}

te_handler_result_t feed_handle(const te_event_t *ev, const te_record_t *rec, void *opaque,
                                char *errstr, size_t errstr_size) {
    (void)rec;
    (void)errstr;
    (void)errstr_size;
    sync_t *s = opaque;
    const char *etype = te_event_type(ev);
    json_object *data = (json_object *)te_event_data_object(ev);
    const char *user = str_member(data, "user_id");
    te_time_t at = 0;
    te_event_time(ev, &at);
    char at_s[TE_TIME_STRLEN];
    store_fmt_ms(at ? at : te_time_now(), at_s);
    json_object *out = json_object_new_object();
    const char *type = NULL;
    long long seq = 0;
    if (strncmp(etype, "com.todo.sync.task.", 19) == 0) {
        json_object *v = NULL;
        type = sync_change_type(str_member(data, "op"));
        if (json_object_object_get_ex(data, "seq", &v)) seq = json_object_get_int64(v);
        json_object *d = json_object_new_object();
        json_object_object_add(d, "task_id", json_object_new_string(str_member(data, "task_id")));
        json_object_object_add(d, "task", json_object_object_get_ex(data, "task", &v) ? json_object_get(v) : NULL);
        json_object_object_add(d, "changes",
                               json_object_object_get_ex(data, "changes", &v) ? json_object_get(v) : NULL);
        json_object_object_add(d, "at", json_object_new_string(at_s));
        json_object_object_add(out, "type", json_object_new_string(type ? type : "task.updated"));
        json_object_object_add(out, "seq", json_object_new_int64(seq));
        json_object_object_add(out, "data", d);
    } else if (strcmp(etype, TE_EVENT_NOTIFICATION_SEND) == 0) {
        type = "notification";
        json_object_object_add(out, "type", json_object_new_string(type));
        json_object_object_add(out, "seq", NULL);
        json_object_object_add(out, "data", json_object_get(data));
    }
    if (!type || !user || (seq <= 0 && strcmp(type, "notification") != 0)) {
        json_object_put(out); /* another event type on the topic: not for sessions */
        return TE_HANDLER_OK;
    }
    msg_t *m = msg_new(type, seq, at, json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN));
    json_object_put(out);
    feed_item_t *it = m ? calloc(1, sizeof *it) : NULL;
    if (!it) {
        if (m) msg_unref(m);
        return TE_HANDLER_RETRY;
    }
    snprintf(it->user, sizeof it->user, "%s", user);
    it->msg = m;
    pthread_mutex_lock(&s->mu);
    if (s->feed_tail) s->feed_tail->next = it;
    else s->feed_head = it;
    s->feed_tail = it;
    pthread_mutex_unlock(&s->mu);
    server_wake(s);
    return TE_HANDLER_OK;
}
