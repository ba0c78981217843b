package console

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/domainguard/domainguard/schemas"
)

// EnvScreenshots names a directory the browser test writes its page
// screenshots to (docs/img to refresh the documentation); default a
// temporary directory.
const EnvScreenshots = "DOMAINGUARD_SCREENSHOTS_DIR"

// chromium returns the path of Debian's Chromium. Without it the test is
// skipped, except under CI (CI set), where it fails: .ci/run installs it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed, and CI is set: the browser tests must run (apt-get install -y chromium; .ci/run does)")
	}
	t.Skip("chromium is not installed (apt-get install -y chromium): skipping the browser tests")
	return ""
}

// browser starts a headless Chromium with a fresh profile.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	// The first action starts the browser for the life of ctx: no timeout
	// on it; the steps after it get one.
	if err := chromedp.Do(ctx); err != nil {
		cancelCtx()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	tctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return tctx
}

func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eval runs a script through the devtools protocol (which the page's CSP
// does not restrict) and returns its value.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %.60s: %v", expr, err)
	}
	return v
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv(EnvScreenshots)
	if dir == "" {
		dir = t.TempDir()
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "console-"+name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("read %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func signIn(t *testing.T, ctx context.Context, base, name string) {
	t.Helper()
	run(t, ctx, "sign in as "+name,
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#signin")),
		chromedp.SendKeys(chromedp.CSS("#name"), name),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#verified")),
	)
}

func TestBrowser(t *testing.T) {
	f := newFixture(t)
	ctx := browser(t)
	base := f.srv.URL

	// Viewer: sees the holds, has no buttons, and a forged approval is refused.
	run(t, ctx, "login page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#signin")))
	screenshot(t, ctx, "login")
	signIn(t, ctx, base, viewerName)
	run(t, ctx, "viewer holds", chromedp.Navigate(base+"/holds"), chromedp.WaitVisible(chromedp.CSS("#hold-"+f.holdID)))
	if forms := eval[int](t, ctx, `document.querySelectorAll('form[action*="/approve"]').length`); forms != 0 {
		t.Errorf("a viewer sees %d approve forms", forms)
	}
	// The devtools protocol can run script despite the CSP: forge the form.
	eval[bool](t, ctx, fmt.Sprintf(`(() => {
		const f = document.createElement('form'); f.method = 'post'; f.action = '/holds/%s/approve';
		for (const [k, v] of [['csrf', document.querySelector('input[name=csrf]').value], ['note', 'viewer forging']]) {
			const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i);
		}
		document.body.appendChild(f); f.submit(); return true; })()`, f.holdID))
	run(t, ctx, "forged approve answered", chromedp.WaitVisible(chromedp.CSS("#error")))
	if got := text(t, ctx, "#error"); !strings.Contains(got, "Only operators") {
		t.Errorf("viewer's forged approve: %q", got)
	}
	if n := f.count(t, `SELECT count(*) FROM holds WHERE status = 'pending'`); n != 1 {
		t.Fatalf("pending holds after the viewer's try: %d, want 1", n)
	}
	run(t, ctx, "sign out", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#verified")),
		chromedp.Click(chromedp.CSS("header form button")), chromedp.WaitVisible(chromedp.CSS("#signin")))

	// Operator: the overview's numbers are the database's.
	signIn(t, ctx, base, operatorName)
	for sel, sql := range map[string]string{
		"#verified":              `SELECT count(*) FROM emails WHERE verified`,
		"#unverified":            `SELECT count(*) FROM emails WHERE NOT verified AND unverify_reason IS NOT NULL`,
		"#domains":               `SELECT count(*) FROM domains`,
		"#holds":                 `SELECT count(*) FROM holds WHERE status = 'pending'`,
		"#lookups":               `SELECT COALESCE(sum(count), 0) FROM lookup_budget WHERE hour > now() - interval '24 hours'`,
		`td[data-phase="grace"]`: `SELECT count(*) FROM domains WHERE phase = 'grace'`,
		`td[data-source="rdap"]`: `SELECT count(*) FROM emails WHERE verified AND domain LIKE '%.org'`,
		`td[data-source="none"]`: `SELECT count(*) FROM emails WHERE verified AND domain NOT LIKE '%.org'`,
	} {
		if got, want := text(t, ctx, sel), strconv.Itoa(f.count(t, sql)); got != want {
			t.Errorf("overview %s = %q, database says %s", sel, got, want)
		}
	}
	if got := text(t, ctx, "#dlq"); got != strconv.FormatUint(f.streamCount(t, schemas.StreamDLQ), 10) {
		t.Errorf("overview DLQ depth %q, stream holds %d", got, f.streamCount(t, schemas.StreamDLQ))
	}
	if bars := eval[int](t, ctx, `document.querySelectorAll('.chart rect').length`); bars != 8 { // 4 days with both series inside 90 days (two on one day; the 120-day-old one is out)
		t.Errorf("chart bars = %d, want 8", bars)
	}
	screenshot(t, ctx, "overview")

	// Approve the hold: its addresses are unverified and the decision is
	// published with the actor.
	run(t, ctx, "holds", chromedp.Navigate(base+"/holds"), chromedp.WaitVisible(chromedp.CSS("#hold-"+f.holdID)))
	screenshot(t, ctx, "holds")
	run(t, ctx, "approve",
		chromedp.SendKeys(chromedp.CSS(`form[action$="/approve"] textarea`), "registry shows clientHold since Monday"),
		chromedp.Click(chromedp.CSS(`form[action$="/approve"] button`)),
		chromedp.WaitVisible(chromedp.CSS("#flash")))
	if n := f.count(t, `SELECT count(*) FROM emails WHERE domain = 'held.org' AND NOT verified AND unverify_reason = 'domain_expired'`); n != 3 {
		t.Errorf("unverified on held.org after approve: %d, want 3", n)
	}
	if _, err := f.relay.PublishPending(f.ctx); err != nil {
		t.Fatal(err)
	}
	audit, err := f.js.Stream(f.ctx, f.topo.Namespace.Stream(schemas.StreamAudit))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := audit.GetLastMsgForSubject(f.ctx, f.topo.Namespace.Subject(schemas.SubjectOperatorAction))
	if err != nil {
		t.Fatalf("no audit.operator.action published: %v", err)
	}
	_, action, err := schemas.Decode[schemas.OperatorAction](msg.Data)
	if err != nil || action.Action != schemas.ActionHoldApprove || action.Actor != operatorName || action.Note != "registry shows clientHold since Monday" || action.HoldID != f.holdID || action.Addresses != 3 {
		t.Errorf("published action %+v %v", action, err)
	}

	// Search the hostile domain: every value is shown as text.
	run(t, ctx, "search",
		chromedp.Navigate(base+"/search"),
		chromedp.SendKeys(chromedp.CSS("#q"), "hostile.org"),
		chromedp.Click(chromedp.CSS("#go")),
		chromedp.WaitVisible(chromedp.CSS("#emails")))
	scripts := eval[int](t, ctx, `document.scripts.length`)
	bolds := eval[int](t, ctx, `document.querySelectorAll('main b').length`)
	if scripts != 0 || bolds != 0 {
		t.Errorf("hostile values became markup: %d scripts, %d <b>", scripts, bolds)
	}
	emails := text(t, ctx, "#emails")
	for _, want := range []string{hostileScript + "@hostile.org", "O'Brien", "rtl⟨U+202E⟩exe.txt@hostile.org", "(5000 characters)"} {
		if !strings.Contains(emails, want) {
			t.Errorf("addresses table lacks the text %q", want)
		}
	}
	if strings.Contains(emails, "\u202e") || strings.Contains(emails, hostileLong) {
		t.Error("an RTL override or the 5,000-character name is shown raw")
	}
	screenshot(t, ctx, "search")

	// Replay the dead letter: it goes back to ACCOUNTS, and the replay is audited.
	run(t, ctx, "dlq", chromedp.Navigate(base+"/dlq"), chromedp.WaitVisible(chromedp.CSS("#dead-letters")))
	screenshot(t, ctx, "dlq")
	run(t, ctx, "replay",
		chromedp.SendKeys(chromedp.CSS(`#dead-letters input[name=note]`), "database is back"),
		chromedp.Click(chromedp.CSS(`#dead-letters button[name=replay]`)),
		chromedp.WaitVisible(chromedp.CSS("#flash")))
	if n := f.streamCount(t, schemas.StreamDLQ); n != 0 {
		t.Errorf("dead letters after replay: %d", n)
	}
	if n := f.streamCount(t, schemas.StreamAccounts); n != 1 {
		t.Errorf("ACCOUNTS after replay: %d messages, want 1", n)
	}
	if n := f.count(t, `SELECT count(*) FROM audit_log WHERE type = $1 AND data->>'action' = 'dlq.replay' AND data->>'actor' = $2 AND data->>'note' = 'database is back'`,
		schemas.SubjectOperatorAction, operatorName); n != 1 {
		t.Errorf("replay audit events: %d, want 1", n)
	}

	// The audit log shows the decisions with their actor.
	run(t, ctx, "audit", chromedp.Navigate(base+"/audit?type="+schemas.SubjectOperatorAction), chromedp.WaitVisible(chromedp.CSS("#audit-log")))
	if got := text(t, ctx, "#audit-log"); strings.Count(got, operatorName) < 2 {
		t.Errorf("audit log page lacks the actor:\n%s", got)
	}
	run(t, ctx, "audit all", chromedp.Navigate(base+"/audit"), chromedp.WaitVisible(chromedp.CSS("#audit-log")))
	screenshot(t, ctx, "audit")
	run(t, ctx, "breaker", chromedp.Navigate(base+"/breaker"), chromedp.WaitVisible(chromedp.CSS("#state")))
	screenshot(t, ctx, "breaker")
}
