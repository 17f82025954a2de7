/* PostgreSQL connection pool and migrations (see pg.h). */
#include "pg.h"

#include <openssl/evp.h>
#include <poll.h>
#include <unistd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

struct td_pg_pool_s {
    char *conninfo;
    int size;
    PGconn **conns;  /* free slots (NULL = not connected yet) */
    int nfree;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int up;
};

/* Server notices ("relation already exists, skipping") go to the JSON
 * log at debug level, never as raw lines on stderr. */
static void notice(void *arg, const char *message) {
    (void)arg;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", message);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = '\0';
    td_logf(TD_LOG_DEBUG, NULL, "postgres: %s", buf);
}

PGconn *td_pg_connect(const char *conninfo) {
    /* expand_dbname: conninfo (a URI or key=value string) is expanded in
     * place of "dbname"; the keywords after it override its values. */
    const char *const keys[] = {"dbname",         "connect_timeout",     "keepalives",
                                "keepalives_idle", "keepalives_interval", "keepalives_count",
                                "options",         NULL};
    const char *const vals[] = {conninfo, "5", "1", "30", "10", "3",
                                "-c statement_timeout=30000 -c lock_timeout=10000", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (c) PQsetNoticeProcessor(c, notice, NULL);
    return c;
}

td_pg_pool_t *td_pg_pool_new(const char *conninfo, int size) {
    td_pg_pool_t *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->conninfo = strdup(conninfo);
    p->size = size > 0 ? size : 1;
    p->conns = calloc((size_t)p->size, sizeof *p->conns);
    if (!p->conninfo || !p->conns) {
        free(p->conninfo);
        free(p->conns);
        free(p);
        return NULL;
    }
    p->nfree = p->size;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    atomic_init(&p->up, 1);
    return p;
}

void td_pg_pool_destroy(td_pg_pool_t *p) {
    if (!p) return;
    for (int i = 0; i < p->nfree; i++)
        if (p->conns[i]) PQfinish(p->conns[i]);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->conns);
    free(p->conninfo);
    free(p);
}

static void set_up(td_pg_pool_t *p, int up) {
    int was = atomic_exchange(&p->up, up);
    if (was != up)
        td_logf(up ? TD_LOG_INFO : TD_LOG_ERROR, NULL, up ? "postgres available again"
                                                          : "postgres unavailable");
}

PGconn *td_pg_acquire(td_pg_pool_t *p, char *errstr, size_t errstr_size) {
    pthread_mutex_lock(&p->mu);
    while (p->nfree == 0) pthread_cond_wait(&p->cv, &p->mu);
    PGconn *c = p->conns[--p->nfree];
    p->conns[p->nfree] = NULL;
    pthread_mutex_unlock(&p->mu);

    if (c && PQstatus(c) != CONNECTION_OK) PQreset(c);
    if (!c) c = td_pg_connect(p->conninfo);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        snprintf(errstr, errstr_size, "postgres: %s",
                 c ? PQerrorMessage(c) : "out of memory");
        /* strip libpq's trailing newline */
        size_t n = strlen(errstr);
        while (n && (errstr[n - 1] == '\n' || errstr[n - 1] == '\r')) errstr[--n] = '\0';
        set_up(p, 0);
        td_pg_release(p, c);
        return NULL;
    }
    set_up(p, 1);
    return c;
}

void td_pg_release(td_pg_pool_t *p, PGconn *c) {
    if (c && PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) != PQTRANS_IDLE) {
        PGresult *r = PQexec(c, "ROLLBACK");
        PQclear(r);
    }
    if (c && PQstatus(c) != CONNECTION_OK) {
        PQfinish(c);
        c = NULL;
        set_up(p, 0);
    }
    pthread_mutex_lock(&p->mu);
    p->conns[p->nfree++] = c;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

int td_pg_up(const td_pg_pool_t *p) { return atomic_load(&((td_pg_pool_t *)p)->up); }

const char *td_pg_sqlstate(const PGresult *res) {
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return s ? s : "";
}


static int check(PGresult *res, char *errstr, size_t errstr_size, const char *what) {
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return 0;
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    snprintf(errstr, errstr_size, "%s: %s", what, msg ? msg : PQresStatus(st));
    return -1;
}

int td_pg_pipeline(PGconn *c, td_pg_stmt_t *st, size_t n, char *errstr, size_t errstr_size) {
    for (size_t i = 0; i < n; i++) st[i].res = NULL;
    if (!PQenterPipelineMode(c)) {
        snprintf(errstr, errstr_size, "postgres: %s", PQerrorMessage(c));
        return -1;
    }
    int rc = 0;
    size_t sent = 0;
    for (; sent < n; sent++)
        if (!PQsendQueryParams(c, st[sent].sql, st[sent].nparams, NULL, st[sent].params, NULL, NULL, 0))
            break;
    /* the sync point also after a failed send: without it the results of
     * the statements already sent would never arrive */
    int synced = PQpipelineSync(c);
    if (sent < n || !synced) {
        snprintf(errstr, errstr_size, "postgres: %s", PQerrorMessage(c));
        rc = -1;
    }
    if (!synced) sent = 0; /* the connection is broken: nothing to read */
    /* one result (then NULL) per statement sent, then the sync point */
    for (size_t i = 0; i < sent; i++) {
        PGresult *r = PQgetResult(c);
        st[i].res = r;
        while ((r = PQgetResult(c)) != NULL) PQclear(r);
        if (rc == 0 && check(st[i].res, errstr, errstr_size, "postgres") != 0) rc = -1;
    }
    PGresult *r;
    while (synced && (r = PQgetResult(c)) != NULL) {
        ExecStatusType t = PQresultStatus(r);
        PQclear(r);
        if (t == PGRES_PIPELINE_SYNC) break;
    }
    PQexitPipelineMode(c);
    if (rc != 0)
        for (size_t i = 0; i < n; i++) {
            PQclear(st[i].res);
            st[i].res = NULL;
        }
    return rc;
}

int td_pg_exec(PGconn *conn, const char *sql, char *errstr, size_t errstr_size) {
    PGresult *r = PQexec(conn, sql);
    int rc = check(r, errstr, errstr_size, "postgres");
    PQclear(r);
    return rc;
}

static void sha256_hex(const char *text, char out[65]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(text, strlen(text), md, &len, EVP_sha256(), NULL);
    for (unsigned int i = 0; i < len && i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
    out[64] = '\0';
}

/* Lock id: any constant shared by every replica ("te-migrate"). */
#define MIGRATE_LOCK "7465000001"

int td_pg_migrate(PGconn *conn, const td_migration_t *m, size_t n, int *applied, char *errstr,
                  size_t errstr_size) {
    *applied = 0;
    if (td_pg_exec(conn, "BEGIN", errstr, errstr_size) != 0) return -1;
    if (td_pg_exec(conn, "SET LOCAL statement_timeout = 0", errstr, errstr_size) ||
        td_pg_exec(conn, "SET LOCAL lock_timeout = 0", errstr, errstr_size) ||
        td_pg_exec(conn, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK ")", errstr, errstr_size) ||
        td_pg_exec(conn,
                   "CREATE TABLE IF NOT EXISTS schema_migrations ("
                   " version integer PRIMARY KEY, name text NOT NULL, checksum text,"
                   " applied_at timestamptz NOT NULL DEFAULT now())",
                   errstr, errstr_size))
        goto fail;
    PGresult *r = PQexec(conn, "SELECT version, checksum, applied_at FROM schema_migrations ORDER BY version");
    if (check(r, errstr, errstr_size, "schema_migrations")) {
        PQclear(r);
        goto fail;
    }
    /* An applied migration must be the one shipped: editing one after it
     * ran somewhere would leave that database with another schema. */
    int current = 0, changed = 0;
    for (int row = 0; row < PQntuples(r) && !changed; row++) {
        int v = atoi(PQgetvalue(r, row, 0));
        current = v > current ? v : current;
        for (size_t i = 0; i < n; i++) {
            char sum[65];
            if (m[i].version != v || PQgetisnull(r, row, 1)) continue;
            sha256_hex(m[i].sql, sum);
            if (strcmp(sum, PQgetvalue(r, row, 1)) != 0) {
                snprintf(errstr, errstr_size,
                         "migration %d (%s) differs from the one applied on %s: never edit an "
                         "applied migration, add a new one",
                         v, m[i].name, PQgetvalue(r, row, 2));
                changed = 1;
            }
        }
    }
    PQclear(r);
    if (changed) goto fail;
    for (size_t i = 0; i < n; i++) {
        if (m[i].version <= current) continue;
        r = PQexec(conn, m[i].sql);
        char what[160];
        snprintf(what, sizeof what, "migration %d (%s)", m[i].version, m[i].name);
        if (check(r, errstr, errstr_size, what)) {
            PQclear(r);
            goto fail;
        }
        PQclear(r);
        char ver[16], sum[65];
        snprintf(ver, sizeof ver, "%d", m[i].version);
        sha256_hex(m[i].sql, sum);
        const char *params[3] = {ver, m[i].name, sum};
        r = PQexecParams(conn,
                         "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                         3, NULL, params, NULL, NULL, 0);
        if (check(r, errstr, errstr_size, "schema_migrations")) {
            PQclear(r);
            goto fail;
        }
        PQclear(r);
        (*applied)++;
    }
    if (td_pg_exec(conn, "COMMIT", errstr, errstr_size) != 0) return -1;
    return 0;
fail:
    PQclear(PQexec(conn, "ROLLBACK"));
    *applied = 0;
    return -1;
}

static int take_notifies(PGconn *c) {
    int got = 0;
    PGnotify *n;
    PQconsumeInput(c);
    while ((n = PQnotifies(c)) != NULL) {
        PQfreemem(n);
        got = 1;
    }
    return got;
}

void td_pg_wait(PGconn *c, int wake_fd, int timeout_ms) {
    if (c && PQstatus(c) != CONNECTION_OK) c = NULL;
    if (c && take_notifies(c)) return;
    struct pollfd pf[2];
    nfds_t n = 0;
    if (wake_fd >= 0) pf[n++] = (struct pollfd){.fd = wake_fd, .events = POLLIN};
    if (c) pf[n++] = (struct pollfd){.fd = PQsocket(c), .events = POLLIN};
    poll(pf, n, timeout_ms);
    if (wake_fd >= 0 && (pf[0].revents & (POLLIN | POLLHUP))) {
        char buf[64];
        while (read(wake_fd, buf, sizeof buf) > 0) {
        }
    }
    if (c) take_notifies(c);
}

PGconn *td_pg_keep(PGconn **slot, const char *conninfo, const atomic_int *stopping, char *err, size_t n) {
    if (*slot && PQstatus(*slot) == CONNECTION_OK) return *slot;
    for (int attempt = 0; attempt < 20 && (attempt < 4 || !atomic_load(stopping)); attempt++) {
        if (*slot && PQstatus(*slot) != CONNECTION_OK) PQreset(*slot);
        if (!*slot) *slot = td_pg_connect(conninfo);
        if (PQstatus(*slot) == CONNECTION_OK) return *slot;
        snprintf(err, n, "postgres: %s", PQerrorMessage(*slot));
        size_t len = strlen(err);
        while (len && (err[len - 1] == '\n' || err[len - 1] == '\r')) err[--len] = '\0';
        struct timespec ts = {0, 250 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (atomic_load(stopping)) snprintf(err, n, "stopping");
    return NULL;
}
