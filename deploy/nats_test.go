package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/testroles"
	"github.com/domainguard/domainguard/schemas"
)

// natsUsers are the users of deploy/nats/auth.conf; the test gives each
// its testroles.NATSPassword through the variables the file reads.
var natsUsers = testroles.NATSUsers

func setNATSPasswords(t *testing.T) {
	for user, env := range natsUsers {
		t.Setenv(env, testroles.NATSPassword(user))
	}
}

// startNATS starts an embedded server from a deploy/nats file with the
// ports and store directory adapted for a test.
func startNATS(t *testing.T, conf string) *server.Server {
	t.Helper()
	setNATSPasswords(t)
	opts, err := server.ProcessConfigFile(repoPath(t, conf))
	if err != nil {
		t.Fatalf("process %s: %v", conf, err)
	}
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.HTTPHost, opts.HTTPPort = "", 0
	opts.StoreDir = t.TempDir()
	opts.NoSigs, opts.NoLog = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("new server from %s: %v", conf, err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatalf("server from %s not ready", conf)
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// natsClient is one user's connection, recording the permission
// violations the server reports.
type natsClient struct {
	user string
	nc   *nats.Conn
	js   jetstream.JetStream

	mu         sync.Mutex
	violations []string
	changed    chan struct{}
}

func connectAs(t *testing.T, url, user string) *natsClient {
	t.Helper()
	c := &natsClient{user: user, changed: make(chan struct{}, 1)}
	nc, err := nats.Connect(url,
		nats.UserInfo(user, testroles.NATSPassword(user)),
		nats.CustomInboxPrefix("_INBOX_"+user), // what cmd/domainguard does when NATS_USER is set
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				c.mu.Lock()
				c.violations = append(c.violations, err.Error())
				c.mu.Unlock()
				select {
				case c.changed <- struct{}{}:
				default:
				}
			}
		}))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream as %s: %v", user, err)
	}
	c.nc, c.js = nc, js
	return c
}

// waitViolation waits until the server reported a violation naming subject.
func (c *natsClient) waitViolation(t *testing.T, kind, subject string) {
	t.Helper()
	want := fmt.Sprintf("%s to %q", kind, subject)
	deadline := time.After(5 * time.Second)
	for {
		c.mu.Lock()
		for _, v := range c.violations {
			if strings.Contains(v, want) {
				c.mu.Unlock()
				return
			}
		}
		c.mu.Unlock()
		select {
		case <-c.changed:
		case <-deadline:
			t.Fatalf("%s: no permissions violation for %s (got %q)", c.user, want, c.reported())
		}
	}
}

func (c *natsClient) reported() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.violations...)
}

// mustBeDeniedPublish publishes to subject and waits for the server's
// permission violation.
func (c *natsClient) mustBeDeniedPublish(t *testing.T, subject string) {
	t.Helper()
	if err := c.nc.PublishRequest(subject, c.nc.NewInbox(), []byte("{}")); err != nil {
		t.Fatalf("%s publish %s: %v", c.user, subject, err)
	}
	c.waitViolation(t, "Publish", subject)
}

func (c *natsClient) mustBeDeniedSubscribe(t *testing.T, subject string) {
	t.Helper()
	sub, err := c.nc.SubscribeSync(subject)
	if err != nil {
		t.Fatalf("%s subscribe %s: %v", c.user, subject, err)
	}
	defer sub.Unsubscribe()
	c.waitViolation(t, "Subscription", subject)
}

func (c *natsClient) mustPublish(t *testing.T, subject string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.js.Publish(ctx, subject, []byte(`{}`)); err != nil {
		t.Fatalf("%s: publish to %s: %v", c.user, subject, err)
	}
}

// mustConsumeOne fetches one message from the durable and acknowledges it.
func (c *natsClient) mustConsumeOne(t *testing.T, topo broker.Topology, stream, durable, wantSubject string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := topo.Consumer(ctx, c.js, stream, durable)
	if err != nil {
		t.Fatalf("%s: consumer %s/%s: %v", c.user, stream, durable, err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatalf("%s: fetch %s/%s: %v", c.user, stream, durable, err)
	}
	var got []string
	for msg := range batch.Messages() {
		got = append(got, msg.Subject())
		if err := msg.InProgress(); err != nil {
			t.Errorf("%s: in progress: %v", c.user, err)
		}
		if err := msg.DoubleAck(ctx); err != nil {
			t.Errorf("%s: ack %s: %v", c.user, msg.Subject(), err)
		}
	}
	if batch.Error() != nil {
		t.Fatalf("%s: fetch %s/%s: %v", c.user, stream, durable, batch.Error())
	}
	if len(got) != 1 || got[0] != wantSubject {
		t.Fatalf("%s: fetched %q from %s/%s, want [%s]", c.user, got, stream, durable, wantSubject)
	}
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s info: %v", name, err)
	}
	return info.State.Msgs
}

// TestNATSLeastPrivilege starts a server from deploy/nats/single.conf and
// shows that every role can do its job (check the topology, consume its
// durable, publish its subjects) and is refused the rest: a checker cannot
// publish to audit.>, a producer cannot consume AUDIT, nobody but the
// operator can read another role's consumer.
func TestNATSLeastPrivilege(t *testing.T) {
	s := startNATS(t, "deploy/nats/single.conf")
	url := s.ClientURL()
	topo := broker.Topology{Logger: slog.New(slog.DiscardHandler)}.WithDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	op := connectAs(t, url, "operator")
	if err := topo.Ensure(ctx, op.js); err != nil {
		t.Fatalf("operator ensures the topology: %v", err)
	}
	roles := map[string]*natsClient{}
	for _, role := range []string{"producer", "checker", "enforcer"} {
		c := connectAs(t, url, role)
		// Roles run with DOMAINGUARD_MANAGE_TOPOLOGY=false: they only check
		// that the operator's topology exists.
		if err := topo.Verify(ctx, c.js); err != nil {
			t.Fatalf("%s verifies the topology: %v (violations %q)", role, err, c.reported())
		}
		roles[role] = c
	}
	host := connectAs(t, url, "host-app")
	notifier := connectAs(t, url, "notifier")
	producer, checker, enforcer := roles["producer"], roles["checker"], roles["enforcer"]

	// The pipeline, one hop per role.
	host.mustPublish(t, schemas.SubjectEmailVerified)
	producer.mustConsumeOne(t, topo, schemas.StreamAccounts, broker.ConsumerIntake, schemas.SubjectEmailVerified)
	producer.mustPublish(t, "domains.check.example.com")
	producer.mustPublish(t, "dlq.ACCOUNTS")
	checker.mustConsumeOne(t, topo, schemas.StreamDomainChecks, broker.ConsumerChecker, "domains.check.example.com")
	checker.mustPublish(t, "domains.changed.example.com")
	checker.mustPublish(t, "domains.checked.example.com")
	checker.mustPublish(t, "dlq.DOMAIN_CHECKS")
	enforcer.mustConsumeOne(t, topo, schemas.StreamDomainEvents, broker.ConsumerEnforcer, "domains.changed.example.com")
	enforcer.mustPublish(t, schemas.SubjectEmailUnverified)
	enforcer.mustPublish(t, "dlq.DOMAIN_EVENTS")

	// The notification service creates its own durable on AUDIT and reads.
	if _, err := notifier.js.CreateOrUpdateConsumer(ctx, schemas.StreamAudit, jetstream.ConsumerConfig{
		Durable: "notifier", FilterSubject: schemas.SubjectAuditAll, AckPolicy: jetstream.AckExplicitPolicy,
	}); err != nil {
		t.Fatalf("notifier creates its durable: %v", err)
	}
	notifier.mustConsumeOne(t, topo, schemas.StreamAudit, "notifier", schemas.SubjectEmailUnverified)

	t.Run("checker cannot publish to audit", func(t *testing.T) {
		before := streamMsgs(t, op.js, schemas.StreamAudit)
		checker.mustBeDeniedPublish(t, schemas.SubjectEmailUnverified)
		checker.mustBeDeniedPublish(t, schemas.SubjectEnforcementHeld)
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		defer pcancel()
		if _, err := checker.js.Publish(pctx, schemas.SubjectEmailUnverified, []byte(`{}`)); err == nil {
			t.Error("checker's JetStream publish to audit.email.unverified was acknowledged")
		}
		if after := streamMsgs(t, op.js, schemas.StreamAudit); after != before {
			t.Errorf("AUDIT holds %d messages after the checker's attempts, want %d", after, before)
		}
	})

	t.Run("producer cannot consume AUDIT", func(t *testing.T) {
		producer.mustBeDeniedSubscribe(t, schemas.SubjectAuditAll)
		producer.mustBeDeniedPublish(t, "$JS.API.CONSUMER.CREATE.AUDIT.spy.audit.>")
		producer.mustBeDeniedPublish(t, "$JS.API.CONSUMER.CREATE.AUDIT.spy")
		producer.mustBeDeniedPublish(t, "$JS.API.CONSUMER.DURABLE.CREATE.AUDIT.spy")
		producer.mustBeDeniedPublish(t, "$JS.API.CONSUMER.INFO.AUDIT.notifier")
		producer.mustBeDeniedPublish(t, "$JS.API.CONSUMER.MSG.NEXT.AUDIT.notifier")
		producer.mustBeDeniedPublish(t, "$JS.API.STREAM.MSG.GET.AUDIT")
		producer.mustBeDeniedPublish(t, "$JS.API.DIRECT.GET.AUDIT")
		cctx, ccancel := context.WithTimeout(ctx, time.Second)
		defer ccancel()
		if _, err := producer.js.OrderedConsumer(cctx, schemas.StreamAudit, jetstream.OrderedConsumerConfig{}); err == nil {
			t.Error("producer created an ordered consumer on AUDIT")
		}
	})

	t.Run("each role publishes only its own subjects", func(t *testing.T) {
		for _, tc := range []struct {
			c       *natsClient
			subject string
		}{
			{producer, schemas.SubjectEmailVerified},
			{producer, "domains.changed.example.com"},
			{producer, schemas.SubjectDomainChanged},
			{checker, "domains.check.example.com"},
			{checker, schemas.SubjectEmailVerified},
			{enforcer, "domains.check.example.com"},
			{enforcer, "domains.changed.example.com"},
			{host, "domains.check.example.com"},
			{host, schemas.SubjectEmailUnverified},
			{host, "dlq.ACCOUNTS"},
			{notifier, schemas.SubjectEmailUnverified},
			{notifier, schemas.SubjectEmailVerified},
			// Dead letters only into the role's own stream's DLQ subject
			// (dlq replay trusts the subject to name the letter's stream).
			{producer, "dlq.DOMAIN_CHECKS"},
			{producer, "dlq.DOMAIN_EVENTS"},
			{checker, "dlq.ACCOUNTS"},
			{checker, "dlq.DOMAIN_EVENTS"},
			{enforcer, "dlq.ACCOUNTS"},
			{enforcer, "dlq.DOMAIN_CHECKS"},
			{checker, "dlq.AUDIT"},
		} {
			tc.c.mustBeDeniedPublish(t, tc.subject)
		}
	})

	t.Run("no role manages the topology", func(t *testing.T) {
		for _, c := range []*natsClient{producer, checker, enforcer} {
			c.mustBeDeniedPublish(t, "$JS.API.STREAM.UPDATE.AUDIT")
			c.mustBeDeniedPublish(t, "$JS.API.STREAM.CREATE.AUDIT")
			c.mustBeDeniedPublish(t, "$JS.API.STREAM.UPDATE.DOMAIN_CHECKS")
			c.mustBeDeniedPublish(t, "$JS.API.CONSUMER.CREATE.AUDIT.spy.audit.>")
			c.mustBeDeniedPublish(t, "$JS.API.CONSUMER.CREATE.DOMAIN_EVENTS.enforcer.domains.>")
		}
		uctx, ucancel := context.WithTimeout(ctx, 2*time.Second)
		defer ucancel()
		if err := topo.Ensure(uctx, checker.js); err == nil {
			t.Error("the checker could create or update the topology")
		}
	})

	t.Run("no role reads another role's consumer or deletes", func(t *testing.T) {
		checker.mustBeDeniedPublish(t, "$JS.API.CONSUMER.MSG.NEXT.DOMAIN_EVENTS.enforcer")
		enforcer.mustBeDeniedPublish(t, "$JS.API.CONSUMER.MSG.NEXT.DOMAIN_CHECKS.checker")
		producer.mustBeDeniedPublish(t, "$JS.ACK.DOMAIN_CHECKS.checker.1.1.1.1.1")
		enforcer.mustBeDeniedPublish(t, "$JS.API.STREAM.DELETE.AUDIT")
		enforcer.mustBeDeniedPublish(t, "$JS.API.STREAM.PURGE.AUDIT")
		checker.mustBeDeniedPublish(t, "$JS.API.CONSUMER.DELETE.DOMAIN_EVENTS.enforcer")
		checker.mustBeDeniedPublish(t, "$JS.API.STREAM.MSG.DELETE.DLQ")
		// Inboxes are per user: the checker cannot read the enforcer's replies.
		checker.mustBeDeniedSubscribe(t, "_INBOX_enforcer.>")
		checker.mustBeDeniedSubscribe(t, "_INBOX.>")
	})
}

// TestNATSClusterConfig parses deploy/nats/cluster.conf and checks that it
// is a 3-node JetStream cluster with the same users as the single node.
func TestNATSClusterConfig(t *testing.T) {
	setNATSPasswords(t)
	t.Setenv("SERVER_NAME", "nats-1")
	cluster, err := server.ProcessConfigFile(repoPath(t, "deploy/nats/cluster.conf"))
	if err != nil {
		t.Fatalf("process cluster.conf: %v", err)
	}
	single, err := server.ProcessConfigFile(repoPath(t, "deploy/nats/single.conf"))
	if err != nil {
		t.Fatalf("process single.conf: %v", err)
	}
	if cluster.ServerName != "nats-1" {
		t.Errorf("server_name = %q, want it from $SERVER_NAME", cluster.ServerName)
	}
	if !cluster.JetStream || cluster.StoreDir == "" {
		t.Errorf("JetStream %v, store dir %q: want enabled with a store dir", cluster.JetStream, cluster.StoreDir)
	}
	if cluster.Cluster.Name == "" || cluster.Cluster.Port != 6222 {
		t.Errorf("cluster name %q port %d, want a name and 6222", cluster.Cluster.Name, cluster.Cluster.Port)
	}
	if len(cluster.Routes) != 3 {
		t.Errorf("routes %v, want 3", cluster.Routes)
	}
	if cluster.LameDuckDuration <= 0 {
		t.Error("lame_duck_duration not set: rolling restarts would drop clients at once")
	}
	users := func(o *server.Options) map[string]string {
		m := map[string]string{}
		for _, u := range o.Users {
			m[u.Username] = u.Account.Name + " " + fmt.Sprint(u.Permissions.Publish.Allow) + fmt.Sprint(u.Permissions.Subscribe.Allow)
		}
		return m
	}
	cu, su := users(cluster), users(single)
	if len(cu) != len(natsUsers) {
		t.Errorf("cluster users %d, want %d", len(cu), len(natsUsers))
	}
	for name, perms := range su {
		if cu[name] != perms {
			t.Errorf("user %s differs between single.conf and cluster.conf", name)
		}
	}
	if !single.JetStream {
		t.Error("single.conf: JetStream not enabled")
	}
}
