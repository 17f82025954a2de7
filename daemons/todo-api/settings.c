/* /api/notification-settings: where a user's reminders go (docs/reminder.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uriparser/Uri.h>

#include "api.h"
#include "task_store.h"
#include "whsec.h"

static const char *const CHANNELS[] = {"in_app", "webhook", "email", NULL};

static const char SETTINGS_COLUMNS[] =
    "array_to_json(channels)::text, webhook_url, email, webhook_secret IS NOT NULL, te_ts(updated_at)";

static json_object *str_or_null(const PGresult *res, int col) {
    return PQgetisnull(res, 0, col) ? NULL : json_object_new_string(PQgetvalue(res, 0, col));
}

/* The settings as GET shows them: row 0 of SETTINGS_COLUMNS, or the defaults. */
static json_object *settings_json(const PGresult *res) {
    json_object *o = json_object_new_object();
    int have = res && PQntuples(res) > 0;
    json_object *ch = have ? json_tokener_parse(PQgetvalue(res, 0, 0)) : NULL;
    if (!ch) {
        ch = json_object_new_array();
        json_object_array_add(ch, json_object_new_string("in_app"));
    }
    json_object_object_add(o, "channels", ch);
    json_object_object_add(o, "webhook_url", have ? str_or_null(res, 1) : NULL);
    json_object_object_add(o, "email", have ? str_or_null(res, 2) : NULL);
    json_object_object_add(o, "webhook_secret_set",
                           json_object_new_boolean(have && PQgetvalue(res, 0, 3)[0] == 't'));
    json_object_object_add(o, "updated_at", have ? str_or_null(res, 4) : NULL);
    return o;
}

void h_settings_get(rq_t *rq, td_http_resp_t *resp) {
    PGconn *c = api_conn(rq, resp);
    if (!c) return;
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT %s FROM notification_settings WHERE user_id = $1", SETTINGS_COLUMNS);
    const char *v[1] = {rq->user};
    PGresult *res = PQexecParams(c, sql, 1, NULL, v, NULL, NULL, 0);
    td_pg_release(rq->api->pool, c);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        api_internal(rq, resp, "notification settings", PQresultErrorMessage(res));
    else
        api_json(resp, 200, settings_json(res));
    PQclear(res);
}

/* An absolute http(s) URL with a host (RFC 3986, liburiparser). */
static int valid_webhook_url(const char *s) {
    if (strlen(s) > 2048) return 0;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) return 0;
    UriUriA uri;
    const char *end = NULL;
    if (uriParseSingleUriA(&uri, s, &end) != URI_SUCCESS) return 0;
    size_t sl = (size_t)(uri.scheme.afterLast - uri.scheme.first);
    int ok = uri.scheme.first &&
             ((sl == 4 && strncasecmp(uri.scheme.first, "http", 4) == 0) ||
              (sl == 5 && strncasecmp(uri.scheme.first, "https", 5) == 0)) &&
             uri.hostText.first && uri.hostText.afterLast > uri.hostText.first &&
             !uri.userInfo.first && !uri.fragment.first;
    uriFreeUriMembersA(&uri);
    return ok;
}

/* local@domain: printable ASCII (the mail goes out without SMTPUTF8), no
 * spaces, quotes or angle brackets (it goes into an SMTP envelope and a
 * To: header). */
static int valid_email(const char *s) {
    size_t n = strlen(s);
    const char *at = strchr(s, '@');
    if (n > 254 || !at || at == s || !at[1] || strchr(at + 1, '@')) return 0;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || strchr("<>()[]\\,;:\"", *p)) return 0;
    return at[1] != '.' && at[strlen(at) - 1] != '.';
}

/* Optional string member: NULL when absent or null; *bad when another type. */
static const char *opt_string(json_object *body, const char *key, int *bad) {
    json_object *v = NULL;
    if (!json_object_object_get_ex(body, key, &v) || !v) return NULL;
    if (!json_object_is_type(v, json_type_string)) {
        *bad = 1;
        return NULL;
    }
    return json_object_get_string(v);
}

void h_settings_put(rq_t *rq, td_http_resp_t *resp) {
    json_object *body = api_body_object(rq, resp, 0), *ch = NULL;
    if (!body) return;
    static const char *const KNOWN[] = {"channels", "webhook_url", "email", "webhook_secret", NULL};
    const char *unknown = NULL;
    json_object_object_foreach(body, key, val) {
        (void)val;
        int known = 0;
        for (size_t i = 0; KNOWN[i]; i++) known |= strcmp(KNOWN[i], key) == 0;
        if (!known && !unknown) unknown = key;
    }
    int bad_url = 0, bad_email = 0, bad_secret = 0, want[3] = {0, 0, 0};
    const char *url = opt_string(body, "webhook_url", &bad_url);
    const char *email = opt_string(body, "email", &bad_email);
    const char *secret = opt_string(body, "webhook_secret", &bad_secret);
    const char *field = NULL, *reason = NULL;
    unsigned char skey[TD_WHSEC_MAX_KEY];
    json_object_object_get_ex(body, "channels", &ch);
    if (unknown) {
        field = unknown, reason = "unknown member";
    } else if (!ch || !json_object_is_type(ch, json_type_array) || json_object_array_length(ch) == 0) {
        field = "channels", reason = "a non-empty array of in_app, webhook, email";
    } else {
        for (size_t i = 0; !field && i < json_object_array_length(ch); i++) {
            json_object *e = json_object_array_get_idx(ch, i);
            size_t k = 0;
            while (CHANNELS[k] && !(json_object_is_type(e, json_type_string) &&
                                    strcmp(json_object_get_string(e), CHANNELS[k]) == 0))
                k++;
            if (!CHANNELS[k]) field = "channels", reason = "each must be in_app, webhook or email";
            else if (want[k]++) field = "channels", reason = "each channel at most once";
        }
    }
    if (field) {
    } else if (bad_url || (url && !valid_webhook_url(url))) {
        field = "webhook_url", reason = "an absolute http or https URL";
    } else if (want[1] && !url) {
        field = "webhook_url", reason = "required with the webhook channel";
    } else if (bad_email || (email && !valid_email(email))) {
        field = "email", reason = "an address local@domain";
    } else if (want[2] && !email) {
        field = "email", reason = "required with the email channel";
    } else if (bad_secret || (secret && td_whsec_key(secret, skey, sizeof skey) < 0)) {
        field = "webhook_secret", reason = "whsec_ followed by the base64 of 24 to 64 bytes";
    }
    if (field) {
        api_invalid(rq, resp, field, reason);
        json_object_put(body);
        return;
    }
    /* A webhook without a secret yet gets a generated one, shown once. */
    char generated[64] = "";
    if (url && !secret && td_whsec_new(generated, sizeof generated) != 0) {
        api_internal(rq, resp, "webhook secret", "no random bytes");
        json_object_put(body);
        return;
    }
    PGconn *c = api_conn(rq, resp);
    if (!c) {
        json_object_put(body);
        return;
    }
    char now[TE_TIME_STRLEN];
    store_fmt_ms(rq->now, now);
    const char *v[7] = {rq->user, json_object_to_json_string_ext(ch, JSON_C_TO_STRING_PLAIN), url,
                        email, secret, generated[0] ? generated : NULL, now};
    char sql[1024];
    /* $6 (a generated secret) applies only when no secret is stored yet;
     * the RETURNING tells whether it was used. */
    snprintf(sql, sizeof sql,
             "INSERT INTO notification_settings AS s (user_id, channels, webhook_url, email, "
             "                                        webhook_secret, updated_at) "
             "SELECT $1, array_agg(x), $3, $4, coalesce($5, $6), $7::timestamptz "
             "  FROM json_array_elements_text($2::json) x "
             "ON CONFLICT (user_id) DO UPDATE SET channels = excluded.channels, "
             "  webhook_url = excluded.webhook_url, email = excluded.email, "
             "  webhook_secret = coalesce($5, s.webhook_secret, $6), updated_at = excluded.updated_at "
             "RETURNING %s, webhook_secret IS NOT DISTINCT FROM $6",
             SETTINGS_COLUMNS);
    PGresult *res = PQexecParams(c, sql, 7, NULL, v, NULL, NULL, 0);
    td_pg_release(rq->api->pool, c);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        api_internal(rq, resp, "notification settings", PQresultErrorMessage(res));
    } else {
        json_object *o = settings_json(res);
        if (generated[0] && PQgetvalue(res, 0, 5)[0] == 't')
            json_object_object_add(o, "webhook_secret", json_object_new_string(generated));
        api_json(resp, 200, o);
    }
    PQclear(res);
    json_object_put(body);
}
