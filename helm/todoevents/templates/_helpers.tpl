{{/*
Names, labels and the pieces every daemon and hook shares.
*/}}

{{- define "todoevents.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's objects (63 characters at most). */}}
{{- define "todoevents.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "todoevents.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "todoevents.labels" -}}
helm.sh/chart: {{ include "todoevents.chart" . }}
{{ include "todoevents.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: todoevents
{{- end }}

{{- define "todoevents.selectorLabels" -}}
app.kubernetes.io/name: {{ include "todoevents.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Per-component names and labels. Call with (dict "root" $ "component" "todo-api").
*/}}
{{- define "todoevents.componentName" -}}
{{- $full := include "todoevents.fullname" .root }}
{{- $short := trimPrefix "todo-" .component }}
{{- printf "%s-%s" ($full | trunc (int (sub 62 (len $short)))) $short | trimSuffix "-" }}
{{- end }}

{{- define "todoevents.componentLabels" -}}
{{ include "todoevents.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "todoevents.componentSelectorLabels" -}}
{{ include "todoevents.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "todoevents.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "todoevents.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "todoevents.automountToken" -}}
{{- if kindIs "invalid" .Values.serviceAccount.automountToken }}
{{- .Values.dapr.enabled }}
{{- else }}
{{- .Values.serviceAccount.automountToken }}
{{- end }}
{{- end }}

{{- define "todoevents.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) }}
{{- end }}

{{/*
The four daemons: key in .Values.daemons -> name (dapr.io/app-id) and the
environment variable naming its listen address.
*/}}
{{- define "todoevents.daemons" -}}
api: {name: todo-api, listenEnv: TE_API_LISTEN, secrets: [pgUrl, jwtSecret, redisUrl]}
worker: {name: todo-worker, listenEnv: TE_WORKER_LISTEN, secrets: [pgUrl]}
reminder: {name: todo-reminder, listenEnv: TE_REMINDER_LISTEN, secrets: [pgUrl, smtpPassword]}
sync: {name: todo-sync, listenEnv: TE_SYNC_LISTEN, secrets: [pgUrl, jwtSecret]}
{{- end }}

{{/* secrets.* key -> environment variable. */}}
{{- define "todoevents.secretEnvNames" -}}
pgUrl: TE_PG_URL
jwtSecret: TE_JWT_SECRET
redisUrl: TE_REDIS_URL
smtpPassword: TE_SMTP_PASSWORD
{{- end }}

{{/*
env entries from Secrets. Call with (dict "root" $ "keys" (list "pgUrl" ...)
[ "viaDapr" true ]): secretKeyRef, or with viaDapr NAME_SECRET=<secret>/<key>
for the daemon to read through the Dapr secret store.
*/}}
{{- define "todoevents.secretEnv" -}}
{{- $names := include "todoevents.secretEnvNames" . | fromYaml }}
{{- range .keys }}
{{- $ref := index $.root.Values.secrets . }}
{{- if and $ref $ref.secretName }}
{{- if $.viaDapr }}
{{- /* read at start through the sidecar's secret store (docs/dapr.md) */}}
- name: {{ index $names . }}_SECRET
  value: {{ printf "%s/%s" $ref.secretName (required (printf "secrets.%s.key is required" .) $ref.key) | quote }}
{{- else }}
- name: {{ index $names . }}
  valueFrom:
    secretKeyRef:
      name: {{ $ref.secretName | quote }}
      key: {{ required (printf "secrets.%s.key is required" .) $ref.key | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* TE_RDKAFKA_SASL_PASSWORD from its Secret, when one is named. */}}
{{- define "todoevents.kafkaSecretEnv" -}}
{{- with .Values.kafka.saslPassword }}
{{- if .secretName }}
- name: TE_RDKAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .secretName | quote }}
      key: {{ required "kafka.saslPassword.key is required" .key | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* TE_DAPR_API_TOKEN from the Secret dapr.io/api-token-secret names (key "token"). */}}
{{- define "todoevents.daprTokenEnv" -}}
- name: TE_DAPR_API_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.dapr.apiTokenSecret | quote }}
      key: token
{{- end }}

{{/* TE_KAFKA_BROKERS and TE_RDKAFKA_* as name: value lines (ConfigMap data). */}}
{{- define "todoevents.kafkaData" -}}
TE_KAFKA_BROKERS: {{ required "kafka.brokers is required" .Values.kafka.brokers | quote }}
{{- range $k, $v := .Values.kafka.rdkafka }}
{{- if eq (upper $k) "SASL_PASSWORD" }}
{{- fail "kafka.rdkafka.SASL_PASSWORD: a secret; name its Secret in kafka.saslPassword instead" }}
{{- end }}
TE_RDKAFKA_{{ upper $k }}: {{ $v | toString | quote }}
{{- end }}
{{- end }}

{{/*
The ConfigMap data of one daemon. Call with (dict "root" $ "key" "api").
*/}}
{{- define "todoevents.configData" -}}
{{- $root := .root }}
{{- $d := index $root.Values.daemons .key }}
{{- $meta := index (include "todoevents.daemons" $root | fromYaml) .key }}
{{- $data := dict }}
{{- range $k, $v := $root.Values.env }}{{ $_ := set $data $k ($v | toString) }}{{ end }}
{{- range $k, $v := $d.env }}{{ $_ := set $data $k ($v | toString) }}{{ end }}
{{- $_ := set $data "TE_LOG_LEVEL" $root.Values.logLevel }}
{{- $_ := set $data "TE_MIGRATE" "0" }}
{{- $_ := set $data $meta.listenEnv (printf "0.0.0.0:%d" (int $d.port)) }}
{{- if $root.Values.dapr.enabled }}
{{- $_ := set $data "TE_TRANSPORT" "dapr" }}
{{- $_ := set $data "TE_DAPR_PUBSUB" $root.Values.dapr.pubsub }}
{{- $_ := set $data "TE_DAPR_STATESTORE" $root.Values.dapr.stateStore }}
{{- $_ := set $data "TE_DAPR_SECRETSTORE" $root.Values.dapr.secretStore }}
{{- $_ := set $data "TE_DAPR_SMTP_BINDING" $root.Values.dapr.smtpBinding }}
{{- $_ := set $data "TE_DAPR_WAIT_S" ($root.Values.dapr.waitSeconds | toString) }}
{{- if $root.Values.dapr.http }}
{{- $_ := set $data "TE_DAPR_HTTP" $root.Values.dapr.http }}
{{- end }}
{{- if eq .key "sync" }}
{{- $_ := set $data "TE_DAPR_PUBSUB" $root.Values.dapr.syncPubsub }}
{{- $_ := set $data "TE_SYNC_DAPR_LISTEN" (printf "%s:%d" $d.daprListenHost (int $d.daprPort)) }}
{{- end }}
{{- else }}
{{- $_ := set $data "TE_TRANSPORT" "kafka" }}
{{- $kafka := include "todoevents.kafkaData" $root | fromYaml }}
{{- range $k, $v := $kafka }}{{ $_ := set $data $k $v }}{{ end }}
{{- end }}
{{- range $k, $v := $data }}
{{- if or (hasSuffix "_PASSWORD" $k) (hasSuffix "_TOKEN" $k) (has $k (list "TE_PG_URL" "TE_REDIS_URL" "TE_JWT_SECRET")) }}
{{- fail (printf "daemons.%s.env / env: %s is a secret; name its Secret under secrets.* (or extraEnv with secretKeyRef)" $.key $k) }}
{{- end }}
{{ $k }}: {{ $v | quote }}
{{- end }}
{{- end }}

{{/* Pod security context (daemons and hooks). */}}
{{- define "todoevents.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext }}
{{- end }}

{{/* Container security context (daemons and hooks). */}}
{{- define "todoevents.securityContext" -}}
{{- toYaml .Values.securityContext }}
{{- end }}

{{/* The /tmp emptyDir: volume and mount. */}}
{{- define "todoevents.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- end }}

{{- define "todoevents.tmpMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{/* The Secrets the pods' ServiceAccount may read (rbac.create with Dapr). */}}
{{- define "todoevents.readableSecrets" -}}
{{- $names := list }}
{{- range $k, $v := .Values.secrets }}
{{- if and $v $v.secretName }}{{ $names = append $names $v.secretName }}{{ end }}
{{- end }}
{{- if .Values.kafka.saslPassword.secretName }}{{ $names = append $names .Values.kafka.saslPassword.secretName }}{{ end }}
{{- range .Values.dapr.secretNames }}{{ $names = append $names . }}{{ end }}
{{- toYaml ($names | uniq | sortAlpha) }}
{{- end }}

{{/* "2" -> 2, "50%" -> "50%" (an IntOrString field). */}}
{{- define "todoevents.intOrString" -}}
{{- if regexMatch "^[0-9]+$" . }}{{ . }}{{ else }}{{ . | quote }}{{ end }}
{{- end }}
