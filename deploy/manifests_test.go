package deploy_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/config"
	"github.com/domainguard/domainguard/schemas"
)

// yamlDocs splits a multi-document YAML file, dropping empty documents.
func yamlDocs(b []byte) [][]byte {
	var out [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(d, "")) != "" {
			out = append(out, []byte(d))
		}
	}
	return out
}

func TestEveryDeployFileParses(t *testing.T) {
	n := 0
	err := filepath.WalkDir(repoPath(t, "deploy"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		switch filepath.Ext(path) {
		case ".yaml", ".yml":
			for i, doc := range yamlDocs(b) {
				if _, err := yaml.YAMLToJSON(doc); err != nil {
					t.Errorf("%s document %d: %v", path, i+1, err)
				}
			}
			n++
		case ".json":
			if !json.Valid(b) {
				t.Errorf("%s: invalid JSON", path)
			}
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Errorf("parsed %d YAML/JSON files under deploy/, expected the compose, kubernetes and observability files", n)
	}
}

// commandsKnown returns the commands cmd/domainguard registers (read from
// the register("name", ...) calls; "help" and "version" are built in) and the commands
// DESIGN.md §5 promises.
func commandsKnown(t *testing.T) (registered, designed map[string]bool) {
	t.Helper()
	registered = map[string]bool{"help": true, "version": true}
	files, err := filepath.Glob(repoPath(t, "cmd/domainguard/*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("cmd/domainguard sources: %v", err)
	}
	reg := regexp.MustCompile(`register\("([a-z][a-z0-9-]*)"`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range reg.FindAllStringSubmatch(string(b), -1) {
			registered[m[1]] = true
		}
	}
	designed = map[string]bool{}
	for _, m := range regexp.MustCompile("`domainguard ([a-z|]+)").FindAllStringSubmatch(string(readRepoFile(t, "docs/DESIGN.md")), -1) {
		for _, c := range strings.Split(m[1], "|") {
			designed[c] = true
		}
	}
	return registered, designed
}

// checkCommand fails when cmd is not a command of the binary, also when
// DESIGN.md §5 promises it: a manifest must never run a command that does
// not exist.
func checkCommand(t *testing.T, where, cmd string, registered, designed map[string]bool) {
	t.Helper()
	if registered[cmd] {
		return
	}
	if designed[cmd] {
		t.Errorf("%s: command %q is in DESIGN.md §5 but cmd/domainguard does not register it", where, cmd)
		return
	}
	t.Errorf("%s: %q is not a domainguard command", where, cmd)
}

func envNames() map[string]bool {
	m := map[string]bool{}
	for _, n := range config.EnvNames() {
		m[n] = true
	}
	return m
}

type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// scaledObject is the part of KEDA's ScaledObject (keda.sh/v1alpha1) the
// manifests use, decoded with unknown fields refused.
type scaledObject struct {
	typeMeta
	Metadata struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels,omitempty"`
	} `json:"metadata"`
	Spec struct {
		ScaleTargetRef struct {
			Name       string `json:"name"`
			Kind       string `json:"kind,omitempty"`
			APIVersion string `json:"apiVersion,omitempty"`
		} `json:"scaleTargetRef"`
		PollingInterval int `json:"pollingInterval,omitempty"`
		CooldownPeriod  int `json:"cooldownPeriod,omitempty"`
		MinReplicaCount int `json:"minReplicaCount,omitempty"`
		MaxReplicaCount int `json:"maxReplicaCount,omitempty"`
		Triggers        []struct {
			Type     string            `json:"type"`
			Metadata map[string]string `json:"metadata"`
		} `json:"triggers"`
	} `json:"spec"`
}

type kustomization struct {
	typeMeta
	Namespace string `json:"namespace"`
	Labels    []struct {
		Pairs map[string]string `json:"pairs"`
	} `json:"labels,omitempty"`
	Resources []string `json:"resources"`
	Images    []struct {
		Name    string `json:"name"`
		NewTag  string `json:"newTag,omitempty"`
		NewName string `json:"newName,omitempty"`
	} `json:"images,omitempty"`
}

// k8sObjects holds the decoded manifests by kind and name.
type k8sObjects struct {
	deployments   map[string]*appsv1.Deployment
	pdbs          []*policyv1.PodDisruptionBudget
	jobs          map[string]*batchv1.Job
	configMaps    map[string]*corev1.ConfigMap
	secrets       map[string]*corev1.Secret
	scaledObjects []*scaledObject
	netpols       []*networkingv1.NetworkPolicy
	namespaces    int
}

func decodeManifest(t *testing.T, file string, doc []byte, objs *k8sObjects) {
	t.Helper()
	var tm typeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var obj any
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 Namespace":
		obj = &corev1.Namespace{}
		objs.namespaces++
	case "v1 ConfigMap":
		cm := &corev1.ConfigMap{}
		obj = cm
		defer func() { objs.configMaps[cm.Name] = cm }()
	case "v1 Secret":
		s := &corev1.Secret{}
		obj = s
		defer func() { objs.secrets[s.Name] = s }()
	case "apps/v1 Deployment":
		d := &appsv1.Deployment{}
		obj = d
		defer func() { objs.deployments[d.Name] = d }()
	case "policy/v1 PodDisruptionBudget":
		p := &policyv1.PodDisruptionBudget{}
		obj = p
		defer func() { objs.pdbs = append(objs.pdbs, p) }()
	case "batch/v1 Job":
		j := &batchv1.Job{}
		obj = j
		defer func() { objs.jobs[j.Name] = j }()
	case "keda.sh/v1alpha1 ScaledObject":
		s := &scaledObject{}
		obj = s
		defer func() { objs.scaledObjects = append(objs.scaledObjects, s) }()
	case "networking.k8s.io/v1 NetworkPolicy":
		p := &networkingv1.NetworkPolicy{}
		obj = p
		defer func() { objs.netpols = append(objs.netpols, p) }()
	default:
		t.Fatalf("%s: unexpected object %s %s", file, tm.APIVersion, tm.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		t.Fatalf("%s: %s: %v", file, tm.Kind, err)
	}
}

func loadKubernetes(t *testing.T) (kustomization, *k8sObjects) {
	t.Helper()
	var k kustomization
	if err := yaml.UnmarshalStrict(readRepoFile(t, "deploy/kubernetes/kustomization.yaml"), &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	objs := &k8sObjects{
		deployments: map[string]*appsv1.Deployment{}, jobs: map[string]*batchv1.Job{},
		configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{},
	}
	listed := map[string]bool{}
	for _, r := range append(append([]string(nil), k.Resources...), "secret.example.yaml") {
		listed[r] = true
		for _, doc := range yamlDocs(readRepoFile(t, "deploy/kubernetes/"+r)) {
			decodeManifest(t, r, doc, objs)
		}
	}
	files, _ := filepath.Glob(repoPath(t, "deploy/kubernetes/*.yaml"))
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" && !listed[b] {
			t.Errorf("deploy/kubernetes/%s is not listed in kustomization.yaml", b)
		}
	}
	return k, objs
}

func TestKubernetesManifests(t *testing.T) {
	k, objs := loadKubernetes(t)
	env := envNames()
	registered, designed := commandsKnown(t)
	if k.Namespace == "" || objs.namespaces != 1 {
		t.Errorf("kustomization namespace %q with %d Namespace objects, want one", k.Namespace, objs.namespaces)
	}

	cm := objs.configMaps["domainguard-config"]
	if cm == nil {
		t.Fatal("ConfigMap domainguard-config missing")
	}
	for key := range cm.Data {
		if !env[key] {
			t.Errorf("ConfigMap %s: %s is not a variable internal/config reads", cm.Name, key)
		}
	}
	if cm.Data["DOMAINGUARD_STREAM_REPLICAS"] != "3" {
		t.Errorf("DOMAINGUARD_STREAM_REPLICAS = %q, want 3 (3-node NATS cluster)", cm.Data["DOMAINGUARD_STREAM_REPLICAS"])
	}

	// Env vars, commands and secret references of every pod template.
	checkPod := func(where string, spec corev1.PodSpec) {
		if spec.SecurityContext == nil || spec.SecurityContext.RunAsNonRoot == nil || !*spec.SecurityContext.RunAsNonRoot {
			t.Errorf("%s: pod must run as non-root", where)
		}
		for _, c := range spec.Containers {
			if len(c.Args) == 0 {
				t.Errorf("%s: container %s has no command", where, c.Name)
			} else {
				checkCommand(t, where, c.Args[0], registered, designed)
			}
			for _, e := range c.Env {
				if !env[e.Name] {
					t.Errorf("%s: env %s is not a variable internal/config reads", where, e.Name)
				}
				if ref := e.ValueFrom; ref != nil && ref.SecretKeyRef != nil {
					s := objs.secrets[ref.SecretKeyRef.Name]
					if s == nil {
						t.Errorf("%s: env %s: secret %s not in secret.example.yaml", where, e.Name, ref.SecretKeyRef.Name)
					} else if _, ok := s.StringData[ref.SecretKeyRef.Key]; !ok {
						t.Errorf("%s: env %s: secret %s has no key %s", where, e.Name, s.Name, ref.SecretKeyRef.Key)
					}
				}
			}
			for _, ef := range c.EnvFrom {
				if ef.ConfigMapRef == nil || objs.configMaps[ef.ConfigMapRef.Name] == nil {
					t.Errorf("%s: envFrom must name a ConfigMap of these manifests", where)
				}
			}
			if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
				t.Errorf("%s: container %s needs cpu and memory requests", where, c.Name)
			}
			if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
				sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("%s: container %s: want a read-only root filesystem and no privilege escalation", where, c.Name)
			}
		}
	}

	job := objs.jobs["domainguard-migrate"]
	if job == nil {
		t.Fatal("migration Job domainguard-migrate missing")
	}
	checkPod("Job "+job.Name, job.Spec.Template.Spec)
	if args := job.Spec.Template.Spec.Containers[0].Args; len(args) == 0 || args[0] != "migrate" {
		t.Errorf("migration Job runs %q, want migrate", args)
	}

	// The drain the roles do on SIGTERM: broker ConsumeOptions defaults
	// (30s drain timeout + one 5s fetch wait); the grace period must be
	// longer.
	const drain = 35 * time.Second
	for _, role := range []string{"producer", "checker", "enforcer"} {
		name := "domainguard-" + role
		d := objs.deployments[name]
		if d == nil {
			t.Errorf("Deployment %s missing", name)
			continue
		}
		spec := d.Spec.Template.Spec
		checkPod("Deployment "+name, spec)
		c := spec.Containers[0]
		if len(c.Args) == 0 || c.Args[0] != role {
			t.Errorf("%s runs %q, want %s", name, c.Args, role)
		}
		if p := c.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" {
			t.Errorf("%s: liveness probe must GET /healthz", name)
		}
		if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz" {
			t.Errorf("%s: readiness probe must GET /readyz", name)
		}
		if g := spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= drain {
			t.Errorf("%s: terminationGracePeriodSeconds %v must exceed the drain time %s", name, g, drain)
		}
		user := ""
		for _, e := range c.Env {
			if e.Name == "NATS_USER" {
				user = e.Value
			}
		}
		if user != role {
			t.Errorf("%s: NATS_USER %q, want %q (a user of deploy/nats/auth.conf)", name, user, role)
		}
		hasDB := false
		for _, e := range c.Env {
			hasDB = hasDB || e.Name == "DATABASE_URL"
		}
		if hasDB != (role != "checker") {
			t.Errorf("%s: DATABASE_URL set %v; only the checker goes without a database", name, hasDB)
		}
		covered := 0
		for _, p := range objs.pdbs {
			match := p.Spec.Selector != nil && len(p.Spec.Selector.MatchLabels) > 0
			for k, v := range p.Spec.Selector.MatchLabels {
				match = match && d.Spec.Template.Labels[k] == v
			}
			if match {
				covered++
			}
		}
		if covered != 1 {
			t.Errorf("%s: %d PodDisruptionBudgets select its pods, want 1", name, covered)
		}
		if !labelsSelect(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
			t.Errorf("%s: selector does not match the pod template labels", name)
		}
	}

	// KEDA: checkers and enforcers scale on their consumer's lag.
	want := map[string][2]string{
		"domainguard-checker":  {schemas.StreamDomainChecks, broker.ConsumerChecker},
		"domainguard-enforcer": {schemas.StreamDomainEvents, broker.ConsumerEnforcer},
	}
	for _, so := range objs.scaledObjects {
		target := so.Spec.ScaleTargetRef.Name
		d := objs.deployments[target]
		if d == nil {
			t.Errorf("ScaledObject %s targets unknown Deployment %s", so.Metadata.Name, target)
			continue
		}
		if d.Spec.Replicas != nil {
			t.Errorf("Deployment %s sets replicas although KEDA scales it: re-applying would fight the autoscaler", target)
		}
		w, ok := want[target]
		if !ok {
			t.Errorf("ScaledObject %s: unexpected target %s", so.Metadata.Name, target)
			continue
		}
		delete(want, target)
		if len(so.Spec.Triggers) != 1 || so.Spec.Triggers[0].Type != "nats-jetstream" {
			t.Errorf("ScaledObject %s: want one nats-jetstream trigger", so.Metadata.Name)
			continue
		}
		md := so.Spec.Triggers[0].Metadata
		if md["stream"] != w[0] || md["consumer"] != w[1] {
			t.Errorf("ScaledObject %s: stream/consumer %s/%s, want %s/%s", so.Metadata.Name, md["stream"], md["consumer"], w[0], w[1])
		}
		if md["account"] != "DOMAINGUARD" || md["natsServerMonitoringEndpoint"] == "" || md["lagThreshold"] == "" {
			t.Errorf("ScaledObject %s: account %q endpoint %q lagThreshold %q", so.Metadata.Name, md["account"], md["natsServerMonitoringEndpoint"], md["lagThreshold"])
		}
		if so.Spec.MinReplicaCount < 1 || so.Spec.MaxReplicaCount < so.Spec.MinReplicaCount {
			t.Errorf("ScaledObject %s: replicas %d..%d", so.Metadata.Name, so.Spec.MinReplicaCount, so.Spec.MaxReplicaCount)
		}
	}
	for target := range want {
		t.Errorf("no ScaledObject for %s", target)
	}
}

func labelsSelect(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// composeFile is the part of the compose specification compose.yaml uses,
// decoded with unknown fields refused (so a misspelt key fails).
type composeFile struct {
	Name     string                    `json:"name"`
	Services map[string]composeService `json:"services"`
	Volumes  map[string]any            `json:"volumes"`
}

type composeService struct {
	Image       string            `json:"image"`
	Build       any               `json:"build,omitempty"`
	Command     []string          `json:"command,omitempty"`
	Environment map[string]string `json:"environment,omitempty"`
	Volumes     []string          `json:"volumes,omitempty"`
	Ports       []string          `json:"ports,omitempty"`
	Profiles    []string          `json:"profiles,omitempty"`
	Healthcheck *struct {
		Test        []string `json:"test,omitempty"`
		Interval    string   `json:"interval,omitempty"`
		Timeout     string   `json:"timeout,omitempty"`
		Retries     int      `json:"retries,omitempty"`
		StartPeriod string   `json:"start_period,omitempty"`
		Disable     bool     `json:"disable,omitempty"`
	} `json:"healthcheck,omitempty"`
	DependsOn map[string]struct {
		Condition string `json:"condition"`
	} `json:"depends_on,omitempty"`
	StopGracePeriod string `json:"stop_grace_period,omitempty"`
	Restart         string `json:"restart,omitempty"`
}

func TestCompose(t *testing.T) {
	var c composeFile
	if err := yaml.UnmarshalStrict(readRepoFile(t, "deploy/compose/compose.yaml"), &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	env := envNames()
	registered, designed := commandsKnown(t)
	for _, s := range []string{"nats", "postgres", "migrate", "grants", "producer", "checker", "enforcer"} {
		if _, ok := c.Services[s]; !ok {
			t.Errorf("service %s missing", s)
		}
	}
	// NATS: JetStream from deploy/nats/single.conf on a volume, every
	// password auth.conf reads.
	nats := c.Services["nats"]
	if !strings.Contains(strings.Join(nats.Command, " "), "single.conf") {
		t.Errorf("nats runs %q, want deploy/nats/single.conf", nats.Command)
	}
	if !hasVolumeAt(nats.Volumes, "/data") || !hasVolumeAt(c.Services["postgres"].Volumes, "/var/lib/postgresql/data") {
		t.Error("nats and postgres need their data on named volumes")
	}
	for _, v := range natsUsers {
		if nats.Environment[v] == "" {
			t.Errorf("nats service does not set %s (deploy/nats/auth.conf reads it)", v)
		}
	}
	drain := 35 * time.Second
	names := make([]string, 0, len(c.Services))
	for name := range c.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s := c.Services[name]
		if s.Healthcheck == nil {
			t.Errorf("service %s: no healthcheck (disable it explicitly for one-shots)", name)
		}
		if s.Image != "domainguard:local" {
			continue
		}
		if len(s.Command) == 0 {
			t.Errorf("service %s: no command", name)
			continue
		}
		checkCommand(t, "service "+name, s.Command[0], registered, designed)
		for k := range s.Environment {
			if !env[k] {
				t.Errorf("service %s: env %s is not a variable internal/config reads", name, k)
			}
		}
		switch name {
		case "producer", "checker", "enforcer":
			if s.Command[0] != name {
				t.Errorf("service %s runs %q", name, s.Command)
			}
			if s.Environment["NATS_USER"] != name {
				t.Errorf("service %s: NATS_USER %q, want %q", name, s.Environment["NATS_USER"], name)
			}
			if _, ok := s.Environment["DATABASE_URL"]; ok != (name != "checker") {
				t.Errorf("service %s: DATABASE_URL set %v; only the checker goes without a database", name, ok)
			}
			hc := s.Healthcheck
			if hc == nil || hc.Disable || len(hc.Test) < 3 || hc.Test[0] != "CMD" {
				t.Errorf("service %s: want an exec-form healthcheck (no shell in the image)", name)
			} else {
				checkCommand(t, "service "+name+" healthcheck", hc.Test[2], registered, designed)
			}
			if g, err := time.ParseDuration(s.StopGracePeriod); err != nil || g <= drain {
				t.Errorf("service %s: stop_grace_period %q must exceed the drain time %s", name, s.StopGracePeriod, drain)
			}
			if s.DependsOn["migrate"].Condition != "service_completed_successfully" &&
				s.DependsOn["grants"].Condition != "service_completed_successfully" {
				t.Errorf("service %s must wait for the migration", name)
			}
			if s.DependsOn["nats"].Condition != "service_healthy" {
				t.Errorf("service %s must wait for a healthy NATS", name)
			}
			// Least privilege: the operator's one-shot creates the topology;
			// the role users may not (deploy/nats/auth.conf).
			if s.DependsOn["topology"].Condition != "service_completed_successfully" || s.Environment["DOMAINGUARD_MANAGE_TOPOLOGY"] != "false" {
				t.Errorf("service %s must wait for the topology one-shot and run with DOMAINGUARD_MANAGE_TOPOLOGY=false", name)
			}
		}
	}
	if c.Services["migrate"].Build == nil {
		t.Error("migrate must build the image (the roles reuse it)")
	}
	// The grants one-shot applies the roles file the SQL test checks.
	if !strings.Contains(strings.Join(c.Services["grants"].Command, " "), "/sql/roles.sql") {
		t.Error("grants does not apply deploy/sql/roles.sql")
	}
}

func hasVolumeAt(vols []string, target string) bool {
	for _, v := range vols {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == target && !strings.HasPrefix(parts[0], ".") && !strings.HasPrefix(parts[0], "/") {
			return true
		}
	}
	return false
}

// TestDockerfile checks what can be checked without a Docker engine.
func TestDockerfile(t *testing.T) {
	b := readRepoFile(t, "Dockerfile")
	for _, want := range []string{
		"FROM golang:1.26 AS build",
		"CGO_ENABLED=0",
		"-trimpath",
		`-ldflags="-s -w"`,
		"./cmd/domainguard",
		"FROM gcr.io/distroless/static-debian12:nonroot",
		"USER nonroot",
		`CMD ["/usr/local/bin/domainguard", "healthcheck"]`,
		`ENTRYPOINT ["/usr/local/bin/domainguard"]`,
	} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	registered, designed := commandsKnown(t)
	checkCommand(t, "Dockerfile HEALTHCHECK", "healthcheck", registered, designed)
	ignore := string(readRepoFile(t, ".dockerignore"))
	// **/*.csv: address lists (the quick start's users.csv) hold personal
	// data and must never reach an image layer or a build cache.
	for _, want := range []string{".git", "/domainguard", "data", "**/*.csv", "dist"} {
		if !strings.Contains(ignore, want+"\n") {
			t.Errorf(".dockerignore lacks %s", want)
		}
	}
	// The build needs these; an ignore rule must not drop them.
	for _, keep := range []string{"schemas/migrations", "schemas/json", "go.sum"} {
		if strings.Contains(ignore, keep) {
			t.Errorf(".dockerignore excludes %s, which the build embeds or needs", keep)
		}
	}
}

// The network policies: domainguard's pods take traffic only on the metrics
// port and reach NATS's client port; the NATS cluster's route port is open
// only between NATS pods (deploy/nats/cluster.conf points at that file).
func TestNetworkPolicies(t *testing.T) {
	_, objs := loadKubernetes(t)
	if len(objs.netpols) != 1 {
		t.Fatalf("deploy/kubernetes has %d NetworkPolicies, want 1", len(objs.netpols))
	}
	dg := objs.netpols[0]
	if len(dg.Spec.Ingress) != 1 || len(dg.Spec.Ingress[0].Ports) != 1 || dg.Spec.Ingress[0].Ports[0].Port.IntValue() != 9090 {
		t.Errorf("domainguard ingress %+v, want only port 9090", dg.Spec.Ingress)
	}
	reachesNATS := false
	for _, e := range dg.Spec.Egress {
		for _, p := range e.Ports {
			if p.Port.IntValue() == 4222 && len(e.To) > 0 {
				reachesNATS = true
			}
		}
	}
	if !reachesNATS {
		t.Error("domainguard egress does not allow NATS (4222)")
	}
	nats := &k8sObjects{}
	for _, doc := range yamlDocs(readRepoFile(t, "deploy/nats/networkpolicy.yaml")) {
		decodeManifest(t, "deploy/nats/networkpolicy.yaml", doc, nats)
	}
	if len(nats.netpols) != 1 {
		t.Fatalf("deploy/nats/networkpolicy.yaml: %d policies", len(nats.netpols))
	}
	for _, in := range nats.netpols[0].Spec.Ingress {
		for _, p := range in.Ports {
			if p.Port.IntValue() != 6222 {
				continue
			}
			if len(in.From) != 1 || in.From[0].PodSelector == nil || in.From[0].NamespaceSelector != nil {
				t.Errorf("route port 6222 open to %+v, want the NATS pods only", in.From)
			}
		}
	}
	if !strings.Contains(string(readRepoFile(t, "deploy/nats/cluster.conf")), "deploy/nats/networkpolicy.yaml") {
		t.Error("cluster.conf does not point at deploy/nats/networkpolicy.yaml")
	}
}

// compose pins the NATS server the tests embed (the nats-server module's
// major.minor in go.mod), not an older one.
func TestComposeNATSVersion(t *testing.T) {
	var c composeFile
	if err := yaml.UnmarshalStrict(readRepoFile(t, "deploy/compose/compose.yaml"), &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	m := regexp.MustCompile(`github.com/nats-io/nats-server/v2 v(\d+\.\d+)\.`).FindStringSubmatch(string(readRepoFile(t, "go.mod")))
	if m == nil {
		t.Fatal("go.mod has no nats-server/v2 requirement")
	}
	if want := "nats:" + m[1] + "-alpine"; c.Services["nats"].Image != want {
		t.Errorf("compose nats image %q, want %q (the version the tests embed)", c.Services["nats"].Image, want)
	}
}
