package enforcer

import (
	"testing"
	"time"

	"github.com/domainguard/domainguard/internal/clock"
	"github.com/domainguard/domainguard/internal/testroles"
)

// TestRelayPruneUnderTheShippedRole runs the relay's Prune connected as the
// login user of deploy/sql/roles.sql's enforcer role (#14 item 9), which
// may not delete from outbox or processed_messages itself: outbox rows sent
// more than OutboxRetention (7 days) ago and the enforcer's processed ids
// past ProcessedRetention (30 days) go; more recent rows, unsent rows and
// other consumers' ids stay.
func TestRelayPruneUnderTheShippedRole(t *testing.T) {
	f := newFixture(t, nil)
	roles := testroles.ApplySQLRoles(t, f.pool, f.dbURL)
	js, _, topo := sharedNATS(t)
	r, err := NewRelay(Config{Pool: roles.Login(t, "enforcer"), JS: js, Topology: topo, Clock: clock.NewStub(time.Now()),
		Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	f.exec(`
INSERT INTO outbox (id, subject, payload, created_at, sent_at) VALUES
  (gen_random_uuid(), 'sent-8-days', '\x7b7d', now() - interval '9 days', now() - interval '8 days'),
  (gen_random_uuid(), 'sent-6-days', '\x7b7d', now() - interval '9 days', now() - interval '6 days'),
  (gen_random_uuid(), 'unsent-30-days', '\x7b7d', now() - interval '30 days', NULL);
INSERT INTO processed_messages (consumer, message_id, processed_at) VALUES
  ('enforcer', 'enforcer-31-days', now() - interval '31 days'),
  ('enforcer', 'enforcer-29-days', now() - interval '29 days'),
  ('producer-intake', 'intake-40-days', now() - interval '40 days');`)

	if err := r.Prune(f.ctx); err != nil {
		t.Fatalf("Prune as the enforcer role: %v", err)
	}
	for _, tc := range []struct {
		query, key string
		kept       bool
	}{
		{`SELECT count(*) FROM outbox WHERE subject = $1`, "sent-8-days", false},
		{`SELECT count(*) FROM outbox WHERE subject = $1`, "sent-6-days", true},
		{`SELECT count(*) FROM outbox WHERE subject = $1`, "unsent-30-days", true},
		{`SELECT count(*) FROM processed_messages WHERE message_id = $1`, "enforcer-31-days", false},
		{`SELECT count(*) FROM processed_messages WHERE message_id = $1`, "enforcer-29-days", true},
		{`SELECT count(*) FROM processed_messages WHERE message_id = $1`, "intake-40-days", true},
	} {
		if got := f.count(tc.query, tc.key) == 1; got != tc.kept {
			t.Errorf("%s kept after pruning: %v, want %v", tc.key, got, tc.kept)
		}
	}
}
