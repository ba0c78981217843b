package schemas

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/domainguard/domainguard/lifecycle"
)

// Subjects and subject patterns (DESIGN.md §6), without namespace prefix.
const (
	SubjectEmailVerified = "accounts.email.verified"
	SubjectEmailRemoved  = "accounts.email.removed"

	SubjectCheckPrefix   = "domains.check."   // + domain
	SubjectChangedPrefix = "domains.changed." // + domain
	SubjectCheckedPrefix = "domains.checked." // + domain

	// The audit subjects are lifecycle's event names (declared there).
	SubjectEmailUnverified    = string(lifecycle.EventEmailUnverified)
	SubjectDomainChanged      = string(lifecycle.EventDomainChanged)
	SubjectDomainExpiring     = string(lifecycle.EventDomainExpiring)
	SubjectDomainRestored     = string(lifecycle.EventDomainRestored)
	SubjectDomainReregistered = string(lifecycle.EventDomainReregistered)
	SubjectEnforcementHeld    = string(lifecycle.EventEnforcementHeld)
	SubjectEnforcementPaused  = string(lifecycle.EventEnforcementPaused)
	SubjectEnforcementResumed = string(lifecycle.EventEnforcementResumed)
	// Recorded by `domainguard dlq replay`, not by the enforcer.
	SubjectDeadLetterReplayed  = "audit.dlq.replayed"
	SubjectDeadLetterPrefix    = "dlq." // + stream name
	SubjectAuditAll            = "audit.>"
	SubjectAccountsAll         = "accounts.>"
	SubjectChecksAll           = "domains.check.>"
	SubjectDomainEventsChanged = "domains.changed.>"
	SubjectDomainEventsChecked = "domains.checked.>"
	SubjectDeadLetterAll       = "dlq.>"
)

// Stream names (DESIGN.md §6), without namespace prefix.
const (
	StreamAccounts     = "ACCOUNTS"
	StreamDomainChecks = "DOMAIN_CHECKS"
	StreamDomainEvents = "DOMAIN_EVENTS"
	StreamAudit        = "AUDIT"
	StreamDLQ          = "DLQ"
)

// Namespace places subjects and streams under an optional prefix so that
// several deployments (or parallel tests) can share one NATS account. The
// zero value is the unprefixed namespace of DESIGN.md §6.
type Namespace struct {
	// Prefix is a subject token such as "staging"; "" means none.
	Prefix string
}

// prefixPattern is what Prefix may be: subject tokens that also make a
// valid stream name once Stream replaces "." and "-" (no wildcards,
// whitespace or path separators).
var prefixPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// Validate reports a Prefix that is not dot-separated tokens of letters,
// digits, _ and - (DOMAINGUARD_SUBJECT_PREFIX).
func (n Namespace) Validate() error {
	if n.Prefix != "" && !prefixPattern.MatchString(n.Prefix) {
		return fmt.Errorf("%q: want dot-separated tokens of letters, digits, _ and -", n.Prefix)
	}
	return nil
}

// Subject returns s inside the namespace: "prefix.s", or s.
func (n Namespace) Subject(s string) string {
	if n.Prefix == "" {
		return s
	}
	return n.Prefix + "." + s
}

// Strip removes the namespace prefix from a subject received from NATS.
func (n Namespace) Strip(subject string) string {
	if n.Prefix == "" {
		return subject
	}
	return strings.TrimPrefix(subject, n.Prefix+".")
}

// Stream returns the stream name inside the namespace: "PREFIX_NAME", or name.
func (n Namespace) Stream(name string) string {
	if n.Prefix == "" {
		return name
	}
	return strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(n.Prefix)) + "_" + name
}

// CheckSubject is the subject of a check request for domain.
func (n Namespace) CheckSubject(domain string) string { return n.Subject(SubjectCheckPrefix + domain) }

// ChangedSubject is the subject of a phase/evidence change for domain.
func (n Namespace) ChangedSubject(domain string) string {
	return n.Subject(SubjectChangedPrefix + domain)
}

// CheckedSubject is the subject of a heartbeat for domain.
func (n Namespace) CheckedSubject(domain string) string {
	return n.Subject(SubjectCheckedPrefix + domain)
}

// DeadLetterSubject is the dead-letter subject for messages from stream
// (the unprefixed stream name, e.g. ACCOUNTS).
func (n Namespace) DeadLetterSubject(stream string) string {
	return n.Subject(SubjectDeadLetterPrefix + stream)
}
