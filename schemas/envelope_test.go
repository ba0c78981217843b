package schemas

import (
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestDecodeBareAndEnvelope(t *testing.T) {
	want := EmailVerified{UserID: "u-1", Email: "alice@example.com", VerifiedAt: exampleTime}
	bare := `{"user_id":"u-1","email":"alice@example.com","verified_at":"2025-03-14T09:26:53Z"}`
	ev, got, err := Decode[EmailVerified]([]byte("\n " + bare + " \n"))
	if err != nil {
		t.Fatalf("bare: %v", err)
	}
	if got != want || ev.ID != "" {
		t.Errorf("bare: got %+v, event %+v", got, ev)
	}

	env := `{"specversion":"1.0","id":"0195a3c2-7b1e-7000-8000-000000000001","source":"https://app.example/accounts",` +
		`"type":"com.example.email.verified","time":"2025-03-14T09:27:00Z","datacontenttype":"application/json",` +
		`"comexampletenant":"t1","data":` + bare + `}`
	ev, got, err = Decode[EmailVerified]([]byte(env))
	if err != nil {
		t.Fatalf("envelope: %v", err)
	}
	if got != want {
		t.Errorf("envelope payload %+v, want %+v", got, want)
	}
	if ev.ID != "0195a3c2-7b1e-7000-8000-000000000001" || ev.Type != "com.example.email.verified" || !ev.Time.Equal(exampleTime.Add(7*time.Second)) {
		t.Errorf("envelope event %+v", ev)
	}
	if err := validateAgainst(t, SchemaFileCloudEvent, []byte(env)); err != nil {
		t.Errorf("cloudevent schema rejects a host envelope: %v", err)
	}
}

func TestDecodeRejects(t *testing.T) {
	good := `{"user_id":"u-1","email":"alice@example.com","verified_at":"2025-03-14T09:26:53Z"}`
	envelope := func(specversion, data string) string {
		return `{"specversion":` + specversion + `,"id":"1","source":"/s","type":"t"` + data + `}`
	}
	tests := []struct{ name, body string }{
		{"empty", ""},
		{"whitespace", "  \n"},
		{"oversize", `{"user_id":"` + strings.Repeat("a", MaxMessageBytes) + `"}`},
		{"array", `[` + good + `]`},
		{"string", `"alice@example.com"`},
		{"null", `null`},
		{"invalid JSON", `{"user_id":"u-1",`},
		{"trailing garbage", good + `x`},
		{"bad specversion", envelope(`"0.3"`, `,"data":`+good)},
		{"numeric specversion", envelope(`1.0`, `,"data":`+good)},
		{"missing data", envelope(`"1.0"`, ``)},
		{"null data", envelope(`"1.0"`, `,"data":null`)},
		{"string data", envelope(`"1.0"`, `,"data":"`+strings.ReplaceAll(good, `"`, `\"`)+`"`)},
		{"envelope without id", `{"specversion":"1.0","source":"/s","type":"t","data":` + good + `}`},
		{"envelope without source", `{"specversion":"1.0","id":"1","type":"t","data":` + good + `}`},
		{"envelope without type", `{"specversion":"1.0","id":"1","source":"/s","data":` + good + `}`},
		{"control character", `{"user_id":"u-1\n","email":"alice@example.com","verified_at":"2025-03-14T09:26:53Z"}`},
		{"DEL character", `{"user_id":"u-1","email":"alice@example.com\u007f","verified_at":"2025-03-14T09:26:53Z"}`},
		{"email too long", `{"user_id":"u-1","email":"` + strings.Repeat("a", 245) + `@example.com","verified_at":"2025-03-14T09:26:53Z"}`},
		{"date before 1985", `{"user_id":"u-1","email":"alice@example.com","verified_at":"1984-12-31T23:59:59Z"}`},
		{"date after 9000", `{"user_id":"u-1","email":"alice@example.com","verified_at":"9001-01-01T00:00:00Z"}`},
		{"missing date", `{"user_id":"u-1","email":"alice@example.com"}`},
		{"date wrong type", `{"user_id":"u-1","email":"alice@example.com","verified_at":1741944413}`},
		{"user_id wrong type", `{"user_id":42,"email":"alice@example.com","verified_at":"2025-03-14T09:26:53Z"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Decode[EmailVerified]([]byte(tt.body))
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Decode = %v, want an error wrapping ErrInvalid", err)
			}
		})
	}
}

func TestDecodeAcceptsLimits(t *testing.T) {
	for _, at := range []string{"1985-01-01T00:00:00Z", "9000-12-31T23:59:59Z", "1985-01-01T00:30:00+01:00"} {
		body := `{"user_id":"u","email":"` + strings.Repeat("a", 242) + `@example.com","verified_at":"` + at + `"}`
		if _, _, err := Decode[EmailVerified]([]byte(body)); err != nil {
			t.Errorf("Decode(%s): %v", at, err)
		}
		if err := validateAgainst(t, "json/email-verified.v1.schema.json", []byte(body)); err != nil {
			t.Errorf("schema rejects %s: %v", at, err)
		}
	}
}

func TestNewEvent(t *testing.T) {
	p := EmailUnverified{UserID: "u-1", Email: "alice@example.com", Domain: "example.com", Reason: "domain_expired",
		Phase: "expired", PreviousPhase: "grace", Evidence: minimalEvidence, UnverifiedAt: exampleTime}
	local := time.Date(2025, 3, 14, 10, 26, 53, 0, time.FixedZone("CET", 3600))
	seen := map[string]bool{}
	for range 1000 {
		ev, err := NewEvent("/domainguard/enforcer", SubjectEmailUnverified, "alice@example.com", local, p)
		if err != nil {
			t.Fatal(err)
		}
		id, err := uuid.Parse(ev.ID)
		if err != nil || id.Version() != 7 {
			t.Fatalf("id %q is not a UUIDv7 (%v)", ev.ID, err)
		}
		if seen[ev.ID] {
			t.Fatalf("id %s repeated", ev.ID)
		}
		seen[ev.ID] = true
	}
	ev, err := NewEvent("/domainguard/enforcer", SubjectEmailUnverified, "alice@example.com", local, p)
	if err != nil {
		t.Fatal(err)
	}
	if ev.SpecVersion != "1.0" || ev.Type != "io.domainguard.audit.email.unverified" || ev.DataContentType != ContentTypeJSON ||
		ev.Subject != "alice@example.com" || ev.Source != "/domainguard/enforcer" || ev.Time.Location() != time.UTC || !ev.Time.Equal(local) {
		t.Errorf("event attributes %+v", ev)
	}
	var data EmailUnverified
	if err := json.Unmarshal(ev.Data, &data); err != nil || !reflect.DeepEqual(data, p) {
		t.Errorf("event data %s (%v), want %+v", ev.Data, err, p)
	}

	same, err := NewEventWithID("0195a3c2-7b1e-7000-8000-0000000000aa", "/domainguard/enforcer", SubjectEmailUnverified, "alice@example.com", local, p)
	if err != nil {
		t.Fatal(err)
	}
	if same.ID != "0195a3c2-7b1e-7000-8000-0000000000aa" {
		t.Errorf("NewEventWithID id %q", same.ID)
	}
	body, _ := same.Marshal()
	decoded, _, err := Decode[EmailUnverified](body)
	if err != nil || decoded.ID != same.ID {
		t.Errorf("decoded event %+v, %v", decoded, err)
	}

	bad := p
	bad.Phase = "gone"
	if _, err := NewEvent("/domainguard/enforcer", SubjectEmailUnverified, "x", local, bad); !errors.Is(err, ErrInvalid) {
		t.Errorf("NewEvent with invalid payload = %v, want ErrInvalid", err)
	}
	if _, err := NewEventWithID("id", "/domainguard/enforcer", SubjectEmailUnverified, "x", local, bad); !errors.Is(err, ErrInvalid) {
		t.Errorf("NewEventWithID with invalid payload = %v, want ErrInvalid", err)
	}
}

// A CloudEvent id no consumer can record (a NUL, thousands of bytes) is
// invalid input, dead-lettered at once, not retried 20 times (#14 item 10).
func TestDecodeRefusesUnstorableEventIDs(t *testing.T) {
	for name, id := range map[string]string{"nul": "abc\x00def", "3000 bytes": strings.Repeat("x", 3000), "newline": "a\nb"} {
		body := `{"specversion":"1.0","id":` + strconv.Quote(id) + `,"source":"host","type":"t","data":{"user_id":"u","email":"a@example.com"}}`
		if _, _, err := Decode[EmailRemoved]([]byte(body)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Decode = %v, want ErrInvalid", name, err)
		}
	}
}
