#!/bin/sh
# The Elasticsearch image's entry point: one single-node cluster, security off (behind the stack's
# network only), listening on ES_NETWORK_HOST:ES_HTTP_PORT (0.0.0.0:9200), then the node in the
# foreground. Single-node discovery is also what lets it bind a non-loopback address without the
# production bootstrap checks (vm.max_map_count cannot be raised from inside a container).
set -eu
home=/usr/share/elasticsearch
cat > "$home/config/elasticsearch.yml" <<YML
cluster.name: cinerec
node.name: ${HOSTNAME:-cinerec-1}
discovery.type: single-node
network.host: ${ES_NETWORK_HOST:-0.0.0.0}
http.port: ${ES_HTTP_PORT:-9200}
transport.port: ${ES_TRANSPORT_PORT:-9300}
path.data: $home/data
path.logs: $home/logs
xpack.security.enabled: false
cluster.routing.allocation.disk.threshold_enabled: false
action.destructive_requires_name: false
action.auto_create_index: false
YML
ES_JAVA_HOME=${ES_JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")}
export ES_JAVA_HOME
exec "$home/bin/elasticsearch"
