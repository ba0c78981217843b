package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/domainguard/domainguard/internal/domainname"
	"github.com/domainguard/domainguard/internal/fakerdap"
	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

// hostileIntake is a host event that must be dead-lettered with a reason
// containing want.
type hostileIntake struct {
	name    string
	subject string // default accounts.email.verified
	body    string
	want    string
}

func intakeJSON(userID, email, verifiedAt string) string {
	return fmt.Sprintf(`{"user_id":%s,"email":%s,"verified_at":%s}`, userID, email, verifiedAt)
}

// q is s as a JSON string.
func q(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

const okAt = `"2024-01-02T03:04:05Z"`

func hostileIntakes() []hostileIntake {
	envelope := func(data string) string {
		return `{"specversion":"1.0","id":"0190f1a2-0000-7000-8000-000000000001","source":"host","type":"io.domainguard.accounts.email.verified","time":"2024-01-02T03:04:05Z","datacontenttype":"application/json","data":` + data + `}`
	}
	return []hostileIntake{
		{name: "invalid JSON", body: `{"user_id":"u1","email":`, want: "not valid JSON"},
		{name: "JSON array", body: `[{"user_id":"u1"}]`, want: "not a JSON object"},
		{name: "empty body", body: ``, want: "not a JSON object"},
		{name: "JSON null", body: `null`, want: "not a JSON object"},
		{name: "huge payload", body: intakeJSON(q("u1"), q("a@"+strings.Repeat("x", 100<<10)+".com"), okAt), want: "exceeds"},
		{name: "control character in email", body: intakeJSON(q("u1"), q("a\x00b@example.com"), okAt), want: "control character"},
		{name: "control character in user id", body: intakeJSON(q("u\x07"), q("a@example.com"), okAt), want: "control character"},
		{name: "escape sequence in domain", body: intakeJSON(q("u1"), q("a@exa\x1b[31mmple.com"), okAt), want: "control character"},
		{name: "a..b", body: intakeJSON(q("u1"), q("x@a..b.com"), okAt), want: "empty label"},
		{name: "wildcard label", body: intakeJSON(q("u1"), q("x@*.example.com"), okAt), want: "wildcard"},
		{name: "> in name", body: intakeJSON(q("u1"), q("x@foo>.com"), okAt), want: "wildcard"},
		{name: "> as a label", body: intakeJSON(q("u1"), q("x@example.>"), okAt), want: "wildcard"},
		{name: "300-character label", body: intakeJSON(q("u1"), q("x@"+strings.Repeat("a", 300)+".com"), okAt), want: "longer than"},
		{name: "64-character label", body: intakeJSON(q("u1"), q("x@"+strings.Repeat("a", 64)+".com"), okAt), want: "label longer than 63"},
		{name: "SQL in domain", body: intakeJSON(q("u1"), q("x@evil.com'; DROP TABLE emails;--"), okAt), want: "space at byte"},
		{name: "SQL in domain without spaces", body: intakeJSON(q("u1"), q("x@evil.com';DROP/**/TABLE/**/emails;--"), okAt), want: "wildcard"},
		{name: "user id is a number", body: intakeJSON(`123`, q("a@example.com"), okAt), want: "user_id"},
		{name: "email is an array", body: intakeJSON(q("u1"), `["a@example.com"]`, okAt), want: "email"},
		{name: "verified_at is words", body: intakeJSON(q("u1"), q("a@example.com"), `"yesterday"`), want: "parsing time"},
		{name: "verified_at is a number", body: intakeJSON(q("u1"), q("a@example.com"), `1704164645`), want: "not a JSON string"},
		{name: "verified_at in year 0", body: intakeJSON(q("u1"), q("a@example.com"), `"0000-01-01T00:00:00Z"`), want: "out of range"},
		{name: "verified_at in year 9999", body: intakeJSON(q("u1"), q("a@example.com"), `"9999-12-31T23:59:59Z"`), want: "out of range"},
		{name: "missing email", body: `{"user_id":"u1","verified_at":` + okAt + `}`, want: "email"},
		{name: "missing user id", body: `{"email":"a@example.com","verified_at":` + okAt + `}`, want: "user_id"},
		{name: "missing verified_at", body: `{"user_id":"u1","email":"a@example.com"}`, want: "verified_at"},
		{name: "no @", body: intakeJSON(q("u1"), q("not-an-address"), okAt), want: "no @"},
		{name: "empty local part", body: intakeJSON(q("u1"), q("@example.com"), okAt), want: "empty local part"},
		{name: "IP literal", body: intakeJSON(q("u1"), q("x@[127.0.0.1]"), okAt), want: "disallowed character"},
		{name: "bare IP address", body: intakeJSON(q("u1"), q("x@10.0.0.1"), okAt), want: "numeric"},
		{name: "single label", body: intakeJSON(q("u1"), q("x@localhost"), okAt), want: "two labels"},
		{name: "public suffix", body: intakeJSON(q("u1"), q("x@co.uk"), okAt), want: "public suffix"},
		{name: "bidi override", body: intakeJSON(q("u1"), q("x@exa\u202emple.com"), okAt), want: "U+202E"},
		{name: "fullwidth letters", body: intakeJSON(q("u1"), q("x@ＥＸＡＭＰＬＥ.com"), okAt), want: "disallowed rune"},
		{name: "invalid punycode", body: intakeJSON(q("u1"), q("x@xn--zz.com"), okAt), want: "idna"},
		{name: "leading hyphen", body: intakeJSON(q("u1"), q("x@-example.com"), okAt), want: "hyphen"},
		{name: "invalid UTF-8", body: `{"user_id":"u1","email":"x@ex` + "\xff\xfe" + `ample.com","verified_at":` + okAt + `}`, want: "invalid domain name"},
		{name: "user id too long", body: intakeJSON(q(strings.Repeat("u", 300)), q("a@example.com"), okAt), want: "longer than 256"},
		{name: "envelope with string data", body: envelope(`"a@example.com"`), want: "cannot unmarshal string"},
		{name: "envelope with hostile data", body: envelope(intakeJSON(q("u1"), q("x@a..b.com"), okAt)), want: "empty label"},
		{name: "removed without email", subject: schemas.SubjectEmailRemoved, body: `{"user_id":"u1"}`, want: "email"},
	}
}

// hostileAnswer is a provider answer that must end as a failed (unknown)
// lookup or a dead-lettered check, with a reason containing want.
type hostileAnswer struct {
	name string
	h    func(q *quirkyServer, redirectTo string) http.HandlerFunc
	want string
	// dropped: the rdap parser's documented leniency (DESIGN §2: parse
	// dates leniently) drops the unusable part, names it in the evidence's
	// detail and classifies the rest; the unusable date must not be stored
	// and nothing may be unverified.
	dropped bool
}

func hostileAnswers() []hostileAnswer {
	rdapJSON := "application/rdap+json"
	fixed := func(ct, b string) func(*quirkyServer, string) http.HandlerFunc {
		// NAME in b becomes the domain asked for, so the answer is about
		// the right name and only its other flaws count.
		return func(*quirkyServer, string) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				body(ct, strings.ReplaceAll(b, "NAME", r.PathValue("name")))(w, r)
			}
		}
	}
	status := func(code int) func(*quirkyServer, string) http.HandlerFunc {
		return func(*quirkyServer, string) http.HandlerFunc {
			return func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
		}
	}
	return []hostileAnswer{
		{name: "HTML page", h: fixed("text/html", "<html><body><h1>Service Unavailable</h1></body></html>"), want: ""},
		{name: "truncated JSON", h: fixed(rdapJSON, activeRDAP("NAME", "2015-03-01T00:00:00Z", "2099-03-01T00:00:00Z")[:120]), want: ""},
		{name: "gigantic body", h: fixed(rdapJSON, `{"objectClassName":"domain","ldhName":"NAME","remarks":[{"description":["`+strings.Repeat("A", 3<<20)+`"]}]}`), want: ""},
		{name: "redirect to another host", h: func(_ *quirkyServer, to string) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, to+"domain/"+r.PathValue("name"), http.StatusFound)
			}
		}, want: "another host"},
		{name: "registration in year 0", h: fixed(rdapJSON, activeRDAP("NAME", "0000-01-01T00:00:00Z", "2099-03-01T00:00:00Z")), want: "0000-01-01", dropped: true},
		{name: "expiration in year 9999", h: fixed(rdapJSON, activeRDAP("NAME", "2015-03-01T00:00:00Z", "9999-12-31T23:59:59Z")), want: "9999-12-31", dropped: true},
		{name: "empty body", h: fixed(rdapJSON, ""), want: ""},
		{name: "JSON array", h: fixed(rdapJSON, `[{"objectClassName":"domain"}]`), want: ""},
		{name: "not a domain object", h: fixed(rdapJSON, `{"objectClassName":"entity","handle":"X"}`), want: ""},
		{name: "status is a string", h: fixed(rdapJSON, `{"objectClassName":"domain","ldhName":"NAME","status":"active"}`), want: "", dropped: true},
		{name: "garbage dates", h: fixed(rdapJSON, activeRDAP("NAME", "yesterday", "next tuesday")), want: "yesterday", dropped: true},
		{name: "persistent 500", h: status(http.StatusInternalServerError), want: ""},
		{name: "NUL bytes", h: fixed(rdapJSON, "{\"objectClassName\":\"domain\",\x00\x00}"), want: ""},
		{name: "deeply nested JSON", h: fixed(rdapJSON, strings.Repeat("[", 20000)+strings.Repeat("]", 20000)), want: ""},
	}
}

// TestBadInput publishes hostile host events and scripts broken provider
// answers, next to well-formed traffic, through the real role processes.
// Every hostile event is dead-lettered with a reason; every broken answer
// ends as a failed lookup (unknown, with a reason) or a dead-lettered check;
// nothing else is affected.
func TestBadInput(t *testing.T) {
	// Each scenario has its own NATS server, database and providers.
	t.Parallel()
	c := newCluster(t, clusterOptions{quirky: true})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c.startAll()

	intakes := hostileIntakes()
	answers := hostileAnswers()
	if n := len(intakes) + len(answers); n < 40 {
		t.Fatalf("only %d hostile cases", n)
	}
	verifiedAt := time.Now().Add(-30 * 24 * time.Hour).UTC().Truncate(time.Second)

	// Well-formed traffic around the hostile one: healthy domains, and a
	// homoglyph of one of them. The homoglyph (Cyrillic "а") is a distinct
	// IDNA name: it is watched as its own domain, never conflated with the
	// Latin one; unregistered, it is found released and its address
	// unverified, while the Latin look-alike stays untouched.
	var good []verified
	for i := 0; i < 5; i++ {
		good = append(good, verified{UserID: fmt.Sprintf("good-%d", i), Email: fmt.Sprintf("ok@good-%d.com", i), VerifiedAt: verifiedAt})
	}
	good = append(good, verified{UserID: "paypal-latin", Email: "x@paypal-e2e.com", VerifiedAt: verifiedAt})
	good = append(good, verified{UserID: "paypal-homoglyph", Email: "x@pаypal-e2e.com", VerifiedAt: verifiedAt})
	homoglyph, err := domainname.RegistrableFromEmail("x@pаypal-e2e.com")
	if err != nil {
		t.Fatal(err)
	}
	c.rdap.Set(homoglyph, fakerdap.Answer{Phase: lifecycle.PhaseReleased})

	// Provider answers: one .org domain each, served by the quirky server.
	provDomains := map[string]hostileAnswer{}
	for i, a := range answers {
		d := fmt.Sprintf("bad-%02d.org", i)
		c.quirky.set(d, a.h(c.quirky, c.rdap.URL()))
		provDomains[d] = a
		good = append(good, verified{UserID: fmt.Sprintf("prov-%02d", i), Email: "p@" + d, VerifiedAt: verifiedAt})
	}
	// And a well-formed .org answer from the same server.
	good = append(good, verified{UserID: "org-ok", Email: "ok@fine-e2e.org", VerifiedAt: verifiedAt})

	seqs := map[uint64]hostileIntake{}
	for i, h := range intakes {
		subject := h.subject
		if subject == "" {
			subject = schemas.SubjectEmailVerified
		}
		seqs[c.publishRaw(ctx, subject, []byte(h.body), fmt.Sprintf("hostile-%d", i))] = h
	}
	c.publishVerified(ctx, good)

	// Every hostile event dead-lettered.
	var dls []schemas.DeadLetter
	waitFor(t, 90*time.Second, "hostile host events to be dead-lettered", func() (bool, string) {
		var err error
		dls, err = c.deadLetters(ctx, schemas.StreamAccounts)
		if err != nil {
			return false, err.Error()
		}
		return len(dls) >= len(intakes), fmt.Sprintf("%d of %d dead-lettered", len(dls), len(intakes))
	})
	seen := map[uint64]bool{}
	for _, dl := range dls {
		h, ok := seqs[dl.Sequence]
		if !ok {
			t.Errorf("unexpected dead letter seq %d: %s", dl.Sequence, dl.Error)
			continue
		}
		seen[dl.Sequence] = true
		if !strings.Contains(dl.Error, h.want) {
			t.Errorf("%s: dead-lettered with %q, want a reason containing %q", h.name, dl.Error, h.want)
		} else {
			t.Logf("intake %-30s dead-lettered: %s", h.name, tail(dl.Error, 140))
		}
		if dl.Deliveries != 1 {
			t.Errorf("%s: dead-lettered on delivery %d, want the first (no retry of bad input)", h.name, dl.Deliveries)
		}
	}
	for seq, h := range seqs {
		if !seen[seq] {
			t.Errorf("%s (seq %d) was not dead-lettered", h.name, seq)
		}
	}

	// Every broken answer: a failed lookup with a reason, or a dead letter.
	outcome := map[string]string{}
	waitFor(t, 90*time.Second, "every broken provider answer to be classified", func() (bool, string) {
		checkDLs, err := c.deadLetters(ctx, schemas.StreamDomainChecks)
		if err != nil {
			return false, err.Error()
		}
		for _, dl := range checkDLs {
			d := strings.TrimPrefix(dl.Subject, schemas.SubjectCheckPrefix)
			outcome[d] = "dead-lettered: " + dl.Error
		}
		missing := 0
		for d := range provDomains {
			if _, ok := outcome[d]; ok {
				continue
			}
			if provDomains[d].dropped {
				var phase, detail string
				var reg, exp *time.Time
				err := c.pool.QueryRow(ctx, `SELECT phase, coalesce(evidence->>'detail', ''), registered_at, expires_at FROM domains WHERE name = $1`, d).
					Scan(&phase, &detail, &reg, &exp)
				if err != nil || phase == string(lifecycle.PhaseUnknown) {
					missing++
					continue
				}
				outcome[d] = fmt.Sprintf("%s with the flaw dropped: %s", phase, detail)
				for _, t := range []*time.Time{reg, exp} {
					if t != nil && (t.Year() < 1985 || t.Year() > 2200) {
						outcome[d] = fmt.Sprintf("NOT REJECTED: placeholder date %s stored", t)
					}
				}
				continue
			}
			if hb, ok := c.lastHeartbeat(ctx, d); ok {
				if hb.Failed && hb.Phase == lifecycle.PhaseUnknown {
					outcome[d] = "unknown: " + hb.Detail
					continue
				}
				outcome[d] = fmt.Sprintf("NOT REJECTED: phase %s failed=%v detail=%q", hb.Phase, hb.Failed, hb.Detail)
				continue
			}
			missing++
		}
		return missing == 0, fmt.Sprintf("%d of %d provider cases without an outcome", missing, len(provDomains))
	})
	for d, a := range provDomains {
		o := outcome[d]
		reason := o[strings.Index(o, ":")+1:]
		if a.dropped && a.want == "" {
			reason = "lenient"
		}
		switch {
		case strings.HasPrefix(o, "NOT REJECTED"):
			t.Errorf("provider %s (%s): %s", a.name, d, o)
		case strings.TrimSpace(reason) == "":
			t.Errorf("provider %s (%s): %s without a reason", a.name, d, o)
		case !strings.Contains(o, a.want):
			t.Errorf("provider %s (%s): %s, want a reason containing %q", a.name, d, o, a.want)
		default:
			t.Logf("provider %-24s %s", a.name, tail(o, 160))
		}
	}

	// Nothing else affected: the well-formed domains are checked, their
	// addresses verified; the only audit events are the homoglyph's.
	waitFor(t, 60*time.Second, "well-formed domains checked", func() (bool, string) {
		ds, err := c.domains(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, d := range []string{"good-0.com", "good-4.com", "paypal-e2e.com", "fine-e2e.org", homoglyph} {
			if r, ok := ds[d]; !ok || r.LastCheckedAt == nil {
				return false, d + " not checked yet"
			}
		}
		return true, ""
	})
	c.quiet(ctx, 60*time.Second)
	ds, err := c.domains(ctx)
	if err != nil {
		t.Fatal(err)
	}
	es, err := c.emails(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for d, a := range provDomains {
		if !a.dropped && ds[d].Phase != string(lifecycle.PhaseUnknown) {
			t.Errorf("%s: phase %s after a broken answer, want unknown", d, ds[d].Phase)
		}
	}
	for _, g := range good {
		e, ok := es[domainname.StoredEmail(g.Email)] // the key: the homoglyph's domain as its A-label
		switch {
		case !ok:
			t.Errorf("%s not stored", g.Email)
		case g.UserID == "paypal-homoglyph":
			if e.Domain != homoglyph || e.Verified || e.Reason != string(lifecycle.ReasonReleased) {
				t.Errorf("homoglyph address: %+v, want domain %s unverified for %s", e, homoglyph, lifecycle.ReasonReleased)
			}
		case !e.Verified:
			t.Errorf("%s unverified (%s) by bad input elsewhere", g.Email, e.Reason)
		}
	}
	if len(es) != len(good) {
		t.Errorf("%d addresses stored, want exactly the %d well-formed ones", len(es), len(good))
	}
	rows, err := c.auditLog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Domain != homoglyph {
			t.Errorf("unexpected audit event %s for %q", r.Type, r.Domain)
		}
	}
	t.Logf("outcome: %d hostile host events dead-lettered, %d broken provider answers rejected, %d well-formed addresses stored, %d audit events (homoglyph only)",
		len(dls), len(outcome), len(es), len(rows))
	c.stopAll()
}
