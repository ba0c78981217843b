package producer

import (
	"fmt"
	"strings"

	"github.com/domainguard/domainguard/internal/domainname"
)

// Address is a host's email address as domainguard stores it.
type Address struct {
	UserID string
	// Email is the key addresses are stored and looked up by
	// (domainname.StoredEmail): the local part as given, the domain part
	// normalised (IDNA A-label, lower case, no trailing dot).
	Email string
	// AsSent is the address exactly as the host sent it (surrounding white
	// space trimmed), stored beside the key so that what domainguard
	// reports names the address in the host's own form.
	AsSent string
	// Domain is the registrable domain of the address.
	Domain string
	// WatchName is the address's own name under a private PSL suffix
	// (domainname.WatchName: "acme.us.com"), "" for other addresses. With
	// DNS evidence on it is watched too (Config.WatchPrivateNames).
	WatchName string
}

// NormalizeAddress checks an address from the host and returns the stored
// form of it (see the package doc). Errors wrap domainname.ErrInvalid or
// describe a bad user id.
func NormalizeAddress(userID, email string) (Address, error) {
	if err := checkText("user_id", userID, 256); err != nil {
		return Address{}, err
	}
	email = strings.TrimSpace(email)
	if err := checkText("email", email, domainname.MaxEmailLength); err != nil {
		return Address{}, err
	}
	domain, err := domainname.RegistrableFromEmail(email)
	if err != nil {
		return Address{}, err
	}
	return Address{UserID: userID, Email: domainname.StoredEmail(email), AsSent: email, Domain: domain,
		WatchName: domainname.WatchNameFromEmail(email)}, nil
}

// nullable is s, or nil (SQL NULL) when s is empty.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func checkText(field, v string, max int) error {
	if strings.TrimSpace(v) == "" {
		return fmt.Errorf("%s is empty", field)
	}
	if len(v) > max {
		return fmt.Errorf("%s is longer than %d bytes", field, max)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f {
			return fmt.Errorf("%s contains a control character at byte %d", field, i)
		}
	}
	return nil
}
