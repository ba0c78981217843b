package main

import (
	"strings"
	"testing"
	"time"

	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

func TestNoticesFor(t *testing.T) {
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	ev := lifecycle.Evidence{Provider: "rdap", ObservedAt: at}
	event := func(kind string, p schemas.Payload) []byte {
		t.Helper()
		e, err := schemas.NewEvent("test", kind, "x", at, p)
		if err != nil {
			t.Fatal(err)
		}
		b, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	exp := at.AddDate(0, 0, 20)
	tests := []struct {
		name  string
		body  []byte
		users []string
		want  string
	}{
		{"unverified", event(schemas.SubjectEmailUnverified, schemas.EmailUnverified{UserID: "u1", Email: "ada@lapsed.com",
			Domain: "lapsed.com", Reason: lifecycle.ReasonPendingDelete, Phase: lifecycle.PhasePendingDelete,
			PreviousPhase: lifecycle.PhaseRedemption, Evidence: ev, UnverifiedAt: at}), []string{"u1"}, "pending delete"},
		{"expiring", event(schemas.SubjectDomainExpiring, schemas.DomainEvent{Domain: "soon.com", Phase: lifecycle.PhaseActive,
			ExpiresAt: &exp, Evidence: ev, Addresses: []schemas.Address{{UserID: "u1", Email: "a@soon.com"}, {UserID: "u2", Email: "b@soon.com"}}}),
			[]string{"u1", "u2"}, "2026-05-21"},
		{"no message for other events", event(schemas.SubjectDomainChanged, schemas.DomainEvent{Domain: "x.com", Phase: lifecycle.PhaseExpired,
			Evidence: ev, Addresses: []schemas.Address{}}), nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := noticesFor(tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.users) {
				t.Fatalf("%d notices, want %d: %+v", len(got), len(tt.users), got)
			}
			for i, n := range got {
				if n.UserID != tt.users[i] || !strings.Contains(n.Text, tt.want) || n.EventID == "" {
					t.Errorf("notice %+v", n)
				}
			}
		})
	}
	if _, err := noticesFor([]byte("not json")); err == nil {
		t.Error("undecodable event accepted")
	}
}
