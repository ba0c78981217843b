package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"maps"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/domainguard/domainguard/lifecycle"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// compiledSchemas compiles every file of JSONSchemas once, each registered
// under its $id, with format assertions on (date-time is checked).
var compiledSchemas = sync.OnceValues(func() (map[string]*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	files, err := fs.Glob(JSONSchemas, "json/*.json")
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		raw, err := JSONSchemas.ReadFile(f)
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return nil, err
		}
		if err := c.AddResource(SchemaBaseURL+path.Base(f), doc); err != nil {
			return nil, err
		}
	}
	out := map[string]*jsonschema.Schema{}
	for _, f := range files {
		sch, err := c.Compile(SchemaBaseURL + path.Base(f))
		if err != nil {
			return nil, err
		}
		out[f] = sch
	}
	return out, nil
})

// validateAgainst validates a JSON document against a schema file of
// JSONSchemas ("json/<name>").
func validateAgainst(t testing.TB, file string, body []byte) error {
	t.Helper()
	schemas, err := compiledSchemas()
	if err != nil {
		t.Fatalf("compile schemas: %v", err)
	}
	sch, ok := schemas[file]
	if !ok {
		t.Fatalf("no schema file %s", file)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse instance %s: %v", body, err)
	}
	return sch.Validate(inst)
}

// schemaDoc returns a schema file as a generic JSON value.
func schemaDoc(t testing.TB, file string) map[string]any {
	t.Helper()
	raw, err := JSONSchemas.ReadFile(file)
	if err != nil {
		t.Fatalf("read %s: %v", file, err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("parse %s: %v", file, err)
	}
	return doc
}

// payloadDoc is schemaDoc for a payload schema, following a top-level $ref
// (the audit-domain-* files refer to domain-event).
func payloadDoc(t testing.TB, file string) map[string]any {
	t.Helper()
	doc := schemaDoc(t, file)
	if ref, ok := doc["$ref"].(string); ok {
		return payloadDoc(t, "json/"+ref)
	}
	return doc
}

func requiredOf(doc map[string]any) []string {
	var out []string
	for _, v := range doc["required"].([]any) {
		out = append(out, v.(string))
	}
	return out
}

var (
	exampleTime  = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	registered   = time.Date(2009, 6, 2, 17, 4, 11, 0, time.UTC)
	expires      = time.Date(2025, 6, 2, 17, 4, 11, 0, time.UTC)
	lastChanged  = time.Date(2024, 6, 3, 8, 0, 0, 0, time.UTC)
	deletion     = time.Date(2025, 8, 16, 0, 0, 0, 0, time.UTC)
	fullEvidence = lifecycle.Evidence{
		Provider:        "rdap",
		Server:          "https://rdap.verisign.com/com/v1/",
		Statuses:        []string{"client transfer prohibited", "redemption period"},
		RegisteredAt:    &registered,
		ExpiresAt:       &expires,
		LastChangedAt:   &lastChanged,
		DeletionAt:      &deletion,
		Handle:          "2336799_DOMAIN_COM-VRSN",
		RegistrarIANAID: "292",
		Nameservers:     []string{"ns1.example.net", "ns2.example.net"},
		DNS: &lifecycle.DNSEvidence{Delegated: false, Rcode: "NXDOMAIN", ParentServer: "192.0.2.30:53",
			Nameservers: []string{"ns1.example.net"}, MXKnown: true, MX: []string{"mx.example.net"},
			SOASerial: 4294967295, SOAMname: "ns1.example.net", UndelegatedSince: &lastChanged,
			BaselineNameservers: []string{"ns1.example.net"}, BaselineMX: []string{"mx.example.net"}},
		ObservedAt: exampleTime,
	}
	notFoundEvidence = lifecycle.Evidence{
		Provider:   "rdap",
		Server:     "https://rdap.verisign.com/com/v1/",
		NotFound:   true,
		Detail:     "404 after canary lookup of example.com succeeded",
		ObservedAt: exampleTime,
	}
	minimalEvidence = lifecycle.Evidence{Provider: "rdap", ObservedAt: exampleTime}
)

// decodeAs returns a function that decodes a body as T and returns the
// decoded payload.
func decodeAs[T Payload]() func([]byte) (Payload, error) {
	return func(b []byte) (Payload, error) {
		_, v, err := Decode[T](b)
		return v, err
	}
}

// subjectCase is one subject (or family) with a full and a minimal valid
// example payload.
type subjectCase struct {
	subject       string // as listed by Subjects()
	kind          string // the CloudEvents kind (TypeFor)
	full, minimal Payload
	decode        func([]byte) (Payload, error)
}

func subjectCases() []subjectCase {
	domainEvent := func(prev, phase lifecycle.Phase, ev lifecycle.Evidence, prevEv *lifecycle.Evidence) DomainEvent {
		return DomainEvent{
			Domain: "example.com", PreviousPhase: prev, Phase: phase, ExpiresAt: &expires,
			Evidence: ev, PreviousEvidence: prevEv,
			Addresses: []Address{{UserID: "u-1", Email: "alice@example.com"}, {UserID: "u-2", Email: "bob@example.com"}},
		}
	}
	minimalDomainEvent := DomainEvent{Domain: "example.com", Phase: lifecycle.PhaseActive, Evidence: minimalEvidence, Addresses: []Address{}}
	return []subjectCase{
		{
			subject: SubjectEmailVerified, kind: SubjectEmailVerified,
			full:    EmailVerified{UserID: "8c1f0e9a-user", Email: "Alice.Émile@Example.COM", VerifiedAt: exampleTime.Add(123456789 * time.Nanosecond)},
			minimal: EmailVerified{UserID: "1", Email: "a@b.c", VerifiedAt: exampleTime},
			decode:  decodeAs[EmailVerified](),
		},
		{
			subject: SubjectEmailRemoved, kind: SubjectEmailRemoved,
			full:    EmailRemoved{UserID: "8c1f0e9a-user", Email: "alice@example.com"},
			minimal: EmailRemoved{UserID: "1", Email: "a@b.c"},
			decode:  decodeAs[EmailRemoved](),
		},
		{
			subject: SubjectChecksAll, kind: "domains.check",
			full: CheckRequest{Domain: "example.com", Reason: CheckSchedule, RequestedAt: exampleTime,
				Previous: &lifecycle.Observation{Domain: "example.com", Phase: lifecycle.PhaseGrace, Evidence: fullEvidence}},
			minimal: CheckRequest{Domain: "example.com", Reason: CheckSignup, RequestedAt: exampleTime},
			decode:  decodeAs[CheckRequest](),
		},
		{
			subject: SubjectDomainEventsChanged, kind: "domains.changed",
			full: DomainChanged{Domain: "example.com", PreviousPhase: lifecycle.PhasePendingDelete, Phase: lifecycle.PhaseReleased,
				PreviousEvidence: &fullEvidence, Evidence: notFoundEvidence},
			minimal: DomainChanged{Domain: "example.com", PreviousPhase: lifecycle.PhaseUnknown, Phase: lifecycle.PhaseActive, Evidence: minimalEvidence},
			decode:  decodeAs[DomainChanged](),
		},
		{
			subject: SubjectDomainEventsChecked, kind: "domains.checked",
			full:    DomainChecked{Domain: "example.com", Phase: lifecycle.PhaseUnknown, ObservedAt: exampleTime, Failed: true, Detail: "rdap: 503 from https://rdap.example/"},
			minimal: DomainChecked{Domain: "example.com", Phase: lifecycle.PhaseActive, ObservedAt: exampleTime},
			decode:  decodeAs[DomainChecked](),
		},
		{
			subject: SubjectEmailUnverified, kind: SubjectEmailUnverified,
			full: EmailUnverified{UserID: "u-1", Email: "alice@example.com", Domain: "example.com", Reason: lifecycle.ReasonRedemption,
				Phase: lifecycle.PhaseRedemption, PreviousPhase: lifecycle.PhaseExpired, Evidence: fullEvidence, UnverifiedAt: exampleTime, HoldID: "hold-42"},
			minimal: EmailUnverified{UserID: "u-1", Email: "alice@example.com", Domain: "example.com", Reason: lifecycle.ReasonReleased,
				Phase: lifecycle.PhaseReleased, Evidence: minimalEvidence, UnverifiedAt: exampleTime},
			decode: decodeAs[EmailUnverified](),
		},
		{
			subject: SubjectDomainChanged, kind: SubjectDomainChanged,
			full:    domainEvent(lifecycle.PhaseActive, lifecycle.PhaseGrace, fullEvidence, &minimalEvidence),
			minimal: minimalDomainEvent, decode: decodeAs[DomainEvent](),
		},
		{
			subject: SubjectDomainExpiring, kind: SubjectDomainExpiring,
			full:    domainEvent(lifecycle.PhaseActive, lifecycle.PhaseActive, fullEvidence, nil),
			minimal: minimalDomainEvent, decode: decodeAs[DomainEvent](),
		},
		{
			subject: SubjectDomainRestored, kind: SubjectDomainRestored,
			full:    domainEvent(lifecycle.PhaseRedemption, lifecycle.PhaseActive, fullEvidence, &fullEvidence),
			minimal: minimalDomainEvent, decode: decodeAs[DomainEvent](),
		},
		{
			subject: SubjectDomainReregistered, kind: SubjectDomainReregistered,
			full:    domainEvent(lifecycle.PhaseReleased, lifecycle.PhaseActive, fullEvidence, &notFoundEvidence),
			minimal: minimalDomainEvent, decode: decodeAs[DomainEvent](),
		},
		{
			subject: SubjectEnforcementHeld, kind: SubjectEnforcementHeld,
			full: EnforcementHeld{HoldID: "hold-42", Domain: "example.com", Cause: "cap", Reason: lifecycle.ReasonExpired,
				Phase: lifecycle.PhaseExpired, Addresses: 1200},
			minimal: EnforcementHeld{HoldID: "h", Domain: "example.com", Cause: "protected", Reason: lifecycle.ReasonReregistered, Phase: lifecycle.PhaseActive},
			decode:  decodeAs[EnforcementHeld](),
		},
		{
			subject: SubjectEnforcementPaused, kind: SubjectEnforcementPaused,
			full: EnforcementPaused{Paused: true, Reason: "37 of 120 domains turned non-active within 1h", Observed: 120, NonActive: 37,
				Percent: 30.83, At: exampleTime},
			minimal: EnforcementPaused{Reason: "breaker", At: exampleTime},
			decode:  decodeAs[EnforcementPaused](),
		},
		{
			subject: SubjectEnforcementResumed, kind: SubjectEnforcementResumed,
			full:    EnforcementPaused{Paused: false, Reason: "operator resumed after review", Observed: 120, NonActive: 37, Percent: 30.83, At: exampleTime, By: "ops@example.org"},
			minimal: EnforcementPaused{Reason: "resumed", At: exampleTime},
			decode:  decodeAs[EnforcementPaused](),
		},
		{
			subject: SubjectDeadLetterReplayed, kind: SubjectDeadLetterReplayed,
			full: DeadLetterReplayed{DLQSequence: 7, Stream: "DOMAIN_CHECKS", Sequence: 918273, Subject: "domains.check.example.com",
				PayloadSHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", MessageID: "replay-DOMAIN_CHECKS-918273-7",
				By: "nats:operator os:ops@bastion", At: exampleTime},
			minimal: DeadLetterReplayed{Stream: "ACCOUNTS", Subject: "accounts.email.verified", PayloadSHA256: "x", MessageID: "m", By: "b", At: exampleTime},
			decode:  decodeAs[DeadLetterReplayed](),
		},
		{
			subject: SubjectOperatorAction, kind: SubjectOperatorAction,
			full: OperatorAction{Action: ActionHoldApprove, Actor: "ops@example.org", Via: "console", Note: "registry confirmed the deletion\nticket 42",
				HoldID: "hold-42", Domain: "example.com", Addresses: 120, DLQSequence: 7, Stream: "ACCOUNTS", Subject: "accounts.email.verified", At: exampleTime},
			minimal: OperatorAction{Action: ActionDLQReplay, Actor: "ops", Via: "cli", At: exampleTime},
			decode:  decodeAs[OperatorAction](),
		},
		{
			subject: SubjectDeadLetterAll, kind: "dlq",
			full: DeadLetter{Stream: "ACCOUNTS", Consumer: "intake", Subject: "accounts.email.verified", Sequence: 918273,
				Headers: map[string][]string{"Nats-Msg-Id": {"0195a3c2-0000-7000-8000-000000000000"}},
				Payload: []byte(`{"user_id":"u-1","email":"not-an-address"}`), Error: "invalid message: email lacks a registrable domain",
				Deliveries: 1, At: exampleTime},
			minimal: DeadLetter{Stream: "ACCOUNTS", Subject: "accounts.email.verified", Error: "x", At: exampleTime},
			decode:  decodeAs[DeadLetter](),
		},
	}
}

func TestSchemaFilesAreWellFormed(t *testing.T) {
	files, err := fs.Glob(JSONSchemas, "json/*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no schema files embedded: %v", err)
	}
	name := regexp.MustCompile(`^[a-z]+(-[a-z]+)*\.v[0-9]+\.schema\.json$`)
	for _, f := range files {
		base := path.Base(f)
		if !name.MatchString(base) {
			t.Errorf("%s: file name is not <name>.v<N>.schema.json", f)
		}
		doc := schemaDoc(t, f)
		if got := doc["$id"]; got != SchemaBaseURL+base {
			t.Errorf("%s: $id %v, want %s", f, got, SchemaBaseURL+base)
		}
		if got := doc["$schema"]; got != "https://json-schema.org/draft/2020-12/schema" {
			t.Errorf("%s: $schema %v is not draft 2020-12", f, got)
		}
		if doc["title"] == nil || doc["description"] == nil {
			t.Errorf("%s: lacks title or description", f)
		}
	}
	if _, err := compiledSchemas(); err != nil {
		t.Fatalf("compile: %v", err)
	}
}

// refsOf collects every $ref (file part) in a schema document.
func refsOf(v any, out map[string]bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if s, ok := e.(string); ok && k == "$ref" {
				if file, _, _ := strings.Cut(s, "#"); file != "" {
					out["json/"+file] = true
				}
			}
			refsOf(e, out)
		}
	case []any:
		for _, e := range v {
			refsOf(e, out)
		}
	}
}

func TestEverySubjectHasASchemaAndEverySchemaIsUsed(t *testing.T) {
	used := map[string]bool{SchemaFileCloudEvent: true}
	for _, s := range Subjects() {
		f, ok := SchemaFileFor(s)
		if !ok {
			t.Errorf("subject %s has no schema file", s)
			continue
		}
		if _, err := fs.Stat(JSONSchemas, f); err != nil {
			t.Errorf("subject %s: schema file %s: %v", s, f, err)
		}
		used[f] = true
	}
	// Files referred to by a used file are used too.
	for {
		before := len(used)
		for f := range maps.Clone(used) {
			refsOf(schemaDoc(t, f), used)
		}
		if len(used) == before {
			break
		}
	}
	files, _ := fs.Glob(JSONSchemas, "json/*.json")
	for _, f := range files {
		if !used[f] {
			t.Errorf("schema file %s is used by no subject", f)
		}
	}
	for f := range used {
		if !slices.Contains(files, f) {
			t.Errorf("schema %s is referred to but not embedded", f)
		}
	}
	var covered []string
	for _, c := range subjectCases() {
		covered = append(covered, c.subject)
	}
	for _, s := range Subjects() {
		if !slices.Contains(covered, s) {
			t.Errorf("subject %s has no example in subjectCases", s)
		}
	}
}

func TestSchemaFileFor(t *testing.T) {
	tests := []struct {
		subject, want string
	}{
		{"accounts.email.verified", "json/email-verified.v1.schema.json"},
		{"accounts.email.removed", "json/email-removed.v1.schema.json"},
		{"domains.check.example.com", "json/check-request.v1.schema.json"},
		{"domains.check.>", "json/check-request.v1.schema.json"},
		{"domains.check.*", "json/check-request.v1.schema.json"},
		{"domains.check", "json/check-request.v1.schema.json"},
		{"domains.changed.example.co.uk", "json/domain-changed.v1.schema.json"},
		{"domains.changed", "json/domain-changed.v1.schema.json"},
		{"domains.checked.example.com", "json/domain-checked.v1.schema.json"},
		{"audit.email.unverified", "json/email-unverified.v1.schema.json"},
		{"audit.domain.changed", "json/audit-domain-changed.v1.schema.json"},
		{"audit.domain.expiring", "json/audit-domain-expiring.v1.schema.json"},
		{"audit.domain.restored", "json/audit-domain-restored.v1.schema.json"},
		{"audit.domain.reregistered", "json/audit-domain-reregistered.v1.schema.json"},
		{"audit.enforcement.held", "json/enforcement-held.v1.schema.json"},
		{"audit.enforcement.paused", "json/enforcement-paused.v1.schema.json"},
		{"audit.enforcement.resumed", "json/enforcement-paused.v1.schema.json"},
		{"dlq.ACCOUNTS", "json/dead-letter.v1.schema.json"},
		{"dlq.>", "json/dead-letter.v1.schema.json"},
		{"dlq", "json/dead-letter.v1.schema.json"},
		{"", ""},
		{"domains.check.", ""},
		{"domains", ""},
		{"audit.>", ""},
		{"audit.email.verified", ""},
		{"staging.accounts.email.verified", ""},
	}
	for _, tt := range tests {
		got, ok := SchemaFileFor(tt.subject)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("SchemaFileFor(%q) = %q, %v; want %q", tt.subject, got, ok, tt.want)
		}
	}
}

func TestEnumsMatchGo(t *testing.T) {
	enum := func(doc map[string]any) []string {
		var out []string
		for _, v := range doc["enum"].([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	var phases []string
	for _, p := range lifecycle.Phases {
		phases = append(phases, string(p))
	}
	if got := enum(schemaDoc(t, "json/phase.v1.schema.json")); !slices.Equal(got, phases) {
		t.Errorf("phase enum %v, want lifecycle.Phases %v", got, phases)
	}
	var want []string
	for _, r := range lifecycle.Reasons {
		want = append(want, string(r))
	}
	got := enum(schemaDoc(t, "json/reason.v1.schema.json"))
	if !slices.Equal(got, want) {
		t.Errorf("reason enum %v, want %v", got, want)
	}
	for _, p := range lifecycle.Phases {
		if r := lifecycle.ReasonFor(p); r != "" && !slices.Contains(got, string(r)) {
			t.Errorf("ReasonFor(%s) = %s is not in the reason enum", p, r)
		}
	}
	actions := enum(payloadDoc(t, "json/operator-action.v1.schema.json")["properties"].(map[string]any)["action"].(map[string]any))
	if !slices.Equal(actions, OperatorActions) {
		t.Errorf("operator action enum %v, want %v", actions, OperatorActions)
	}
	checkReasons := enum(payloadDoc(t, "json/check-request.v1.schema.json")["properties"].(map[string]any)["reason"].(map[string]any))
	if want := []string{string(CheckSchedule), string(CheckSignup), string(CheckManual)}; !slices.Equal(checkReasons, want) {
		t.Errorf("check reason enum %v, want %v", checkReasons, want)
	}
}

// TestCloudEventTypesMatchSchemaFiles checks that the envelope schema
// checks data of each event type against the same file SchemaFileFor names.
func TestCloudEventTypesMatchSchemaFiles(t *testing.T) {
	doc := schemaDoc(t, SchemaFileCloudEvent)
	byType := map[string]string{}
	for _, e := range doc["allOf"].([]any) {
		cond := e.(map[string]any)
		typ := cond["if"].(map[string]any)["properties"].(map[string]any)["type"].(map[string]any)["const"].(string)
		ref := cond["then"].(map[string]any)["properties"].(map[string]any)["data"].(map[string]any)["$ref"].(string)
		byType[typ] = "json/" + ref
	}
	for _, c := range subjectCases() {
		want, _ := SchemaFileFor(c.subject)
		if got, _ := SchemaFileFor(c.kind); got != want {
			t.Errorf("kind %s maps to %s, subject %s to %s", c.kind, got, c.subject, want)
		}
		if got := byType[TypeFor(c.kind)]; got != want {
			t.Errorf("cloudevent schema checks data of %s against %q, want %s", TypeFor(c.kind), got, want)
		}
		delete(byType, TypeFor(c.kind))
	}
	for typ := range byType {
		t.Errorf("cloudevent schema names type %s that no subject has", typ)
	}
}

// TestPayloadsMatchSchemas is the drift test: realistic Go values of every
// payload, full and minimal, marshal to JSON their schema accepts, decode
// back to the same value, and do so inside a CloudEvent too.
func TestPayloadsMatchSchemas(t *testing.T) {
	for _, c := range subjectCases() {
		file, _ := SchemaFileFor(c.subject)
		for variant, p := range map[string]Payload{"full": c.full, "minimal": c.minimal} {
			t.Run(c.subject+"/"+variant, func(t *testing.T) {
				if err := p.Validate(); err != nil {
					t.Fatalf("example is invalid: %v", err)
				}
				body, err := json.Marshal(p)
				if err != nil {
					t.Fatal(err)
				}
				if err := validateAgainst(t, file, body); err != nil {
					t.Errorf("%s rejects %s: %v", file, body, err)
				}
				got, err := c.decode(body)
				if err != nil {
					t.Fatalf("Decode bare: %v", err)
				}
				if !reflect.DeepEqual(got, p) {
					t.Errorf("bare round trip:\n got %#v\nwant %#v", got, p)
				}

				ev, err := NewEvent("/domainguard/test", c.kind, "example.com", exampleTime, p)
				if err != nil {
					t.Fatal(err)
				}
				env, err := ev.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				if err := validateAgainst(t, SchemaFileCloudEvent, env); err != nil {
					t.Errorf("cloudevent schema rejects %s: %v", env, err)
				}
				got, err = c.decode(env)
				if err != nil {
					t.Fatalf("Decode envelope: %v", err)
				}
				if !reflect.DeepEqual(got, p) {
					t.Errorf("envelope round trip:\n got %#v\nwant %#v", got, p)
				}
			})
		}
	}
}

// validateGaps lists mutations (subject.field=value) that the schema
// rejects but Decode accepts, because Validate is laxer than the schema.
// Each is a candidate for a stricter Validate; the test fails when one is
// no longer a gap, so the list stays true.
var validateGaps = map[string]bool{
	// encoding/json also fills a []byte from a JSON array of numbers.
	SubjectDeadLetterAll + `.payload=[]`: true,
}

// TestSchemaAndDecodeAgree mutates each top-level field of every full
// example (drop it, make it a wrong-typed or out-of-enum value) and checks
// that whatever the schema rejects, Decode rejects too, and that the
// schema's required fields are exactly those Decode cannot do without.
func TestSchemaAndDecodeAgree(t *testing.T) {
	for _, c := range subjectCases() {
		file, _ := SchemaFileFor(c.subject)
		required := requiredOf(payloadDoc(t, file))
		body, err := json.Marshal(c.full)
		if err != nil {
			t.Fatal(err)
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(body, &fields); err != nil {
			t.Fatal(err)
		}
		for _, r := range required {
			if _, ok := fields[r]; !ok {
				t.Errorf("%s: required field %s is missing from the full example", c.subject, r)
			}
		}
		for name := range fields {
			mutate := func(v json.RawMessage) []byte {
				m := maps.Clone(fields)
				if v == nil {
					delete(m, name)
				} else {
					m[name] = v
				}
				b, _ := json.Marshal(m)
				return b
			}
			// Missing field: rejected by both exactly when required.
			b := mutate(nil)
			isRequired := slices.Contains(required, name)
			schemaErr := validateAgainst(t, file, b)
			_, decodeErr := c.decode(b)
			if (schemaErr != nil) != isRequired || (decodeErr != nil) != isRequired {
				t.Errorf("%s without %s: required %v, schema error %v, Decode error %v", c.subject, name, isRequired, schemaErr, decodeErr)
			}
			if decodeErr != nil && !errors.Is(decodeErr, ErrInvalid) {
				t.Errorf("%s without %s: Decode error %v does not wrap ErrInvalid", c.subject, name, decodeErr)
			}
			// Wrong values: whatever the schema rejects, Decode rejects.
			for _, v := range []string{`"bogus-value"`, `12345`, `true`, `{}`, `[]`} {
				b := mutate(json.RawMessage(v))
				if validateAgainst(t, file, b) == nil {
					continue
				}
				_, decodeErr := c.decode(b)
				gap := validateGaps[c.subject+"."+name+"="+v]
				switch {
				case decodeErr == nil && !gap:
					t.Errorf("%s with %s=%s: schema rejects, Decode accepts", c.subject, name, v)
				case decodeErr != nil && gap:
					t.Errorf("%s.%s: Decode now rejects %s, remove it from validateGaps", c.subject, name, v)
				case decodeErr != nil && !errors.Is(decodeErr, ErrInvalid):
					t.Errorf("%s with %s=%s: Decode error %v does not wrap ErrInvalid", c.subject, name, v, decodeErr)
				}
			}
		}
	}
}

// TestEnvelopeSchemaAndDecodeAgree is TestSchemaAndDecodeAgree for the
// CloudEvents attributes.
func TestEnvelopeSchemaAndDecodeAgree(t *testing.T) {
	c := subjectCases()[0]
	ev, err := NewEvent("/domainguard/test", c.kind, "alice@example.com", exampleTime, c.full)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := ev.Marshal()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		t.Fatal(err)
	}
	required := requiredOf(schemaDoc(t, SchemaFileCloudEvent))
	for name := range fields {
		isRequired := slices.Contains(required, name)
		m := maps.Clone(fields)
		delete(m, name)
		b, _ := json.Marshal(m)
		schemaErr := validateAgainst(t, SchemaFileCloudEvent, b)
		_, decodeErr := c.decode(b)
		if (schemaErr != nil) != isRequired || (decodeErr != nil) != isRequired {
			t.Errorf("envelope without %s: required %v, schema error %v, Decode error %v", name, isRequired, schemaErr, decodeErr)
		}
		if !isRequired {
			// Decode ignores time, subject and datacontenttype; the
			// schema documents what they must be.
			continue
		}
		for _, v := range []string{`""`, `"0.3"`, `12345`, `null`, `{}`} {
			m := maps.Clone(fields)
			m[name] = json.RawMessage(v)
			b, _ := json.Marshal(m)
			if validateAgainst(t, SchemaFileCloudEvent, b) == nil {
				continue
			}
			if name == "data" && v == `{}` {
				continue // an empty payload is a payload error, checked below
			}
			if _, err := c.decode(b); err == nil {
				t.Errorf("envelope with %s=%s: schema rejects, Decode accepts", name, v)
			}
		}
	}
}

// TestSchemaRejectsDecodeRejects lists hand-written bad messages that the
// schema and Decode must both reject.
func TestSchemaRejectsDecodeRejects(t *testing.T) {
	const env = `{"specversion":"1.0","id":"x","source":"/s","type":"io.domainguard.domains.changed","data":%s}`
	ev := `{"provider":"rdap","observed_at":"2025-03-14T09:26:53Z"}`
	long := strings.Repeat("a", 250) + ".com"
	tests := []struct {
		name, subject, body string
	}{
		{"missing user_id", SubjectEmailVerified, `{"email":"a@b.c","verified_at":"2025-03-14T09:26:53Z"}`},
		{"blank user_id", SubjectEmailVerified, `{"user_id":"  ","email":"a@b.c","verified_at":"2025-03-14T09:26:53Z"}`},
		{"control character", SubjectEmailVerified, `{"user_id":"1","email":"a@b.c\u0007","verified_at":"2025-03-14T09:26:53Z"}`},
		{"year 1970", SubjectEmailVerified, `{"user_id":"1","email":"a@b.c","verified_at":"1970-01-01T00:00:00Z"}`},
		{"year 9001", SubjectEmailVerified, `{"user_id":"1","email":"a@b.c","verified_at":"9001-01-01T00:00:00Z"}`},
		{"zero time", SubjectEmailVerified, `{"user_id":"1","email":"a@b.c","verified_at":"0001-01-01T00:00:00Z"}`},
		{"not a date", SubjectEmailVerified, `{"user_id":"1","email":"a@b.c","verified_at":"2025-02-30T00:00:00Z"}`},
		{"email wrong type", SubjectEmailRemoved, `{"user_id":"1","email":["a@b.c"]}`},
		{"domain too long", SubjectDomainEventsChecked, `{"domain":"` + long + `","phase":"active","observed_at":"2025-03-14T09:26:53Z"}`},
		{"phase not an enum value", SubjectDomainEventsChecked, `{"domain":"example.com","phase":"parked","observed_at":"2025-03-14T09:26:53Z"}`},
		{"phase wrong case", SubjectDomainEventsChecked, `{"domain":"example.com","phase":"Active","observed_at":"2025-03-14T09:26:53Z"}`},
		{"check reason", SubjectChecksAll, `{"domain":"example.com","reason":"cron","requested_at":"2025-03-14T09:26:53Z"}`},
		{"previous phase", SubjectChecksAll, `{"domain":"example.com","reason":"manual","requested_at":"2025-03-14T09:26:53Z","previous":{"domain":"example.com","phase":"gone","evidence":` + ev + `}}`},
		{"change to unknown", SubjectDomainEventsChanged, `{"domain":"example.com","previous_phase":"active","phase":"unknown","evidence":` + ev + `}`},
		{"evidence without provider", SubjectDomainEventsChanged, `{"domain":"example.com","previous_phase":"active","phase":"grace","evidence":{"observed_at":"2025-03-14T09:26:53Z"}}`},
		{"evidence without observed_at", SubjectDomainEventsChanged, `{"domain":"example.com","previous_phase":"active","phase":"grace","evidence":{"provider":"rdap"}}`},
		{"evidence provider too long", SubjectDomainEventsChanged, `{"domain":"example.com","previous_phase":"active","phase":"grace","evidence":{"provider":"` + strings.Repeat("p", 65) + `","observed_at":"2025-03-14T09:26:53Z"}}`},
		{"enveloped phase", SubjectDomainEventsChanged, strings.Replace(env, "%s", `{"domain":"example.com","previous_phase":"active","phase":"lapsed","evidence":`+ev+`}`, 1)},
		{"addresses null", SubjectDomainExpiring, `{"domain":"example.com","phase":"active","addresses":null}`},
		{"domain event previous phase", SubjectDomainRestored, `{"domain":"example.com","previous_phase":"gone","phase":"active","addresses":[]}`},
		{"addresses wrong type", SubjectEnforcementHeld, `{"hold_id":"h","domain":"example.com","cause":"cap","reason":"domain_expired","phase":"expired","addresses":"many"}`},
		{"blank error", SubjectDeadLetterAll, `{"stream":"ACCOUNTS","subject":"accounts.email.verified","error":" \t\n","at":"2025-03-14T09:26:53Z"}`},
		{"paused without reason", SubjectEnforcementPaused, `{"paused":true,"at":"2025-03-14T09:26:53Z"}`},
		{"operator action without actor", SubjectOperatorAction, `{"action":"hold.approve","via":"console","at":"2025-03-14T09:26:53Z"}`},
		{"unknown operator action", SubjectOperatorAction, `{"action":"hold.delete","actor":"ops","via":"console","at":"2025-03-14T09:26:53Z"}`},
		{"operator action note with escape", SubjectOperatorAction, "{\"action\":\"hold.approve\",\"actor\":\"ops\",\"via\":\"cli\",\"note\":\"\\u001b[31m\",\"at\":\"2025-03-14T09:26:53Z\"}"},
		{"not an object", SubjectEmailVerified, `["a@b.c"]`},
	}
	cases := map[string]subjectCase{}
	for _, c := range subjectCases() {
		cases[c.subject] = c
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cases[tt.subject]
			file, _ := SchemaFileFor(tt.subject)
			if strings.HasPrefix(tt.body, `{"specversion"`) {
				file = SchemaFileCloudEvent
			}
			if err := validateAgainst(t, file, []byte(tt.body)); err == nil {
				t.Errorf("%s accepts %s", file, tt.body)
			}
			if _, err := c.decode([]byte(tt.body)); !errors.Is(err, ErrInvalid) {
				t.Errorf("Decode(%s) = %v, want ErrInvalid", tt.body, err)
			}
		})
	}
}
