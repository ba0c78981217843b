package hostapi

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHostExamples runs docs/examples against a real API where the
// interpreter (and, for Python, requests) exists.
func TestHostExamples(t *testing.T) {
	e := newEnv(t)
	e.exec(t, `INSERT INTO domains (name, phase, last_checked_at) VALUES ('ok.org', 'active', now()), ('lapsed.org', 'expired', now())`)
	e.exec(t, `INSERT INTO emails (user_id, email, domain, verified, verified_at) VALUES ('u-1', 'ada@ok.org', 'ok.org', true, now()), ('u-2', 'bob@lapsed.org', 'lapsed.org', true, now())`)
	dir, _ := filepath.Abs("../../docs/examples")
	examples := []struct {
		name, interpreter, file, probe string
	}{
		{"python", "python3", "host_api.py", "import requests"},
		{"node", "node", "host_api.mjs", "if (typeof fetch !== 'function') process.exit(1)"},
	}
	ran := 0
	for _, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			path, err := exec.LookPath(ex.interpreter)
			if err != nil {
				t.Skipf("%s is not installed", ex.interpreter)
			}
			flag := "-c"
			if ex.interpreter == "node" {
				flag = "-e"
			}
			if err := exec.Command(path, flag, ex.probe).Run(); err != nil {
				t.Skipf("%s lacks what the example needs (%s)", ex.interpreter, ex.probe)
			}
			ran++
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, path, filepath.Join(dir, ex.file), "ada@ok.org", "u-1", "bob@lapsed.org", "u-2", "new@fresh.org", "u-3")
			cmd.Env = append(cmd.Environ(), "DOMAINGUARD_API_URL="+e.srv.URL, "DOMAINGUARD_API_TOKEN="+goodToken)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", ex.file, err, out)
			}
			for _, want := range []string{"ada@ok.org accepted ", "ada@ok.org trusted_for_reset true", "bob@lapsed.org trusted_for_reset false", "new@fresh.org trusted_for_reset null"} {
				if !strings.Contains(string(out), want) {
					t.Errorf("%s output lacks %q:\n%s", ex.file, want, out)
				}
			}
		})
	}
	if n := e.accountsMessages(t); ran > 0 && n != uint64(3*ran) {
		t.Errorf("ACCOUNTS holds %d events, want %d", n, 3*ran)
	}
}
