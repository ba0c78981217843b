package producer

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/domainguard/domainguard/internal/clock"
)

// ImportOptions tunes Import. The zero value works.
type ImportOptions struct {
	// Clock stamps next_check_at of new domains and bounds verified_at.
	// Default clock.System.
	Clock clock.Clock
	// Progress, if set, is called after every batch and once at the end.
	Progress func(ImportProgress)
	// BatchSize is the number of rows per COPY and merge. Default 50,000.
	BatchSize int
	// Size is the input's length in bytes, if known, for the ETA.
	Size int64
	// DefaultVerifiedAt is used for rows whose verified_at is empty. Zero
	// (the default) makes such rows bad: the date matters for the
	// re-registration rule, so it is never invented silently.
	DefaultVerifiedAt time.Time
	// MaxBadRows is how many bad rows the result lists (all are counted in
	// BadCount). Default 10,000.
	MaxBadRows int
	// WatchPrivateNames adds a domains row for the name of each address
	// under a private PSL suffix, as intake does (Config.WatchPrivateNames).
	WatchPrivateNames bool
}

func (o ImportOptions) withDefaults() ImportOptions {
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 50_000
	}
	if o.MaxBadRows <= 0 {
		o.MaxBadRows = 10_000
	}
	return o
}

// ImportProgress is a snapshot of a running import.
type ImportProgress struct {
	Rows       int64 // data rows read (good and bad)
	Bad        int64 // bad rows so far
	Inserted   int64 // addresses inserted so far
	Updated    int64 // addresses updated so far
	Bytes      int64 // input bytes consumed
	TotalBytes int64 // ImportOptions.Size (0 if unknown)
	Elapsed    time.Duration
	Done       bool
}

// RowsPerSecond is the average rate so far.
func (p ImportProgress) RowsPerSecond() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Rows) / p.Elapsed.Seconds()
}

// ETA estimates the time left from the bytes consumed; -1 when unknown.
func (p ImportProgress) ETA() time.Duration {
	if p.TotalBytes <= 0 || p.Bytes <= 0 || p.Elapsed <= 0 {
		return -1
	}
	if p.Bytes >= p.TotalBytes {
		return 0
	}
	rate := float64(p.Bytes) / p.Elapsed.Seconds()
	return time.Duration(float64(p.TotalBytes-p.Bytes) / rate * float64(time.Second))
}

// String renders a one-line progress report, e.g.
// "import: 150000 rows (3 bad), 52000 rows/s, 45% ETA 4s".
func (p ImportProgress) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "import: %d rows (%d bad), %d inserted, %d updated, %.0f rows/s",
		p.Rows, p.Bad, p.Inserted, p.Updated, p.RowsPerSecond())
	if p.TotalBytes > 0 {
		fmt.Fprintf(&b, ", %.0f%%", 100*float64(min(p.Bytes, p.TotalBytes))/float64(p.TotalBytes))
	}
	if eta := p.ETA(); eta >= 0 && !p.Done {
		fmt.Fprintf(&b, " ETA %s", eta.Round(time.Second))
	}
	if p.Done {
		fmt.Fprintf(&b, " in %s", p.Elapsed.Round(time.Millisecond))
	}
	return b.String()
}

// BadRow is an input row that was not imported.
type BadRow struct {
	Line    int // 1-based line where the row starts
	EndLine int // last line it took (an unterminated quote runs on); 0 or Line for one line
	Err     error
}

func (b BadRow) String() string {
	if b.EndLine > b.Line {
		return fmt.Sprintf("lines %d-%d (%d lines lost): %v", b.Line, b.EndLine, b.EndLine-b.Line+1, b.Err)
	}
	return fmt.Sprintf("line %d: %v", b.Line, b.Err)
}

// MaxImportLineBytes bounds one input line: a longer one stops the import
// with an error (a CSV record is short; a huge "line" is a broken file,
// and reading it whole would take its size in memory).
const MaxImportLineBytes = 64 << 10

// errLineTooLong stops reading at a line longer than MaxImportLineBytes.
var errLineTooLong = fmt.Errorf("a line is longer than %d bytes: not a user_id,email,verified_at file", MaxImportLineBytes)

// ImportResult sums up an import.
type ImportResult struct {
	Rows       int64 // data rows read (good and bad, header excluded)
	Inserted   int64 // addresses that were new
	Updated    int64 // addresses whose verified_at moved forward (re-verified by the host)
	Unchanged  int64 // good rows that changed nothing (already known, or repeated in the file)
	NewDomains int64 // registrable domains seen for the first time (due now)
	BadCount   int64 // all bad rows
	Bad        []BadRow
	Elapsed    time.Duration
}

// importRow is one valid CSV row.
type importRow struct {
	Address
	VerifiedAt time.Time
}

// Import loads user_id,email,verified_at rows (RFC 4180; header optional,
// and when present it may order the columns differently) into emails and
// domains. Bad rows are reported with their line numbers and skipped; good
// rows are loaded in batches (COPY into a temporary table, then one upsert),
// so a failure part-way leaves whole batches loaded and re-running the same
// file is safe: an address is only updated when its verified_at moves
// forward, with the same stale-event rules as intake. New domains are due
// at once; the sweep enqueues them (Import itself publishes nothing).
func Import(ctx context.Context, pool *pgxpool.Pool, r io.Reader, opts ImportOptions) (ImportResult, error) {
	opts = opts.withDefaults()
	start := time.Now()
	var res ImportResult

	counted := &countingReader{r: r}
	p := &rowParser{
		opts:    opts,
		now:     opts.Clock.Now(),
		csv:     csv.NewReader(counted),
		counter: counted,
	}
	p.csv.FieldsPerRecord = -1
	p.csv.ReuseRecord = true

	conn, err := pool.Acquire(ctx)
	if err != nil {
		return res, fmt.Errorf("import: acquire connection: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS import_rows (
		user_id text, email text, domain text, verified_at timestamptz, email_as_sent text, watch_name text) ON COMMIT DELETE ROWS`); err != nil {
		return res, fmt.Errorf("import: create temporary table: %w", err)
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS import_rows`)
	}()

	// Parse in one goroutine while the previous batch is written.
	parseCtx, stopParse := context.WithCancel(ctx)
	defer stopParse()
	batches := make(chan []importRow, 1)
	parseErr := make(chan error, 1)
	go func() {
		defer close(batches)
		parseErr <- p.run(parseCtx, batches)
	}()

	report := func(done bool) {
		if opts.Progress == nil {
			return
		}
		opts.Progress(ImportProgress{
			Rows: p.rows.Load(), Bad: p.badCount.Load(), Inserted: res.Inserted, Updated: res.Updated,
			Bytes: counted.n.Load(), TotalBytes: opts.Size, Elapsed: time.Since(start), Done: done,
		})
	}

	var writeErr error
	for batch := range batches {
		if writeErr != nil {
			continue // drain so the parser can finish
		}
		ins, upd, doms, err := mergeBatch(ctx, conn.Conn(), batch, p.now, opts.WatchPrivateNames)
		if err != nil {
			writeErr = err
			stopParse()
			continue
		}
		res.Inserted += ins
		res.Updated += upd
		res.NewDomains += doms
		res.Unchanged += int64(len(batch)) - ins - upd
		report(false)
	}
	perr := <-parseErr
	res.Rows = p.rows.Load()
	res.BadCount = p.badCount.Load()
	res.Bad = p.bad
	res.Elapsed = time.Since(start)
	if writeErr != nil {
		return res, fmt.Errorf("import: %w", writeErr)
	}
	if perr != nil {
		return res, fmt.Errorf("import: %w", perr)
	}
	report(true)
	return res, nil
}

// mergeBatch copies one batch into the temporary table and upserts it, in
// one transaction.
func mergeBatch(ctx context.Context, conn *pgx.Conn, batch []importRow, now time.Time, watchPrivate bool) (inserted, updated, newDomains int64, err error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"import_rows"}, []string{"user_id", "email", "domain", "verified_at", "email_as_sent", "watch_name"},
		pgx.CopyFromSlice(len(batch), func(i int) ([]any, error) {
			r := &batch[i]
			return []any{r.UserID, r.Email, r.Domain, r.VerifiedAt, r.AsSent, nullable(r.WatchName)}, nil
		}))
	if err != nil {
		return 0, 0, 0, fmt.Errorf("copy rows: %w", err)
	}
	// DISTINCT ON: ON CONFLICT cannot touch a row twice in one statement, so
	// an address repeated in the batch keeps its latest verified_at.
	err = tx.QueryRow(ctx, `
		WITH merged AS (
			INSERT INTO emails AS e (user_id, email, domain, verified, verified_at, event_at, email_as_sent, watch_name)
			SELECT * FROM (
			  SELECT DISTINCT ON (user_id, email) user_id, email, domain, true, verified_at, verified_at, email_as_sent, watch_name
			    FROM import_rows i
			   WHERE NOT EXISTS (SELECT 1 FROM email_removals r
			                      WHERE r.user_id = i.user_id AND r.email = i.email AND r.removed_at >= i.verified_at)
			   ORDER BY user_id, email, verified_at DESC) AS latest
			ON CONFLICT (user_id, email) DO UPDATE
			   SET domain = excluded.domain, verified = true, verified_at = excluded.verified_at,
			       event_at = excluded.event_at, email_as_sent = excluded.email_as_sent, watch_name = excluded.watch_name,
			       unverified_at = NULL, unverify_reason = NULL, unverify_phase = NULL, updated_at = now()
			 WHERE excluded.verified_at > e.verified_at
			   AND (e.unverified_at IS NULL OR excluded.verified_at > e.unverified_at)
			RETURNING (xmax = 0) AS inserted
		)
		SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM merged`).Scan(&inserted, &updated)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("merge emails: %w", err)
	}
	tag, err := tx.Exec(ctx, `
		INSERT INTO domains (name, next_check_at, private_suffix)
		SELECT domain, $1::timestamptz, false FROM import_rows
		UNION
		SELECT watch_name, $1::timestamptz, true FROM import_rows WHERE $2 AND watch_name IS NOT NULL
		ON CONFLICT (name) DO NOTHING`, now, watchPrivate)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("merge domains: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, 0, 0, fmt.Errorf("commit batch: %w", err)
	}
	return inserted, updated, tag.RowsAffected(), nil
}

// rowParser reads and validates CSV rows. Its counters are read by the
// progress reports while it runs; bad is read only after it finished.
type rowParser struct {
	opts    ImportOptions
	now     time.Time
	csv     *csv.Reader
	counter *countingReader

	rows     atomic.Int64
	badCount atomic.Int64
	bad      []BadRow

	cols      columns
	sawRecord bool
}

// columns are the indexes of the fields in a record.
type columns struct{ userID, email, verifiedAt, want int }

var defaultColumns = columns{userID: 0, email: 1, verifiedAt: 2, want: 3}

func (p *rowParser) badRow(line, endLine int, err error) {
	p.rows.Add(1)
	p.badCount.Add(1)
	if len(p.bad) < p.opts.MaxBadRows {
		p.bad = append(p.bad, BadRow{Line: line, EndLine: endLine, Err: err})
	}
}

func (p *rowParser) run(ctx context.Context, out chan<- []importRow) error {
	p.cols = defaultColumns
	batch := make([]importRow, 0, p.opts.BatchSize)
	send := func() error {
		if len(batch) == 0 {
			return nil
		}
		select {
		case out <- batch:
		case <-ctx.Done():
			return ctx.Err()
		}
		batch = make([]importRow, 0, p.opts.BatchSize)
		return nil
	}
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rec, err := p.csv.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				p.badRow(pe.StartLine, pe.Line, fmt.Errorf("csv: %w", pe.Err))
				continue
			}
			return fmt.Errorf("read input: %w", err)
		}
		line, _ := p.csv.FieldPos(0)
		if !p.sawRecord {
			p.sawRecord = true
			if len(rec) > 0 {
				rec[0] = strings.TrimPrefix(rec[0], "\ufeff") // UTF-8 byte order mark
			}
			if cols, ok := headerColumns(rec); ok {
				p.cols = cols
				continue
			}
		}
		row, err := p.parse(rec)
		if err != nil {
			p.badRow(line, 0, err)
			continue
		}
		p.rows.Add(1)
		batch = append(batch, row)
		if len(batch) >= p.opts.BatchSize {
			if err := send(); err != nil {
				return err
			}
		}
	}
	return send()
}

// headerColumns recognises a header row (it names user_id and email) and
// maps the columns.
func headerColumns(rec []string) (columns, bool) {
	c := columns{userID: -1, email: -1, verifiedAt: -1}
	for i, f := range rec {
		switch strings.ToLower(strings.TrimSpace(f)) {
		case "user_id", "userid", "user":
			c.userID = i
		case "email", "email_address", "address":
			c.email = i
		case "verified_at", "verifiedat", "verified":
			c.verifiedAt = i
		}
	}
	if c.userID < 0 || c.email < 0 {
		return columns{}, false
	}
	c.want = -1 // any number of columns
	return c, true
}

func (p *rowParser) parse(rec []string) (importRow, error) {
	if p.cols.want > 0 && len(rec) != p.cols.want && !(len(rec) == 2 && !p.opts.DefaultVerifiedAt.IsZero()) {
		return importRow{}, fmt.Errorf("want %d fields (user_id,email,verified_at), got %d", p.cols.want, len(rec))
	}
	field := func(i int) string {
		if i < 0 || i >= len(rec) {
			return ""
		}
		return rec[i]
	}
	addr, err := NormalizeAddress(strings.TrimSpace(field(p.cols.userID)), field(p.cols.email))
	if err != nil {
		return importRow{}, err
	}
	raw := strings.TrimSpace(field(p.cols.verifiedAt))
	var at time.Time
	if raw == "" {
		if p.opts.DefaultVerifiedAt.IsZero() {
			return importRow{}, errors.New("verified_at is empty")
		}
		at = p.opts.DefaultVerifiedAt
	} else if at, err = ParseVerifiedAt(raw); err != nil {
		return importRow{}, err
	}
	if err := CheckVerifiedAt(at, p.now); err != nil {
		return importRow{}, err
	}
	return importRow{Address: addr, VerifiedAt: at.UTC()}, nil
}

// countingReader counts the bytes read through it and fails with
// errLineTooLong at a line longer than MaxImportLineBytes.
type countingReader struct {
	r       io.Reader
	n       atomic.Int64
	lineLen int
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	// Lines inside one read are shorter than the read (a bufio buffer of
	// a few KiB); only the run since the last newline can grow long.
	if i := bytes.LastIndexByte(b[:n], '\n'); i >= 0 {
		if c.lineLen+i > MaxImportLineBytes {
			return 0, errLineTooLong
		}
		c.lineLen = n - i - 1
	} else {
		c.lineLen += n
	}
	if c.lineLen > MaxImportLineBytes {
		return 0, errLineTooLong
	}
	return n, err
}
