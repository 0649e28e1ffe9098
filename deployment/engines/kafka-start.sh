#!/bin/sh
# The Kafka image's entry point: server.properties from the KAFKA_* environment (except KAFKA_HEAP_OPTS,
# KAFKA_CLUSTER_ID and the healthcheck's KAFKA_HEALTH_PORT), storage formatted on the first start
# only, then the broker in the foreground so that the container lives and dies with it.
set -eu
home=/opt/kafka
props=$(mktemp)
env | grep '^KAFKA_' | grep -v -e '^KAFKA_HEAP_OPTS=' -e '^KAFKA_CLUSTER_ID=' -e '^KAFKA_HEALTH_PORT=' | sort \
  | while IFS='=' read -r name value; do
      printf '%s=%s\n' "$(printf '%s' "${name#KAFKA_}" | tr 'A-Z_' 'a-z.')" "$value"
    done > "$props"
java_run() { java -cp "$home/libs/*" -Dlog4j2.configurationFile="$home/kafka-log4j2.properties" "$@"; }
if [ ! -f "$KAFKA_LOG_DIRS/meta.properties" ]; then
  cluster_id=${KAFKA_CLUSTER_ID:-$(java_run kafka.tools.StorageTool random-uuid)}
  java_run kafka.tools.StorageTool format -t "$cluster_id" -c "$props" --ignore-formatted
fi
# shellcheck disable=SC2086  # the heap options are several words
exec java $KAFKA_HEAP_OPTS -XX:+UseG1GC -Djava.awt.headless=true -cp "$home/libs/*" \
  -Dlog4j2.configurationFile="$home/kafka-log4j2.properties" kafka.Kafka "$props"
