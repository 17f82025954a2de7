#!/usr/bin/env bash
# todoctl topics ensure: Kafka settings from TE_RDKAFKA_<PROPERTY>
# variables (how the Helm chart's topics Job passes SASL/TLS settings).
# Needs no broker: an unreachable address shows the settings were taken.
#   bash topics.sh BUILD_DIR SOURCE_DIR
set -u
BUILD=${1:?build dir}
TODOCTL=$BUILD/bin/todoctl
. "$(dirname "$0")/lib.sh"

run env TE_RDKAFKA_NOT_A_PROPERTY=x "$TODOCTL" topics ensure --brokers 127.0.0.1:1 --timeout 1
expect_rc 2 "unknown property" && grep -q 'TE_RDKAFKA_NOT_A_PROPERTY: unknown configuration key .not.a.property.' "$TMP/err" \
  || { fail "unknown property: the variable is named"; show; }

run env TE_RDKAFKA_SECURITY_PROTOCOL=carrier-pigeon "$TODOCTL" topics ensure --brokers 127.0.0.1:1 --timeout 1
expect_rc 2 "bad value" && grep -q 'TE_RDKAFKA_SECURITY_PROTOCOL' "$TMP/err" || { fail "bad value: named"; show; }

# a valid SASL/TLS set is accepted: the failure is reaching the broker
run env TE_RDKAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT TE_RDKAFKA_SASL_MECHANISM=SCRAM-SHA-512 \
  TE_RDKAFKA_SASL_USERNAME=u TE_RDKAFKA_SASL_PASSWORD=p "$TODOCTL" topics ensure --brokers 127.0.0.1:1 --timeout 1
# (librdkafka's log names the protocol it used: sasl_plaintext://)
grep -q 'sasl_plaintext://127.0.0.1:1' "$TMP/err" && grep -q 'cannot get the cluster metadata' "$TMP/err" \
  || { fail "valid settings taken"; show; }
grep -q 'TE_RDKAFKA' "$TMP/err" && { fail "valid settings: no complaint about them"; show; }
# the password never appears in the output
grep -q '=p\b' "$TMP/err" && fail "password printed"

echo "topics.sh: $checks commands, $failures failure(s)"
[ "$failures" -eq 0 ]
