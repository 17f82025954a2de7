/* The outbox relay: publishes the rows of the outbox table to Kafka and
 * deletes each one only after the broker acknowledged it (see
 * outbox_relay.c for the design).  Any daemon that writes the outbox may
 * run one; an advisory lock keeps exactly one active across all of them.
 *
 * Threads: relay_start() starts its own thread; relay_kafka_ok() may be
 * called from any thread; relay_stop() from the thread that started it. */
#ifndef TD_OUTBOX_RELAY_H
#define TD_OUTBOX_RELAY_H

#include <stddef.h>
#include <todoevents/kafka.h>

typedef struct relay_s relay_t;

/* pg_url and the Kafka conf are copied.  With dapr (not NULL; it must
 * outlive the relay) rows are published through the Dapr sidecar instead
 * and kafka_conf is not used (docs/dapr.md).  NULL on failure (errstr).
 * retention_days: change-log rows older than this are pruned (hourly). */
typedef struct td_dapr_s td_dapr_t;
relay_t *relay_start(const char *pg_url, const te_conf_t *kafka_conf, td_dapr_t *dapr, int retention_days,
                     char *errstr, size_t errstr_size);
/* Stops claiming, records what Kafka acknowledged (bounded), stops.  NULL ok. */
void relay_stop(relay_t *r);
/* Kafka reachable (metadata answered recently) and the producer healthy;
 * in Dapr mode: the sidecar answered its outbound health check. */
int relay_kafka_ok(relay_t *r);

#endif
