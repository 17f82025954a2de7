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

/* The users' sequences (c->seq, *pruned per request), for a batch of
 * requests in one statement: a hello is one read of the user's sequence,
 * and sessions come in bursts (a replica's restart reconnects all of its
 * clients).  -1 when PostgreSQL failed. */
static int read_seqs(PGconn *pg, catchup_t **cs, long long *pruned, size_t n) {
    /* the users as a text[] literal: {"a","b"} with " and \ escaped */
    size_t cap = 3;
    for (size_t i = 0; i < n; i++) cap += 2 * strlen(cs[i]->user) + 3;
    char *arr = malloc(cap), *p = arr;
    if (!arr) return -1;
    *p++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i) *p++ = ',';
        *p++ = '"';
        for (const char *u = cs[i]->user; *u; u++) {
            if (*u == '"' || *u == '\\') *p++ = '\\';
            *p++ = *u;
        }
        *p++ = '"';
    }
    *p++ = '}';
    *p = '\0';
    const char *v[1] = {arr};
    PGresult *res = PQexecParams(pg,
                                 "SELECT coalesce(s.seq, 0), coalesce(s.pruned_seq, 0) "
                                 "  FROM unnest($1::text[]) WITH ORDINALITY AS u(user_id, i) "
                                 "  LEFT JOIN user_seq s ON s.user_id = u.user_id ORDER BY u.i",
                                 1, NULL, v, NULL, NULL, 0);
    free(arr);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || (size_t)PQntuples(res) != n) {
        PQclear(res);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        cs[i]->seq = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
        pruned[i] = strtoll(PQgetvalue(res, (int)i, 1), NULL, 10);
    }
    PQclear(res);
    return 0;
}

/* Fills the rest of c's result (c->seq read, the change log pruned up to
 * pruned): the changes after since.  -1 when PostgreSQL failed. */
static int answer(sync_t *s, PGconn *pg, catchup_t *c, long long pruned) {
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
    PGresult *res = PQexecParams(pg,
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
    size_t bytes = 0;
    for (size_t i = 0; i < c->nmsgs; i++) bytes += c->msgs[i]->len;
    int pruned_meanwhile = (long long)c->nmsgs != c->seq - c->since;
    /* queued at once: over half the byte limit would close the session
     * (1008) on every reconnect instead of telling it to resync */
    if (pruned_meanwhile || bytes > (size_t)s->max_queue_bytes / 2) {
        for (size_t i = 0; i < c->nmsgs; i++) msg_unref(c->msgs[i]);
        c->nmsgs = 0;
        c->resync = 1;
        snprintf(c->reason, sizeof c->reason, "%s",
                 pruned_meanwhile ? "since is older than the retained change log"
                                  : "the missed changes are larger than half the send queue");
    }
    return 0;
}

/* Hands answers to the service thread (one wakeup). */
static void publish(sync_t *s, catchup_t *const *cs, size_t n) {
    if (!n) return;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n; i++) {
        if (s->done_tail) s->done_tail->next = cs[i];
        else s->done_head = cs[i];
        s->done_tail = cs[i];
    }
    pthread_mutex_unlock(&s->mu);
    server_wake(s);
}

/* 1 when answering c needs the change log (a catch-up within limits). */
static int needs_log(const sync_t *s, const catchup_t *c, long long pruned) {
    return c->since >= 0 && c->since < c->seq && c->since >= pruned && c->seq - c->since <= s->max_catchup;
}

#define BATCH 512 /* requests answered together, at most */

void *catchup_main(void *arg) {
    sync_t *s = arg;
    PGconn *pg = NULL;
    catchup_t *batch[BATCH];
    long long pruned[BATCH];
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->cu_head && !atomic_load(&s->stopping)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 5;
            if (pthread_cond_timedwait(&s->cu_cv, &s->mu, &ts) != 0) break; /* idle: check the database */
        }
        /* everything queued (up to BATCH), in order */
        size_t n = 0;
        while (s->cu_head && n < BATCH) {
            catchup_t *c = s->cu_head;
            s->cu_head = c->next;
            c->next = NULL;
            batch[n++] = c;
        }
        if (!s->cu_head) s->cu_tail = NULL;
        pthread_mutex_unlock(&s->mu);
        if (!n && atomic_load(&s->stopping)) break;
        if (!pg || PQstatus(pg) != CONNECTION_OK) {
            if (pg) PQreset(pg);
            else pg = td_pg_connect(s->pg_url);
        }
        int ok = PQstatus(pg) == CONNECTION_OK;
        if (!n) { /* idle: keep /readyz honest */
            ok = ok && td_pg_exec(pg, "SELECT 1", NULL, 0) == 0;
            atomic_store(&s->pg_ok, ok);
            continue;
        }
        /* one read of every user's sequence; a connection found broken is
         * reset and the read tried once more */
        int seqs_ok = ok && read_seqs(pg, batch, pruned, n) == 0;
        if (!seqs_ok && PQstatus(pg) != CONNECTION_OK) {
            PQreset(pg);
            seqs_ok = PQstatus(pg) == CONNECTION_OK && read_seqs(pg, batch, pruned, n) == 0;
        }
        if (!seqs_ok) {
            td_logf(TD_LOG_WARN, NULL, "hello for %s%s: %s", batch[0]->user, n > 1 ? " and others" : "",
                    PQerrorMessage(pg));
            for (size_t i = 0; i < n; i++) batch[i]->failed = 1;
            atomic_store(&s->pg_ok, 0);
            publish(s, batch, n);
            continue;
        }
        /* the answers that need nothing more go out at once; each catch-up
         * as soon as it is read; a failed one fails alone */
        catchup_t *now[BATCH];
        char need[BATCH]; /* decided before any is published (then freed by the server) */
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            need[i] = (char)needs_log(s, batch[i], pruned[i]);
            if (!need[i]) {
                answer(s, pg, batch[i], pruned[i]);
                now[m++] = batch[i];
            }
        }
        publish(s, now, m);
        int all_ok = 1;
        for (size_t i = 0; i < n; i++) {
            if (!need[i]) continue;
            int rc = answer(s, pg, batch[i], pruned[i]);
            if (rc != 0 && PQstatus(pg) != CONNECTION_OK) {
                PQreset(pg);
                rc = PQstatus(pg) == CONNECTION_OK ? answer(s, pg, batch[i], pruned[i]) : -1;
            }
            if (rc != 0) {
                td_logf(TD_LOG_WARN, NULL, "catch-up for %s: %s", batch[i]->user, PQerrorMessage(pg));
                batch[i]->failed = 1;
                all_ok = 0;
            }
            publish(s, &batch[i], 1);
        }
        atomic_store(&s->pg_ok, all_ok);
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
