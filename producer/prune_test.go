package producer

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/domainguard/domainguard/internal/clock"
	"github.com/domainguard/domainguard/internal/testdb"
	"github.com/domainguard/domainguard/internal/testnats"
	"github.com/domainguard/domainguard/internal/testroles"
)

// sortedColumn returns the first column of q's rows, sorted.
func sortedColumn(t *testing.T, pool *pgxpool.Pool, q string) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// TestPruneIntakeUnderTheShippedRole runs pruneIntake connected as the
// login user of deploy/sql/roles.sql's producer role (#14 item 9): intake's
// processed-message ids past broker.DefaultProcessedRetention and removal
// tombstones past 90 days go; recent ones, and other consumers' ids, stay.
func TestPruneIntakeUnderTheShippedRole(t *testing.T) {
	owner, dbURL := testdb.New(t)
	roles := testroles.ApplySQLRoles(t, owner, dbURL)
	js, _, topo := testnats.Shared(t)
	p, err := New(Config{Pool: roles.Login(t, "producer"), JS: js, Topology: topo, Clock: clock.NewStub(time.Now()),
		Logger: testnats.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := owner.Exec(ctx, `
INSERT INTO processed_messages (consumer, message_id, processed_at) VALUES
  ('producer-intake', 'intake-31-days', now() - interval '31 days'),
  ('producer-intake', 'intake-29-days', now() - interval '29 days'),
  ('producer-intake', 'intake-now', now()),
  ('enforcer', 'enforcer-40-days', now() - interval '40 days');
INSERT INTO email_removals (user_id, email, removed_at, recorded_at) VALUES
  ('removed-91-days', 'a@example.com', now() - interval '91 days', now() - interval '91 days'),
  ('removed-89-days', 'a@example.com', now() - interval '89 days', now() - interval '89 days');`); err != nil {
		t.Fatalf("seed: %v", err)
	}

	if err := p.pruneIntake(ctx); err != nil {
		t.Fatalf("pruneIntake as the producer role: %v", err)
	}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{`SELECT message_id FROM processed_messages`, []string{"enforcer-40-days", "intake-29-days", "intake-now"}},
		{`SELECT user_id FROM email_removals`, []string{"removed-89-days"}},
	} {
		if got := sortedColumn(t, owner, tc.query); !slices.Equal(got, tc.want) {
			t.Errorf("%s after pruning: %v, want %v", tc.query, got, tc.want)
		}
	}
}
