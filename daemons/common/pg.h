/* PostgreSQL for the daemons: a fixed pool of libpq connections and the
 * versioned-migration runner.
 *
 * Threads: the pool is thread-safe; a connection taken with
 * td_pg_acquire() belongs to the calling thread until td_pg_release(). */
#ifndef TD_PG_H
#define TD_PG_H

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stddef.h>

typedef struct td_pg_pool_s td_pg_pool_t;

/* Connects with the daemons' defaults on top of conninfo: connect_timeout
 * 5 s, TCP keepalives (a dead peer is noticed within a minute), and
 * statement_timeout 30 s / lock_timeout 10 s so that no request holds
 * locks (or an Idempotency-Key) for long.  Never NULL (check PQstatus). */
PGconn *td_pg_connect(const char *conninfo);

/* Opens size connections lazily (on first use): the pool is created even
 * while PostgreSQL is down.  conninfo is copied.  NULL on out of memory. */
td_pg_pool_t *td_pg_pool_new(const char *conninfo, int size);
/* Closes every connection.  All must have been released.  NULL ok. */
void td_pg_pool_destroy(td_pg_pool_t *pool);
/* Waits for a free connection, (re)connecting it when needed.  NULL when
 * PostgreSQL cannot be reached (errstr says why). */
PGconn *td_pg_acquire(td_pg_pool_t *pool, char *errstr, size_t errstr_size);
/* Returns a connection; a connection left inside a transaction or broken
 * is reset first. */
void td_pg_release(td_pg_pool_t *pool, PGconn *conn);
/* 1 when the last attempt to use PostgreSQL worked (a connection found
 * broken at release counts as a failure). */
int td_pg_up(const td_pg_pool_t *pool);

/* One migration: version (> 0, ascending), name, SQL text. */
typedef struct td_migration_s {
    int version;
    const char *name;
    const char *sql;
} td_migration_t;

/* Applies every migration newer than the database's version, in one
 * transaction under an advisory lock (so concurrent replicas run them one
 * at a time, and a failing migration leaves nothing half-applied).  The
 * SHA-256 of each applied migration is recorded; an applied migration
 * whose text changed since is refused (errstr names it).
 * *applied gets the number applied.  0 or -1 (errstr). */
int td_pg_migrate(PGconn *conn, const td_migration_t *m, size_t n, int *applied, char *errstr,
                  size_t errstr_size);

/* One statement of a pipeline: sql and params are borrowed until
 * td_pg_pipeline() returns; res is set to its result. */
typedef struct td_pg_stmt_s {
    const char *sql;
    int nparams;
    const char *const *params;
    PGresult *res;
} td_pg_stmt_t;

/* Sends n statements in one round trip (libpq pipeline mode) and collects
 * their results.  0 when every statement succeeded (the caller reads and
 * PQclear()s each res); -1 with the first failure's message in errstr and
 * every res cleared.  Statements after a failure are not run. */
int td_pg_pipeline(PGconn *conn, td_pg_stmt_t *stmts, size_t n, char *errstr, size_t errstr_size);

/* A thread's own connection (*slot), kept up: returned at once while it
 * works (also while *stopping is set: what was done must be recorded);
 * otherwise (re)connected, trying for a few seconds (fewer once stopping);
 * NULL with the reason in errstr when PostgreSQL stays unreachable.  The
 * caller PQfinish()es *slot at the end. */
PGconn *td_pg_keep(PGconn **slot, const char *conninfo, const atomic_int *stopping, char *errstr,
                   size_t errstr_size);

/* Waits until a notification arrives on c (after LISTEN), wake_fd is
 * readable, or timeout_ms passes; then consumes both (wake_fd is read
 * until empty: a pipe whose write end is closed wakes every waiter, for
 * good).  A notification libpq had already read returns at once.  c NULL
 * or wake_fd -1: not waited on. */
void td_pg_wait(PGconn *c, int wake_fd, int timeout_ms);

/* Runs a statement without result rows; 0 or -1 with the server's message
 * in errstr.  Convenience for BEGIN/COMMIT and DDL. */
int td_pg_exec(PGconn *conn, const char *sql, char *errstr, size_t errstr_size);
/* SQLSTATE of a result ("" when none). */
const char *td_pg_sqlstate(const PGresult *res);

#endif
