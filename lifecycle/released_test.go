package lifecycle

import "testing"

// TestReleasedWithoutLapse: only active followed directly by released is a
// jump (DESIGN.md §2); a release after any lapse phase, a first
// observation, an unknown (nothing decided) or a repeated release is not.
func TestReleasedWithoutLapse(t *testing.T) {
	tests := []struct {
		name string
		prev *Observation
		next Phase
		want bool
	}{
		{"active then released", &Observation{Phase: PhaseActive}, PhaseReleased, true},
		{"first observation released", nil, PhaseReleased, false},
		{"grace then released", &Observation{Phase: PhaseGrace}, PhaseReleased, false},
		{"expired then released", &Observation{Phase: PhaseExpired}, PhaseReleased, false},
		{"redemption then released", &Observation{Phase: PhaseRedemption}, PhaseReleased, false},
		{"pending delete then released", &Observation{Phase: PhasePendingDelete}, PhaseReleased, false},
		{"released again", &Observation{Phase: PhaseReleased}, PhaseReleased, false},
		{"unknown then released", &Observation{Phase: PhaseUnknown}, PhaseReleased, false},
		{"active stays active", &Observation{Phase: PhaseActive}, PhaseActive, false},
		{"active then expired", &Observation{Phase: PhaseActive}, PhaseExpired, false},
		{"active then pending delete", &Observation{Phase: PhaseActive}, PhasePendingDelete, false},
		{"active then unknown", &Observation{Phase: PhaseActive}, PhaseUnknown, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prev := "nil"
			if tc.prev != nil {
				prev = string(tc.prev.Phase)
			}
			if got := ReleasedWithoutLapse(tc.prev, tc.next); got != tc.want {
				t.Errorf("ReleasedWithoutLapse(%s, %s) = %v, want %v", prev, tc.next, got, tc.want)
			}
		})
	}
	// Every pair of phases: the jump is active -> released and nothing else.
	for _, prev := range Phases {
		for _, next := range Phases {
			want := prev == PhaseActive && next == PhaseReleased
			if got := ReleasedWithoutLapse(&Observation{Phase: prev}, next); got != want {
				t.Errorf("ReleasedWithoutLapse(%s, %s) = %v, want %v", prev, next, got, want)
			}
		}
	}
}
