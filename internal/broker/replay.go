package broker

import (
	"fmt"
	"strings"

	"github.com/domainguard/domainguard/schemas"
)

// replayableStreams are the streams whose consumers dead-letter messages
// (and so the only ones a dead letter may be replayed into).
var replayableStreams = []string{schemas.StreamAccounts, schemas.StreamDomainChecks, schemas.StreamDomainEvents}

// ReplayTarget decides where a dead letter may be replayed: dl was read
// from the DLQ stream on dlqSubject (namespaced, as stored). It returns the
// namespaced subject to publish dl.Payload to, or an error wrapping
// schemas.ErrInvalid when the letter must not be replayed:
//   - the letter's stream is one whose consumers dead-letter (ACCOUNTS,
//     DOMAIN_CHECKS, DOMAIN_EVENTS) and the letter arrived on that
//     stream's own DLQ subject (dlq.<stream>), which only that stream's
//     consumer role may publish to (deploy/nats/auth.conf): a role cannot
//     forge a letter for another role's stream;
//   - the original subject is a concrete subject (no wildcards, no
//     whitespace, never $JS.…, $SYS.… or _INBOX…) that the stream's
//     configured subjects cover;
//   - the payload is valid for that subject (schemas.ValidatePayload).
func (t Topology) ReplayTarget(dlqSubject string, dl schemas.DeadLetter) (string, error) {
	t = t.WithDefaults()
	refuse := func(format string, args ...any) (string, error) {
		return "", fmt.Errorf("%w: dead letter not replayable: %s", schemas.ErrInvalid, fmt.Sprintf(format, args...))
	}
	known := false
	for _, s := range replayableStreams {
		known = known || dl.Stream == s
	}
	if !known {
		return refuse("stream %q is not one whose messages are dead-lettered", dl.Stream)
	}
	if want := t.Namespace.DeadLetterSubject(dl.Stream); dlqSubject != want {
		return refuse("letter for stream %s arrived on %q, not on %q", dl.Stream, dlqSubject, want)
	}
	subj := dl.Subject
	if subj == "" || strings.ContainsAny(subj, " \t\r\n*>\x00") || strings.HasPrefix(subj, "$") ||
		strings.HasPrefix(subj, "_INBOX") || strings.HasPrefix(subj, ".") || strings.HasSuffix(subj, ".") || strings.Contains(subj, "..") {
		return refuse("subject %q is not a concrete message subject", subj)
	}
	var streamSubjects []string
	for _, cfg := range t.Streams() {
		if cfg.Name == t.Namespace.Stream(dl.Stream) {
			streamSubjects = cfg.Subjects
		}
	}
	target := t.Namespace.Subject(subj)
	covered := false
	for _, pattern := range streamSubjects {
		covered = covered || SubjectMatches(pattern, target)
	}
	if !covered {
		return refuse("subject %q is not one of stream %s's subjects %v", subj, dl.Stream, streamSubjects)
	}
	if err := schemas.ValidatePayload(subj, dl.Payload); err != nil {
		return refuse("payload is not a valid %s message: %v", subj, err)
	}
	return target, nil
}

// SubjectMatches reports whether the concrete subject matches the NATS
// subject pattern ("*" one token, ">" one or more trailing tokens).
func SubjectMatches(pattern, subject string) bool {
	p, s := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, tok := range p {
		switch {
		case tok == ">":
			return len(s) > i
		case i >= len(s):
			return false
		case tok != "*" && tok != s[i]:
			return false
		}
	}
	return len(p) == len(s)
}
