package main

// Checks of the rendered todoevents chart (flag -todoevents): beyond
// "every document is a valid Kubernetes object", the set must hold what the
// chart promises for each daemon, and every pod must be locked down.

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// DaemonSpec is what the chart must render for one daemon.
type DaemonSpec struct {
	Name    string // Deployment's app.kubernetes.io/component and dapr.io/app-id
	Port    int32  // health probes (and the Service's port)
	AppPort int32  // dapr.io/app-port
	Pubsub  string // TE_DAPR_PUBSUB in Dapr mode (infrastructure/dapr/components/)
}

// TodoDaemons are the four daemons of the chart.
var TodoDaemons = []DaemonSpec{
	{"todo-api", 8080, 8080, "kafka-pubsub"},
	{"todo-worker", 8081, 8081, "kafka-pubsub"},
	{"todo-reminder", 8082, 8082, "kafka-pubsub"},
	// every todo-sync replica receives every event: a component of its own
	{"todo-sync", 8083, 8084, "kafka-pubsub-broadcast"},
}

// HookJobs are the components of the pre-install/pre-upgrade Jobs, each with
// the arguments its container must carry.
var HookJobs = map[string][]string{
	"migrate": {"migrate"},
	"topics":  {"topics", "ensure", "--replication"},
}

const (
	componentLabel = "app.kubernetes.io/component"
	runAsUser      = int64(10001)
)

// Settings whose values are secrets: never a literal, never in a ConfigMap.
var secretEnv = []string{"TE_PG_URL", "TE_JWT_SECRET", "TE_REDIS_URL", "TE_SMTP_PASSWORD",
	"TE_RDKAFKA_SASL_PASSWORD", "TE_RDKAFKA_SSL_KEY_PASSWORD", "TE_DAPR_API_TOKEN"}

var standardLabels = []string{"app.kubernetes.io/name", "app.kubernetes.io/instance",
	"app.kubernetes.io/component", "app.kubernetes.io/managed-by", "app.kubernetes.io/version",
	"helm.sh/chart"}

type checker struct {
	problems []string
}

func (c *checker) failf(d *Doc, format string, a ...any) {
	where := "rendered set"
	if d != nil {
		where = d.ID() + " [" + d.Where() + "]"
	}
	c.problems = append(c.problems, where+": "+fmt.Sprintf(format, a...))
}

// CheckChart returns one line per problem (none = the set is as promised).
func CheckChart(docs []Doc, daemons []DaemonSpec, hookJobs map[string][]string) []string {
	c := &checker{}
	byKind := map[string][]*Doc{}
	for i := range docs {
		d := &docs[i]
		byKind[d.GVK.Kind] = append(byKind[d.GVK.Kind], d)
		if d.GVK.Kind == "Secret" {
			c.failf(d, "the chart must not render Secrets (secrets are referenced, never included)")
		}
		if cm, ok := d.Obj.(*corev1.ConfigMap); ok {
			for k := range cm.Data {
				if isSecretName(k) {
					c.failf(d, "ConfigMap key %s holds a secret setting (use a secretKeyRef)", k)
				}
			}
		}
		if spec, tmpl := podSpecOf(d); spec != nil {
			c.checkPodSecurity(d, spec)
			if tmpl != nil {
				c.checkPodLabels(d, tmpl)
			}
		}
	}
	for _, ds := range daemons {
		c.checkDaemon(ds, byKind)
	}
	c.checkHooks(byKind, hookJobs)
	return c.problems
}

func isSecretName(k string) bool {
	for _, s := range secretEnv {
		if k == s {
			return true
		}
	}
	return strings.HasSuffix(k, "_PASSWORD") || strings.HasSuffix(k, "_TOKEN")
}

func componentOf(d *Doc) string {
	if m := objectMeta(d); m != nil {
		return m.Labels[componentLabel]
	}
	return ""
}

func objectMeta(d *Doc) *metav1.ObjectMeta {
	switch o := d.Obj.(type) {
	case *appsv1.Deployment:
		return &o.ObjectMeta
	case *corev1.Service:
		return &o.ObjectMeta
	case *corev1.ConfigMap:
		return &o.ObjectMeta
	case *autoscalingv2.HorizontalPodAutoscaler:
		return &o.ObjectMeta
	case *policyv1.PodDisruptionBudget:
		return &o.ObjectMeta
	case *batchv1.Job:
		return &o.ObjectMeta
	}
	return nil
}

// podSpecOf returns the pod spec of a workload and, for templates, the template.
func podSpecOf(d *Doc) (*corev1.PodSpec, *corev1.PodTemplateSpec) {
	switch o := d.Obj.(type) {
	case *appsv1.Deployment:
		return &o.Spec.Template.Spec, &o.Spec.Template
	case *appsv1.StatefulSet:
		return &o.Spec.Template.Spec, &o.Spec.Template
	case *appsv1.DaemonSet:
		return &o.Spec.Template.Spec, &o.Spec.Template
	case *appsv1.ReplicaSet:
		return &o.Spec.Template.Spec, &o.Spec.Template
	case *batchv1.Job:
		return &o.Spec.Template.Spec, &o.Spec.Template
	case *batchv1.CronJob:
		return &o.Spec.JobTemplate.Spec.Template.Spec, &o.Spec.JobTemplate.Spec.Template
	case *corev1.Pod:
		return &o.Spec, nil
	}
	return nil, nil
}

func (c *checker) checkPodLabels(d *Doc, tmpl *corev1.PodTemplateSpec) {
	m := objectMeta(d)
	if m == nil {
		return
	}
	for _, l := range standardLabels {
		if m.Labels[l] == "" {
			c.failf(d, "label %s missing", l)
		}
	}
	for _, l := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", componentLabel} {
		if tmpl.Labels[l] == "" {
			c.failf(d, "pod template label %s missing", l)
		}
	}
}

// checkPodSecurity: every container (init containers too) runs as uid 10001,
// non-root, read-only root, no privilege escalation, no capabilities,
// seccomp RuntimeDefault, with a writable emptyDir at /tmp.
func (c *checker) checkPodSecurity(d *Doc, spec *corev1.PodSpec) {
	psc := spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	emptyDirs := map[string]bool{}
	for _, v := range spec.Volumes {
		if v.EmptyDir != nil {
			emptyDirs[v.Name] = true
		}
	}
	all := append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
	if len(spec.Containers) == 0 {
		c.failf(d, "pod has no containers")
	}
	for _, ct := range all {
		sc := ct.SecurityContext
		if sc == nil {
			sc = &corev1.SecurityContext{}
		}
		name := "container " + ct.Name
		nonRoot := sc.RunAsNonRoot
		if nonRoot == nil {
			nonRoot = psc.RunAsNonRoot
		}
		if nonRoot == nil || !*nonRoot {
			c.failf(d, "%s: runAsNonRoot is not true", name)
		}
		uid := sc.RunAsUser
		if uid == nil {
			uid = psc.RunAsUser
		}
		if uid == nil || *uid != runAsUser {
			c.failf(d, "%s: runAsUser is not %d", name, runAsUser)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			c.failf(d, "%s: readOnlyRootFilesystem is not true", name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			c.failf(d, "%s: allowPrivilegeEscalation is not false", name)
		}
		if sc.Privileged != nil && *sc.Privileged {
			c.failf(d, "%s: privileged", name)
		}
		dropsAll := false
		if sc.Capabilities != nil {
			for _, cap := range sc.Capabilities.Drop {
				if cap == "ALL" {
					dropsAll = true
				}
			}
			if len(sc.Capabilities.Add) > 0 {
				c.failf(d, "%s: adds capabilities %v", name, sc.Capabilities.Add)
			}
		}
		if !dropsAll {
			c.failf(d, "%s: capabilities do not drop ALL", name)
		}
		seccomp := sc.SeccompProfile
		if seccomp == nil {
			seccomp = psc.SeccompProfile
		}
		if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
			c.failf(d, "%s: seccompProfile is not RuntimeDefault", name)
		}
		tmp := false
		for _, m := range ct.VolumeMounts {
			if m.MountPath == "/tmp" && emptyDirs[m.Name] && !m.ReadOnly {
				tmp = true
			}
		}
		if !tmp {
			c.failf(d, "%s: no writable emptyDir mounted at /tmp", name)
		}
		for _, e := range ct.Env {
			if isSecretName(e.Name) {
				if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
					c.failf(d, "%s: env %s must come from a secretKeyRef", name, e.Name)
				}
			}
		}
	}
}

func selectorMatches(d *Doc, c *checker, sel *metav1.LabelSelector, podLabels map[string]string, what string) {
	if sel == nil {
		c.failf(d, "%s: no selector", what)
		return
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		c.failf(d, "%s: bad selector: %v", what, err)
		return
	}
	if s.Empty() || !s.Matches(labels.Set(podLabels)) {
		c.failf(d, "%s: selector %s does not select the daemon's pods", what, s)
	}
}

func (c *checker) only(ds DaemonSpec, byKind map[string][]*Doc, kind string) *Doc {
	var found []*Doc
	for _, d := range byKind[kind] {
		if componentOf(d) == ds.Name {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		c.failf(nil, "%s: want exactly one %s labelled %s=%s, found %d", ds.Name, kind,
			componentLabel, ds.Name, len(found))
		return nil
	}
	return found[0]
}

func containerPort(ct *corev1.Container, p intstr.IntOrString) int32 {
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range ct.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	return -1
}

func hasArgs(ct *corev1.Container, want []string) bool {
	have := map[string]bool{}
	for _, a := range append(append([]string{}, ct.Command...), ct.Args...) {
		have[a] = true
	}
	for _, w := range want {
		if !have[w] {
			return false
		}
	}
	return true
}

func (c *checker) checkDaemon(ds DaemonSpec, byKind map[string][]*Doc) {
	dd := c.only(ds, byKind, "Deployment")
	svcDoc := c.only(ds, byKind, "Service")
	cmDoc := c.only(ds, byKind, "ConfigMap")
	hpaDoc := c.only(ds, byKind, "HorizontalPodAutoscaler")
	pdbDoc := c.only(ds, byKind, "PodDisruptionBudget")
	if dd == nil {
		return
	}
	dep := dd.Obj.(*appsv1.Deployment)
	tmpl := &dep.Spec.Template
	selectorMatches(dd, c, dep.Spec.Selector, tmpl.Labels, "Deployment")

	// Dapr annotations.
	ann := tmpl.Annotations
	dapr := ann["dapr.io/enabled"]
	if dapr != "true" && dapr != "false" {
		c.failf(dd, "pod annotation dapr.io/enabled is %q (want \"true\" or \"false\")", dapr)
	}
	if ann["dapr.io/app-id"] != ds.Name {
		c.failf(dd, "pod annotation dapr.io/app-id is %q, want %q", ann["dapr.io/app-id"], ds.Name)
	}
	if ann["dapr.io/app-port"] != strconv.Itoa(int(ds.AppPort)) {
		c.failf(dd, "pod annotation dapr.io/app-port is %q, want %d", ann["dapr.io/app-port"], ds.AppPort)
	}
	for _, a := range []string{"dapr.io/config", "dapr.io/log-level"} {
		if ann[a] == "" {
			c.failf(dd, "pod annotation %s missing", a)
		}
	}
	if ann["dapr.io/enable-api-logging"] != "false" {
		c.failf(dd, "pod annotation dapr.io/enable-api-logging is %q, want \"false\"", ann["dapr.io/enable-api-logging"])
	}
	if tmpl.Spec.TerminationGracePeriodSeconds == nil || *tmpl.Spec.TerminationGracePeriodSeconds < 10 {
		c.failf(dd, "terminationGracePeriodSeconds not set (or below 10)")
	}
	if tmpl.Spec.ServiceAccountName == "" {
		c.failf(dd, "no serviceAccountName")
	}

	// The daemon's container.
	var ct *corev1.Container
	for i := range tmpl.Spec.Containers {
		if tmpl.Spec.Containers[i].Name == ds.Name {
			ct = &tmpl.Spec.Containers[i]
		}
	}
	if ct == nil {
		c.failf(dd, "no container named %s", ds.Name)
		return
	}
	if !hasArgs(ct, []string{"serve"}) {
		c.failf(dd, "container %s is not started with 'serve' (command %v, args %v)", ct.Name, ct.Command, ct.Args)
	}
	if ct.Resources.Requests.Cpu().IsZero() || ct.Resources.Requests.Memory().IsZero() ||
		ct.Resources.Limits.Memory().IsZero() {
		c.failf(dd, "container %s: resources need cpu and memory requests and a memory limit", ct.Name)
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"livenessProbe", ct.LivenessProbe, "/healthz"}, {"readinessProbe", ct.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			c.failf(dd, "container %s: %s is not an HTTP GET", ct.Name, p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path {
			c.failf(dd, "container %s: %s path %q, want %q", ct.Name, p.name, p.probe.HTTPGet.Path, p.path)
		}
		if got := containerPort(ct, p.probe.HTTPGet.Port); got != ds.Port {
			c.failf(dd, "container %s: %s port %s is %d, want %d", ct.Name, p.name, p.probe.HTTPGet.Port.String(), got, ds.Port)
		}
	}
	// TE_PG_URL from a Secret: a secretKeyRef, or (Dapr pods) a reference
	// the daemon reads through the sidecar's secret store (TE_PG_URL_SECRET
	// = <secret>/<key>); never a value in the manifest.
	pgFromSecret := false
	for _, e := range ct.Env {
		if e.Name == "TE_PG_URL" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			pgFromSecret = true
		}
		if e.Name == "TE_PG_URL_SECRET" && dapr == "true" && strings.Count(e.Value, "/") == 1 &&
			!strings.HasPrefix(e.Value, "/") && !strings.HasSuffix(e.Value, "/") {
			pgFromSecret = true
		}
		if e.Name == "TE_PG_URL" && e.Value != "" {
			c.failf(dd, "container %s: TE_PG_URL has a value in the manifest", ct.Name)
		}
	}
	if !pgFromSecret {
		c.failf(dd, "container %s: TE_PG_URL is not taken from a Secret", ct.Name)
	}

	// Its ConfigMap: referenced, TE_MIGRATE=0, transport consistent with Dapr.
	if cmDoc != nil {
		cm := cmDoc.Obj.(*corev1.ConfigMap)
		referenced := false
		for _, ef := range ct.EnvFrom {
			if ef.ConfigMapRef != nil && ef.ConfigMapRef.Name == cm.Name {
				referenced = true
			}
		}
		if !referenced {
			c.failf(dd, "container %s does not take its environment from ConfigMap %s", ct.Name, cm.Name)
		}
		if cm.Data["TE_MIGRATE"] != "0" {
			c.failf(cmDoc, "TE_MIGRATE is %q, want \"0\" (the migration Job migrates)", cm.Data["TE_MIGRATE"])
		}
		want := "kafka"
		if dapr == "true" {
			want = "dapr"
		}
		if cm.Data["TE_TRANSPORT"] != want {
			c.failf(cmDoc, "TE_TRANSPORT is %q but dapr.io/enabled is %q", cm.Data["TE_TRANSPORT"], dapr)
		}
		if want == "dapr" && ds.Pubsub != "" && cm.Data["TE_DAPR_PUBSUB"] != ds.Pubsub {
			c.failf(cmDoc, "TE_DAPR_PUBSUB is %q, want %q", cm.Data["TE_DAPR_PUBSUB"], ds.Pubsub)
		}
		if want == "kafka" && cm.Data["TE_KAFKA_BROKERS"] == "" {
			c.failf(cmDoc, "TE_KAFKA_BROKERS is empty in Kafka mode")
		}
		listen := map[string]string{"todo-api": "TE_API_LISTEN", "todo-worker": "TE_WORKER_LISTEN",
			"todo-reminder": "TE_REMINDER_LISTEN", "todo-sync": "TE_SYNC_LISTEN"}[ds.Name]
		if listen != "" && !strings.HasSuffix(cm.Data[listen], ":"+strconv.Itoa(int(ds.Port))) {
			c.failf(cmDoc, "%s is %q, want port %d", listen, cm.Data[listen], ds.Port)
		}
		if ds.AppPort != ds.Port && dapr == "true" &&
			!strings.HasSuffix(cm.Data["TE_SYNC_DAPR_LISTEN"], ":"+strconv.Itoa(int(ds.AppPort))) {
			c.failf(cmDoc, "TE_SYNC_DAPR_LISTEN is %q, want port %d", cm.Data["TE_SYNC_DAPR_LISTEN"], ds.AppPort)
		}
	}

	if svcDoc != nil {
		svc := svcDoc.Obj.(*corev1.Service)
		if svc.Spec.Type != "" && svc.Spec.Type != corev1.ServiceTypeClusterIP {
			c.failf(svcDoc, "type %s, want ClusterIP", svc.Spec.Type)
		}
		selectorMatches(svcDoc, c, &metav1.LabelSelector{MatchLabels: svc.Spec.Selector}, tmpl.Labels, "Service")
		ok := false
		for _, p := range svc.Spec.Ports {
			tp := p.TargetPort
			if tp.Type == intstr.Int && tp.IntVal == 0 {
				tp = intstr.FromInt32(p.Port)
			}
			if containerPort(ct, tp) == ds.Port {
				ok = true
			}
		}
		if !ok {
			c.failf(svcDoc, "no port targets the daemon's port %d", ds.Port)
		}
	}
	if hpaDoc != nil {
		hpa := hpaDoc.Obj.(*autoscalingv2.HorizontalPodAutoscaler)
		ref := hpa.Spec.ScaleTargetRef
		if ref.Kind != "Deployment" || ref.Name != dep.Name || ref.APIVersion != "apps/v1" {
			c.failf(hpaDoc, "scaleTargetRef %s %s/%s is not the Deployment %s", ref.APIVersion, ref.Kind, ref.Name, dep.Name)
		}
		cpu := false
		for _, m := range hpa.Spec.Metrics {
			if m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil &&
				m.Resource.Name == corev1.ResourceCPU && m.Resource.Target.Type == autoscalingv2.UtilizationMetricType &&
				m.Resource.Target.AverageUtilization != nil {
				cpu = true
			}
		}
		if !cpu {
			c.failf(hpaDoc, "no CPU utilization metric")
		}
		if hpa.Spec.MinReplicas != nil && *hpa.Spec.MinReplicas > hpa.Spec.MaxReplicas {
			c.failf(hpaDoc, "minReplicas %d > maxReplicas %d", *hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
		}
		if dep.Spec.Replicas != nil {
			c.failf(dd, "replicas is set although an HPA scales the Deployment (helm upgrade would reset it)")
		}
	}
	if pdbDoc != nil {
		pdb := pdbDoc.Obj.(*policyv1.PodDisruptionBudget)
		selectorMatches(pdbDoc, c, pdb.Spec.Selector, tmpl.Labels, "PodDisruptionBudget")
		if (pdb.Spec.MinAvailable == nil) == (pdb.Spec.MaxUnavailable == nil) {
			c.failf(pdbDoc, "set exactly one of minAvailable and maxUnavailable")
		}
	}
}

func splitList(s string) map[string]bool {
	m := map[string]bool{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			m[p] = true
		}
	}
	return m
}

// checkHooks: the migration and topics Jobs are pre-install/pre-upgrade hooks,
// deleted before re-creation and on success, and use nothing of the release
// that does not exist yet when they run (its ConfigMaps, ServiceAccount...).
func (c *checker) checkHooks(byKind map[string][]*Doc, hookJobs map[string][]string) {
	releaseCMs := map[string]bool{}
	for _, d := range byKind["ConfigMap"] {
		cm := d.Obj.(*corev1.ConfigMap)
		if cm.Annotations["helm.sh/hook"] == "" {
			releaseCMs[cm.Name] = true
		}
	}
	hookSAs := map[string]bool{"": true, "default": true}
	releaseSAs := map[string]bool{}
	for _, d := range byKind["ServiceAccount"] {
		sa := d.Obj.(*corev1.ServiceAccount)
		if sa.Annotations["helm.sh/hook"] != "" {
			hookSAs[sa.Name] = true
		} else {
			releaseSAs[sa.Name] = true
		}
	}
	found := map[string]int{}
	for _, d := range byKind["Job"] {
		job := d.Obj.(*batchv1.Job)
		hooks := splitList(job.Annotations["helm.sh/hook"])
		if len(hooks) == 0 {
			continue
		}
		comp := componentOf(d)
		found[comp]++
		if !hooks["pre-install"] || !hooks["pre-upgrade"] {
			c.failf(d, "helm.sh/hook is %q, want pre-install,pre-upgrade", job.Annotations["helm.sh/hook"])
		}
		if _, err := strconv.Atoi(job.Annotations["helm.sh/hook-weight"]); err != nil {
			c.failf(d, "helm.sh/hook-weight %q is not a number", job.Annotations["helm.sh/hook-weight"])
		}
		del := splitList(job.Annotations["helm.sh/hook-delete-policy"])
		if !del["before-hook-creation"] || !del["hook-succeeded"] {
			c.failf(d, "helm.sh/hook-delete-policy is %q, want before-hook-creation,hook-succeeded",
				job.Annotations["helm.sh/hook-delete-policy"])
		}
		spec := &job.Spec.Template.Spec
		if spec.RestartPolicy != corev1.RestartPolicyNever && spec.RestartPolicy != corev1.RestartPolicyOnFailure {
			c.failf(d, "restartPolicy %q", spec.RestartPolicy)
		}
		if job.Spec.BackoffLimit == nil || job.Spec.ActiveDeadlineSeconds == nil {
			c.failf(d, "set backoffLimit and activeDeadlineSeconds")
		}
		if !hookSAs[spec.ServiceAccountName] {
			if releaseSAs[spec.ServiceAccountName] {
				c.failf(d, "uses ServiceAccount %s, which the release creates after its pre-install hooks ran", spec.ServiceAccountName)
			}
		}
		for _, v := range spec.Volumes {
			if v.ConfigMap != nil && releaseCMs[v.ConfigMap.Name] {
				c.failf(d, "mounts ConfigMap %s, which does not exist yet when the hook runs", v.ConfigMap.Name)
			}
		}
		all := append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
		for _, ct := range all {
			for _, ef := range ct.EnvFrom {
				if ef.ConfigMapRef != nil && releaseCMs[ef.ConfigMapRef.Name] {
					c.failf(d, "container %s: envFrom ConfigMap %s, which does not exist yet when the hook runs", ct.Name, ef.ConfigMapRef.Name)
				}
			}
			for _, e := range ct.Env {
				if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil && releaseCMs[e.ValueFrom.ConfigMapKeyRef.Name] {
					c.failf(d, "container %s: env %s from ConfigMap %s, which does not exist yet when the hook runs", ct.Name, e.Name, e.ValueFrom.ConfigMapKeyRef.Name)
				}
			}
		}
		if want, ok := hookJobs[comp]; ok {
			ok := false
			for i := range spec.Containers {
				if hasArgs(&spec.Containers[i], want) {
					ok = true
				}
			}
			if !ok {
				c.failf(d, "no container runs %s", strings.Join(want, " "))
			}
		}
	}
	var names []string
	for n := range hookJobs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if found[n] != 1 {
			c.failf(nil, "want exactly one pre-install/pre-upgrade hook Job labelled %s=%s, found %d", componentLabel, n, found[n])
		}
	}
}
