/* HTTP server over libmicrohttpd (see http.h). */
#include "http.h"

#include <stdarg.h>

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

/* libmicrohttpd's thread does the I/O; a complete request is suspended
 * and queued for a pool of worker threads, which run the (blocking)
 * handler and resume the connection with the response.  Any worker takes
 * any request, so the load spreads evenly however the connections are
 * distributed, and the number of workers bounds the database connections. */
struct td_http_server_s {
    struct MHD_Daemon *mhd;
    td_http_handler_t handler;
    void *arg;
    size_t max_body;
    int port;
    atomic_int in_flight; /* requests between their first callback and completion */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    td_http_req_t *head, *tail; /* queue of requests for the workers */
    int stopping;
    pthread_t *workers;
    int nworkers;
};

enum { REQ_READING = 0, REQ_QUEUED, REQ_DONE };

struct td_http_req_s {
    struct MHD_Connection *conn;
    int state;
    td_http_req_t *next; /* queue link */
    td_http_resp_t resp; /* filled by a worker */
    const char *method;
    const char *path;
    char *body;
    size_t body_len, body_cap;
    int too_large;
    int answered;
    td_http_param_t *params;
    size_t nparams, params_cap;
};

static int append(char **buf, size_t *len, size_t *cap, const char *data, size_t n) {
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 1024;
        while (c < *len + n + 1) c *= 2;
        char *nb = realloc(*buf, c);
        if (!nb) return -1;
        *buf = nb;
        *cap = c;
    }
    memcpy(*buf + *len, data, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

static enum MHD_Result collect_param(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value) {
    (void)kind;
    td_http_req_t *r = cls;
    if (r->nparams == r->params_cap) {
        size_t c = r->params_cap ? r->params_cap * 2 : 8;
        td_http_param_t *np = realloc(r->params, c * sizeof *np);
        if (!np) return MHD_NO;
        r->params = np;
        r->params_cap = c;
    }
    r->params[r->nparams].name = key;
    r->params[r->nparams].value = value ? value : "";
    r->nparams++;
    return MHD_YES;
}

static void free_req(td_http_req_t *r) {
    if (!r) return;
    free(r->resp.body);
    free(r->resp.headers);
    free(r->body);
    free(r->params);
    free(r);
}

static void request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                              enum MHD_RequestTerminationCode toe) {
    td_http_server_t *s = cls;
    (void)conn;
    (void)toe;
    if (*con_cls) atomic_fetch_sub(&s->in_flight, 1);
    free_req(*con_cls);
    *con_cls = NULL;
}

static enum MHD_Result queue_resp(struct MHD_Connection *conn, td_http_resp_t *resp) {
    struct MHD_Response *mr = MHD_create_response_from_buffer(
        resp->body_len, resp->body ? resp->body : (void *)"", resp->body ? MHD_RESPMEM_MUST_FREE
                                                                         : MHD_RESPMEM_PERSISTENT);
    if (!mr) {
        free(resp->body);
        free(resp->headers);
        return MHD_NO;
    }
    resp->body = NULL;
    if (resp->content_type) MHD_add_response_header(mr, "Content-Type", resp->content_type);
    for (char *line = resp->headers; line && *line;) {
        char *nl = strchr(line, '\n');
        if (!nl) break;
        *nl = '\0';
        char *colon = strchr(line, ':');
        if (colon) {
            *colon = '\0';
            MHD_add_response_header(mr, line, colon + 2);
        }
        line = nl + 1;
    }
    free(resp->headers);
    resp->headers = NULL;
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)resp->status, mr);
    MHD_destroy_response(mr);
    return rc;
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **con_cls) {
    (void)version;
    td_http_server_t *s = cls;
    td_http_req_t *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        r->conn = conn;
        r->method = method;
        r->path = url;
        atomic_fetch_add(&s->in_flight, 1);
        *con_cls = r;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > s->max_body) {
            /* answer (413) before reading the body: no "100 Continue" */
            r->too_large = 1;
            MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_param, r);
            td_http_resp_t resp = {.status = 500};
            s->handler(r, &resp, s->arg);
            r->answered = 1;
            return queue_resp(conn, &resp);
        }
        return MHD_YES;
    }
    if (r->answered) {
        *upload_data_size = 0; /* discard */
        return MHD_YES;
    }
    if (r->state == REQ_DONE) {
        r->answered = 1;
        return queue_resp(conn, &r->resp);
    }
    if (*upload_data_size) {
        if (!r->too_large) {
            if (r->body_len + *upload_data_size > s->max_body) {
                r->too_large = 1;
                free(r->body);
                r->body = NULL;
                r->body_len = r->body_cap = 0;
            } else if (append(&r->body, &r->body_len, &r->body_cap, upload_data,
                              *upload_data_size) != 0) {
                return MHD_NO;
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->state == REQ_QUEUED) return MHD_YES;
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_param, r);
    /* suspend first: a worker may resume it as soon as it is queued */
    r->state = REQ_QUEUED;
    r->resp.status = 500;
    MHD_suspend_connection(conn);
    pthread_mutex_lock(&s->mu);
    if (s->tail) s->tail->next = r;
    else s->head = r;
    s->tail = r;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return MHD_YES;
}

static void *worker_main(void *arg) {
    td_http_server_t *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->head && !s->stopping) pthread_cond_wait(&s->cv, &s->mu);
        td_http_req_t *r = s->head;
        if (r) {
            s->head = r->next;
            if (!s->head) s->tail = NULL;
            r->next = NULL;
        }
        pthread_mutex_unlock(&s->mu);
        if (!r) return NULL; /* stopping and nothing queued */
        s->handler(r, &r->resp, s->arg);
        r->state = REQ_DONE;
        MHD_resume_connection(r->conn);
    }
}

/* libmicrohttpd's own messages go to the JSON log too. */
static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = '\0';
    td_logf(TD_LOG_WARN, NULL, "http: %s", buf);
}

static int parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *sslen,
                        char *errstr, size_t errstr_size) {
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof host) {
        snprintf(errstr, errstr_size, "listen address '%s' is not host:port", listen);
        return -1;
    }
    const char *h = listen;
    size_t hl = (size_t)(colon - listen);
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (rc != 0 || !ai) {
        snprintf(errstr, errstr_size, "listen address '%s': %s", listen, gai_strerror(rc));
        return -1;
    }
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *sslen = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

static void stop_workers(td_http_server_t *s) {
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->nworkers; i++) pthread_join(s->workers[i], NULL);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
}

td_http_server_t *td_http_start(const td_http_config_t *cfg, td_http_handler_t handler, void *arg,
                                char *errstr, size_t errstr_size) {
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (parse_listen(cfg->listen, &ss, &sslen, errstr, errstr_size) != 0) return NULL;
    td_http_server_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    s->handler = handler;
    s->arg = arg;
    s->max_body = cfg->max_body;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG | MHD_USE_TURBO;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->nworkers = cfg->threads > 0 ? cfg->threads : 1;
    s->workers = calloc((size_t)s->nworkers, sizeof *s->workers);
    if (!s->workers) {
        snprintf(errstr, errstr_size, "out of memory");
        free(s);
        return NULL;
    }
    for (int i = 0; i < s->nworkers; i++)
        if (pthread_create(&s->workers[i], NULL, worker_main, s) != 0) {
            snprintf(errstr, errstr_size, "cannot start worker threads");
            s->nworkers = i;
            stop_workers(s);
            free(s->workers);
            free(s);
            return NULL;
        }
    if (ss.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, access_handler, s,
                              MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                              MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                              MHD_OPTION_CONNECTION_TIMEOUT, cfg->timeout_s ? cfg->timeout_s : 60u,
                              MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
                              MHD_OPTION_CONNECTION_LIMIT, 10000u,
                              MHD_OPTION_NOTIFY_COMPLETED, request_completed, s,
                              MHD_OPTION_END);
    if (!s->mhd) {
        snprintf(errstr, errstr_size, "cannot listen on %s: %s", cfg->listen,
                 errno ? strerror(errno) : "libmicrohttpd refused to start");
        stop_workers(s);
        free(s->workers);
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : 0;
    return s;
}

int td_http_port(const td_http_server_t *s) { return s ? s->port : 0; }

void td_http_stop(td_http_server_t *s) {
    if (!s) return;
    MHD_socket fd = MHD_quiesce_daemon(s->mhd);
    /* Let running requests finish and their responses go out (10 s at
     * most); idle keep-alive connections are then closed. */
    for (int i = 0; i < 1000 && atomic_load(&s->in_flight) > 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    /* Workers finish the queue before they exit, so no connection stays
     * suspended (stopping libmicrohttpd with one would be undefined). */
    stop_workers(s);
    MHD_stop_daemon(s->mhd);
    if (fd != MHD_INVALID_SOCKET) close(fd);
    free(s->workers);
    free(s);
}

const char *td_http_method(const td_http_req_t *r) { return r->method; }
const char *td_http_path(const td_http_req_t *r) { return r->path; }

const char *td_http_header(const td_http_req_t *r, const char *name) {
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

size_t td_http_param_count(const td_http_req_t *r) { return r->nparams; }
const td_http_param_t *td_http_param_at(const td_http_req_t *r, size_t i) {
    return i < r->nparams ? &r->params[i] : NULL;
}
const char *td_http_param(const td_http_req_t *r, const char *name) {
    for (size_t i = 0; i < r->nparams; i++)
        if (strcmp(r->params[i].name, name) == 0) return r->params[i].value;
    return NULL;
}

const char *td_http_body(const td_http_req_t *r, size_t *len) {
    if (len) *len = r->body_len;
    return r->body ? r->body : "";
}

int td_http_body_too_large(const td_http_req_t *r) { return r->too_large; }

int td_http_resp_header(td_http_resp_t *resp, const char *name, const char *value) {
    size_t old = resp->headers ? strlen(resp->headers) : 0;
    size_t add = strlen(name) + strlen(value) + 3;
    char *nh = realloc(resp->headers, old + add + 1);
    if (!nh) return -1;
    snprintf(nh + old, add + 1, "%s: %s\n", name, value);
    resp->headers = nh;
    return 0;
}

void td_http_resp_set(td_http_resp_t *resp, int status, const char *content_type, const char *body,
                      size_t len) {
    resp->status = status;
    resp->content_type = content_type;
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
    if (body) {
        resp->body = malloc(len + 1);
        if (resp->body) {
            memcpy(resp->body, body, len);
            resp->body[len] = '\0';
            resp->body_len = len;
        } else {
            resp->status = 500;
        }
    }
}
