package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/domainguard/domainguard/internal/console"
	"github.com/domainguard/domainguard/internal/testbin"
	"github.com/domainguard/domainguard/internal/testdb"
	"github.com/domainguard/domainguard/internal/testnats"
)

func TestConsoleAddUser(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	env := map[string]string{"DOMAINGUARD_CONSOLE_USERS": path}
	run := func(stdin string, args ...string) (int, string) {
		consoleStdin = strings.NewReader(stdin)
		t.Cleanup(func() { consoleStdin = os.Stdin })
		var out, errOut bytes.Buffer
		code := runMain(context.Background(), invocation{args: args, stdout: &out, stderr: &errOut, getenv: func(k string) string { return env[k] }})
		return code, out.String() + errOut.String()
	}
	if code, out := run("a long enough password\n", "console", "adduser", "olga", "operator"); code != 0 || !strings.Contains(out, "olga (operator)") {
		t.Fatalf("adduser: %d %s", code, out)
	}
	if code, out := run("short\n", "console", "adduser", "vic", "viewer"); code == 0 {
		t.Errorf("short password accepted: %s", out)
	}
	if code, _ := run("a long enough password\n", "console", "adduser", "vic", "admin"); code == 0 {
		t.Error("unknown role accepted")
	}
	if code, _ := run("", "console", "adduser", "vic"); code != 2 {
		t.Errorf("missing role: exit %d, want 2", code)
	}
	users, err := console.LoadUsers(path)
	if err != nil || len(users) != 1 || users["olga"].Role != console.RoleOperator {
		t.Fatalf("users file: %+v %v", users, err)
	}
	delete(env, "DOMAINGUARD_CONSOLE_USERS")
	if code, _ := run("a long enough password\n", "console", "adduser", "x", "viewer"); code != 2 {
		t.Errorf("adduser without a users file: exit %d, want 2", code)
	}
}

// `run` with DOMAINGUARD_CONSOLE_ADDR and DOMAINGUARD_API_ADDR serves both
// next to the roles.
func TestRunStartsConsoleAndAPI(t *testing.T) {
	_, dbURL := testdb.New(t)
	users := filepath.Join(t.TempDir(), "users")
	if err := console.AddUser(users, "olga", console.RoleOperator, "a long enough password"); err != nil {
		t.Fatal(err)
	}
	env := []string{"NATS_URL=" + testnats.URL(), "DOMAINGUARD_SUBJECT_PREFIX=" + testnats.ProcessPrefix(t), "DATABASE_URL=" + dbURL,
		"DOMAINGUARD_METRICS_ADDR=off", "DOMAINGUARD_CONSOLE_ADDR=127.0.0.1:0", "DOMAINGUARD_CONSOLE_USERS=" + users,
		"DOMAINGUARD_API_ADDR=127.0.0.1:0", "DOMAINGUARD_API_TOKENS=webapp:0123456789abcdef-token"}
	p := testbin.Start(t, testbin.Options{Name: "run", Env: env}, "run")
	if !p.WaitOutput("host API listening", 60*time.Second) || !p.WaitOutput("console listening", 10*time.Second) {
		t.Fatalf("console and API did not start:\n%s", p.Output())
	}
	consoleURL := regexp.MustCompile(`"url":"(http://127\.0\.0\.1:\d+/)"`).FindStringSubmatch(p.Output())
	apiAddr := regexp.MustCompile(`host API listening"[^\n]*?"addr":"(127\.0\.0\.1:\d+)"`).FindStringSubmatch(p.Output())
	if consoleURL == nil || apiAddr == nil {
		t.Fatalf("addresses not logged:\n%s", p.Output())
	}
	resp, err := http.Get(consoleURL[1] + "login")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Sign in") {
		t.Errorf("console login page: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", "http://"+apiAddr[1]+"/v1/addresses/a@example.org", nil)
	req.Header.Set("Authorization", "Bearer 0123456789abcdef-token")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("API lookup of an unknown address: %d, want 404", resp.StatusCode)
	}
	if strings.Contains(p.Output(), "0123456789abcdef-token") {
		t.Error("the API token was logged")
	}
	if err := p.Stop(60 * time.Second); err != nil {
		t.Fatalf("run did not stop cleanly: %v\n%s", err, p.Output())
	}
}
