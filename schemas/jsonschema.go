package schemas

import (
	"embed"
	"strings"
)

// JSONSchemas holds the JSON Schema (draft 2020-12) files that describe
// every payload and the CloudEvents envelope, as json/<name>.v<N>.schema.json.
// Each file's $id is SchemaBaseURL + its file name, and files refer to each
// other by relative $ref, so a validator needs all of them registered under
// their $id.
//
//go:embed json/*.json
var JSONSchemas embed.FS

// SchemaBaseURL is the base of every schema's $id.
const SchemaBaseURL = "https://domainguard.dev/schemas/"

// SchemaFileCloudEvent is the schema of the CloudEvents envelope, which
// also checks data against the payload schema of the event's type.
const SchemaFileCloudEvent = "json/cloudevent.v1.schema.json"

// schemaFiles maps each exact subject to its payload schema.
var schemaFiles = map[string]string{
	SubjectEmailVerified:      "json/email-verified.v1.schema.json",
	SubjectEmailRemoved:       "json/email-removed.v1.schema.json",
	SubjectEmailUnverified:    "json/email-unverified.v1.schema.json",
	SubjectDomainChanged:      "json/audit-domain-changed.v1.schema.json",
	SubjectDomainExpiring:     "json/audit-domain-expiring.v1.schema.json",
	SubjectDomainRestored:     "json/audit-domain-restored.v1.schema.json",
	SubjectDomainReregistered: "json/audit-domain-reregistered.v1.schema.json",
	SubjectEnforcementHeld:    "json/enforcement-held.v1.schema.json",
	SubjectEnforcementPaused:  "json/enforcement-paused.v1.schema.json",
	SubjectEnforcementResumed: "json/enforcement-paused.v1.schema.json",
	SubjectDeadLetterReplayed: "json/dlq-replayed.v1.schema.json",
	SubjectOperatorAction:     "json/operator-action.v1.schema.json",
}

// schemaFamilies maps each subject family (prefix + one or more tokens) to
// its payload schema.
var schemaFamilies = []struct{ prefix, file string }{
	{SubjectCheckPrefix, "json/check-request.v1.schema.json"},
	{SubjectChangedPrefix, "json/domain-changed.v1.schema.json"},
	{SubjectCheckedPrefix, "json/domain-checked.v1.schema.json"},
	{SubjectDeadLetterPrefix, "json/dead-letter.v1.schema.json"},
}

// SchemaFileFor returns the path inside JSONSchemas of the payload schema
// for an unprefixed subject (strip the namespace first). It accepts exact
// subjects ("audit.email.unverified"), concrete subjects of a family
// ("domains.check.example.com", "dlq.ACCOUNTS"), the family's wildcard
// ("domains.check.>", "domains.check.*") and the family's event kind as
// used in the CloudEvents type ("domains.check", "dlq").
func SchemaFileFor(subject string) (string, bool) {
	if f, ok := schemaFiles[subject]; ok {
		return f, true
	}
	for _, fam := range schemaFamilies {
		if subject == strings.TrimSuffix(fam.prefix, ".") {
			return fam.file, true
		}
		if rest, ok := strings.CutPrefix(subject, fam.prefix); ok && rest != "" {
			return fam.file, true
		}
	}
	return "", false
}

// Subjects lists every subject and subject family of DESIGN.md §6 that
// carries a payload, unprefixed; families are given as NATS wildcards
// ("domains.check.>"). Each has a schema (SchemaFileFor).
func Subjects() []string {
	return []string{
		SubjectEmailVerified,
		SubjectEmailRemoved,
		SubjectChecksAll,
		SubjectDomainEventsChanged,
		SubjectDomainEventsChecked,
		SubjectEmailUnverified,
		SubjectDomainChanged,
		SubjectDomainExpiring,
		SubjectDomainRestored,
		SubjectDomainReregistered,
		SubjectEnforcementHeld,
		SubjectEnforcementPaused,
		SubjectEnforcementResumed,
		SubjectDeadLetterReplayed,
		SubjectOperatorAction,
		SubjectDeadLetterAll,
	}
}
