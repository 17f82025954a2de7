/* Catch-up reads (docs/sync.md): the user's current sequence, and the
 * changes after a sequence from the change log todo-api keeps for
 * GET /api/sync.  One thread with its own PostgreSQL connection, so that
 * no query ever blocks the WebSocket service thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "pg.h"
#include "sync.h"

void catchup_free(catchup_t *c) {
    if (!c) return;
    for (size_t i = 0; i < c->nmsgs; i++) msg_unref(c->msgs[i]);
    free(c->msgs);
    free(c);
}

void catchup_submit(sync_t *s, catchup_t *c) {
    pthread_mutex_lock(&s->mu);
    if (s->cu_tail) s->cu_tail->next = c;
    else s->cu_head = c;
    s->cu_tail = c;
    pthread_cond_signal(&s->cu_cv);
    pthread_mutex_unlock(&s->mu);
}

/* The change row r as a message (the same shape as a live one). */
static msg_t *change_msg(const PGresult *res, int r) {
    const char *type = sync_change_type(PQgetvalue(res, r, 1));
    if (!type) type = "task.updated";
    json_object *d = json_object_new_object();
    json_object_object_add(d, "task_id", json_object_new_string(PQgetvalue(res, r, 2)));
    json_object_object_add(d, "task", PQgetisnull(res, r, 3) ? NULL : json_tokener_parse(PQgetvalue(res, r, 3)));
    json_object_object_add(d, "changes", PQgetisnull(res, r, 4) ? NULL : json_tokener_parse(PQgetvalue(res, r, 4)));
    json_object_object_add(d, "at", json_object_new_string(PQgetvalue(res, r, 5)));
    json_object *o = json_object_new_object();
    long long seq = strtoll(PQgetvalue(res, r, 0), NULL, 10);
    json_object_object_add(o, "type", json_object_new_string(type));
    json_object_object_add(o, "seq", json_object_new_int64(seq));
    json_object_object_add(o, "data", d);
    msg_t *m = msg_new(type, seq, 0, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return m;
}

/* Fills c's result.  -1 when PostgreSQL failed. */
static int answer(sync_t *s, PGconn *pg, catchup_t *c) {
    const char *v[1] = {c->user};
    PGresult *res = PQexecParams(pg,
                                 "SELECT coalesce((SELECT seq FROM user_seq WHERE user_id = $1), 0), "
                                 "       coalesce((SELECT pruned_seq FROM user_seq WHERE user_id = $1), 0)",
                                 1, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        PQclear(res);
        return -1;
    }
    c->seq = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    long long pruned = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
    if (c->since < 0 || c->since == c->seq) return 0;
    if (c->since > c->seq || c->since < pruned) {
        c->resync = 1;
        snprintf(c->reason, sizeof c->reason, "%s",
                 c->since > c->seq ? "since is ahead of the user's sequence"
                                   : "since is older than the retained change log");
        return 0;
    }
    if (c->seq - c->since > s->max_catchup) {
        c->resync = 1;
        snprintf(c->reason, sizeof c->reason, "more than %ld changes behind", s->max_catchup);
        return 0;
    }
    char since[24], upto[24];
    snprintf(since, sizeof since, "%lld", c->since);
    snprintf(upto, sizeof upto, "%lld", c->seq);
    const char *cv[3] = {c->user, since, upto};
    res = PQexecParams(pg,
                       "SELECT seq, op, task_id, task::text, changes::text, te_ts(at) FROM changes "
                       " WHERE user_id = $1 AND seq > $2::bigint AND seq <= $3::bigint ORDER BY seq",
                       3, NULL, cv, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        PQclear(res);
        return -1;
    }
    int n = PQntuples(res);
    c->msgs = calloc((size_t)n + 1, sizeof *c->msgs);
    for (int r = 0; c->msgs && r < n; r++)
        if ((c->msgs[c->nmsgs] = change_msg(res, r)) != NULL) c->nmsgs++;
    PQclear(res);
    if ((long long)c->nmsgs != c->seq - c->since) { /* pruned meanwhile */
        for (size_t i = 0; i < c->nmsgs; i++) msg_unref(c->msgs[i]);
        c->nmsgs = 0;
        c->resync = 1;
        snprintf(c->reason, sizeof c->reason, "since is older than the retained change log");
    }
    return 0;
}

void *catchup_main(void *arg) {
    sync_t *s = arg;
    PGconn *pg = NULL;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->cu_head && !atomic_load(&s->stopping)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 5;
            if (pthread_cond_timedwait(&s->cu_cv, &s->mu, &ts) != 0) break; /* idle: check the database */
        }
        catchup_t *c = s->cu_head;
        if (c) {
            s->cu_head = c->next;
            if (!s->cu_head) s->cu_tail = NULL;
            c->next = NULL;
        }
        pthread_mutex_unlock(&s->mu);
        if (!c && atomic_load(&s->stopping)) break;
        if (!pg || PQstatus(pg) != CONNECTION_OK) {
            if (pg) PQreset(pg);
            else pg = td_pg_connect(s->pg_url);
        }
        int ok = PQstatus(pg) == CONNECTION_OK;
        if (!c) { /* idle: keep /readyz honest */
            ok = ok && td_pg_exec(pg, "SELECT 1", NULL, 0) == 0;
            atomic_store(&s->pg_ok, ok);
            continue;
        }
        if (ok && answer(s, pg, c) != 0) ok = 0;
        atomic_store(&s->pg_ok, ok);
        if (!ok) {
            c->failed = 1;
            td_logf(TD_LOG_WARN, NULL, "catch-up for %s: %s", c->user, PQerrorMessage(pg));
        }
        pthread_mutex_lock(&s->mu);
        if (s->done_tail) s->done_tail->next = c;
        else s->done_head = c;
        s->done_tail = c;
        pthread_mutex_unlock(&s->mu);
        server_wake(s);
    }
    /* requests left at shutdown: the sessions are closing */
    pthread_mutex_lock(&s->mu);
    while (s->cu_head) {
        catchup_t *c = s->cu_head;
        s->cu_head = c->next;
        catchup_free(c);
    }
    s->cu_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    if (pg) PQfinish(pg);
    return NULL;
}
