package schemas

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzDecodeEmailVerified feeds arbitrary bodies to the host-intake
// decoder: it must never panic, every error must wrap ErrInvalid, and an
// accepted value must re-validate, survive a round trip and match its JSON
// Schema. Seeds: testdata/fuzz/FuzzDecodeEmailVerified.
func FuzzDecodeEmailVerified(f *testing.F) {
	f.Add([]byte(`{"user_id":"u-1","email":"alice@example.com","verified_at":"2025-03-14T09:26:53Z"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		_, v, err := Decode[EmailVerified](body)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Decode error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if err := v.Validate(); err != nil {
			t.Fatalf("accepted %+v does not validate: %v", v, err)
		}
		again, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("marshal accepted %+v: %v", v, err)
		}
		_, w, err := Decode[EmailVerified](again)
		if err != nil {
			t.Fatalf("re-decode %s: %v", again, err)
		}
		if w.UserID != v.UserID || w.Email != v.Email || !w.VerifiedAt.Equal(v.VerifiedAt) {
			t.Fatalf("round trip changed %+v to %+v", v, w)
		}
		if err := validateAgainst(t, "json/email-verified.v1.schema.json", again); err != nil {
			t.Fatalf("schema rejects accepted %s: %v", again, err)
		}
	})
}
