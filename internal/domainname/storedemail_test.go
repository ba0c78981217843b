package domainname

import (
	"strings"
	"testing"

	"golang.org/x/net/idna"
)

func TestStoredEmail(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"alice@example.com", "alice@example.com"},
		{"  alice@example.com\t", "alice@example.com"},
		{"Alice@EXAMPLE.COM", "Alice@example.com"}, // the local part stays as given
		{"alice@example.com.", "alice@example.com"},
		{"alice@bücher.de", "alice@xn--bcher-kva.de"},
		{"alice@BÜCHER.de", "alice@xn--bcher-kva.de"},
		{"alice@XN--BCHER-KVA.DE.", "alice@xn--bcher-kva.de"},
		{"Ünïcode@bücher.de", "Ünïcode@xn--bcher-kva.de"},
		{`"a@b"@Example.com`, `"a@b"@example.com`}, // the last "@" splits
		// Not normalisable (intake rejects these): returned trimmed, as given.
		{"no-at-sign", "no-at-sign"},
		{"alice@Exa mple.com", "alice@Exa mple.com"},
		{"alice@COM", "alice@COM"},
		{" @ ", "@"},
	} {
		if got := StoredEmail(tt.in); got != tt.want {
			t.Errorf("StoredEmail(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzStoredEmail: the key never panics, is a fixed point, and every
// equivalent form of a normalisable address (trailing dot, A-label, U-label,
// upper-case A-label) has the same key.
func FuzzStoredEmail(f *testing.F) {
	for _, s := range []string{"alice@example.com", "Alice@BÜCHER.de.", "a@xn--bcher-kva.de", "a@b@c.com", "@", "x", " a@пример.рф ", "a@faß.de", "a@..", "a@com."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, email string) {
		key := StoredEmail(email)
		if again := StoredEmail(key); again != key {
			t.Fatalf("StoredEmail(%q) = %q, but StoredEmail(%q) = %q", email, key, key, again)
		}
		trimmed := strings.TrimSpace(email)
		at := strings.LastIndexByte(trimmed, '@')
		if at < 0 {
			return
		}
		local, host := trimmed[:at], trimmed[at+1:]
		domain, err := Normalize(host)
		if err != nil {
			if key != trimmed {
				t.Fatalf("StoredEmail(%q) = %q: an address whose domain does not normalise is kept as given", email, key)
			}
			return
		}
		if !strings.HasPrefix(key, local+"@") {
			t.Fatalf("StoredEmail(%q) = %q changed the local part %q", email, key, local)
		}
		forms := []string{local + "@" + domain, local + "@" + domain + ".", local + "@" + strings.ToUpper(domain), " " + local + "@" + strings.TrimSuffix(host, ".") + "."}
		if u, err := idna.ToUnicode(domain); err == nil {
			if _, err := Normalize(u); err == nil {
				forms = append(forms, local+"@"+u)
			}
		}
		for _, form := range forms {
			if got := StoredEmail(form); got != key {
				t.Fatalf("StoredEmail(%q) = %q, but the equivalent %q has the key %q", email, key, form, got)
			}
		}
	})
}
