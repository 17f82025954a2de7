/* Start-up pieces every daemon shares: the Kafka configuration from the
 * environment, the schema migrations, numeric settings reported by name.
 * Call them from the main thread before other threads start. */
#ifndef TD_DAEMON_H
#define TD_DAEMON_H

#include <signal.h>
#include <todoevents/kafka.h>

/* bootstrap.servers = brokers, client.id, librdkafka's log into the JSON
 * log, and every TE_RDKAFKA_<PROPERTY> variable (a bad one is logged by
 * name).  NULL on a bad setting. */
te_conf_t *td_kafka_conf(const char *brokers, const char *client_id);

/* Applies the schema migrations (logged).  0 or -1. */
int td_migrate(const char *pg_url);

/* An integer setting in [min, max]; a bad value is logged by name and
 * sets *bad. */
long td_env_long_named(const char *name, long def, long min, long max, int *bad);

/* Blocks SIGTERM and SIGINT (every thread started afterwards inherits the
 * mask; the main thread takes them with sigwait(sigs)) and ignores
 * SIGPIPE. */
void td_block_signals(sigset_t *sigs);

#endif
