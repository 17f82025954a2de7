package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

const goodStream = `# leading comment only: not a document
---
# Source: demo/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
      annotations:
        dapr.io/enabled: "true"
    spec:
      containers:
        - name: web
          image: example/web:1
          ports: [{containerPort: 8080, name: http}]
          resources:
            requests: {cpu: 100m, memory: 64Mi}
---
---
# Source: demo/templates/service.yaml
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: web
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 3
  metrics:
    - type: Resource
      resource: {name: cpu, target: {type: Utilization, averageUtilization: 70}}
`

func TestGoodStreamDecodes(t *testing.T) {
	docs, errs := Decode("good", strings.NewReader(goodStream))
	if len(errs) != 0 {
		t.Fatalf("errors: %v", errs)
	}
	var ids []string
	for i := range docs {
		ids = append(ids, docs[i].ID())
	}
	want := "Deployment/web Service/web HorizontalPodAutoscaler/web"
	if got := strings.Join(ids, " "); got != want {
		t.Fatalf("objects %q, want %q", got, want)
	}
	if docs[0].Template != "demo/templates/deployment.yaml" || docs[0].Index != 1 || docs[2].Index != 3 {
		t.Fatalf("document naming: %+v", docs[0])
	}
}

// One bad document among good ones: the error names it (input, position,
// Helm source, kind) and says what is wrong; the good ones still decode.
func TestBadDocuments(t *testing.T) {
	cases := []struct {
		name, doc string
		want      []string
	}{
		{"unknown field", `
# Source: demo/templates/bad.yaml
apiVersion: apps/v1
kind: Deployment
metadata: {name: bad}
spec:
  replica: 2
  selector: {matchLabels: {app: bad}}
  template:
    metadata: {labels: {app: bad}}
    spec: {containers: [{name: c, image: i}]}
`, []string{"demo/templates/bad.yaml", "kind Deployment", "strict decoding", `unknown field "spec.replica"`}},
		{"unknown nested field", `
apiVersion: v1
kind: Pod
metadata: {name: bad}
spec:
  containers:
    - name: c
      image: i
      securityContext: {readOnlyRootFs: true}
`, []string{"kind Pod", `unknown field "spec.containers[0].securityContext.readOnlyRootFs"`}},
		{"duplicate field", `
apiVersion: v1
kind: ConfigMap
metadata: {name: bad}
data:
  A: "1"
  A: "2"
`, []string{"kind ConfigMap", "strict decoding", `"A" already set`}},
		{"wrong type", `
apiVersion: apps/v1
kind: Deployment
metadata: {name: bad}
spec:
  replicas: "two"
  selector: {matchLabels: {app: bad}}
  template:
    metadata: {labels: {app: bad}}
    spec: {containers: [{name: c, image: i}]}
`, []string{"kind Deployment", "does not decode", "replicas", "int32"}},
		{"annotation not a string", `
apiVersion: v1
kind: Pod
metadata:
  name: bad
  annotations: {dapr.io/enabled: true}
spec: {containers: [{name: c, image: i}]}
`, []string{"kind Pod", "does not decode", "annotations"}},
		{"unknown kind", `
apiVersion: example.com/v1
kind: Widget
metadata: {name: bad}
`, []string{"kind Widget", "unknown kind"}},
		{"unknown version of a known kind", `
apiVersion: apps/v1beta9
kind: Deployment
metadata: {name: bad}
`, []string{"unknown kind"}},
		{"no kind", `
apiVersion: v1
metadata: {name: bad}
`, []string{"no kind"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stream := goodStream + "---" + tc.doc
			docs, errs := Decode("in.yaml", strings.NewReader(stream))
			if len(docs) != 3 {
				t.Errorf("%d good documents decoded, want 3", len(docs))
			}
			if len(errs) != 1 {
				t.Fatalf("errors %v, want exactly one", errs)
			}
			msg := errs[0].Error()
			for _, w := range append([]string{"in.yaml document 4"}, tc.want...) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}

func TestRunExitStatus(t *testing.T) {
	var out, errOut bytes.Buffer
	if rc := run(nil, strings.NewReader(goodStream), &out, &errOut); rc != 0 {
		t.Fatalf("good stream: exit %d, stderr %s", rc, errOut.String())
	}
	if !strings.Contains(out.String(), "Deployment/web OK\nService/web OK\n") {
		t.Errorf("stdout %q", out.String())
	}
	out.Reset()
	errOut.Reset()
	bad := goodStream + "---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"
	if rc := run([]string{"-"}, strings.NewReader(bad), &out, &errOut); rc != 1 {
		t.Fatalf("bad stream: exit %d, want 1", rc)
	}
	if !strings.Contains(errOut.String(), "FAIL stdin document 4 (kind Widget): unknown kind") {
		t.Errorf("stderr %q", errOut.String())
	}
	if rc := run(nil, strings.NewReader("# nothing\n---\n"), &out, &errOut); rc != 1 {
		t.Errorf("empty stream: exit %d, want 1", rc)
	}
	if rc := run([]string{"/nonexistent.yaml"}, strings.NewReader(""), &out, &errOut); rc != 2 {
		t.Errorf("missing file: exit %d, want 2", rc)
	}
}

// The chart checks, on the todo-api part of the rendered chart
// (testdata/chart-api.yaml) and on edited copies of it.
func TestCheckChart(t *testing.T) {
	raw, err := os.ReadFile("testdata/chart-api.yaml")
	if err != nil {
		t.Fatal(err)
	}
	api := []DaemonSpec{{"todo-api", 8080, 8080, "kafka-pubsub"}}
	check := func(t *testing.T, stream string) []string {
		t.Helper()
		docs, errs := Decode("chart", strings.NewReader(stream))
		if len(errs) > 0 {
			t.Fatalf("decode: %v", errs)
		}
		return CheckChart(docs, api, HookJobs)
	}
	if p := check(t, string(raw)); len(p) != 0 {
		t.Fatalf("the rendered chart fails the checks:\n%s", strings.Join(p, "\n"))
	}
	if len(CheckChart(nil, api, HookJobs)) == 0 {
		t.Fatal("an empty set passes the checks")
	}
	cases := []struct {
		name, old, new, want string
	}{
		{"no HPA", "kind: HorizontalPodAutoscaler", "", "want exactly one HorizontalPodAutoscaler"},
		{"no topics Job", "app.kubernetes.io/component: topics", "", "hook Job labelled app.kubernetes.io/component=topics, found 0"},
		{"hook reads a release ConfigMap", `args: ["migrate"]`, "args: [\"migrate\"]\n          envFrom: [{configMapRef: {name: demo-todoevents-api}}]",
			"envFrom ConfigMap demo-todoevents-api, which does not exist yet"},
		{"writable root", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem is not true"},
		{"privilege escalation", "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", "allowPrivilegeEscalation is not false"},
		{"capabilities kept", "- ALL", "- NET_RAW", "capabilities do not drop ALL"},
		{"root", "runAsUser: 10001", "runAsUser: 0", "runAsUser is not 10001"},
		{"seccomp", "type: RuntimeDefault", "type: Unconfined", "seccompProfile is not RuntimeDefault"},
		{"no /tmp", "mountPath: /tmp", "mountPath: /var/tmp", "no writable emptyDir mounted at /tmp"},
		{"liveness path", "path: /healthz", "path: /", `livenessProbe path "/"`},
		{"readiness path", "path: /readyz", "path: /healthz", `readinessProbe path "/healthz"`},
		{"app id", `dapr.io/app-id: "todo-api"`, `dapr.io/app-id: "api"`, "dapr.io/app-id"},
		{"app port", `dapr.io/app-port: "8080"`, `dapr.io/app-port: "3000"`, "dapr.io/app-port"},
		{"api logging", `dapr.io/enable-api-logging: "false"`, `dapr.io/enable-api-logging: "true"`, "enable-api-logging"},
		{"migrating daemon", `TE_MIGRATE: "0"`, `TE_MIGRATE: "1"`, "TE_MIGRATE"},
		{"transport", `TE_TRANSPORT: "dapr"`, `TE_TRANSPORT: "kafka"`, "TE_TRANSPORT"},
		{"pub/sub component", `TE_DAPR_PUBSUB: "kafka-pubsub"`, `TE_DAPR_PUBSUB: "pubsub"`, `TE_DAPR_PUBSUB is "pubsub", want "kafka-pubsub"`},
		{"not a hook", "helm.sh/hook: pre-install,pre-upgrade", "helm.sh/hook: post-install", "want pre-install,pre-upgrade"},
		{"hook kept on failure only", "helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded", "helm.sh/hook-delete-policy: hook-failed", "hook-delete-policy"},
		{"literal secret", "- name: TE_PG_URL\n              valueFrom:\n                secretKeyRef:\n                  name: \"todoevents-secrets\"\n                  key: \"pg-url\"",
			"- name: TE_PG_URL\n              value: postgresql://u:p@h/db", "TE_PG_URL must come from a secretKeyRef"},
		{"secret in ConfigMap", `TE_MIGRATE: "0"`, "TE_MIGRATE: \"0\"\n  TE_SMTP_PASSWORD: hunter2", "ConfigMap key TE_SMTP_PASSWORD"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(raw), tc.old) {
				t.Fatalf("testdata has no %q", tc.old)
			}
			// An empty replacement drops the documents holding old.
			stream := strings.ReplaceAll(string(raw), tc.old, tc.new)
			if tc.new == "" {
				stream = dropDoc(string(raw), tc.old)
			}
			p := check(t, stream)
			if !strings.Contains(strings.Join(p, "\n"), tc.want) {
				t.Errorf("problems %q do not mention %q", p, tc.want)
			}
		})
	}
}

func dropDoc(stream, marker string) string {
	parts := strings.Split(stream, "\n---\n")
	var keep []string
	for _, p := range parts {
		if !strings.Contains(p, marker) {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, "\n---\n")
}
