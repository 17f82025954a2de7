/* todo-reminder: fires reminders on time and delivers them on the user's
 * channels (docs/reminder.md).  Configuration from the environment;
 * /healthz, /readyz, /metrics and the Dapr cron binding route on
 * TE_REMINDER_LISTEN; graceful shutdown on SIGTERM. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "dapr.h"
#include "env.h"
#include "http.h"
#include "log.h"
#include "outbox_relay.h"
#include "pg.h"
#include "reminder.h"

typedef struct ops_s {
    rem_t *rem;
    scheduler_t *sched;
    td_pg_pool_t *pool;
    td_intake_t in;
} ops_t;


static void ops_handler(td_http_req_t *req, td_http_resp_t *resp, void *arg) {
    ops_t *ops = arg;
    if (td_intake_ops(&ops->in, req, resp, ops->pool)) return;
    const char *m = td_http_method(req);
    if (strcmp(td_http_path(req), "/reminder-scheduler") != 0) {
        td_http_resp_set(resp, 404, "application/json", "{\"status\":\"not found\"}", 22);
    } else if (strcmp(m, "OPTIONS") == 0) { /* Dapr asks whether the binding route exists */
        td_http_resp_set(resp, 200, "application/json", "{}", 2);
    } else if (strcmp(m, "POST") == 0) {    /* the cron binding fired: look now */
        scheduler_wake(ops->sched);
        td_http_resp_set(resp, 200, "application/json", "{\"status\":\"woken\"}", 18);
    } else {
        td_http_resp_set(resp, 405, "application/json", "{\"status\":\"method not allowed\"}", 31);
    }
}

static int read_config(rem_config_t *c) {
    int bad = 0;
    c->late_after_s = td_env_long_named("TE_REMINDER_LATE_AFTER_S", 30, 0, 86400, &bad);
    c->grace_s = td_env_long_named("TE_REMINDER_GRACE_S", 3600, 1, 365L * 86400, &bad);
    c->batch = td_env_long_named("TE_REMINDER_BATCH", 1000, 1, 100000, &bad);
    c->max_sleep_ms = td_env_long_named("TE_REMINDER_MAX_SLEEP_MS", 60000, 10, 3600000, &bad);
    c->sched_threads = td_env_long_named("TE_REMINDER_SCHEDULER_THREADS", 2, 1, 16, &bad);
    c->retention_days = td_env_long_named("TE_DELIVERY_RETENTION_DAYS", 30, 1, 3650, &bad);
    c->threads = td_env_long_named("TE_NOTIFY_THREADS", 4, 1, 256, &bad);
    c->max_attempts = td_env_long_named("TE_NOTIFY_MAX_ATTEMPTS", 3, 1, 100, &bad);
    c->backoff_ms = td_env_long_named("TE_NOTIFY_BACKOFF_MS", 1000, 1, 3600000, &bad);
    c->lease_s = td_env_long_named("TE_NOTIFY_LEASE_S", 60, 5, 86400, &bad);
    c->webhook_timeout_ms = td_env_long_named("TE_WEBHOOK_TIMEOUT_MS", 10000, 100, 600000, &bad);
    if (c->lease_s * 1000 < c->webhook_timeout_ms + 5000) {
        td_logf(TD_LOG_ERROR, NULL, "TE_NOTIFY_LEASE_S must exceed TE_WEBHOOK_TIMEOUT_MS by 5 s at least");
        bad = 1;
    }
    c->allow_private = td_env_bool_checked("TE_WEBHOOK_ALLOW_PRIVATE", 0, &bad);
    c->smtp_url = td_env_str("TE_SMTP_URL", NULL);
    c->smtp_from = td_env_str("TE_SMTP_FROM", NULL);
    c->smtp_user = td_env_str("TE_SMTP_USER", NULL);
    int perr = 0;
    char why[512];
    c->smtp_password = td_env_secret_ex("TE_SMTP_PASSWORD", &perr, why, sizeof why);
    if (perr) {
        td_logf(TD_LOG_ERROR, NULL, "%s", why);
        bad = 1;
    }
    td_dapr_t *dapr = td_dapr_global();
    if (dapr) { /* email through the SMTP output binding */
        const char *b = td_env_str("TE_DAPR_SMTP_BINDING", "smtp");
        size_t n = strlen(td_dapr_base(dapr)) + strlen(b) + sizeof "/v1.0/bindings/";
        if ((c->smtp_binding_url = malloc(n)) != NULL)
            snprintf(c->smtp_binding_url, n, "%s/v1.0/bindings/%s", td_dapr_base(dapr), b);
        c->dapr_token = td_dapr_token(dapr);
        if (c->lease_s < 45) { /* a binding request may take 40 s (channels.c) */
            td_logf(TD_LOG_ERROR, NULL, "TE_NOTIFY_LEASE_S must be 45 or more with TE_TRANSPORT=dapr");
            bad = 1;
        }
    }
    if (c->smtp_url && !c->smtp_from) {
        td_logf(TD_LOG_ERROR, NULL, "TE_SMTP_FROM is required with TE_SMTP_URL");
        bad = 1;
    }
    return bad ? -1 : 0;
}

static int nonblocking_pipe(int fds[2]) {
    return pipe(fds) == 0 && fcntl(fds[0], F_SETFL, O_NONBLOCK) == 0 &&
                   fcntl(fds[1], F_SETFL, O_NONBLOCK) == 0
               ? 0
               : -1;
}

int main(int argc, char **argv) {
    const char *pg_url = NULL, *brokers = NULL;
    int early = td_daemon_init(argc, argv, "todo-reminder", "docs/reminder.md", &pg_url, &brokers);
    if (early >= 0) return early;
    sigset_t sigs;
    td_block_signals(&sigs);
    channels_global_init();

    int status = 1, bad = 0;
    rem_t rem = {.cfg = {.pg_url = pg_url}, .stop_pipe = {-1, -1}};
    ops_t ops = {.rem = &rem};
    te_conf_t *conf = NULL;
    td_http_server_t *srv = NULL;
    relay_t *relay = NULL;
    delivery_pool_t *delivery = NULL;
    char err[TE_ERRSTR_SIZE];
    int retention = (int)td_env_long_named("TE_SYNC_RETENTION_DAYS", 7, 1, 3650, &bad);
    int run_scheduler = td_env_bool_checked("TE_REMINDER_SCHEDULER", 1, &bad);
    int run_delivery = td_env_bool_checked("TE_REMINDER_DELIVERY", 1, &bad);
    if (bad || read_config(&rem.cfg) != 0) goto out;
    if (nonblocking_pipe(rem.stop_pipe) != 0) goto out;
    if (td_env_bool("TE_MIGRATE", 1) && td_migrate(pg_url) != 0) goto out;
    if (brokers) { /* Kafka mode */
        if (!(conf = td_kafka_conf(brokers, "todo-reminder"))) goto out;
        if (te_conf_set(conf, "group.id", td_env_str("TE_REMINDER_GROUP", "todo-reminder"), err, sizeof err) != TE_OK ||
            te_conf_set(conf, "te.max.attempts", "100", err, sizeof err) != TE_OK) {
            td_logf(TD_LOG_ERROR, NULL, "consumer settings: %s", err);
            goto out;
        }
    }
    static const char *const RESULT[] = {"result", NULL}, *const CH[] = {"channel", NULL},
                             *const CH_RESULT[] = {"channel", "result", NULL};
    static const double LATENESS_BUCKETS[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600};
    rem.m_fired = td_counter("te_reminders_fired_total", "Reminders fired, by result (due, late, missed)", RESULT);
    rem.m_lateness = td_histogram("te_reminder_lateness_seconds", "Delivered time minus the reminder time, per channel",
                                  CH, LATENESS_BUCKETS, sizeof LATENESS_BUCKETS / sizeof LATENESS_BUCKETS[0]);
    rem.m_attempts = td_counter("te_notification_attempts_total", "Delivery attempts, by channel and result", CH_RESULT);
    rem.m_dlq = td_counter("te_notification_dead_lettered_total", "Deliveries that failed every attempt", CH);
    rem.m_events = td_counter("te_reminder_events_total", "reminder.due events handled, by result", RESULT);
    static const char *const TOPICS[] = {TE_TOPIC_REMINDER_DUE};
    /* without delivery here, reminder.due is not consumed (another replica's job) */
    if (run_delivery && td_intake_init(&ops.in, conf, "todo-reminder", TOPICS, 1, intake_handle, &rem, 100) != 0)
        goto out;
    ops.pool = td_pg_pool_new(pg_url, 1);
    if (td_env_bool("TE_OUTBOX_RELAY", 1) &&
        !(relay = relay_start(pg_url, conf, td_dapr_global(), retention, err, sizeof err))) {
        td_logf(TD_LOG_ERROR, NULL, "outbox relay: %s", err);
        goto out;
    }
    if (run_delivery) {
        if (td_intake_start(&ops.in) != 0) goto out;
        if (!(delivery = delivery_start(&rem, err, sizeof err))) {
            td_logf(TD_LOG_ERROR, NULL, "%s", err);
            goto out;
        }
    }
    if (run_scheduler) {
        if (!(ops.sched = scheduler_start(&rem, rem.cfg.sched_threads, err, sizeof err))) {
            td_logf(TD_LOG_ERROR, NULL, "%s", err);
            goto out;
        }
    }
    /* last: its handlers use the parts above (and it stops first) */
    td_http_config_t hc = {.listen = td_env_str("TE_REMINDER_LISTEN", "127.0.0.1:8082"),
                           .threads = ops.in.app ? TD_DAPR_APP_THREADS : 1,
                           .max_body = ops.in.app ? TD_DAPR_APP_MAX_BODY : 4096, .timeout_s = 30};
    if (!(srv = td_http_start(&hc, ops_handler, &ops, err, sizeof err))) {
        td_logf(TD_LOG_ERROR, NULL, "%s", err);
        goto out;
    }
    td_logf(TD_LOG_INFO, NULL, "todo-reminder serving on %s (scheduler %s, delivery %s, group %s)", hc.listen,
            run_scheduler ? "on" : "off", run_delivery ? "on" : "off",
            td_env_str("TE_REMINDER_GROUP", "todo-reminder"));
    int sig = 0;
    sigwait(&sigs, &sig);
    td_logf(TD_LOG_INFO, NULL, "signal %d: shutting down", sig);
    status = 0;
out:
    atomic_store(&rem.stopping, 1);
    if (rem.stop_pipe[1] >= 0) {
        close(rem.stop_pipe[1]); /* wakes every delivery thread */
        rem.stop_pipe[1] = -1;
    }
    td_intake_halt(&ops.in); /* Dapr deliveries from now on: RETRY */
    td_http_stop(srv);
    scheduler_stop(ops.sched);
    delivery_stop(delivery);
    td_intake_stop(&ops.in);
    relay_stop(relay);
    td_pg_pool_destroy(ops.pool);
    if (rem.intake_conn) PQfinish(rem.intake_conn);
    te_conf_destroy(conf);
    for (int i = 0; i < 2; i++) {
        if (rem.stop_pipe[i] >= 0) close(rem.stop_pipe[i]);
    }
    free(rem.cfg.smtp_password);
    free(rem.cfg.smtp_binding_url);
    channels_global_cleanup();
    if (status == 0) td_logf(TD_LOG_INFO, NULL, "stopped");
    td_metrics_shutdown();
    return status;
}
