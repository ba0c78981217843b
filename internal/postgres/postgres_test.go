package postgres_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/domainguard/domainguard/internal/postgres"
	"github.com/domainguard/domainguard/internal/testdb"
	"github.com/domainguard/domainguard/schemas"
)

func openEmpty(t *testing.T) (*pgxpool.Pool, string) {
	t.Helper()
	dbURL := testdb.NewEmpty(t)
	pool, err := postgres.Open(context.Background(), dbURL, postgres.WithMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, dbURL
}

func TestMigrateConcurrentThenNoop(t *testing.T) {
	ctx := context.Background()
	_, dbURL := openEmpty(t)
	want, err := postgres.LoadMigrations(schemas.Migrations)
	if err != nil || len(want) == 0 {
		t.Fatalf("LoadMigrations = %d files, %v", len(want), err)
	}

	// Two pools stand for two processes starting at once.
	const runners = 3
	results := make([][]string, runners)
	errs := make([]error, runners)
	var wg sync.WaitGroup
	for i := range runners {
		pool, err := postgres.Open(ctx, dbURL, postgres.WithMaxConns(2))
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = postgres.Migrate(ctx, pool, schemas.Migrations)
		}()
	}
	wg.Wait()
	count := map[string]int{}
	for i := range runners {
		if errs[i] != nil {
			t.Fatalf("runner %d: %v", i, errs[i])
		}
		for _, v := range results[i] {
			count[v]++
		}
	}
	for _, m := range want {
		if count[m.Version] != 1 {
			t.Errorf("version %s applied %d times across runners", m.Version, count[m.Version])
		}
	}

	pool, err := postgres.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	again, err := postgres.Migrate(ctx, pool, schemas.Migrations)
	if err != nil || len(again) != 0 {
		t.Fatalf("second Migrate = %v, %v; want nothing applied", again, err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(want) {
		t.Fatalf("schema_migrations has %d rows, want %d", n, len(want))
	}
	// The lock was released: another session can take it at once.
	var got bool
	if err := pool.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, int64(0x64676d6967726174)).Scan(&got); err != nil || !got {
		t.Fatalf("advisory lock still held after Migrate: %v %v", got, err)
	}
}

func TestMigrateFailingFileLeavesNoTrace(t *testing.T) {
	ctx := context.Background()
	pool, _ := openEmpty(t)
	fsys := fstest.MapFS{
		"migrations/0001_a.sql": {Data: []byte("CREATE TABLE a (id int);\nINSERT INTO a VALUES (1);")},
		"migrations/0002_b.sql": {Data: []byte("CREATE TABLE b (id int);\nSELECT no_such_function();")},
	}
	applied, err := postgres.Migrate(ctx, pool, fsys)
	if err == nil || !strings.Contains(err.Error(), "0002_b") {
		t.Fatalf("Migrate error = %v, want one naming 0002_b", err)
	}
	if len(applied) != 1 || applied[0] != "0001_a" {
		t.Fatalf("applied = %v, want [0001_a]", applied)
	}
	var b *string
	if err := pool.QueryRow(ctx, `SELECT to_regclass('b')::text`).Scan(&b); err != nil || b != nil {
		t.Fatalf("table b exists after its migration failed (%v, %v)", b, err)
	}
	// Fixed file: only 0002 runs next time.
	fsys["migrations/0002_b.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE b (id int);")}
	applied, err = postgres.Migrate(ctx, pool, fsys)
	if err != nil || len(applied) != 1 || applied[0] != "0002_b" {
		t.Fatalf("retry applied %v, %v; want [0002_b]", applied, err)
	}
}

func TestLoadMigrations(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fsys    fstest.MapFS
		want    []string
		wantErr string
	}{
		{
			name: "ordered, non-sql ignored",
			fsys: fstest.MapFS{
				"migrations/0002_b.sql":  {Data: []byte("x")},
				"migrations/0001_a.sql":  {Data: []byte("y")},
				"migrations/README.md":   {Data: []byte("z")},
				"migrations/0010_c.sql":  {Data: []byte("w")},
				"elsewhere/0003_no.sql":  {Data: []byte("v")},
				"migrations/sub/9_x.sql": {Data: []byte("u")},
			},
			want: []string{"0001_a", "0002_b", "0010_c"},
		},
		{
			name: "root when no migrations dir",
			fsys: fstest.MapFS{"0001_a.sql": {Data: []byte("x")}},
			want: []string{"0001_a"},
		},
		{
			name:    "bad name",
			fsys:    fstest.MapFS{"migrations/1_init.sql": {Data: []byte("x")}},
			wantErr: "NNNN_name.sql",
		},
		{
			name: "duplicate number",
			fsys: fstest.MapFS{
				"migrations/0001_a.sql": {Data: []byte("x")},
				"migrations/0001_b.sql": {Data: []byte("x")},
			},
			wantErr: "share number 0001",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := postgres.LoadMigrations(tc.fsys)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var versions []string
			for _, m := range got {
				versions = append(versions, m.Version)
			}
			if strings.Join(versions, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("versions = %v, want %v", versions, tc.want)
			}
		})
	}
}

// urlFor returns the test server URL pointing at database name, dropping it
// when the test ends.
func urlFor(t *testing.T, name string) string {
	t.Helper()
	u, err := url.Parse(testdb.ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	t.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, testdb.ServerURL())
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
			t.Error(err)
		}
	})
	return u.String()
}

func TestEnsureDatabase(t *testing.T) {
	ctx := context.Background()
	// A name that needs quoting.
	name := "dg_test_Ensure-" + time.Now().Format("150405.000000")
	dbURL := urlFor(t, name)

	created, err := postgres.EnsureDatabase(ctx, dbURL)
	if err != nil || !created {
		t.Fatalf("first EnsureDatabase = %v, %v; want created", created, err)
	}
	created, err = postgres.EnsureDatabase(ctx, dbURL)
	if err != nil || created {
		t.Fatalf("second EnsureDatabase = %v, %v; want existing", created, err)
	}
	pool, err := postgres.Open(ctx, dbURL)
	if err != nil {
		t.Fatalf("open created database: %v", err)
	}
	pool.Close()
}

func TestEnsureDatabaseConcurrent(t *testing.T) {
	ctx := context.Background()
	dbURL := urlFor(t, "dg_test_ensure_race_"+time.Now().Format("150405000000"))
	const n = 4
	var wg sync.WaitGroup
	created := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			created[i], errs[i] = postgres.EnsureDatabase(ctx, dbURL)
		}()
	}
	wg.Wait()
	creators := 0
	for i := range n {
		if errs[i] != nil {
			t.Errorf("caller %d: %v", i, errs[i])
		}
		if created[i] {
			creators++
		}
	}
	if creators != 1 {
		t.Errorf("%d callers report creating the database, want 1", creators)
	}
}

// serverHostPort is the host:port of the test server.
func serverHostPort(t *testing.T) (string, *url.URL) {
	t.Helper()
	u, err := url.Parse(testdb.ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	host := u.Hostname()
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	if host == "" || strings.HasPrefix(host, "/") {
		t.Skip("test server is not reached over TCP")
	}
	return net.JoinHostPort(host, port), u
}

// proxy forwards connections accepted on l to target until l is closed.
func proxy(l net.Listener, target string) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			s, err := net.Dial("tcp", target)
			if err != nil {
				return
			}
			defer s.Close()
			go func() { _, _ = io.Copy(s, c); s.Close() }()
			_, _ = io.Copy(c, s)
		}()
	}
}

func TestOpenWaitsForServer(t *testing.T) {
	target, u := serverHostPort(t)
	// Take a free port, then free it: nothing listens there until the
	// "server" (a proxy to the real one) comes up a little later.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	u.Host = addr

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	type result struct {
		pool *pgxpool.Pool
		err  error
	}
	done := make(chan result, 1)
	go func() {
		pool, err := postgres.Open(ctx, u.String(), postgres.WithMaxWait(15*time.Second))
		done <- result{pool, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("Open returned before the server was up: %v", r.err)
	case <-time.After(700 * time.Millisecond):
	}
	l, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", addr, err)
	}
	defer l.Close()
	go proxy(l, target)
	r := <-done
	if r.err != nil {
		t.Fatalf("Open after server came up: %v", r.err)
	}
	defer r.pool.Close()
	var one int
	if err := r.pool.QueryRow(ctx, `SELECT 1`).Scan(&one); err != nil || one != 1 {
		t.Fatalf("query through pool: %v", err)
	}
}

func TestOpenGivesUp(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	start := time.Now()
	_, err = postgres.Open(context.Background(), "postgres://postgres@"+addr+"/x?sslmode=disable", postgres.WithMaxWait(600*time.Millisecond))
	if err == nil {
		t.Fatal("Open succeeded against a closed port")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Open took %v to give up with a 600ms budget", d)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("error %q does not name the server", err)
	}
}

func TestOpenMissingDatabaseFailsFast(t *testing.T) {
	_, u := serverHostPort(t)
	u.Path = "/dg_test_surely_missing_db"
	start := time.Now()
	_, err := postgres.Open(context.Background(), u.String(), postgres.WithMaxWait(20*time.Second))
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("err = %v, want database does not exist", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("missing database was retried for %v", d)
	}
}

func TestOpenRespectsContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = postgres.Open(ctx, "postgres://u@"+addr+"/x?sslmode=disable")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
}

// DESIGN's default DATABASE_URL has no sslmode: pgx's "prefer" must connect
// whether or not the server offers TLS.
func TestOpenWithoutSSLMode(t *testing.T) {
	_, u := serverHostPort(t)
	q := u.Query()
	q.Del("sslmode")
	u.RawQuery = q.Encode()
	pool, err := postgres.Open(context.Background(), u.String(), postgres.WithMaxWait(5*time.Second))
	if err != nil {
		t.Fatalf("Open %s: %v", u.Redacted(), err)
	}
	defer pool.Close()
	if err := pool.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}
