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
