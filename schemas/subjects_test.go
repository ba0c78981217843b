package schemas

import "testing"

func TestNamespace(t *testing.T) {
	tests := []struct {
		prefix                                        string
		subject, stream, check, changed, checked, dlq string
	}{
		{"", "audit.email.unverified", "AUDIT", "domains.check.example.com", "domains.changed.example.com", "domains.checked.example.com", "dlq.ACCOUNTS"},
		{"staging", "staging.audit.email.unverified", "STAGING_AUDIT", "staging.domains.check.example.com", "staging.domains.changed.example.com", "staging.domains.checked.example.com", "staging.dlq.ACCOUNTS"},
		{"t-42.run", "t-42.run.audit.email.unverified", "T_42_RUN_AUDIT", "t-42.run.domains.check.example.com", "t-42.run.domains.changed.example.com", "t-42.run.domains.checked.example.com", "t-42.run.dlq.ACCOUNTS"},
	}
	for _, tt := range tests {
		n := Namespace{Prefix: tt.prefix}
		if got := n.Subject(SubjectEmailUnverified); got != tt.subject {
			t.Errorf("%q: Subject = %q, want %q", tt.prefix, got, tt.subject)
		}
		if got := n.Strip(tt.subject); got != SubjectEmailUnverified {
			t.Errorf("%q: Strip(%q) = %q", tt.prefix, tt.subject, got)
		}
		if got := n.Stream(StreamAudit); got != tt.stream {
			t.Errorf("%q: Stream = %q, want %q", tt.prefix, got, tt.stream)
		}
		if got := n.CheckSubject("example.com"); got != tt.check {
			t.Errorf("%q: CheckSubject = %q, want %q", tt.prefix, got, tt.check)
		}
		if got := n.ChangedSubject("example.com"); got != tt.changed {
			t.Errorf("%q: ChangedSubject = %q, want %q", tt.prefix, got, tt.changed)
		}
		if got := n.CheckedSubject("example.com"); got != tt.checked {
			t.Errorf("%q: CheckedSubject = %q, want %q", tt.prefix, got, tt.checked)
		}
		if got := n.DeadLetterSubject(StreamAccounts); got != tt.dlq {
			t.Errorf("%q: DeadLetterSubject = %q, want %q", tt.prefix, got, tt.dlq)
		}
		// Stripped subjects find their schema.
		if _, ok := SchemaFileFor(n.Strip(n.CheckSubject("example.com"))); !ok {
			t.Errorf("%q: no schema for stripped check subject", tt.prefix)
		}
	}
	// Strip leaves foreign subjects alone.
	if got := (Namespace{Prefix: "staging"}).Strip("prod.audit.email.unverified"); got != "prod.audit.email.unverified" {
		t.Errorf("Strip of a foreign subject = %q", got)
	}
}
