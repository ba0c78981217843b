package deploy_test

import (
	"context"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"sigs.k8s.io/yaml"

	"github.com/domainguard/domainguard/internal/fakerdap"
	"github.com/domainguard/domainguard/internal/postgres"
	"github.com/domainguard/domainguard/internal/testbin"
	"github.com/domainguard/domainguard/internal/testdb"
	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

// composeVar matches compose's ${NAME}, ${NAME:-default} and ${NAME:?message}.
var composeVar = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([-?])([^}]*))?\}`)

// interpolate expands compose variables from dotenv, as `docker compose`
// does with deploy/compose/.env.
func interpolate(t *testing.T, v string, dotenv map[string]string) string {
	return composeVar.ReplaceAllStringFunc(v, func(m string) string {
		p := composeVar.FindStringSubmatch(m)
		if val, ok := dotenv[p[1]]; ok && val != "" {
			return val
		}
		if p[2] == "-" {
			return p[3]
		}
		if p[2] == "?" {
			t.Fatalf("compose.yaml needs %s: %s", p[1], p[3])
		}
		return ""
	})
}

// deployment is the pieces TestComposeRolesLeastPrivilege runs the roles
// against: a NATS server from deploy/nats/single.conf with the operator's
// topology, a database migrated by its owner with deploy/sql/roles.sql
// applied and one login per role, and a fake RDAP server.
type deployment struct {
	natsURL string
	dbURL   *url.URL // the owner's URL
	logins  map[string]string
	rdap    *fakerdap.Server
	caFile  string
	compose composeFile
	dotenv  map[string]string
}

func newDeployment(t *testing.T) *deployment {
	t.Helper()
	testbin.Path(t) // build first: the wait for processes below must not include it
	d := &deployment{logins: map[string]string{}, rdap: fakerdap.New(t)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// The database, migrated by `domainguard migrate` as the owner (the
	// compose service "migrate"), then the grants and logins (the
	// service "grants").
	ownerURL := testdb.NewEmpty(t)
	if out, err := testbin.Run(ctx, t, []string{"DATABASE_URL=" + ownerURL, "DOMAINGUARD_METRICS_ADDR=off"}, "migrate"); err != nil {
		t.Fatalf("domainguard migrate: %v\n%s", err, out)
	}
	u, err := url.Parse(ownerURL)
	if err != nil {
		t.Fatal(err)
	}
	d.dbURL = u
	pool, err := postgres.Open(ctx, ownerURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	groups := applyRoles(t, pool)
	for role, group := range groups {
		login := "dg_" + strings.TrimPrefix(group, "domainguard_")
		if _, err := pool.Exec(ctx, `CREATE ROLE `+pgx.Identifier{login}.Sanitize()+` LOGIN PASSWORD 'pw' IN ROLE `+pgx.Identifier{group}.Sanitize()); err != nil {
			t.Fatalf("create login %s: %v", login, err)
		}
		t.Cleanup(func() {
			if _, err := pool.Exec(context.Background(), `DROP ROLE IF EXISTS `+pgx.Identifier{login}.Sanitize()); err != nil {
				t.Errorf("drop login %s: %v", login, err)
			}
		})
		d.logins["dg_"+role] = login
	}

	// NATS with the deploy/nats users; the operator creates the topology
	// (the compose service "topology").
	d.natsURL = startNATS(t, "deploy/nats/single.conf").ClientURL()
	d.dotenv = map[string]string{"DOMAINGUARD_PROVIDER": "rdap"}
	for user, env := range natsUsers {
		d.dotenv[env] = "pw-" + user
	}
	for _, v := range []string{"POSTGRES_PASSWORD", "POSTGRES_PRODUCER_PASSWORD", "POSTGRES_ENFORCER_PASSWORD", "POSTGRES_OPERATOR_PASSWORD"} {
		d.dotenv[v] = "pw"
	}
	if err := yaml.UnmarshalStrict(readRepoFile(t, "deploy/compose/compose.yaml"), &d.compose); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	if out, err := testbin.Run(ctx, t, d.env(t, "topology"), "topology"); err != nil {
		t.Fatalf("domainguard topology as the operator: %v\n%s", err, out)
	}

	d.caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := d.rdap.WriteCACert(d.caFile); err != nil {
		t.Fatal(err)
	}
	return d
}

// env is a compose service's environment, interpolated, with the
// addresses of this test's servers in place of compose's host names:
// NATS_URL, the host and database of DATABASE_URL (the login stays the
// compose one, suffixed like the test's roles), a loopback metrics port
// and a temporary data dir. The other variables are exactly compose's.
func (d *deployment) env(t *testing.T, service string) []string {
	t.Helper()
	svc, ok := d.compose.Services[service]
	if !ok {
		t.Fatalf("compose.yaml has no service %q", service)
	}
	var env []string
	for k, v := range svc.Environment {
		v = interpolate(t, v, d.dotenv)
		switch k {
		case "NATS_URL":
			v = d.natsURL
		case "DATABASE_URL":
			u, err := url.Parse(v)
			if err != nil {
				t.Fatalf("%s: DATABASE_URL: %v", service, err)
			}
			user := u.User.Username()
			if login, ok := d.logins[user]; ok {
				user = login
			} else if user != "domainguard_owner" {
				t.Fatalf("%s: DATABASE_URL login %q is neither the owner nor one of %v", service, user, d.logins)
			}
			if user == "domainguard_owner" {
				user = d.dbURL.User.Username()
			}
			pw, _ := u.User.Password()
			u.User = url.UserPassword(user, pw)
			u.Host, u.Path = d.dbURL.Host, d.dbURL.Path
			v = u.String()
		case "DOMAINGUARD_METRICS_ADDR":
			if v != "off" {
				v = "127.0.0.1:0"
			}
		case "DOMAINGUARD_DATA_DIR":
			v = t.TempDir()
		}
		env = append(env, k+"="+v)
	}
	return env
}

// TestComposeRolesLeastPrivilege runs the producer, checker and enforcer as
// separate processes with exactly the NATS users, database logins and
// environment of deploy/compose (DOMAINGUARD_MANAGE_TOPOLOGY=false), plus
// the reference notifier as the NATS user notifier, drives one lapse from
// a host event to a user notice, and checks that every process is still
// running: no role may need a permission deploy/nats/auth.conf or
// deploy/sql/roles.sql does not give it.
func TestComposeRolesLeastPrivilege(t *testing.T) {
	d := newDeployment(t)
	const domain = "lapsed-shop.com"
	d.rdap.Set(domain, fakerdap.Answer{Phase: lifecycle.PhasePendingDelete})

	// What the test adds to compose's environment: the fake RDAP server
	// and its certificate, and a short sweep interval.
	testEnv := []string{
		"RDAP_BOOTSTRAP_URL=" + d.rdap.BootstrapURL(),
		"SSL_CERT_FILE=" + d.caFile,
		"DOMAINGUARD_SWEEP_INTERVAL=1s",
	}
	procs := map[string]*testbin.Process{}
	for _, role := range []string{"producer", "checker", "enforcer"} {
		env := append(d.env(t, role), testEnv...)
		if !strings.Contains(strings.Join(env, "\n"), "DOMAINGUARD_MANAGE_TOPOLOGY=false") {
			t.Fatalf("compose service %s does not set DOMAINGUARD_MANAGE_TOPOLOGY=false", role)
		}
		procs[role] = testbin.Start(t, testbin.Options{Name: role, Env: env}, role)
	}
	procs["notifier"] = testbin.Start(t, testbin.Options{Name: "notifier", Env: []string{
		"NATS_URL=" + d.natsURL, "NATS_USER=notifier", "NATS_PASSWORD=pw-notifier", "DOMAINGUARD_METRICS_ADDR=off",
	}}, "notify-example")

	// The host application publishes a verification as the user host-app.
	host := connectAs(t, d.natsURL, "host-app")
	email := "alice@" + domain
	ev, err := schemas.NewEvent("test/host", schemas.SubjectEmailVerified, email, time.Now(),
		schemas.EmailVerified{UserID: "u1", Email: email, VerifiedAt: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	body, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg := &nats.Msg{Subject: schemas.SubjectEmailVerified, Data: body, Header: nats.Header{}}
	msg.Header.Set(schemas.HeaderMsgID, ev.ID)
	if _, err := host.js.PublishMsg(ctx, msg); err != nil {
		t.Fatalf("host-app publishes: %v", err)
	}

	want := "to u1 <" + email + ">"
	deadline := time.Now().Add(45 * time.Second)
	for !strings.Contains(procs["notifier"].Output(), want) {
		for name, p := range procs {
			if p.Exited() {
				t.Fatalf("%s exited: %v\n%s", name, p.Wait(), testbin.Tail(p.Output(), 4<<10))
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no notice %q within 45s", want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A few seconds more: a role whose consumer or publish is denied
	// would fail now at the latest.
	time.Sleep(3 * time.Second)
	for name, p := range procs {
		if p.Exited() {
			t.Errorf("%s exited: %v", name, p.Wait())
		}
		if out := p.Output(); strings.Contains(out, "permissions violation") {
			t.Errorf("%s was denied something:\n%s", name, testbin.Tail(out, 4<<10))
		}
	}
	for name, p := range procs {
		if err := p.Stop(30 * time.Second); err != nil {
			t.Errorf("%s did not stop cleanly: %v", name, err)
		}
	}
}

// TestRoleDeniedFailsAtOnce starts the enforcer with the checker's NATS
// user: the server denies it its consumer, and the process must exit at
// once naming the denied subject (not retry a timeout forever, which an
// orchestrator shows only as a hanging pod).
func TestRoleDeniedFailsAtOnce(t *testing.T) {
	d := newDeployment(t)
	env := d.env(t, "enforcer")
	for i, kv := range env {
		switch {
		case strings.HasPrefix(kv, "NATS_USER="):
			env[i] = "NATS_USER=checker"
		case strings.HasPrefix(kv, "NATS_PASSWORD="):
			env[i] = "NATS_PASSWORD=pw-checker"
		}
	}
	start := time.Now()
	p := testbin.Start(t, testbin.Options{Name: "enforcer as checker", Env: env}, "enforcer")
	done := make(chan error, 1)
	go func() { done <- p.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the enforcer exited 0 although NATS denied it its consumer")
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the enforcer was still running 10s after start although NATS denies it its consumer:\n%s", testbin.Tail(p.Output(), 4<<10))
	}
	out := p.Output()
	if !strings.Contains(out, `$JS.API.CONSUMER.INFO.DOMAIN_EVENTS.enforcer`) {
		t.Errorf("the error does not name the denied subject:\n%s", testbin.Tail(out, 4<<10))
	}
	t.Logf("exited %s after start", time.Since(start).Round(time.Millisecond))
}
