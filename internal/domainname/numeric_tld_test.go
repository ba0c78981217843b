package domainname

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizeRejectsNumericTLD(t *testing.T) {
	for _, host := range []string{"1.2.3.4", "example.123", "10.0.0.1."} {
		_, err := Normalize(host)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "numeric") {
			t.Errorf("Normalize(%q) = %v, want ErrInvalid about a numeric top-level label", host, err)
		}
	}
	if _, err := RegistrableFromEmail("x@1.2.3.4"); err == nil {
		t.Error(`RegistrableFromEmail("x@1.2.3.4") accepted an IP address as a domain`)
	}
	for _, host := range []string{"123.com", "4chan.org", "example.xn--p1ai"} {
		if _, err := Normalize(host); err != nil {
			t.Errorf("Normalize(%q) = %v, want accepted", host, err)
		}
	}
}

// checkTLD cuts the top-level label as TLD does: the trailing dot of a
// fully qualified name is the root, not an empty last label.
func TestCheckTLDTrailingDot(t *testing.T) {
	for _, tc := range []struct {
		name    string
		numeric bool
	}{
		{"example.com.", false},
		{"example.com", false},
		{"10.0.0.1.", true},
		{"10.0.0.1", true},
	} {
		err := checkTLD(tc.name)
		if got := err != nil; got != tc.numeric {
			t.Errorf("checkTLD(%q) = %v, want numeric %v", tc.name, err, tc.numeric)
		}
		if tc.numeric && (err == nil || !strings.Contains(err.Error(), `"1"`)) {
			t.Errorf("checkTLD(%q) = %v, want it to name the label \"1\"", tc.name, err)
		}
	}
}
