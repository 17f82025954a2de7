/* Webhook (Standard Webhooks signed POST) and email (SMTP) attempts over
 * libcurl, a batch at a time on one multi handle (docs/reminder.md). */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "reminder.h"
#include "whsec.h"

void channels_global_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }
void channels_global_cleanup(void) { curl_global_cleanup(); }

static size_t discard(char *p, size_t size, size_t n, void *arg) {
    (void)p;
    (void)arg;
    return size * n;
}

/* Loopback, private (RFC 1918, RFC 4193), link-local, CGNAT, unspecified
 * and multicast addresses: a user's webhook must not reach into the
 * cluster or the host. */
static int blocked_v4(uint32_t a) { /* a in host order */
    return (a >> 24) == 0 || (a >> 24) == 10 || (a >> 24) == 127 || (a >> 16) == 0xA9FE ||
           (a >> 20) == 0xAC1 || (a >> 16) == 0xC0A8 || (a >> 22) == (100u << 2 | 1) ||
           (a >> 28) == 0xE || a == 0xFFFFFFFFu;
}

int channels_address_blocked(const struct sockaddr *sa) {
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in in;
        memcpy(&in, sa, sizeof in);
        return blocked_v4(ntohl(in.sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 in6;
        memcpy(&in6, sa, sizeof in6);
        const struct in6_addr *a = &in6.sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            uint32_t v4;
            memcpy(&v4, a->s6_addr + 12, 4);
            return blocked_v4(ntohl(v4));
        }
        return IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LINKLOCAL(a) ||
               IN6_IS_ADDR_MULTICAST(a) || (a->s6_addr[0] & 0xFE) == 0xFC;
    }
    return 1;
}

static curl_socket_t open_checked(void *arg, curlsocktype purpose, struct curl_sockaddr *addr) {
    delivery_t *d = arg;
    (void)purpose;
    if (channels_address_blocked(&addr->addr)) {
        d->refused = 1;
        return CURL_SOCKET_BAD;
    }
    return socket(addr->family, addr->socktype, addr->protocol);
}

/* base64(HMAC-SHA256(key, id "." ts "." body)) with key = the decoded
 * part of "whsec_<base64>".  0 or -1. */
int channels_sign(const char *secret, const char *id, const char *ts, const char *body, char out[64]) {
    unsigned char key[TD_WHSEC_MAX_KEY];
    int klen = td_whsec_key(secret, key, sizeof key);
    if (klen < 0) return -1;
    size_t blen = strlen(body), mlen = strlen(id) + strlen(ts) + blen + 2;
    unsigned char *msg = malloc(mlen + 1);
    if (!msg) return -1;
    snprintf((char *)msg, mlen + 1, "%s.%s.%s", id, ts, body);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    int ok = HMAC(EVP_sha256(), key, klen, msg, mlen, mac, &maclen) != NULL;
    free(msg);
    if (!ok) return -1;
    EVP_EncodeBlock((unsigned char *)out, mac, (int)maclen);
    return 0;
}

static int webhook_prepare(const rem_config_t *cfg, delivery_t *d, CURL *h) {
    if (!d->webhook_url) {
        snprintf(d->error, sizeof d->error, "no webhook_url in the notification settings");
        return -1;
    }
    char ts[24], sig[64], hdr[160];
    snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
    if (channels_sign(d->webhook_secret, d->delivery_id, ts, d->event, sig) != 0) {
        snprintf(d->error, sizeof d->error, "no usable webhook secret in the notification settings");
        return -1;
    }
    struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/cloudevents+json");
    snprintf(hdr, sizeof hdr, "webhook-id: %s", d->delivery_id);
    hl = curl_slist_append(hl, hdr);
    snprintf(hdr, sizeof hdr, "webhook-timestamp: %s", ts);
    hl = curl_slist_append(hl, hdr);
    snprintf(hdr, sizeof hdr, "webhook-signature: v1,%s", sig);
    hl = curl_slist_append(hl, hdr);
    hl = curl_slist_append(hl, "Expect:"); /* no 100-continue round trip */
    d->headers = hl;
    curl_easy_setopt(h, CURLOPT_URL, d->webhook_url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, d->event);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(d->event));
    curl_easy_setopt(h, CURLOPT_USERAGENT, "todoevents-reminder");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, cfg->webhook_timeout_ms);
    curl_easy_setopt(h, CURLOPT_PROXY, ""); /* no *_proxy variables: the address check below is the real peer */
    if (!cfg->allow_private) {
        curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_checked);
        curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, d);
    }
    return 0;
}

/* --- email ---------------------------------------------------------------- */

static const char *json_str(json_object *o, const char *k) {
    json_object *v = NULL;
    return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

/* s with control characters replaced by spaces (header safety). */
static void one_line(char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) *s = ' ';
}

/* Appends "Subject: Reminder: <title>", RFC 2047 B-encoded (folded, split
 * on UTF-8 character boundaries) when the title is not plain ASCII. */
void channels_subject(char *buf, size_t size, const char *title) {
    size_t len = strlen(buf);
    char text[1024];
    snprintf(text, sizeof text, "Reminder: %s", title);
    one_line(text);
    int ascii = 1;
    for (const char *p = text; *p; p++) ascii &= (unsigned char)*p < 0x80;
    if (ascii) {
        snprintf(buf + len, size - len, "Subject: %s\r\n", text);
        return;
    }
    len += (size_t)snprintf(buf + len, size - len, "Subject:");
    size_t n = strlen(text);
    for (size_t i = 0; i < n && len < size;) {
        size_t j = i + 39 < n ? i + 39 : n; /* 52 base64 characters: every line <= 76 */
        while (j < n && j > i && ((unsigned char)text[j] & 0xC0) == 0x80) j--; /* not mid-character */
        unsigned char enc[64];
        EVP_EncodeBlock(enc, (const unsigned char *)text + i, (int)(j - i));
        len += (size_t)snprintf(buf + len, size - len, " =?UTF-8?B?%s?=\r\n", enc);
        i = j;
    }
}

static size_t read_message(char *out, size_t size, size_t n, void *arg) {
    delivery_t *d = arg;
    size_t left = d->message_len - d->message_off, take = size * n < left ? size * n : left;
    memcpy(out, d->message + d->message_off, take);
    d->message_off += take;
    return take;
}

/* text as HTML: the SMTP binding (components-contrib bindings.smtp) sends
 * its data as the text/html part, so markup in a title must be escaped and
 * line breaks become <br>.  malloc'd. */
static char *text_to_html(const char *t) {
    size_t cap = strlen(t) * 6 + 1, n = 0;
    char *o = malloc(cap);
    for (; o && *t; t++) {
        const char *rep = *t == '<' ? "&lt;" : *t == '>' ? "&gt;" : *t == '&' ? "&amp;" : *t == '"' ? "&quot;"
                        : *t == '\n' ? "<br>\n" : NULL;
        if (*t == '\r') continue;
        if (rep) n += (size_t)snprintf(o + n, cap - n, "%s", rep);
        else o[n++] = *t;
    }
    if (o) o[n] = '\0';
    return o;
}

/* Dapr mode: the SMTP output binding sends it (docs/dapr.md). */
static int email_binding_prepare(const rem_config_t *cfg, delivery_t *d, CURL *h, const char *title,
                                 const char *text) {
    json_object *req = json_object_new_object(), *md = json_object_new_object();
    json_object_object_add(req, "operation", json_object_new_string("create"));
    char *body = text_to_html(text);
    json_object_object_add(req, "data", json_object_new_string(body ? body : ""));
    free(body);
    json_object_object_add(md, "emailTo", json_object_new_string(d->email));
    if (cfg->smtp_from) json_object_object_add(md, "emailFrom", json_object_new_string(cfg->smtp_from));
    char subject[1100];
    snprintf(subject, sizeof subject, "Reminder: %s", title);
    one_line(subject);
    json_object_object_add(md, "subject", json_object_new_string(subject));
    json_object_object_add(req, "metadata", md);
    d->message = strdup(json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN));
    json_object_put(req);
    if (!d->message) {
        snprintf(d->error, sizeof d->error, "out of memory");
        return -1;
    }
    d->message_len = strlen(d->message);
    d->http = 1;
    struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
    hd = curl_slist_append(hd, "Expect:");
    if (cfg->dapr_token) {
        char line[512];
        snprintf(line, sizeof line, "dapr-api-token: %s", cfg->dapr_token);
        hd = curl_slist_append(hd, line);
    }
    d->headers = hd;
    curl_easy_setopt(h, CURLOPT_URL, cfg->smtp_binding_url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, d->message);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)d->message_len);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    /* longer than the sidecar's own timeout for the binding (30 s in
     * infrastructure/dapr/resiliency.yaml): giving up first would count a
     * failed attempt for a mail the sidecar still sends, and send it twice */
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 40000L);
    return 0;
}

static int email_prepare(const rem_config_t *cfg, delivery_t *d, CURL *h) {
    if (!cfg->smtp_binding_url && (!cfg->smtp_url || !cfg->smtp_from)) {
        snprintf(d->error, sizeof d->error, "email is not configured (TE_SMTP_URL, TE_SMTP_FROM)");
        return -1;
    }
    if (!d->email) {
        snprintf(d->error, sizeof d->error, "no email address in the notification settings");
        return -1;
    }
    json_object *ev = json_tokener_parse(d->event), *data = NULL;
    if (ev) json_object_object_get_ex(ev, "data", &data);
    const char *title = json_str(data, "title"), *due = json_str(data, "due_date");
    const char *at = json_str(data, "remind_at"), *task = json_str(data, "task_id");
    if (cfg->smtp_binding_url) {
        char t[1024], text[2048];
        snprintf(t, sizeof t, "%s", title ? title : "");
        one_line(t);
        snprintf(text, sizeof text, "Reminder: %s\r\nDue: %s\r\nReminder time: %s\r\nTask: %s\r\n", t,
                 due ? due : "no due date", at ? at : "", task ? task : "");
        int rc = email_binding_prepare(cfg, d, h, t, text);
        json_object_put(ev);
        return rc;
    }
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    size_t cap = 4096 + (title ? 2 * strlen(title) : 0);
    char *m = malloc(cap);
    if (!m) {
        json_object_put(ev);
        snprintf(d->error, sizeof d->error, "out of memory");
        return -1;
    }
    snprintf(m, cap,
             "From: %s\r\nTo: %s\r\nDate: %s\r\nMessage-ID: <%s@todoevents>\r\n"
             "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"
             "Content-Transfer-Encoding: 8bit\r\nAuto-Submitted: auto-generated\r\n",
             cfg->smtp_from, d->email, date, d->delivery_id);
    channels_subject(m, cap, title ? title : "");
    size_t len = strlen(m);
    char t[1024];
    snprintf(t, sizeof t, "%s", title ? title : "");
    one_line(t);
    snprintf(m + len, cap - len, "\r\nReminder: %s\r\nDue: %s\r\nReminder time: %s\r\nTask: %s\r\n", t,
             due ? due : "no due date", at ? at : "", task ? task : "");
    json_object_put(ev);
    d->message = m;
    d->message_len = strlen(m);
    d->message_off = 0;
    char rcpt[300];
    snprintf(rcpt, sizeof rcpt, "<%s>", d->email);
    d->rcpt = curl_slist_append(NULL, rcpt);
    char from[300];
    snprintf(from, sizeof from, "<%s>", cfg->smtp_from);
    curl_easy_setopt(h, CURLOPT_URL, cfg->smtp_url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, (struct curl_slist *)d->rcpt);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, read_message);
    curl_easy_setopt(h, CURLOPT_READDATA, d);
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    /* with credentials, STARTTLS is required (no stripping it to read the
     * password); without, it is used when offered */
    curl_easy_setopt(h, CURLOPT_USE_SSL, (long)(cfg->smtp_user ? CURLUSESSL_ALL : CURLUSESSL_TRY));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, cfg->webhook_timeout_ms);
    if (cfg->smtp_user) curl_easy_setopt(h, CURLOPT_USERNAME, cfg->smtp_user);
    if (cfg->smtp_password) curl_easy_setopt(h, CURLOPT_PASSWORD, cfg->smtp_password);
    return 0;
}

/* --- the batch ------------------------------------------------------------ */

static void finish(delivery_t *d, CURL *h, CURLcode code) {
    if (code == CURLE_OK) d->error[0] = '\0';
    if (code == CURLE_OK && (strcmp(d->channel, "webhook") == 0 || d->http)) {
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        d->ok = status >= 200 && status < 300;
        if (!d->ok) snprintf(d->error, sizeof d->error, "HTTP status %ld", status);
    } else if (code == CURLE_OK) {
        d->ok = 1;
    } else if (d->refused) {
        snprintf(d->error, sizeof d->error,
                 "the webhook address is private or local (TE_WEBHOOK_ALLOW_PRIVATE=0)");
    } else {
        char detail[CURL_ERROR_SIZE];
        snprintf(detail, sizeof detail, "%.200s", d->error);
        snprintf(d->error, sizeof d->error, "%s%s%s", curl_easy_strerror(code), detail[0] ? ": " : "",
                 detail);
    }
}

/* One multi handle per delivery thread: its connection cache keeps
 * connections to webhook receivers open between batches. */
static _Thread_local CURLM *thread_multi;

void channels_thread_done(void) {
    curl_multi_cleanup(thread_multi);
    thread_multi = NULL;
}

/* Requests in flight per sender.  A request's timeout runs from when it is
 * added, so the others of a batch wait here, not in libcurl's queue. */
#define MAX_ACTIVE 16

static long elapsed_ms(const struct timespec *t0) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Starts delivery x on multi: 1 started, 0 finished at once (its error set). */
static int start(const rem_config_t *cfg, CURLM *multi, delivery_t *x) {
    CURL *h = multi ? curl_easy_init() : NULL;
    if (!h) {
        snprintf(x->error, sizeof x->error, "out of memory");
        return 0;
    }
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PRIVATE, x);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->error);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, cfg->webhook_timeout_ms < 5000 ? cfg->webhook_timeout_ms : 5000L);
    int prep = strcmp(x->channel, "webhook") == 0 ? webhook_prepare(cfg, x, h)
               : strcmp(x->channel, "email") == 0   ? email_prepare(cfg, x, h)
                                                    : (snprintf(x->error, sizeof x->error, "unknown channel %s",
                                                                x->channel),
                                                       -1);
    if (prep != 0 || curl_multi_add_handle(multi, h) != CURLM_OK) {
        if (prep == 0) snprintf(x->error, sizeof x->error, "cannot start the transfer");
        curl_easy_cleanup(h);
        return 0;
    }
    x->easy = h;
    return 1;
}

void channels_send(const rem_config_t *cfg, delivery_t *const *d, size_t n, const atomic_int *stopping) {
    if (!thread_multi && (thread_multi = curl_multi_init()) != NULL) {
        /* kept-alive connections per receiving host, at most */
        curl_multi_setopt(thread_multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)MAX_ACTIVE);
    }
    CURLM *multi = thread_multi;
    for (size_t i = 0; i < n; i++) {
        d[i]->ok = d[i]->skipped = 0;
        d[i]->error[0] = '\0';
    }
    /* the outcomes must be recorded while the lease is ours: nothing starts
     * after start_limit, and what still runs at the limit is a failed
     * attempt; at shutdown nothing new starts either */
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long limit_ms = cfg->lease_s * 1000 - 5000, start_limit = limit_ms - cfg->webhook_timeout_ms;
    size_t next = 0;
    int active = 0;
    for (;;) {
        while (next < n && active < MAX_ACTIVE && !atomic_load(stopping) && elapsed_ms(&t0) < start_limit) {
            if (start(cfg, multi, d[next])) active++;
            next++;
        }
        if (active == 0 || elapsed_ms(&t0) > limit_ms) break;
        int still = 0;
        if (curl_multi_perform(multi, &still) != CURLM_OK) break;
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE) continue;
            delivery_t *x = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            if (!x) continue;
            finish(x, msg->easy_handle, msg->data.result);
            curl_multi_remove_handle(multi, x->easy);
            curl_easy_cleanup(x->easy);
            x->easy = NULL;
            active--;
        }
        if (active > 0 && still > 0) curl_multi_poll(multi, NULL, 0, 20, NULL);
    }
    for (size_t i = 0; i < n; i++) {
        delivery_t *x = d[i];
        if (i >= next) x->skipped = 1; /* never started: not an attempt */
        if (x->easy) {               /* still running at the limit */
            curl_multi_remove_handle(multi, x->easy);
            curl_easy_cleanup(x->easy);
            snprintf(x->error, sizeof x->error, "the transfer did not complete in time");
            x->ok = 0;
        }
        curl_slist_free_all(x->headers);
        curl_slist_free_all(x->rcpt);
        free(x->message);
        x->easy = x->headers = x->rcpt = NULL;
        x->message = NULL;
    }
}
