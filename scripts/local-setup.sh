#!/usr/bin/env bash
# scripts/local-setup.sh — todoevents on a local Minikube cluster, with Dapr,
# Kafka, Redis and PostgreSQL (docs/deploy.md, "Local cluster (Minikube)").
#
#   scripts/local-setup.sh                   start (or update) everything
#   scripts/local-setup.sh --down            delete the release and namespace "todo"
#   scripts/local-setup.sh --down --delete-cluster
#                                            ... and the Minikube profile itself
#   scripts/local-setup.sh --print-manifests print the manifests of Kafka, Redis,
#                                            PostgreSQL and the mail catcher; no cluster needed
#
# Options: --cpus N, --memory MB, --driver D, --profile P, --no-build (keep
# the image already in the cluster). Environment: TE_MINIKUBE_PROFILE
# (todoevents), TE_MINIKUBE_CPUS (4), TE_MINIKUBE_MEMORY (8192),
# TE_MINIKUBE_DRIVER (docker), TE_KUBERNETES_VERSION (Minikube's default),
# TE_DAPR_RUNTIME_VERSION (the Dapr CLI's default), TE_IMAGE_TAG (dev),
# TE_KAFKA_IMAGE, TE_REDIS_IMAGE, TE_POSTGRES_IMAGE, TE_MAILPIT_IMAGE.
#
# What it does, each step idempotent (a second run changes nothing that is
# already right; run it again after a code change to rebuild and roll out):
#   1. minikube start (a profile of its own), kubectl context = that profile
#   2. dapr init -k --wait (Dapr control plane in dapr-system, mTLS on)
#   3. namespace "todo"; Secrets with random values made here (openssl rand),
#      kept on later runs: todoevents-secrets (pg-url, redis-url, jwt-secret),
#      postgresql-auth, redis-secret (redis-password), smtp-secret
#   4. Kafka 4 (KRaft, single node) kafka.todo.svc.cluster.local:9092, Redis
#      redis-master.todo.svc.cluster.local:6379 (password), PostgreSQL
#      postgresql.todo.svc.cluster.local:5432 (database and role "todo") and a
#      mail catcher (Mailpit, mailpit:1025; UI on 8025), from the projects'
#      own images — the Bitnami charts no longer pull without a subscription
#   5. the image, built inside Minikube: ghcr.io/libtodoevents/todoevents:dev
#   6. infrastructure/dapr: the components and the configuration
#   7. helm upgrade --install todoevents helm/todoevents -f helm/values-minikube.yaml
#   8. waits for every rollout and prints how to reach the API
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROFILE=${TE_MINIKUBE_PROFILE:-todoevents}
CPUS=${TE_MINIKUBE_CPUS:-4}
MEMORY=${TE_MINIKUBE_MEMORY:-8192}
DRIVER=${TE_MINIKUBE_DRIVER:-docker}
K8S_VERSION=${TE_KUBERNETES_VERSION:-}
DAPR_RUNTIME_VERSION=${TE_DAPR_RUNTIME_VERSION:-}
NS=todo
RELEASE=todoevents
IMAGE=ghcr.io/libtodoevents/todoevents
TAG=${TE_IMAGE_TAG:-dev}
KAFKA_IMAGE=${TE_KAFKA_IMAGE:-apache/kafka:4.1.1}
REDIS_IMAGE=${TE_REDIS_IMAGE:-redis:7.4}
POSTGRES_IMAGE=${TE_POSTGRES_IMAGE:-postgres:15}
MAILPIT_IMAGE=${TE_MAILPIT_IMAGE:-axllent/mailpit:latest}
# Not a secret: the id the single Kafka node formats its storage with.
KAFKA_CLUSTER_ID=bguAr-zJRVKy6RkcHV5mUw
TIMEOUT=600s

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'local-setup: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
  exit "${1:-0}"
}

mode=up
delete_cluster=0
build=1
while [ $# -gt 0 ]; do
  case $1 in
    --down) mode=down ;;
    --delete-cluster) delete_cluster=1 ;;
    --print-manifests) mode=manifests ;;
    --no-build) build=0 ;;
    --cpus) CPUS=${2:?--cpus N}; shift ;;
    --memory) MEMORY=${2:?--memory MB}; shift ;;
    --driver) DRIVER=${2:?--driver NAME}; shift ;;
    --profile) PROFILE=${2:?--profile NAME}; shift ;;
    -h|--help) usage 0 ;;
    *) printf 'local-setup: unknown argument %s\n\n' "$1" >&2; usage 2 ;;
  esac
  shift
done
[ "$delete_cluster" = 0 ] || [ "$mode" = down ] || die "--delete-cluster goes with --down"

# --- the backing services ------------------------------------------------------
# Their manifests, from the pieces below (one replica each, every object
# labelled app.kubernetes.io/name: APP, part-of: todoevents-local).

manifest_labels() { printf '{app.kubernetes.io/name: %s, app.kubernetes.io/part-of: todoevents-local}' "$1"; }

# manifest_service [--headless] NAME APP PORT...: a Service selecting APP's
# pods; each PORT is name:number (the same number on the pod).
manifest_service() {
  local headless=0 name app p
  if [ "$1" = --headless ]; then headless=1; shift; fi
  name=$1 app=$2; shift 2
  cat <<EOF
apiVersion: v1
kind: Service
metadata:
  name: $name
  labels: $(manifest_labels "$app")
spec:
EOF
  [ "$headless" = 0 ] || printf '  clusterIP: None\n  publishNotReadyAddresses: true\n'
  printf '  selector: {app.kubernetes.io/name: %s}\n  ports:\n' "$app"
  for p in "$@"; do
    printf '    - {name: %s, port: %s, targetPort: %s}\n' "${p%%:*}" "${p#*:}" "${p#*:}"
  done
}

# manifest_workload KIND NAME APP IMAGE [POD_SPEC_LINE]: a Deployment or a
# StatefulSet (serviceName NAME) of one pod running one container, APP, up
# to its imagePullPolicy; the caller prints the rest of the container.
manifest_workload() {
  local kind=$1 name=$2 app=$3 image=$4 pod_line=${5:-}
  cat <<EOF
apiVersion: apps/v1
kind: $kind
metadata:
  name: $name
  labels: $(manifest_labels "$app")
spec:
EOF
  [ "$kind" != StatefulSet ] || printf '  serviceName: %s\n' "$name"
  cat <<EOF
  replicas: 1
  selector:
    matchLabels: {app.kubernetes.io/name: $app}
  template:
    metadata:
      labels: $(manifest_labels "$app")
    spec:
      enableServiceLinks: false
EOF
  [ -z "$pod_line" ] || printf '      %s\n' "$pod_line"
  cat <<EOF
      containers:
        - name: $app
          image: $image
          imagePullPolicy: IfNotPresent
EOF
}

# manifest_resources CPU MEMORY MEMORY_LIMIT: the container's requests and limit.
manifest_resources() {
  printf '          resources:\n            requests: {cpu: %s, memory: %s}\n            limits: {memory: %s}\n' "$@"
}

# manifest_data_volume MOUNT_PATH SIZE: a StatefulSet's volume "data" of SIZE,
# mounted at MOUNT_PATH (ends the container and the StatefulSet).
manifest_data_volume() {
  cat <<EOF
          volumeMounts:
            - {name: data, mountPath: $1}
  volumeClaimTemplates:
    - metadata:
        name: data
      spec:
        accessModes: [ReadWriteOnce]
        resources:
          requests: {storage: $2}
EOF
}

# Kafka: a headless Service "kafka" (kafka.todo.svc.cluster.local resolves to
# the broker's pod, which advertises its own stable name, so a client never
# goes through a ClusterIP hairpin). enableServiceLinks: false, or the
# injected KAFKA_PORT/KAFKA_SERVICE_* variables would reach the image's
# KAFKA_* -> server.properties translation.
backing_manifests() {
  manifest_service --headless kafka kafka client:9092 controller:9093
  echo ---
  manifest_workload StatefulSet kafka kafka "$KAFKA_IMAGE" \
    'securityContext: {runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000}'
  cat <<EOF
          ports:
            - {name: client, containerPort: 9092}
            - {name: controller, containerPort: 9093}
          env:
            - {name: CLUSTER_ID, value: "${KAFKA_CLUSTER_ID}"}
            - {name: KAFKA_NODE_ID, value: "1"}
            - {name: KAFKA_PROCESS_ROLES, value: "broker,controller"}
            - {name: KAFKA_LISTENERS, value: "PLAINTEXT://:9092,CONTROLLER://:9093"}
            - {name: KAFKA_ADVERTISED_LISTENERS, value: "PLAINTEXT://kafka-0.kafka.${NS}.svc.cluster.local:9092"}
            - {name: KAFKA_LISTENER_SECURITY_PROTOCOL_MAP, value: "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"}
            - {name: KAFKA_CONTROLLER_LISTENER_NAMES, value: "CONTROLLER"}
            - {name: KAFKA_INTER_BROKER_LISTENER_NAME, value: "PLAINTEXT"}
            - {name: KAFKA_CONTROLLER_QUORUM_VOTERS, value: "1@localhost:9093"}
            - {name: KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR, value: "1"}
            - {name: KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR, value: "1"}
            - {name: KAFKA_TRANSACTION_STATE_LOG_MIN_ISR, value: "1"}
            - {name: KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR, value: "1"}
            - {name: KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR, value: "1"}
            - {name: KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS, value: "0"}
            - {name: KAFKA_LOG_DIRS, value: "/var/lib/kafka/data/logs"}
            - {name: KAFKA_HEAP_OPTS, value: "-Xms256m -Xmx768m"}
          readinessProbe:
            tcpSocket: {port: 9092}
            initialDelaySeconds: 5
            periodSeconds: 5
          livenessProbe:
            tcpSocket: {port: 9093}
            initialDelaySeconds: 60
            periodSeconds: 20
EOF
  manifest_resources 250m 768Mi 1280Mi
  manifest_data_volume /var/lib/kafka/data 2Gi
  echo ---
  manifest_service redis-master redis redis:6379
  echo ---
  manifest_workload Deployment redis-master redis "$REDIS_IMAGE"
  cat <<'EOF'
          # Kubernetes expands $(REDIS_PASSWORD) from the env below (no shell).
          args: ["--requirepass", "$(REDIS_PASSWORD)", "--save", "", "--appendonly", "no"]
          env:
            - name: REDIS_PASSWORD
              valueFrom:
                secretKeyRef: {name: redis-secret, key: redis-password}
          ports:
            - {name: redis, containerPort: 6379}
          readinessProbe:
            tcpSocket: {port: 6379}
            periodSeconds: 5
EOF
  manifest_resources 50m 64Mi 256Mi
  echo ---
  manifest_service postgresql postgresql postgresql:5432
  echo ---
  manifest_workload StatefulSet postgresql postgresql "$POSTGRES_IMAGE"
  cat <<'EOF'
          env:
            - {name: POSTGRES_USER, value: todo}
            - {name: POSTGRES_DB, value: todo}
            - name: POSTGRES_PASSWORD
              valueFrom:
                secretKeyRef: {name: postgresql-auth, key: password}
            - {name: PGDATA, value: /var/lib/postgresql/data/pgdata}
          ports:
            - {name: postgresql, containerPort: 5432}
          readinessProbe:
            exec:
              command: ["pg_isready", "-h", "127.0.0.1", "-U", "todo", "-d", "todo"]
            periodSeconds: 5
EOF
  manifest_resources 100m 128Mi 512Mi
  manifest_data_volume /var/lib/postgresql/data 1Gi
  echo ---
  manifest_service mailpit mailpit smtp:1025 http:8025
  echo ---
  manifest_workload Deployment mailpit mailpit "$MAILPIT_IMAGE"
  cat <<'EOF'
          ports:
            - {name: smtp, containerPort: 1025}
            - {name: http, containerPort: 8025}
          readinessProbe:
            tcpSocket: {port: 1025}
            periodSeconds: 5
EOF
  manifest_resources 10m 32Mi 128Mi
}

if [ "$mode" = manifests ]; then
  backing_manifests
  exit 0
fi

# --- tools -------------------------------------------------------------------------
need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  printf 'local-setup: %s is not installed. %s\n' "$1" "$2" >&2
  missing=1
}
missing=0
need minikube "Install: https://minikube.sigs.k8s.io/docs/start/ (Linux: curl -LO https://storage.googleapis.com/minikube/releases/latest/minikube-linux-amd64 && sudo install minikube-linux-amd64 /usr/local/bin/minikube)"
need kubectl "Install: https://kubernetes.io/docs/tasks/tools/ (or use 'minikube kubectl --' through an alias)"
need helm "Install: https://helm.sh/docs/intro/install/ (helm v3)"
need dapr "Install the Dapr CLI: https://docs.dapr.io/getting-started/install-dapr-cli/ (wget -q https://raw.githubusercontent.com/dapr/cli/master/install/install.sh -O - | /bin/bash)"
need openssl "Install: sudo apt-get install openssl"
need base64 "Install: sudo apt-get install coreutils"
[ "$missing" = 0 ] || die "install the tools above, then run this again"

kc() { kubectl --context "$PROFILE" "$@"; }
hc() { helm --kube-context "$PROFILE" "$@"; }

# --- down ----------------------------------------------------------------------------
if [ "$mode" = down ]; then
  if ! minikube -p "$PROFILE" status >/dev/null 2>&1; then
    log "Minikube profile $PROFILE is not running: nothing to delete in it"
  else
    if hc -n "$NS" status "$RELEASE" >/dev/null 2>&1; then
      log "helm uninstall $RELEASE"
      hc -n "$NS" uninstall "$RELEASE" --wait
    fi
    log "deleting namespace $NS (Kafka, Redis, PostgreSQL and their volumes, the Secrets, the Dapr components)"
    kc delete namespace "$NS" --ignore-not-found --wait=true --timeout="$TIMEOUT"
  fi
  if [ "$delete_cluster" = 1 ]; then
    log "minikube delete -p $PROFILE"
    minikube delete -p "$PROFILE"
  fi
  log "done"
  exit 0
fi

cd "$ROOT"
for f in infrastructure/docker/Dockerfile helm/todoevents/Chart.yaml infrastructure/dapr/configuration.yaml; do
  [ -f "$f" ] || die "$ROOT/$f not found (run from a libtodoevents checkout)"
done
[ -d infrastructure/dapr/components ] || die "$ROOT/infrastructure/dapr/components not found"

# 1. the cluster
if minikube -p "$PROFILE" status >/dev/null 2>&1; then
  log "Minikube profile $PROFILE is running"
else
  log "minikube start -p $PROFILE (driver $DRIVER, $CPUS CPUs, $MEMORY MB)"
  args=(start -p "$PROFILE" --driver="$DRIVER" --cpus="$CPUS" --memory="$MEMORY")
  [ -z "$K8S_VERSION" ] || args+=(--kubernetes-version="$K8S_VERSION")
  minikube "${args[@]}"
fi
# dapr (and a user's later kubectl) act on the current context.
kubectl config use-context "$PROFILE" >/dev/null

# 2. Dapr
if kc -n dapr-system get deployment dapr-operator >/dev/null 2>&1; then
  log "Dapr is installed in dapr-system"
else
  log "dapr init -k --wait"
  args=(init -k --wait --timeout 600)
  [ -z "$DAPR_RUNTIME_VERSION" ] || args+=(--runtime-version "$DAPR_RUNTIME_VERSION")
  dapr "${args[@]}"
fi
kc -n dapr-system rollout status deployment/dapr-sidecar-injector --timeout="$TIMEOUT" >/dev/null

# 3. namespace and Secrets
kc create namespace "$NS" --dry-run=client -o yaml | kc apply -f - >/dev/null
log "namespace $NS"

secrets_dir=$(mktemp -d)
trap 'rm -rf "$secrets_dir"' EXIT
chmod 700 "$secrets_dir"

have_secret() { kc -n "$NS" get secret "$1" >/dev/null 2>&1; }
secret_value() { kc -n "$NS" get secret "$1" -o "jsonpath={.data.$2}" | base64 -d; }
# make_secret NAME KEY=FILE...: creates the Secret from files (values never on
# a command line); an existing Secret is left as it is.
make_secret() {
  local name=$1; shift
  if have_secret "$name"; then
    log "Secret $name exists (kept)"
    return 0
  fi
  local args=() kv
  for kv in "$@"; do args+=(--from-file="$kv"); done
  kc -n "$NS" create secret generic "$name" "${args[@]}" >/dev/null
  log "Secret $name created"
}
new_random() { openssl rand -hex "$1" | tr -d '\n' >"$2"; }

if have_secret postgresql-auth; then
  secret_value postgresql-auth password >"$secrets_dir/pg-password"
else
  new_random 24 "$secrets_dir/pg-password"
  make_secret postgresql-auth password="$secrets_dir/pg-password"
fi
if have_secret redis-secret; then
  secret_value redis-secret redis-password >"$secrets_dir/redis-password"
else
  new_random 24 "$secrets_dir/redis-password"
  make_secret redis-secret redis-password="$secrets_dir/redis-password"
fi
# hex passwords: nothing to percent-encode in the URLs
printf 'postgresql://todo:%s@postgresql.%s.svc.cluster.local:5432/todo' \
  "$(cat "$secrets_dir/pg-password")" "$NS" >"$secrets_dir/pg-url"
printf 'redis://:%s@redis-master.%s.svc.cluster.local:6379/0' \
  "$(cat "$secrets_dir/redis-password")" "$NS" >"$secrets_dir/redis-url"
new_random 32 "$secrets_dir/jwt-secret"
make_secret todoevents-secrets pg-url="$secrets_dir/pg-url" redis-url="$secrets_dir/redis-url" \
  jwt-secret="$secrets_dir/jwt-secret"
# The Dapr SMTP binding's server: the mail catcher, no authentication.
printf 'mailpit.%s.svc.cluster.local' "$NS" >"$secrets_dir/smtp-host"
printf '1025' >"$secrets_dir/smtp-port"
: >"$secrets_dir/smtp-user"
: >"$secrets_dir/smtp-password"
make_secret smtp-secret host="$secrets_dir/smtp-host" port="$secrets_dir/smtp-port" \
  user="$secrets_dir/smtp-user" password="$secrets_dir/smtp-password"
rm -f "$secrets_dir"/*

# 4. Kafka, Redis, PostgreSQL, mail catcher
log "Kafka ($KAFKA_IMAGE), Redis ($REDIS_IMAGE), PostgreSQL ($POSTGRES_IMAGE), Mailpit"
backing_manifests | kc -n "$NS" apply -f - >/dev/null
for w in statefulset/kafka statefulset/postgresql deployment/redis-master deployment/mailpit; do
  log "waiting for $w"
  kc -n "$NS" rollout status "$w" --timeout="$TIMEOUT" >/dev/null
done

# 5. the image, inside the cluster (the chart's pullPolicy is Never)
if [ "$build" = 1 ]; then
  log "minikube image build -t $IMAGE:$TAG (infrastructure/docker/Dockerfile)"
  minikube -p "$PROFILE" image build -t "$IMAGE:$TAG" -f infrastructure/docker/Dockerfile .
fi

# 6. Dapr components and configuration
log "Dapr components and configuration (infrastructure/dapr)"
dapr_files=(-f infrastructure/dapr/components -f infrastructure/dapr/configuration.yaml)
[ ! -f infrastructure/dapr/resiliency.yaml ] || dapr_files+=(-f infrastructure/dapr/resiliency.yaml)
kc -n "$NS" apply "${dapr_files[@]}" >/dev/null

# 7. the chart (its hooks run the migrations and create the topics first)
upgrade=0
if hc -n "$NS" status "$RELEASE" >/dev/null 2>&1; then upgrade=1; fi
log "helm upgrade --install $RELEASE helm/todoevents (values-minikube.yaml, image tag $TAG)"
hc upgrade --install "$RELEASE" helm/todoevents -n "$NS" -f helm/values-minikube.yaml \
  --set image.tag="$TAG" --wait --timeout 15m >/dev/null

# 8. every daemon rolled out (an image rebuilt under the same tag reaches
# running pods only through a restart)
daemons=(api worker reminder sync)
if [ "$build" = 1 ] && [ "$upgrade" = 1 ]; then
  for d in "${daemons[@]}"; do kc -n "$NS" rollout restart "deployment/$RELEASE-$d" >/dev/null; done
fi
for d in "${daemons[@]}"; do
  log "waiting for deployment/$RELEASE-$d"
  kc -n "$NS" rollout status "deployment/$RELEASE-$d" --timeout="$TIMEOUT" >/dev/null
done

cat <<EOF

todoevents is running in namespace $NS (Minikube profile $PROFILE, kubectl context $PROFILE):
  kubectl -n $NS get pods

REST API (todo-api) and WebSocket sync (todo-sync), from this machine:
  kubectl -n $NS port-forward svc/$RELEASE-api 8080:8080 &
  kubectl -n $NS port-forward svc/$RELEASE-sync 8083:8083 &

A token for user "alice" (HS256, 1 hour), with todoctl from a local build (./scripts/test or cmake):
  (umask 077; kubectl -n $NS get secret todoevents-secrets -o jsonpath='{.data.jwt-secret}' | base64 -d > .run/minikube-jwt-secret)
  TOKEN=\$(build/bin/todoctl token --user alice --secret-file .run/minikube-jwt-secret)
or with the todoctl inside the image (it reads TE_JWT_SECRET there):
  TOKEN=\$(kubectl -n $NS exec deploy/$RELEASE-api -c todo-api -- todoctl token --user alice)

  curl -i -X POST http://127.0.0.1:8080/api/tasks -H "Authorization: Bearer \$TOKEN" \\
       -H 'Content-Type: application/json' -d '{"title": "Try todoevents on Minikube"}'
  websocket: ws://127.0.0.1:8083/api/ws/tasks?token=\$TOKEN

Reminder emails: kubectl -n $NS port-forward svc/mailpit 8025:8025, then http://127.0.0.1:8025
Metrics: each daemon's /metrics (pods annotated prometheus.io/scrape); Grafana dashboard and
alert rules in infrastructure/grafana and infrastructure/prometheus.
Remove: scripts/local-setup.sh --down  (add --delete-cluster to delete the Minikube profile too)
EOF
