package schemas

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestDerivedID(t *testing.T) {
	at := time.Date(2025, 3, 14, 15, 9, 26, 535_000_000, time.UTC)
	a := DerivedID(at, "DOMAIN_CHECKS", "42", "changed")

	if b := DerivedID(at, "DOMAIN_CHECKS", "42", "changed"); a != b {
		t.Fatalf("not deterministic: %s vs %s", a, b)
	}
	id, err := uuid.Parse(a)
	if err != nil {
		t.Fatalf("parse %s: %v", a, err)
	}
	if id.Version() != 7 {
		t.Errorf("version = %d, want 7", id.Version())
	}
	if id.Variant() != uuid.RFC4122 {
		t.Errorf("variant = %v, want RFC 4122/9562", id.Variant())
	}
	sec, nsec := id.Time().UnixTime()
	if got := time.Unix(sec, nsec).UTC(); !got.Equal(at.Truncate(time.Millisecond)) {
		t.Errorf("embedded time = %s, want %s", got, at.Truncate(time.Millisecond))
	}

	distinct := map[string][]string{a: {"DOMAIN_CHECKS", "42", "changed"}}
	for _, parts := range [][]string{
		{"DOMAIN_CHECKS", "42", "checked"},
		{"DOMAIN_CHECKS", "43", "changed"},
		{"DOMAIN_CHECKS", "4", "2changed"}, // joining must not collide
		{"DOMAIN_CHECKS42changed"},
		{},
	} {
		id := DerivedID(at, parts...)
		if prev, dup := distinct[id]; dup {
			t.Errorf("parts %q and %q give the same id %s", parts, prev, id)
		}
		distinct[id] = parts
	}
	if DerivedID(at.Add(time.Millisecond), "x") == DerivedID(at, "x") {
		t.Error("different timestamps give the same id")
	}
	if _, err := uuid.Parse(DerivedID(time.Time{}, "x")); err != nil {
		t.Errorf("zero time: %v", err)
	}
}

func TestDerivedIDSortsByTime(t *testing.T) {
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	earlier := DerivedID(at, "zzz")
	later := DerivedID(at.Add(time.Millisecond), "aaa")
	if !(earlier < later) {
		t.Errorf("ids do not sort by time: %s !< %s", earlier, later)
	}
}
