/* todoctl — options shared by the Kafka commands (topics ensure, event
 * publish, event tail). */
#ifndef TODOCTL_KAFKA_H
#define TODOCTL_KAFKA_H

#include <todoevents/kafka.h>

/* A configuration with bootstrap.servers from TE_KAFKA_BROKERS (when set).
 * Exits the process when out of memory. */
te_conf_t *todoctl_kafka_conf_new(void);

/* Consumes a shared option at argv[*i] ("--brokers B", "-X KEY=VALUE",
 * "--conf KEY=VALUE"), advancing *i past its value.  Returns 1 when it
 * was one, 0 when not, -1 on error (message printed, prefixed with cmd). */
int todoctl_kafka_option(te_conf_t *conf, const char *cmd, int argc, char **argv, int *i);

/* 0 when bootstrap.servers is set, else prints an error and returns -1. */
int todoctl_kafka_ready(const te_conf_t *conf, const char *cmd);

/* Help text for the shared options. */
#define TODOCTL_KAFKA_OPTIONS_HELP                                                        \
    "  --brokers HOST:PORT[,...]  Kafka bootstrap servers (default: $TE_KAFKA_BROKERS)\n" \
    "  -X KEY=VALUE               a librdkafka property or te.* key, e.g.\n"             \
    "                             -X security.protocol=SASL_SSL (repeatable); also\n"   \
    "                             from TE_RDKAFKA_<PROPERTY> variables, e.g.\n"          \
    "                             TE_RDKAFKA_SASL_MECHANISM=SCRAM-SHA-512\n"

#endif
