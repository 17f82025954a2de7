#!/usr/bin/env bash
# tests/deploy/helm.sh SOURCE_DIR [lint|template|unit|all]
#
# The Helm chart's checks (ctest deploy.helm_lint, deploy.helm_template,
# deploy.k8svalidate_unit; docs/deploy.md):
#   lint      helm lint --strict of helm/todoevents with each values set below,
#             and the chart's appVersion equal to the library's version
#   template  helm template with each values set, piped into k8svalidate
#             -todoevents: every document strictly decoded against the
#             Kubernetes API types, and per daemon a Deployment, Service,
#             ConfigMap, HPA and PDB, the migration and topics hook Jobs,
#             locked-down containers with probes; and the values schema
#             refusing what it must refuse
#   unit      go test of tests/deploy/k8svalidate
# helm and k8svalidate come from scripts/deploy-tools (a cache directory;
# built the first time, quick afterwards).
set -euo pipefail

src=${1:?usage: helm.sh SOURCE_DIR [lint|template|unit|all]}
mode=${2:-all}
src=$(cd "$src" && pwd)
chart="$src/helm/todoevents"

# Each values set: a name and the helm arguments. Rendered for the
# Kubernetes version scripts/deploy-tools' helm assumes (that of its
# client-go, 1.37), and once for the chart's floor (kubeVersion >= 1.25).
CONFIG_NAMES=(default minikube cloud cloud-direct-kafka default-options default-k8s-1.25)
CONFIG_ARGS=(
  ""
  "-f $src/helm/values-minikube.yaml"
  "-f $src/helm/values-cloud.yaml"
  "-f $src/helm/values-cloud.yaml --set dapr.enabled=false"
  "--set dapr.apiTokenSecret=dapr-api-token --set ingress.enabled=true --set serviceAccount.create=false --set rbac.create=false --set daemons.sync.daprListenHost=0.0.0.0 --set daemons.api.pdb.maxUnavailable=25%"
  "--kube-version 1.25.0"
)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# helm keeps its configuration and caches here, not in the user's home.
export HELM_CONFIG_HOME="$tmp/helm/config" HELM_CACHE_HOME="$tmp/helm/cache" HELM_DATA_HOME="$tmp/helm/data"

fail=0
failed() { printf 'FAIL: %s\n' "$*" >&2; fail=1; }

tools() {
  tooldir=$("$src/scripts/deploy-tools") || { echo "FAIL: scripts/deploy-tools" >&2; exit 1; }
  helm="$tooldir/helm"
  k8svalidate="$tooldir/k8svalidate"
}

do_lint() {
  tools
  local i out
  for i in "${!CONFIG_NAMES[@]}"; do
    # shellcheck disable=SC2086 # CONFIG_ARGS are word lists
    if ! out=$("$helm" lint --strict "$chart" ${CONFIG_ARGS[$i]} 2>&1); then
      printf '%s\n' "$out" >&2
      failed "helm lint --strict, values ${CONFIG_NAMES[$i]}"
      continue
    fi
    # helm lint reports a template's `fail` only as an [INFO] line.
    if grep -E '\[(ERROR|WARNING)\]|Fail:' <<<"$out" >&2; then
      failed "helm lint, values ${CONFIG_NAMES[$i]}: errors or failing templates above"
      continue
    fi
    echo "ok   helm lint --strict (values ${CONFIG_NAMES[$i]})"
  done
  local h="$src/libtodoevents/include/todoevents/version.h" v app
  v=$(awk '/^#define TE_VERSION_(MAJOR|MINOR|PATCH) /{printf "%s%s", sep, $3; sep="."}' "$h")
  app=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' "$chart/Chart.yaml")
  if [ "$v" = "$app" ]; then
    echo "ok   Chart.yaml appVersion $app = version.h"
  else
    failed "Chart.yaml appVersion '$app' is not the library version '$v' ($h)"
  fi
}

do_template() {
  tools
  local i
  for i in "${!CONFIG_NAMES[@]}"; do
    local out="$tmp/${CONFIG_NAMES[$i]}.yaml"
    # shellcheck disable=SC2086
    if ! "$helm" template todoevents "$chart" --namespace todo ${CONFIG_ARGS[$i]} >"$out" 2>"$tmp/err"; then
      cat "$tmp/err" >&2
      failed "helm template, values ${CONFIG_NAMES[$i]}"
      continue
    fi
    echo "---- values ${CONFIG_NAMES[$i]}: helm template | k8svalidate -todoevents"
    if "$k8svalidate" -todoevents <"$out"; then
      echo "ok   values ${CONFIG_NAMES[$i]}"
    else
      failed "k8svalidate, values ${CONFIG_NAMES[$i]} (rendered manifest above)"
    fi
  done
  # What the chart must refuse, with the message that says why.
  refuse() {
    local want=$1; shift
    if "$helm" template todoevents "$chart" "$@" >/dev/null 2>"$tmp/err"; then
      failed "helm template $* was accepted"
    elif ! grep -qF -- "$want" "$tmp/err"; then
      cat "$tmp/err" >&2
      failed "helm template $*: no '$want' in the error"
    else
      echo "ok   refused: $*"
    fi
  }
  refuse "secretName" --set secrets.pgUrl.secretName=
  refuse "additional properties 'enable' not allowed" --set dapr.enable=true
  refuse "propertyName" --set kafka.rdkafka.sasl_password=x
  refuse "a secret" --set kafka.rdkafka.SASL_PASSWORD=x
  refuse "TE_PG_URL is a secret" --set daemons.api.env.TE_PG_URL=postgresql://x
  refuse "incompatible with Kubernetes v1.24.0" --kube-version 1.24.0
  refuse "minReplicas 5 > maxReplicas 2" --set daemons.worker.autoscaling.minReplicas=5 \
    --set daemons.worker.autoscaling.maxReplicas=2
}

do_unit() {
  tools  # the same Go and module cache as the build
  local go
  go=$(command -v go || echo /usr/local/go/bin/go)
  (cd "$src/tests/deploy/k8svalidate" && GOFLAGS="-mod=readonly -buildvcs=false" "$go" test -count=1 ./...) ||
    failed "go test tests/deploy/k8svalidate"
}

case $mode in
  lint) do_lint ;;
  template) do_template ;;
  unit) do_unit ;;
  all) do_lint; do_template; do_unit ;;
  *) echo "usage: helm.sh SOURCE_DIR [lint|template|unit|all]" >&2; exit 2 ;;
esac
if [ "$fail" -ne 0 ]; then
  echo "deploy checks ($mode): FAILED" >&2
  exit 1
fi
echo "deploy checks ($mode): passed"
