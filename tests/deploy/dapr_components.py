#!/usr/bin/env python3
"""deploy.dapr_components — the Dapr resources under infrastructure/dapr
agree with themselves, with docs/dapr.md and with the daemons.

Checks:
- every YAML file under infrastructure/dapr parses (PyYAML, Debian
  python3-yaml) and each document is a Dapr resource this project uses:
  apiVersion dapr.io/v1alpha1; kind Component (metadata.name, spec.type,
  spec.version v1, spec.metadata a list of {name, value | secretKeyRef}
  whose names the component type knows), Configuration or Resiliency;
- the defaults table of docs/dapr.md (TE_DAPR_PUBSUB, TE_DAPR_STATESTORE,
  TE_DAPR_SECRETSTORE, TE_DAPR_SMTP_BINDING) names components that exist in
  infrastructure/dapr/components with the documented type, and the C
  sources under daemons/ use exactly those defaults (td_env_str("TE_DAPR_…",
  "<default>")), so a rename on either side fails;
- the cron input binding is named reminder-scheduler and todo-reminder
  serves "/reminder-scheduler" (the route is the component's name);
- the Kafka components: version >= 2.1.0 (Kafka 4 brokers), kafka-pubsub's
  consumer group is per app ({appID}), kafka-pubsub-broadcast's per sidecar
  ({uuid} or {podName}) and scoped to todo-sync alone, which must then be
  told to use it (its default or the chart);
- the configuration todoevents-dapr-config enables mTLS (with a workload
  certificate TTL and clock skew), W3C tracing (a sampling rate) and metrics;
  its API allowlist, if any, lets through every sidecar API docs/dapr.md uses;
- resiliency: every target is an existing component, the pub/sub inbound
  retries are at most 3;
- every scoped app id is an app id of the chart (helm/todoevents rendered by
  helm when both exist; else its files are searched; else the four daemons'
  names), and every app id of the chart finds the config it names;
- infrastructure/dapr/local (the tests' templates) has the same components
  (names, types, scopes) as the cluster set, except the documented secret
  store type, and uses only the placeholders test_dapr.py substitutes.

Run: python3 tests/deploy/dapr_components.py [SOURCE_DIR]  (exit 0 = all
good; each failure printed).  With TE_HELM=<helm binary> the chart is
rendered with it.
"""

import glob
import os
import re
import shutil
import string
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:
    sys.exit("dapr_components: PyYAML is missing (Debian package python3-yaml)")

from deploycheck import fail, failures  # tests/deploy: this script's folder

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = (sys.argv[1] if len(sys.argv) > 1 else None) or os.environ.get("TE_SOURCE_DIR") \
    or os.path.dirname(os.path.dirname(HERE))
DAPR_DIR = os.path.join(SOURCE_DIR, "infrastructure", "dapr")
COMPONENTS_DIR = os.path.join(DAPR_DIR, "components")
LOCAL_DIR = os.path.join(DAPR_DIR, "local")
DOC = os.path.join(SOURCE_DIR, "docs", "dapr.md")
DAEMONS_DIR = os.path.join(SOURCE_DIR, "daemons")
CHART_DIR = os.path.join(SOURCE_DIR, "helm", "todoevents")

DAEMON_APP_IDS = ["todo-api", "todo-worker", "todo-reminder", "todo-sync"]
CONFIG_NAME = "todoevents-dapr-config"
KUBE_VERSION = "1.30.0"  # what the chart is rendered for (tests/deploy/helm.sh too)
CRON_NAME = "reminder-scheduler"
BROADCAST_NAME = "kafka-pubsub-broadcast"
# What tests/api/test_dapr.py substitutes in infrastructure/dapr/local.
LOCAL_PLACEHOLDERS = {"KAFKA_BROKERS", "CONSUMER_GROUP", "SYNC_CONSUMER_GROUP", "REDIS_HOST",
                      "REDIS_DB", "CRON_SCHEDULE", "SMTP_PORT", "SECRETS_FILE"}
# The sidecar APIs the daemons call (docs/dapr.md): an allowlist must keep them.
USED_APIS = {"publish", "state", "secrets", "bindings", "healthz"}

# Metadata names each component type reads (components-contrib v1.14 plus
# what the runtime itself reads): a misspelt name would be silently ignored
# by the sidecar, so it fails here.
_KAFKA = """brokers consumerGroup consumerID clientId authType authRequired saslUsername
    saslPassword saslMechanism initialOffset maxMessageBytes oidcTokenEndpoint oidcClientID
    oidcClientSecret oidcScopes oidcExtensions disableTls skipVerify caCert clientCert clientKey
    consumeRetryEnabled consumeRetryInterval heartbeatInterval sessionTimeout version
    clientConnectionTopicMetadataRefreshInterval clientConnectionKeepAliveInterval
    awsAccessKey awsSecretKey awsSessionToken awsIamRoleArn awsStsSessionName awsRegion
    channelBufferSize consumerFetchMin consumerFetchDefault schemaRegistryURL
    schemaRegistryAPIKey schemaRegistryAPISecret schemaCachingEnabled
    schemaLatestVersionCacheTTL publishingScopes subscriptionScopes allowedTopics protectedTopics"""
_REDIS = """redisHost redisPassword redisUsername redisDB redisType redisMaxRetries
    redisMinRetryInterval redisMaxRetryInterval dialTimeout readTimeout writeTimeout poolSize
    minIdleConns maxConnAge poolTimeout idleTimeout idleCheckFrequency sentinelMasterName
    failover enableTLS clientCert clientKey ttlInSeconds queryIndexes useEntraID keyPrefix
    actorStateStore outboxPublishPubsub outboxPublishTopic outboxPubsub outboxDiscardWhenMissingState"""
KNOWN_METADATA = {
    "pubsub.kafka": set(_KAFKA.split()),
    "state.redis": set(_REDIS.split()),
    "bindings.cron": {"schedule", "direction", "route"},
    "bindings.smtp": {"host", "port", "user", "password", "skipTLSVerify", "emailFrom", "emailTo",
                      "emailCC", "emailBCC", "subject", "priority", "direction", "route"},
    "secretstores.kubernetes": {"defaultNamespace", "kubeconfigPath"},
    "secretstores.local.file": {"secretsFile", "nestedSeparator", "multiValued"},
}

def rel(path):
    return os.path.relpath(path, SOURCE_DIR)


# ---- loading -----------------------------------------------------------------------


def load_dir(directory, recursive=False):
    """[(file, document)] of every YAML document of the directory's *.yaml/*.yml."""
    pattern = "**/*" if recursive else "*"
    files = sorted(f for ext in ("yaml", "yml")
                   for f in glob.glob(os.path.join(directory, f"{pattern}.{ext}"), recursive=recursive))
    docs = []
    for f in files:
        try:
            with open(f, encoding="utf-8") as fh:
                loaded = [d for d in yaml.safe_load_all(fh) if d is not None]
        except yaml.YAMLError as e:
            fail(f"{rel(f)}: not valid YAML: {e}")
            continue
        if not loaded:
            fail(f"{rel(f)}: no YAML document")
        docs += [(f, d) for d in loaded]
    return docs


def check_resource(f, d):
    """Generic shape of one Dapr resource; returns its kind (None if broken)."""
    where = rel(f)
    if not isinstance(d, dict):
        fail(f"{where}: a document is not a mapping")
        return None
    if d.get("apiVersion") != "dapr.io/v1alpha1":
        fail(f"{where}: apiVersion {d.get('apiVersion')!r}, expected dapr.io/v1alpha1")
    kind = d.get("kind")
    if kind not in ("Component", "Configuration", "Resiliency"):
        fail(f"{where}: kind {kind!r} (expected Component, Configuration or Resiliency)")
        return None
    meta = d.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name or ""):
        fail(f"{where}: metadata.name {name!r} is not a Kubernetes resource name")
    if not isinstance(d.get("spec"), dict):
        fail(f"{where}: {kind} without a spec mapping")
        return None
    scopes = d.get("scopes")
    if scopes is not None and (not isinstance(scopes, list) or
                               not all(isinstance(s, str) and s for s in scopes)):
        fail(f"{where}: scopes must be a list of app ids, got {scopes!r}")
    extra = set(d) - {"apiVersion", "kind", "metadata", "spec", "scopes", "auth"}
    if extra:
        fail(f"{where}: unknown top-level field(s) {sorted(extra)}")
    if "auth" in d and (kind != "Component" or not isinstance(d["auth"], dict)
                        or set(d["auth"]) != {"secretStore"}):
        fail(f"{where}: auth must be {{secretStore: <name>}} on a Component, got {d['auth']!r}")
    return kind


def check_component(f, d):
    """Shape of a Component; returns {name, type, meta: {name: value or ('secret', name, key)},
    scopes, auth, file}."""
    where = rel(f)
    spec = d["spec"]
    name = d["metadata"]["name"]
    ctype = spec.get("type")
    if not isinstance(ctype, str) or not re.fullmatch(r"[a-z]+\.[a-z0-9.]+", ctype or ""):
        fail(f"{where}: {name}: spec.type {ctype!r}")
    if spec.get("version") != "v1":
        fail(f"{where}: {name}: spec.version {spec.get('version')!r}, expected v1")
    extra = set(spec) - {"type", "version", "metadata", "ignoreErrors", "initTimeout"}
    if extra:
        fail(f"{where}: {name}: unknown spec field(s) {sorted(extra)}")
    items = spec.get("metadata")
    meta = {}
    if items is None:
        items = []
    if not isinstance(items, list):
        fail(f"{where}: {name}: spec.metadata must be a list")
        items = []
    known = KNOWN_METADATA.get(ctype)
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            fail(f"{where}: {name}: metadata entry {item!r} has no name")
            continue
        key = item["name"]
        if key in meta:
            fail(f"{where}: {name}: metadata {key!r} given twice")
        has_value, has_ref = "value" in item, "secretKeyRef" in item
        if has_value == has_ref or set(item) - {"name", "value", "secretKeyRef"}:
            fail(f"{where}: {name}: metadata {key!r} needs exactly one of value / secretKeyRef "
                 f"(got {sorted(item)})")
            continue
        if has_value:
            if not isinstance(item["value"], str):
                fail(f"{where}: {name}: metadata {key!r}: value {item['value']!r} must be a "
                     f"string (quote it: Kubernetes refuses other types)")
            meta[key] = item["value"]
        else:
            ref = item["secretKeyRef"]
            if not isinstance(ref, dict) or set(ref) != {"name", "key"} or \
                    not all(isinstance(v, str) and v for v in ref.values()):
                fail(f"{where}: {name}: metadata {key!r}: secretKeyRef must be {{name, key}}")
                continue
            meta[key] = ("secret", ref["name"], ref["key"])
        if known is not None and key not in known:
            fail(f"{where}: {name}: metadata {key!r} is not read by {ctype} "
                 f"(misspelt? known: {', '.join(sorted(known))})")
    if known is None:
        fail(f"{where}: {name}: component type {ctype!r} is not one this project uses "
             f"({', '.join(sorted(KNOWN_METADATA))})")
    return {"name": name, "type": ctype, "meta": meta, "scopes": d.get("scopes"),
            "auth": (d.get("auth") or {}).get("secretStore"), "file": f}


def load_set(directory, label):
    """{name: component} of a directory, plus the configurations and resiliencies."""
    comps, configs, resil = {}, [], []
    docs = load_dir(directory)
    if not docs:
        fail(f"{rel(directory)}: no Dapr resources")
    for f, d in docs:
        kind = check_resource(f, d)
        if kind == "Component":
            c = check_component(f, d)
            if c["name"] in comps:
                fail(f"{label}: component {c['name']!r} defined twice "
                     f"({rel(comps[c['name']]['file'])}, {rel(f)})")
            comps[c["name"]] = c
        elif kind == "Configuration":
            configs.append((f, d))
        elif kind == "Resiliency":
            resil.append((f, d))
    return comps, configs, resil


# ---- the contract: docs/dapr.md and the C sources ----------------------------------------------


def doc_defaults():
    """{variable: (default, [types])} from docs/dapr.md's settings table: the
    rows whose meaning names a component type in backquotes."""
    with open(DOC, encoding="utf-8") as fh:
        text = fh.read()
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^\|\s*`(TE_DAPR_[A-Z_]+)`\s*\|\s*`([^`]+)`\s*\|(.*)\|\s*$", line)
        if not m:
            continue
        types = re.findall(r"`((?:pubsub|state|bindings|secretstores)\.[a-z0-9.]+)`", m.group(3))
        if types:
            rows[m.group(1)] = (m.group(2), types)
    return rows, text


def c_sources():
    files = sorted(glob.glob(os.path.join(DAEMONS_DIR, "**", "*.[ch]"), recursive=True))
    out = {}
    for f in files:
        with open(f, encoding="utf-8", errors="replace") as fh:
            out[f] = fh.read()
    return out


def c_defaults(sources, var):
    """[(file, default)] of every td_env_str("VAR", "default") (or any call
    with the variable name as a string then a string default)."""
    pat = re.compile(r'"' + re.escape(var) + r'"\s*,\s*"([^"\\]*)"')
    return [(f, m.group(1)) for f, text in sources.items() for m in pat.finditer(text)]


# ---- the chart ---------------------------------------------------------------------------


def find_helm():
    """TE_HELM, else the helm scripts/deploy-tools builds (its cache
    directory), else a helm on PATH."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    tools = os.environ.get("TE_TOOLS_DIR") or os.path.join(cache, "libtodoevents", "go-bin")
    cands = [os.environ.get("TE_HELM"), os.path.join(tools, "helm"), shutil.which("helm")]
    return next((c for c in cands if c and os.path.isfile(c) and os.access(c, os.X_OK)), None)


def chart_apps():
    """(how, {app id: {"config": name or None, "env": {k: v}}}) of the chart
    (None when there is none): rendered with helm for the default values and
    each values-*.yaml when a helm binary is found (env: the container's
    env values and its envFrom ConfigMaps); else the daemons' names found in
    the chart's files (the app ids are templated)."""
    if not os.path.isfile(os.path.join(CHART_DIR, "Chart.yaml")):
        return None
    helm = find_helm()
    apps = {}
    if helm:
        values = [None] + sorted(glob.glob(os.path.join(CHART_DIR, "values-*.yaml")) +
                                 glob.glob(os.path.join(os.path.dirname(CHART_DIR), "values-*.yaml")))
        tmp = tempfile.mkdtemp(prefix="te-dapr-helm-")
        env = dict(os.environ, HELM_CONFIG_HOME=os.path.join(tmp, "config"),
                   HELM_CACHE_HOME=os.path.join(tmp, "cache"), HELM_DATA_HOME=os.path.join(tmp, "data"))
        for v in values:
            # A go-installed helm assumes Kubernetes v1.20 unless told.
            cmd = [helm, "template", "te", CHART_DIR, "--namespace", "todo",
                   "--kube-version", KUBE_VERSION] + (["-f", v] if v else [])
            r = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if r.returncode != 0:
                fail(f"helm template {rel(v) if v else '(default values)'} failed: {r.stderr[-1500:]}")
                continue
            docs = [d for d in yaml.safe_load_all(r.stdout) if isinstance(d, dict)]
            maps = {(d.get("metadata") or {}).get("name"): d.get("data") or {}
                    for d in docs if d.get("kind") == "ConfigMap"}
            for d in docs:
                collect_app(d, maps, apps)
        shutil.rmtree(tmp, ignore_errors=True)
        return (f"rendered with {helm} (default values and each values-*.yaml)", apps)
    text = ""
    for f in glob.glob(os.path.join(CHART_DIR, "**", "*"), recursive=True):
        if os.path.isfile(f):
            with open(f, encoding="utf-8", errors="replace") as fh:
                text += fh.read()
    for a in DAEMON_APP_IDS:
        if re.search(r"(?<![-\w])" + re.escape(a) + r"(?![-\w])", text):
            apps[a] = {"config": None, "envs": []}
    return ("searched for the daemons' names (no helm binary; TE_HELM=<helm> renders it)", apps)


def collect_app(doc, maps, apps):
    """The Dapr app of a rendered workload (dapr.io/enabled "true")."""
    spec = doc.get("spec") if isinstance(doc.get("spec"), dict) else {}
    tmpl = spec.get("template") if isinstance(spec.get("template"), dict) else {}
    ann = (tmpl.get("metadata") or {}).get("annotations") or {}
    if not isinstance(ann, dict) or str(ann.get("dapr.io/enabled")).lower() != "true":
        return
    app = ann.get("dapr.io/app-id")
    if not app:
        fail(f"chart: {doc.get('kind')} {(doc.get('metadata') or {}).get('name')}: "
             f"dapr.io/enabled without dapr.io/app-id")
        return
    entry = apps.setdefault(app, {"config": ann.get("dapr.io/config"), "envs": []})
    if ann.get("dapr.io/config") != entry["config"]:
        fail(f"chart: {app}: dapr.io/config {ann.get('dapr.io/config')!r} and {entry['config']!r} "
             f"in different renderings")
    env = {}
    for c in (tmpl.get("spec") or {}).get("containers") or []:
        for ef in c.get("envFrom") or []:
            ref = (ef or {}).get("configMapRef") or {}
            env.update(maps.get(ref.get("name")) or {})
        for e in c.get("env") or []:
            if isinstance(e, dict) and "value" in e:
                env[e.get("name")] = e.get("value")
    entry["envs"].append(env)


# ---- checks ------------------------------------------------------------------------------


def kafka_version_ok(v):
    m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", v or "")
    return bool(m) and tuple(int(x) for x in m.groups()) >= (2, 1, 0)


def check_kafka(comps, label):
    for c in comps.values():
        if c["type"] != "pubsub.kafka":
            continue
        m = c["meta"]
        if not kafka_version_ok(m.get("version") if isinstance(m.get("version"), str) else None):
            fail(f"{label}: {c['name']}: metadata version {m.get('version')!r}: Kafka 4 brokers need "
                 f">= 2.1.0 (KIP-896 removed the older protocol versions)")
        for k in ("brokers", "authType"):
            if k not in m:
                fail(f"{label}: {c['name']}: no {k}")
        if "consumerGroup" not in m and "consumerID" not in m:
            fail(f"{label}: {c['name']}: neither consumerGroup nor consumerID")


def check_configs(configs, label):
    names = [d["metadata"].get("name") for _, d in configs]
    if names != [CONFIG_NAME]:
        fail(f"{label}: expected exactly one Configuration named {CONFIG_NAME}, got {names}")
    for f, d in configs:
        spec = d["spec"]
        mtls = spec.get("mtls") or {}
        if mtls.get("enabled") is not True:
            fail(f"{rel(f)}: mtls.enabled must be true, got {mtls.get('enabled')!r}")
        for k in ("workloadCertTTL", "allowedClockSkew"):
            if not re.fullmatch(r"\d+(ms|s|m|h)", str(mtls.get(k) or "")):
                fail(f"{rel(f)}: mtls.{k} {mtls.get(k)!r} is not a duration")
        tracing = spec.get("tracing") or {}
        try:
            rate = float(tracing.get("samplingRate"))
            if not 0 < rate <= 1:
                raise ValueError
        except (TypeError, ValueError):
            fail(f"{rel(f)}: tracing.samplingRate {tracing.get('samplingRate')!r} must be in (0, 1]")
        if (spec.get("metrics") or {}).get("enabled") is not True:
            fail(f"{rel(f)}: metrics.enabled must be true")
        allowed = (spec.get("api") or {}).get("allowed")
        if allowed:
            names_ = {a.get("name") for a in allowed if a.get("protocol", "http") == "http"
                      and a.get("version") in ("v1.0", "v1")}
            missing = USED_APIS - names_
            if missing:
                fail(f"{rel(f)}: api.allowed lacks {sorted(missing)} (used by the daemons, "
                     f"docs/dapr.md)")


def check_resiliency(resil, comps, apps, label):
    if len(resil) != 1:
        fail(f"{label}: expected one Resiliency, got {len(resil)}")
    for f, d in resil:
        spec = d["spec"]
        policies = spec.get("policies") or {}
        retries = policies.get("retries") or {}
        timeouts = policies.get("timeouts") or {}
        for n, r in retries.items():
            if set(r) - {"policy", "duration", "maxInterval", "maxRetries"}:
                fail(f"{rel(f)}: retry {n}: unknown field(s) {sorted(set(r) - {'policy', 'duration', 'maxInterval', 'maxRetries'})}")
            if r.get("policy") not in ("constant", "exponential"):
                fail(f"{rel(f)}: retry {n}: policy {r.get('policy')!r}")
        targets = (spec.get("targets") or {}).get("components") or {}
        for cname, t in targets.items():
            if cname not in comps:
                fail(f"{rel(f)}: target component {cname!r} does not exist")
            for direction, pol in (t or {}).items():
                if direction not in ("inbound", "outbound"):
                    fail(f"{rel(f)}: {cname}: {direction!r} is neither inbound nor outbound")
                    continue
                if pol.get("retry") and pol["retry"] not in retries:
                    fail(f"{rel(f)}: {cname}.{direction}: unknown retry {pol['retry']!r}")
                if pol.get("timeout") and pol["timeout"] not in timeouts:
                    fail(f"{rel(f)}: {cname}.{direction}: unknown timeout {pol['timeout']!r}")
        for cname, c in comps.items():
            if c["type"].startswith("pubsub."):
                inbound = ((targets.get(cname) or {}).get("inbound") or {})
                r = retries.get(inbound.get("retry"))
                if not r:
                    fail(f"{rel(f)}: pub/sub {cname} has no inbound retry policy")
                elif not isinstance(r.get("maxRetries"), int) or not 0 < r["maxRetries"] <= 3:
                    fail(f"{rel(f)}: pub/sub {cname}: inbound maxRetries {r.get('maxRetries')!r} "
                         f"(at most 3: the daemons dead-letter at the 3rd failure)")
        check_scopes(d.get("scopes"), apps, f"{rel(f)}")


def check_scopes(scopes, apps, where):
    for s in scopes or []:
        if s not in apps:
            fail(f"{where}: scoped app id {s!r} is not an app id of the deployment ({sorted(apps)})")


def main():
    defaults, doc_text = doc_defaults()
    comps, configs, resil = load_set(COMPONENTS_DIR, "components")
    top = load_dir(DAPR_DIR)  # configuration.yaml, resiliency.yaml
    for f, d in top:
        kind = check_resource(f, d)
        if kind == "Configuration":
            configs.append((f, d))
        elif kind == "Resiliency":
            resil.append((f, d))
        elif kind == "Component":
            fail(f"{rel(f)}: components belong in infrastructure/dapr/components")
    local_comps, local_configs, local_resil = load_set(LOCAL_DIR, "local")
    if local_configs or local_resil:
        fail("infrastructure/dapr/local: the tests use ../configuration.yaml and ../resiliency.yaml")

    # -- app ids
    chart = chart_apps()
    if chart is None:
        apps = {a: {"config": None, "envs": []} for a in DAEMON_APP_IDS}
        print(f"note: no chart at {rel(CHART_DIR)}: app ids taken as {DAEMON_APP_IDS}")
    else:
        how, apps = chart
        print(f"chart {rel(CHART_DIR)} {how}: app ids {sorted(apps)}")
        if not apps:
            fail(f"{rel(CHART_DIR)}: no Dapr app ids found")
            apps = {a: {"config": None, "envs": []} for a in DAEMON_APP_IDS}
        elif set(apps) != set(DAEMON_APP_IDS):
            fail(f"the chart's Dapr app ids {sorted(apps)} are not the four daemons' "
                 f"{DAEMON_APP_IDS}")
        for app, info in apps.items():
            if info["config"] not in (None, CONFIG_NAME):
                fail(f"chart: {app}: dapr.io/config {info['config']!r}, the Configuration is "
                     f"{CONFIG_NAME}")

    # -- the documented defaults <-> components <-> C sources
    sources = c_sources()
    expected = {"TE_DAPR_PUBSUB": "pubsub.", "TE_DAPR_STATESTORE": "state.",
                "TE_DAPR_SECRETSTORE": "secretstores.", "TE_DAPR_SMTP_BINDING": "bindings."}
    for var in expected:
        if var not in defaults:
            fail(f"docs/dapr.md: no settings row for {var} with a component type")
    for var, (name, types) in defaults.items():
        cluster_type = types[0]
        c = comps.get(name)
        if c is None:
            fail(f"docs/dapr.md: {var} defaults to {name!r}, but infrastructure/dapr/components "
                 f"has no component of that name ({sorted(comps)})")
        elif c["type"] != cluster_type:
            fail(f"{rel(c['file'])}: {name} has type {c['type']}, docs/dapr.md says {cluster_type}")
        lc = local_comps.get(name)
        local_type = types[-1] if len(types) > 1 else cluster_type
        if lc is None:
            fail(f"infrastructure/dapr/local has no component {name!r} ({var})")
        elif lc["type"] != local_type:
            fail(f"{rel(lc['file'])}: {name} has type {lc['type']}, expected {local_type}")
        found = c_defaults(sources, var)
        if not found:
            fail(f"daemons/: no C source reads {var} with a default (td_env_str(\"{var}\", \"...\"))")
        for f, value in found:
            if value != name:
                fail(f"{rel(f)}: {var} defaults to {value!r}, docs/dapr.md and the component say "
                     f"{name!r}")
        print(f"ok: {var} = {name} ({cluster_type}): docs, component, "
              f"{len(found)} C default(s)")

    # -- every component the daemons use by name is there; nothing unused
    for n in comps:
        if n not in [v[0] for v in defaults.values()] + [CRON_NAME, BROADCAST_NAME]:
            fail(f"components: {n!r} is not a name any daemon uses (docs/dapr.md)")

    # -- the cron binding and todo-reminder's route
    cron = comps.get(CRON_NAME)
    if cron is None or cron["type"] != "bindings.cron":
        fail(f"components: no bindings.cron named {CRON_NAME}")
    else:
        sched = cron["meta"].get("schedule")
        if not isinstance(sched, str) or not (sched.startswith("@every ") or len(sched.split()) in (5, 6)):
            fail(f"{rel(cron['file'])}: schedule {sched!r}")
        if cron["meta"].get("direction") != "input":
            fail(f"{rel(cron['file'])}: direction must be input")
        if "route" in cron["meta"] and cron["meta"]["route"] != "/" + CRON_NAME:
            fail(f"{rel(cron['file'])}: route {cron['meta']['route']!r}, todo-reminder serves /{CRON_NAME}")
        if cron["scopes"] != ["todo-reminder"]:
            fail(f"{rel(cron['file'])}: scopes {cron['scopes']!r}, expected [todo-reminder]")
    if "/" + CRON_NAME not in doc_text:
        fail(f"docs/dapr.md does not name the route /{CRON_NAME}")
    reminder_src = {f: t for f, t in sources.items()
                    if os.sep + "todo-reminder" + os.sep in f}
    if not any('"/' + CRON_NAME + '"' in t for t in reminder_src.values()):
        fail(f"daemons/todo-reminder: no C string \"/{CRON_NAME}\": the cron binding "
             f"{CRON_NAME} would POST to a route todo-reminder does not serve")
    else:
        print(f"ok: cron binding {CRON_NAME} -> todo-reminder serves /{CRON_NAME}")

    # -- the SMTP binding
    smtp_name = defaults.get("TE_DAPR_SMTP_BINDING", ("smtp",))[0]
    smtp = comps.get(smtp_name)
    if smtp:
        m = smtp["meta"]
        for k in ("host", "port", "emailFrom"):
            if k not in m:
                fail(f"{rel(smtp['file'])}: no {k}")
        if m.get("skipTLSVerify") not in (None, "false"):
            fail(f"{rel(smtp['file'])}: skipTLSVerify must be false in the cluster")
        for k in ("user", "password"):
            if k in m and not isinstance(m[k], tuple):
                fail(f"{rel(smtp['file'])}: {k} must come from a secretKeyRef")
        if smtp["scopes"] != ["todo-reminder"]:
            fail(f"{rel(smtp['file'])}: scopes {smtp['scopes']!r}, expected [todo-reminder]")
    st = comps.get(defaults.get("TE_DAPR_STATESTORE", ("statestore",))[0])
    if st and "redisPassword" in st["meta"] and not isinstance(st["meta"]["redisPassword"], tuple):
        fail(f"{rel(st['file'])}: redisPassword must come from a secretKeyRef")

    # -- Kafka
    check_kafka(comps, "components")
    check_kafka(local_comps, "local")
    pubsub_name = defaults.get("TE_DAPR_PUBSUB", ("kafka-pubsub",))[0]
    ps = comps.get(pubsub_name)
    if ps:
        if "{appID}" not in str(ps["meta"].get("consumerGroup", ps["meta"].get("consumerID", "{appID}"))):
            fail(f"{rel(ps['file'])}: the consumer group must be per app ({{appID}}): "
                 f"{ps['meta'].get('consumerGroup')!r}")
        if "todo-sync" in (ps["scopes"] or DAEMON_APP_IDS):
            fail(f"{rel(ps['file'])}: todo-sync must not use {pubsub_name} (one group per app "
                 f"would share its events among its replicas): leave it out of the scopes")
    bc = comps.get(BROADCAST_NAME)
    if bc is None:
        fail(f"components: no {BROADCAST_NAME} (todo-sync's per-pod consumer group)")
    else:
        group = bc["meta"].get("consumerGroup")
        if not isinstance(group, str) or not ("{uuid}" in group or "{podName}" in group):
            fail(f"{rel(bc['file'])}: consumerGroup {group!r} must be per pod ({{uuid}} or {{podName}})")
        if bc["scopes"] != ["todo-sync"]:
            fail(f"{rel(bc['file'])}: scopes {bc['scopes']!r}, expected [todo-sync]")
        if bc["meta"].get("initialOffset") != "newest":
            fail(f"{rel(bc['file'])}: initialOffset must be newest (a new group per pod)")
        # todo-sync must be told to use it: its own default, or the chart.
        sync_src = {f: t for f, t in sources.items() if os.sep + "todo-sync" + os.sep in f}
        sync_default = [v for _, v in c_defaults(sync_src, "TE_DAPR_PUBSUB")]
        sync_envs = [e for e in (apps.get("todo-sync") or {}).get("envs", [])
                     if e.get("TE_TRANSPORT") == "dapr"]
        chart_values = {e.get("TE_DAPR_PUBSUB") for e in sync_envs}
        if BROADCAST_NAME in sync_default and chart_values <= {None, BROADCAST_NAME}:
            print(f"ok: todo-sync uses {BROADCAST_NAME} (its default)")
        elif sync_envs and chart_values == {BROADCAST_NAME}:
            print(f"ok: todo-sync uses {BROADCAST_NAME} (set by the chart in each of "
                  f"{len(sync_envs)} Dapr-mode renderings)")
        elif chart is not None and chart[0].startswith("rendered"):
            fail(f"todo-sync: TE_DAPR_PUBSUB is {sorted(map(str, chart_values))} in the chart's "
                 f"Dapr-mode renderings; it must be {BROADCAST_NAME} (see "
                 f"infrastructure/dapr/components/pubsub-kafka-broadcast.yaml)")
        elif chart is not None and not any(
                BROADCAST_NAME in open(f, encoding="utf-8").read()
                for f in glob.glob(os.path.join(CHART_DIR, "**", "*.y*ml"), recursive=True)):
            fail(f"helm/todoevents never names {BROADCAST_NAME}: todo-sync needs "
                 f"TE_DAPR_PUBSUB={BROADCAST_NAME}")
        if BROADCAST_NAME not in doc_text:
            fail(f"docs/dapr.md does not mention {BROADCAST_NAME} (todo-sync's component)")

    # -- scopes, configuration, resiliency
    for c in list(comps.values()) + list(local_comps.values()):
        check_scopes(c["scopes"], apps, f"{rel(c['file'])}: {c['name']}")
        if c["auth"] is not None:
            store = (local_comps if c["file"].startswith(LOCAL_DIR) else comps).get(c["auth"])
            if store is None or not store["type"].startswith("secretstores."):
                fail(f"{rel(c['file'])}: auth.secretStore {c['auth']!r} is not a secret store there")
    check_configs(configs, "infrastructure/dapr")
    check_resiliency(resil, comps, apps, "infrastructure/dapr")

    # -- the local templates mirror the cluster set
    if set(local_comps) != set(comps):
        fail(f"infrastructure/dapr/local has components {sorted(local_comps)}, the cluster set "
             f"{sorted(comps)}")
    for n in set(local_comps) & set(comps):
        lc, c = local_comps[n], comps[n]
        if lc["type"] != c["type"] and not c["type"].startswith("secretstores."):
            fail(f"{rel(lc['file'])}: {n} has type {lc['type']}, the cluster's {c['type']}")
        if (lc["scopes"] or None) != (c["scopes"] or None):
            fail(f"{rel(lc['file'])}: {n} scopes {lc['scopes']} differ from the cluster's {c['scopes']}")
        if c["type"] == lc["type"]:
            missing = set(c["meta"]) - set(lc["meta"])
            if missing:
                fail(f"{rel(lc['file'])}: {n} lacks metadata {sorted(missing)} of the cluster's")
        for k, v in lc["meta"].items():
            if isinstance(v, tuple) and lc["auth"] is None:
                fail(f"{rel(lc['file'])}: {n}.{k} uses a secretKeyRef: standalone daprd needs "
                     f"auth.secretStore")
    for f in glob.glob(os.path.join(LOCAL_DIR, "*.yaml")):
        with open(f, encoding="utf-8") as fh:
            text = fh.read()
        used = {m.group("named") or m.group("braced") for m in string.Template.pattern.finditer(text)
                if m.group("named") or m.group("braced")}
        unknown = used - LOCAL_PLACEHOLDERS
        if unknown:
            fail(f"{rel(f)}: placeholder(s) {sorted(unknown)} that the tests do not substitute "
                 f"({sorted(LOCAL_PLACEHOLDERS)})")
        try:
            rendered = string.Template(text).substitute({k: "x" for k in LOCAL_PLACEHOLDERS})
            list(yaml.safe_load_all(rendered))
        except (KeyError, ValueError, yaml.YAMLError) as e:
            fail(f"{rel(f)}: does not render: {e}")

    n_files = len(glob.glob(os.path.join(DAPR_DIR, "**", "*.yaml"), recursive=True))
    if failures:
        print(f"{len(failures)} failed, over {n_files} files")
        return 1
    print(f"all Dapr resources consistent ({n_files} files, {len(comps)} components)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
