/* HTTP server for the daemons: libmicrohttpd with a pool of worker
 * threads, request bodies collected up to a limit, one handler per
 * request.  Routing, auth and the response bodies are the daemon's.
 *
 * Threads: libmicrohttpd's own thread does the network I/O; the handler
 * runs on one of `threads` worker threads (any worker takes the next
 * complete request); several handlers run at once, so the handler's shared state must be thread-safe.
 * A request object is used by one thread only and lives until the handler
 * returns: every pointer obtained from it is valid only during the call. */
#ifndef TD_HTTP_H
#define TD_HTTP_H

#include <stddef.h>

typedef struct td_http_req_s td_http_req_t;
typedef struct td_http_server_s td_http_server_t;

/* One query parameter (decoded by libmicrohttpd).  value is "" for "?a". */
typedef struct td_http_param_s {
    const char *name;
    const char *value;
} td_http_param_t;

/* The response a handler fills in.  body is malloc'd (taken over by the
 * server) or NULL.  Extra headers: td_http_resp_header(). */
typedef struct td_http_resp_s {
    int status;
    const char *content_type; /* static string; NULL = no body type */
    char *body;
    size_t body_len;
    char *headers; /* "Name: value\n" lines, managed by td_http_resp_header */
} td_http_resp_t;

typedef void (*td_http_handler_t)(td_http_req_t *req, td_http_resp_t *resp, void *arg);

typedef struct td_http_config_s {
    const char *listen;   /* "host:port" (IPv4 or [v6]) */
    int threads;          /* worker threads running the handler (>= 1) */
    size_t max_body;      /* bytes; a larger body -> body_too_large flag */
    unsigned timeout_s;   /* idle connection timeout */
} td_http_config_t;

/* Starts listening and serving.  NULL on failure (errstr says why). */
td_http_server_t *td_http_start(const td_http_config_t *cfg, td_http_handler_t handler, void *arg,
                                char *errstr, size_t errstr_size);
/* Port actually bound (useful with port 0). */
int td_http_port(const td_http_server_t *s);
/* Stops accepting, waits (10 s at most) until every request in progress
 * has been answered, closes every connection and frees the server.  NULL
 * is a no-op. */
void td_http_stop(td_http_server_t *s);

const char *td_http_method(const td_http_req_t *r);
const char *td_http_path(const td_http_req_t *r);
/* Request header (case-insensitive name) or NULL. */
const char *td_http_header(const td_http_req_t *r, const char *name);
/* Query parameters in request order. */
size_t td_http_param_count(const td_http_req_t *r);
const td_http_param_t *td_http_param_at(const td_http_req_t *r, size_t i);
/* Value of the first parameter called name, or NULL. */
const char *td_http_param(const td_http_req_t *r, const char *name);
/* The body (NUL-terminated copy; len without the NUL), "" when none. */
const char *td_http_body(const td_http_req_t *r, size_t *len);
/* 1 when the body was larger than max_body (body is then empty).  With a
 * Content-Length over the limit the handler runs before the body is read
 * (and the body is discarded). */
int td_http_body_too_large(const td_http_req_t *r);

/* Appends a response header (both copied).  0 or -1 (out of memory). */
int td_http_resp_header(td_http_resp_t *resp, const char *name, const char *value);
/* Sets status, type and a copy of body. */
void td_http_resp_set(td_http_resp_t *resp, int status, const char *content_type, const char *body,
                      size_t len);

#endif
