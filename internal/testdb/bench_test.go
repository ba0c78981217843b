package testdb

import (
	"context"
	"testing"
	"time"

	"github.com/domainguard/domainguard/internal/postgres"
	"github.com/domainguard/domainguard/schemas"
)

// BenchmarkTestDBNew measures what a test pays for its migrated database
// (create and open; the drop at cleanup is not timed): a copy of the
// template, against the way New worked before templates (a database from
// template1, then migrated) as the baseline.
//
//	go test -run '^$' -bench BenchmarkTestDBNew -benchtime 20x ./internal/testdb
func BenchmarkTestDBNew(b *testing.B) {
	New(b) // builds the template outside the timing
	b.Run("template", func(b *testing.B) {
		for b.Loop() {
			New(b)
		}
	})
	b.Run("template1+migrate", func(b *testing.B) {
		ctx := context.Background()
		for b.Loop() {
			pool, err := postgres.Open(ctx, NewEmpty(b), postgres.WithMaxWait(5*time.Second))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(pool.Close)
			if _, err := postgres.Migrate(ctx, pool, schemas.Migrations); err != nil {
				b.Fatal(err)
			}
		}
	})
}
