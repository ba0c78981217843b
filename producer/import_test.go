package producer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/domainguard/domainguard/internal/clock"
	"github.com/domainguard/domainguard/internal/domainname"
	"github.com/domainguard/domainguard/internal/testdb"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestNormalizeAddress(t *testing.T) {
	tests := []struct {
		user, email     string
		wantEmail, want string
		wantErr         bool
	}{
		{"u1", "Alice@Example.COM", "Alice@example.com", "example.com", false},
		{"u1", " bob@mail.cs.uni.ac.uk ", "bob@mail.cs.uni.ac.uk", "uni.ac.uk", false},
		{"u1", "x@foo.github.io", "x@foo.github.io", "github.io", false},
		{"u1", "a@b@bücher.de", "a@b@xn--bcher-kva.de", "xn--bcher-kva.de", false},
		{"u1", "Alice@BÜCHER.de.", "Alice@xn--bcher-kva.de", "xn--bcher-kva.de", false},
		{"u1", "no-at-sign", "", "", true},
		{"u1", "a@com", "", "", true},            // public suffix
		{"u1", "a@exa mple.com", "", "", true},   // space
		{"u1", "a@*.example.com", "", "", true},  // wildcard
		{"", "a@example.com", "", "", true},      // no user
		{"u\x01", "a@example.com", "", "", true}, // control character
		{"u1", strings.Repeat("a", 250) + "@example.com", "", "", true},
	}
	for _, tt := range tests {
		got, err := NormalizeAddress(tt.user, tt.email)
		if tt.wantErr {
			if err == nil {
				t.Errorf("NormalizeAddress(%q, %q) = %+v, want error", tt.user, tt.email, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("NormalizeAddress(%q, %q): %v", tt.user, tt.email, err)
			continue
		}
		if got.Email != tt.wantEmail || got.Domain != tt.want || got.UserID != tt.user {
			t.Errorf("NormalizeAddress(%q, %q) = %+v, want email %q domain %q", tt.user, tt.email, got, tt.wantEmail, tt.want)
		}
	}
	if _, err := NormalizeAddress("u", "a@com"); !errors.Is(err, domainname.ErrInvalid) {
		t.Errorf("public suffix error %v does not wrap domainname.ErrInvalid", err)
	}
}

func TestParseVerifiedAt(t *testing.T) {
	want := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
	}{
		{"2024-05-06T07:08:09Z", want},
		{"2024-05-06T09:08:09+02:00", want},
		{"2024-05-06T07:08:09", want},
		{"2024-05-06 07:08:09", want},
		{"2024-05-06 07:08:09+00", want},
		{"2024-05-06 07:08:09.000+00:00", want},
		{"2024-05-06", time.Date(2024, 5, 6, 0, 0, 0, 0, time.UTC)},
		{"1714979289", want},
		{"1714979289000", want},
	}
	for _, tt := range tests {
		got, err := ParseVerifiedAt(tt.in)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("ParseVerifiedAt(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "yesterday", "2024-13-01", "06/05/2024"} {
		if got, err := ParseVerifiedAt(bad); err == nil {
			t.Errorf("ParseVerifiedAt(%q) = %v, want error", bad, got)
		}
	}
}

type emailRow struct {
	domain     string
	verified   bool
	verifiedAt time.Time
}

func readEmail(t *testing.T, pool *pgxpool.Pool, user, email string) (emailRow, bool) {
	t.Helper()
	var r emailRow
	err := pool.QueryRow(context.Background(),
		`SELECT domain, verified, verified_at FROM emails WHERE user_id = $1 AND email = $2`, user, email).
		Scan(&r.domain, &r.verified, &r.verifiedAt)
	if err != nil {
		if strings.Contains(err.Error(), "no rows") {
			return r, false
		}
		t.Fatalf("read email %s/%s: %v", user, email, err)
	}
	return r, true
}

func countRows(t *testing.T, pool *pgxpool.Pool, query string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestImport(t *testing.T) {
	pool, _ := testdb.New(t)
	ctx := context.Background()
	clk := clock.NewStub(t0)

	input := "\ufeffuser_id,email,verified_at\r\n" + // 1: header with BOM, CRLF
		"u1,Alice@Example.com,2024-01-02T03:04:05Z\r\n" + // 2
		"\"u,2\",\"bob@example.com\",2024-01-02\n" + // 3: quoted comma in user id
		"u3,not-an-address,2024-01-02\n" + // 4: bad: no @
		"u4,c@com,2024-01-02\n" + // 5: bad: public suffix
		"u5,d@other.org,someday\n" + // 6: bad: date
		"u6,e@other.org,2099-01-01\n" + // 7: bad: future
		"u7,\"f@other.org\"x,2024-01-02\n" + // 8: bad: quote
		"\"u8\nmultiline\",g@third.net,1704164645\n" + // 9-10: bad: quoted newline in user id
		"u9,h@third.net,\n" + // 11: bad: empty verified_at
		"\"u\"\"8\",g@third.net,1704164645\n" + // 12: quoted quote
		"u1,Alice@EXAMPLE.com,2023-01-01\n" // 13: duplicate of line 2, older: ignored

	var progress []ImportProgress
	res, err := Import(ctx, pool, strings.NewReader(input), ImportOptions{
		Clock: clk, BatchSize: 2, Size: int64(len(input)),
		Progress: func(p ImportProgress) { progress = append(progress, p) },
	})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	wantBad := map[int]string{4: "no @", 5: "two labels", 6: "not RFC 3339", 7: "future", 8: "csv", 9: "control character", 11: "empty"}
	if res.BadCount != int64(len(wantBad)) || len(res.Bad) != len(wantBad) {
		t.Fatalf("bad rows = %d %v, want %d", res.BadCount, res.Bad, len(wantBad))
	}
	for _, b := range res.Bad {
		frag, ok := wantBad[b.Line]
		if !ok || !strings.Contains(b.Err.Error(), frag) {
			t.Errorf("bad row %v: want line in %v with %q", b, wantBad, frag)
		}
	}
	if res.Rows != 11 || res.Inserted != 3 || res.Updated != 0 || res.Unchanged != 1 || res.NewDomains != 2 {
		t.Errorf("result = %+v, want 11 rows, 3 inserted, 1 unchanged, 2 new domains", res)
	}
	if len(progress) == 0 || !progress[len(progress)-1].Done || progress[len(progress)-1].Bytes != int64(len(input)) {
		t.Errorf("progress reports %+v: want a final Done report with all bytes", progress)
	}

	if r, ok := readEmail(t, pool, "u1", "Alice@example.com"); !ok || r.domain != "example.com" || !r.verified ||
		!r.verifiedAt.Equal(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("u1 = %+v %v", r, ok)
	}
	if _, ok := readEmail(t, pool, "u,2", "bob@example.com"); !ok {
		t.Error("quoted user id u,2 not imported")
	}
	if r, ok := readEmail(t, pool, "u\"8", "g@third.net"); !ok || !r.verifiedAt.Equal(time.Unix(1704164645, 0)) {
		t.Errorf("quoted-quote user = %+v %v", r, ok)
	}
	if n := countRows(t, pool, `SELECT count(*) FROM domains WHERE next_check_at = $1 AND last_checked_at IS NULL`, t0); n != 2 {
		t.Errorf("%d new domains due now, want 2 (example.com, third.net)", n)
	}

	// Re-running is a no-op.
	res, err = Import(ctx, pool, strings.NewReader(input), ImportOptions{Clock: clk})
	if err != nil {
		t.Fatalf("second Import: %v", err)
	}
	if res.Inserted != 0 || res.Updated != 0 || res.NewDomains != 0 || res.Unchanged != 4 {
		t.Errorf("re-run result = %+v, want nothing changed", res)
	}

	// An unverified address is verified again only by a newer verified_at
	// than its unverification.
	if _, err := pool.Exec(ctx, `UPDATE emails SET verified = false, unverified_at = $1, unverify_reason = 'domain_expired'
		WHERE user_id = 'u1'`, t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	res, err = Import(ctx, pool, strings.NewReader("u1,alice@example.com,2025-01-01\n"), ImportOptions{Clock: clk})
	if err != nil || res.Updated != 0 {
		t.Fatalf("stale re-verification: %+v, %v; want no update", res, err)
	}
	if r, _ := readEmail(t, pool, "u1", "Alice@example.com"); r.verified {
		t.Error("an import older than the unverification re-verified u1")
	}
	// (the local part is case-sensitive: alice@ is another address)
	if _, ok := readEmail(t, pool, "u1", "alice@example.com"); !ok {
		t.Error("alice@example.com (other local part case) not imported as its own address")
	}
	res, err = Import(ctx, pool, strings.NewReader("u1,Alice@example.com,"+t0.Format(time.RFC3339)+"\n"), ImportOptions{Clock: clk})
	if err != nil || res.Updated != 1 {
		t.Fatalf("re-verification: %+v, %v; want 1 update", res, err)
	}
	if r, _ := readEmail(t, pool, "u1", "Alice@example.com"); !r.verified || !r.verifiedAt.Equal(t0) {
		t.Errorf("u1 after host re-verification = %+v", r)
	}
}

func TestImportHeaderlessAndDefaultVerifiedAt(t *testing.T) {
	pool, _ := testdb.New(t)
	ctx := context.Background()
	clk := clock.NewStub(t0)
	input := "u1,a@example.com\nu2,b@example.com,2024-02-02\nemail,user_id\n"
	res, err := Import(ctx, pool, strings.NewReader(input), ImportOptions{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	// Without a default, a two-field row is bad; a header in the middle is
	// just a bad row.
	if res.Inserted != 1 || res.BadCount != 2 || res.Bad[0].Line != 1 || res.Bad[1].Line != 3 {
		t.Fatalf("result %+v", res)
	}
	def := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	res, err = Import(ctx, pool, strings.NewReader("email,user_id\na@example.com,u1\n"), ImportOptions{Clock: clk, DefaultVerifiedAt: def})
	if err != nil || res.Inserted != 1 || res.BadCount != 0 {
		t.Fatalf("reordered header with default date: %+v, %v", res, err)
	}
	if r, ok := readEmail(t, pool, "u1", "a@example.com"); !ok || !r.verifiedAt.Equal(def) {
		t.Errorf("u1 = %+v %v", r, ok)
	}
}

func TestImportProgressString(t *testing.T) {
	p := ImportProgress{Rows: 500, Bytes: 250, TotalBytes: 1000, Elapsed: 2 * time.Second}
	s := p.String()
	if !strings.Contains(s, "250 rows/s") || !strings.Contains(s, "25%") || !strings.Contains(s, "ETA 6s") {
		t.Errorf("progress line %q lacks rate, percentage or ETA", s)
	}
}

// An unterminated quote loses every row after it: the bad row names the
// exact line span lost (#14 item 8); a line over MaxImportLineBytes stops
// the import with an error instead of being read whole.
func TestImportReportsLostSpanAndCapsLines(t *testing.T) {
	pool, _ := testdb.New(t)
	ctx := context.Background()
	clk := clock.NewStub(t0)
	var b strings.Builder
	b.WriteString("u1,a@example.com,2024-01-02\n")   // 1
	b.WriteString("u2,\"b@example.com,2024-01-02\n") // 2: opens a quote never closed
	for i := range 1000 {
		fmt.Fprintf(&b, "u%d,x%d@example.com,2024-01-02\n", i+3, i) // 3..1002, swallowed
	}
	res, err := Import(ctx, pool, strings.NewReader(b.String()), ImportOptions{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if res.BadCount != 1 || len(res.Bad) != 1 {
		t.Fatalf("bad rows %d %v, want the one unterminated record", res.BadCount, res.Bad)
	}
	if bad := res.Bad[0]; bad.Line != 2 || bad.EndLine < 1002 || !strings.Contains(bad.String(), "lines 2-") {
		t.Errorf("bad row %q (lines %d-%d), want the span from line 2 to the end (1002)", bad, bad.Line, bad.EndLine)
	}

	long := "u1,a@example.com,2024-01-02\nu2," + strings.Repeat("x", MaxImportLineBytes+10) + "@example.com,2024-01-02\n"
	if _, err := Import(ctx, pool, strings.NewReader(long), ImportOptions{Clock: clk}); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("import of a %d-byte line: %v, want an error", MaxImportLineBytes+10, err)
	}
}
