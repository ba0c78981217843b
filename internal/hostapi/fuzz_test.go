package hostapi

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/domainguard/domainguard/schemas"
)

// FuzzIntakeEvent feeds arbitrary bodies and ce-* headers to the two
// CloudEvents readers: they must never panic, and whatever they accept must
// carry the required attributes and JSON data, or be a clear 4xx.
func FuzzIntakeEvent(f *testing.F) {
	f.Add([]byte(`{"specversion":"1.0","id":"a","source":"s","type":"io.domainguard.accounts.email.verified","data":{"user_id":"u","email":"a@example.org","verified_at":"2025-01-01T00:00:00Z"}}`), "1.0", "id", "src", "io.domainguard.accounts.email.removed", "2025-01-01T00:00:00Z")
	f.Add([]byte(`{"user_id":"u","email":"a@example.org"}`), "1.0", "", "s", "t", "")
	f.Add([]byte(`[1,2]`), "", "", "", "", "x")
	f.Add([]byte("{\"specversion\":\"1.0\",\"id\":\"\\u0000\",\"data\":null}"), "0.3", "i", "s", "t", "noon")
	api := &API{cfg: Config{Clock: nil}.WithDefaults()}
	api.cfg.Clock = fixedClock{}
	f.Fuzz(func(t *testing.T, body []byte, spec, id, source, typ, ceTime string) {
		check := func(mode string, ev schemas.Event, err error) {
			if err != nil {
				var br *badRequest
				if !errors.As(err, &br) || br.status < 400 || br.status > 499 || br.code == "" || br.message == "" {
					t.Fatalf("%s: error %v is not a clear 4xx", mode, err)
				}
				return
			}
			if ev.ID == "" || ev.Source == "" || ev.Type == "" || len(ev.Data) == 0 {
				t.Fatalf("%s accepted an event without id, source, type or data: %+v", mode, ev)
			}
			if subject, ok := intakeTypes[ev.Type]; ok {
				_ = api.checkData(ev, subject) // must not panic
			}
		}
		ev, err := structured(body)
		check("structured", ev, err)
		h := http.Header{}
		for k, v := range map[string]string{"Ce-Specversion": spec, "Ce-Id": id, "Ce-Source": source, "Ce-Type": typ, "Ce-Time": ceTime} {
			if v != "" {
				h.Set(k, v)
			}
		}
		ev, err = binary(h, body)
		check("binary", ev, err)
	})
}

type fixedClock struct{}

func (fixedClock) Now() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }
