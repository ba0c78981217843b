package enforcer

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// Hostile text in a status report (an address or reason with escape
// sequences, a bidi override) is printed escaped, never sent to the
// terminal (#14 item 10).
func TestStatusTextEscapesHostileText(t *testing.T) {
	r := StatusReport{Emails: []EmailStatus{{UserID: "u\u202e1", Email: "a\x1b]0;pwned\x07@example.com", Domain: "example.com",
		Verified: false, UnverifyReason: "domain_\x1b[2Jreleased", VerifiedAt: time.Now(), Covered: true}}}
	var out bytes.Buffer
	if err := r.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if strings.ContainsAny(s, "\x1b\x07\u202e") {
		t.Errorf("status output carries raw control characters: %q", s)
	}
	if !strings.Contains(s, `a\x1b]0;pwned\x07@example.com`) {
		t.Errorf("status output %q does not show the address escaped", s)
	}
}
