#!/usr/bin/env bash
# deploy.dapr_components: runs dapr_components.py (the Dapr resources under
# infrastructure/dapr against docs/dapr.md, the daemons' C defaults and the
# chart) with a python3 that has PyYAML (Debian python3-yaml: the system
# python when the python3 on PATH is another one). ctest deploy.dapr_components.
#   tests/deploy/dapr_components.sh [BUILD_DIR] [SOURCE_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=${2:-$(cd "$here/../.." && pwd)}
# The chart is rendered with the helm of scripts/deploy-tools (built once
# into a cache directory, shared with deploy.helm_*); without it the chart's
# files are searched instead.
if [ -z "${TE_HELM:-}" ] && [ -x "$src/scripts/deploy-tools" ]; then
  if tooldir=$("$src/scripts/deploy-tools" 2>/dev/null) && [ -x "$tooldir/helm" ]; then
    export TE_HELM="$tooldir/helm"
  else
    echo "note: scripts/deploy-tools failed: the chart is searched, not rendered" >&2
  fi
fi
for py in python3 /usr/bin/python3; do
  if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import yaml' 2>/dev/null; then
    exec "$py" "$here/dapr_components.py" "$src"
  fi
done
echo "dapr_components: no python3 with PyYAML (Debian package python3-yaml)" >&2
exit 1
