# Shared shell helpers for scripts/*. Source it; do not run it.
# shellcheck shell=bash

TE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export TE_ROOT

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Debian packages the project builds, tests and runs with. One list, used by
# every script (and by CI through scripts/test).
TE_PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libjson-c-dev libical-dev liburiparser-dev libssl-dev uuid-dev tzdata librdkafka-dev
  liblz4-dev libzstd-dev libsasl2-dev zlib1g-dev  # static linking of librdkafka
  check valgrind
  libmicrohttpd-dev libpq-dev libhiredis-dev libcurl4-openssl-dev  # daemons
  python3 openssl  # API tests (Python standard library; RS256/ES256 tokens signed with the openssl CLI)
  python3-aiosmtpd python3-websockets  # the reminder tests' SMTP server; the sync tests' WebSocket clients
  libwebsockets-dev libwebsockets-evlib-ev  # todo-sync (on libev: the plugin is loaded at run time)
  python3-yaml  # the deployment checks (Dapr components, alert rules)
)

# Installs whatever of TE_PACKAGES is missing (apt-get; root or sudo).
ensure_packages() {
  local missing=() p
  for p in "${TE_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq >/dev/null || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >/dev/null || die "apt-get install failed for: ${missing[*]}"
}

# configure_build DIR [extra cmake args...] — configure (once) and build.
configure_build() {
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    cmake -S "$TE_ROOT" -B "$dir" -G Ninja -DTE_WERROR=ON "$@" >/dev/null \
      || die "cmake configure failed for $dir"
  fi
  cmake --build "$dir" -j "$(nproc)" || die "build failed in $dir"
}

# The Go-built test tools (helm + the manifest validator: scripts/deploy-tools;
# daprd: scripts/daprd), cached outside the tree.  go_tools_start builds them
# in the background (niced: it overlaps the C build); go_tools_wait waits and
# fails with the log when a build failed.
go_tools_start() {
  mkdir -p "$TE_ROOT/.run"
  GO_TOOLS_LOG="$TE_ROOT/.run/go-tools.log"
  : >"$GO_TOOLS_LOG"
  if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
    export PATH="$PATH:/usr/local/go/bin"
  fi
  command -v go >/dev/null 2>&1 || die "Go is needed to build helm and daprd for the deployment tests"
  (
    set -e
    for t in deploy-tools daprd; do
      [ -x "$TE_ROOT/scripts/$t" ] || continue
      echo "== scripts/$t"
      nice -n 10 "$TE_ROOT/scripts/$t"
    done
  ) >>"$GO_TOOLS_LOG" 2>&1 &
  GO_TOOLS_PID=$!
}
go_tools_wait() {
  [ -n "${GO_TOOLS_PID:-}" ] || return 0
  if ! wait "$GO_TOOLS_PID"; then
    tail -40 "$GO_TOOLS_LOG" >&2
    die "building the Go test tools failed (log: $GO_TOOLS_LOG)"
  fi
  GO_TOOLS_PID=
  log "Go test tools ready ($(grep -c '^== ' "$GO_TOOLS_LOG") built or cached)"
}
