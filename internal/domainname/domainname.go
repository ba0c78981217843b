// Package domainname turns email addresses and host names into the
// registrable domain that domainguard watches (DESIGN.md §4).
//
// Every accepted name is an IDNA A-label in lower case made of labels of
// [a-z0-9-] joined by dots, so it is always safe to use as a sequence of
// NATS subject tokens. Anything else is rejected with an error that wraps
// ErrInvalid.
//
// Internationalised names are converted with the strict IDNA2008
// registration profile after Unicode lower-casing. Mixed-script names
// (homoglyphs such as "раypal.com" with a Cyrillic "а") are valid IDNA and
// are normalised consistently to their A-label ("xn--ypal-43d9g.com"), not
// rejected: such a domain can be registered, so an address on it must be
// watched like any other. Compatibility forms that the registration profile
// disallows (full-width letters, joiners in the wrong context, ...) are
// rejected.
//
// The registrable domain is the eTLD+1 under the ICANN section of the Public
// Suffix List; private suffixes such as github.io are walked up to their
// ICANN suffix, so "foo.github.io" watches "github.io".
package domainname

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// ErrInvalid is wrapped by every error this package returns for a name or
// address that cannot be watched.
var ErrInvalid = errors.New("invalid domain name")

// Limits from RFC 1035 / RFC 5321.
const (
	MaxEmailLength  = 254
	MaxDomainLength = 253
	MaxLabelLength  = 63
)

// Error describes why an input was rejected. It wraps ErrInvalid.
type Error struct {
	Input  string // the offending input, quoted in messages
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("invalid domain name %q: %s", truncate(e.Input), e.Reason)
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *Error) Unwrap() error { return ErrInvalid }

func invalid(input, format string, args ...any) error {
	return &Error{Input: input, Reason: fmt.Sprintf(format, args...)}
}

// truncate keeps error messages short for absurd inputs.
func truncate(s string) string {
	const limit = 80
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}

// FromEmail splits an address at its last "@" and returns the local part and
// the normalised domain (not yet reduced to the registrable domain).
func FromEmail(email string) (local, domain string, err error) {
	email = strings.TrimSpace(email)
	if len(email) > MaxEmailLength {
		return "", "", invalid(email, "email address longer than %d bytes", MaxEmailLength)
	}
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return "", "", invalid(email, "email address has no @")
	}
	local, host := email[:at], email[at+1:]
	if local == "" {
		return "", "", invalid(email, "email address has an empty local part")
	}
	domain, err = Normalize(host)
	if err != nil {
		return "", "", fmt.Errorf("email domain: %w", err)
	}
	return local, domain, nil
}

// StoredEmail returns the key domainguard stores an address under and
// looks it up by (DESIGN.md §7 "emails"): surrounding space trimmed, the
// local part byte for byte as given (it may be case-sensitive), "@", and
// the part after the last "@" as Normalize returns it (IDNA A-label, lower
// case, no trailing dot). Every form of one mailbox the host may send
// ("alice@Bücher.de.", "alice@xn--bcher-kva.de") has one key, so a lookup
// or removal in another form than the registration finds the address.
// Intake rejects an address whose domain does not normalise; for such an
// input (or one without "@") the trimmed input is returned unchanged.
// StoredEmail(StoredEmail(x)) == StoredEmail(x).
func StoredEmail(email string) string {
	email = strings.TrimSpace(email)
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return email
	}
	domain, err := Normalize(email[at+1:])
	if err != nil {
		return email
	}
	return email[:at+1] + domain
}

// LookupKeys returns the keys to look an address up by: StoredEmail's
// first, then OlderKeys.
func LookupKeys(email string) []string {
	return append([]string{StoredEmail(email)}, OlderKeys(email)...)
}

// OlderKeys returns the keys other than StoredEmail's that the address
// may still be stored under: before migration 0018 the key had the domain
// part only lower-cased, so a row the producer has not yet rekeyed
// (producer.RekeyAddresses) may hold the form the host sent — each label
// as U-label or A-label, with or without a trailing dot. A lookup by
// StoredEmail and these finds such a row in that window. For a domain that
// does not normalise it is the lower-cased form alone (if it differs).
// Nil when the address has no "@".
func OlderKeys(email string) []string {
	email = strings.TrimSpace(email)
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return nil
	}
	local, host := email[:at+1], email[at+1:]
	key := StoredEmail(email)
	var out []string
	add := func(form string) {
		if k := local + form; k != key && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	add(strings.ToLower(host))
	ascii, err := Normalize(host)
	if err != nil {
		return out
	}
	// Every mix of A-labels and U-labels, bounded: a name has few
	// internationalised labels, and the lookup takes the list as one array.
	forms := []string{""}
	for _, label := range strings.Split(ascii, ".") {
		variants := []string{label}
		if u, err := idna.ToUnicode(label); err == nil && u != label {
			variants = append(variants, u)
		}
		next := make([]string, 0, len(forms)*len(variants))
		for _, f := range forms {
			for _, v := range variants {
				if f != "" {
					v = f + "." + v
				}
				next = append(next, v)
			}
		}
		if len(next) > maxOlderKeyForms {
			next = next[:maxOlderKeyForms]
		}
		forms = next
	}
	for _, f := range forms {
		add(f)
		add(f + ".")
	}
	return out
}

// maxOlderKeyForms bounds the label mixes OlderKeys lists (2^5: five
// internationalised labels).
const maxOlderKeyForms = 32

// registration is the strict IDNA2008 profile for names (no mapping: the
// input is lower-cased before conversion).
var registration = idna.Registration

// Normalize returns host as a lower-case IDNA A-label with the trailing dot
// removed, or an error wrapping ErrInvalid.
func Normalize(host string) (string, error) {
	input := host
	host = strings.TrimSuffix(host, ".")
	if host == "" {
		return "", invalid(input, "empty name")
	}
	// Cheap checks before IDNA, so that hostile inputs get a clear reason.
	for i := 0; i < len(host); i++ {
		switch c := host[i]; {
		case c < 0x20 || c == 0x7f:
			return "", invalid(input, "control character at byte %d", i)
		case c == ' ' || c == '\t':
			return "", invalid(input, "space at byte %d", i)
		case c == '*' || c == '>':
			return "", invalid(input, "wildcard %q is not allowed", c)
		}
	}
	if strings.Contains(host, "..") || strings.HasPrefix(host, ".") {
		return "", invalid(input, "empty label")
	}
	// IDNA conversion of a very long input is pointless; keep the work bounded.
	if len(host) > 4*MaxDomainLength {
		return "", invalid(input, "longer than %d bytes", MaxDomainLength)
	}
	lower := strings.ToLower(host)
	if isASCII(lower) {
		// Report length and character problems in our words before IDNA
		// adds its own (hyphen placement, xn-- label validity).
		if err := checkLDH(lower); err != nil {
			return "", invalid(input, "%s", err)
		}
	}
	ascii, err := registration.ToASCII(lower)
	if err != nil {
		return "", invalid(input, "%s", truncate(err.Error()))
	}
	ascii = strings.ToLower(ascii)
	if err := checkLDH(ascii); err != nil {
		return "", invalid(input, "%s", err)
	}
	if err := checkTLD(ascii); err != nil {
		return "", invalid(input, "%s", err)
	}
	return ascii, nil
}

// normalizeQuick is Normalize, without the IDNA pass for a name that is
// already in normal form (lower-case LDH, no A-labels to validate): the
// enforcer and checker ask about stored names, many times a second.
func normalizeQuick(host string) (string, error) {
	if isASCII(host) && !strings.Contains(host, "xn--") && host == strings.ToLower(host) &&
		checkLDH(host) == nil && checkTLD(host) == nil {
		return host, nil
	}
	return Normalize(host)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// checkLDH validates an ASCII name: total length, label count, label length
// and characters.
func checkLDH(name string) error {
	if len(name) > MaxDomainLength {
		return fmt.Errorf("longer than %d bytes", MaxDomainLength)
	}
	labels := 0
	for label := range strings.SplitSeq(name, ".") {
		labels++
		if label == "" {
			return errors.New("empty label")
		}
		if len(label) > MaxLabelLength {
			return fmt.Errorf("label longer than %d bytes", MaxLabelLength)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("label %q starts or ends with a hyphen", label)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("disallowed character %q", c)
			}
		}
	}
	if labels < 2 {
		return errors.New("needs at least two labels")
	}
	return nil
}

// Registrable returns the registrable domain (eTLD+1 under the ICANN section
// of the Public Suffix List) of host. A host that is itself a public suffix
// is an error.
func Registrable(host string) (string, error) {
	name, err := Normalize(host)
	if err != nil {
		return "", err
	}
	suffix := icannSuffix(name)
	if name == suffix {
		return "", invalid(host, "%q is a public suffix, not a registrable domain", name)
	}
	rest := strings.TrimSuffix(name, "."+suffix)
	if i := strings.LastIndexByte(rest, '.'); i >= 0 {
		rest = rest[i+1:]
	}
	return rest + "." + suffix, nil
}

// icannSuffix returns the public suffix of name under the ICANN section of
// the PSL, walking up from private suffixes (github.io → io). Names under a
// TLD the list does not know get their last label (the PSL "*" rule).
func icannSuffix(name string) string {
	suffix, icann := publicsuffix.PublicSuffix(name)
	for !icann {
		dot := strings.IndexByte(suffix, '.')
		if dot < 0 {
			return suffix
		}
		suffix, icann = publicsuffix.PublicSuffix(suffix[dot+1:])
	}
	return suffix
}

// RegistrableFromEmail returns the registrable domain of an email address.
func RegistrableFromEmail(email string) (string, error) {
	_, domain, err := FromEmail(email)
	if err != nil {
		return "", err
	}
	reg, err := Registrable(domain)
	if err != nil {
		return "", fmt.Errorf("email domain: %w", err)
	}
	return reg, nil
}

// TLD returns the last label of domain ("" for "").
func TLD(domain string) string {
	domain = strings.TrimSuffix(domain, ".")
	if i := strings.LastIndexByte(domain, '.'); i >= 0 {
		return domain[i+1:]
	}
	return domain
}

// PublicSuffix returns the public suffix of name under the ICANN section
// of the Public Suffix List ("cs.ox.ac.uk" → "ac.uk", "foo.github.io" →
// "io"): the zone whose registry holds the registrable domain.
func PublicSuffix(name string) string {
	return icannSuffix(strings.ToLower(strings.TrimSuffix(name, ".")))
}

// PrivateSuffix returns the suffix from the private section of the Public
// Suffix List that host lies strictly under ("acme.us.com" → "us.com",
// "foo.github.io" → "github.io"), or "" when there is none. Such a suffix
// is run by a company that hands out names below it on its own terms: the
// user's own name can lapse there while the registrable domain domainguard
// watches (us.com, github.io) stays active.
func PrivateSuffix(host string) string {
	name, err := normalizeQuick(host)
	if err != nil {
		return ""
	}
	suffix, icann := publicsuffix.PublicSuffix(name)
	if icann || !strings.Contains(suffix, ".") || name == suffix {
		return "" // ICANN suffix, or the "*" rule of a TLD the list does not know
	}
	return suffix
}

// WatchName returns the name a user holds under a private PSL suffix: the
// label just below the suffix and the suffix ("mail.acme.us.com" →
// "acme.us.com", "foo.github.io" → "foo.github.io"), or "" when host lies
// under no private suffix (PrivateSuffix). No registry holds this name, so
// only the DNS can watch it (DESIGN.md §2 "Private suffixes").
func WatchName(host string) string {
	suffix := PrivateSuffix(host)
	if suffix == "" {
		return ""
	}
	name, _ := normalizeQuick(host) // PrivateSuffix normalised it already
	rest := strings.TrimSuffix(name, "."+suffix)
	if i := strings.LastIndexByte(rest, '.'); i >= 0 {
		rest = rest[i+1:]
	}
	return rest + "." + suffix
}

// watchNameRule is the version of WatchName's own rule (the label kept
// below the suffix): change it whenever WatchName gives another result for
// some host under the same Public Suffix List, so that the watch names
// stored before are computed again (WatchNameRevision). A decimal number,
// raised by one: CompareWatchNameRevisions orders revisions by it first.
const watchNameRule = "1"

// watchNameRuleSep joins the list's revision and watchNameRule in
// WatchNameRevision.
const watchNameRuleSep = "; watch-name rule "

// WatchNameRevision identifies what WatchName's results depend on: the
// Public Suffix List compiled in (golang.org/x/net/publicsuffix names its
// git revision) and watchNameRule. A watch name stored under the same
// revision needs no computing again; another revision may place existing
// hosts under a new private suffix, or under none. "" means the list does
// not say which it is: treat every stored name as stale then.
func WatchNameRevision() string {
	psl := publicsuffix.List.String()
	if psl == "" {
		return ""
	}
	return psl + watchNameRuleSep + watchNameRule
}

// CompareWatchNameRevisions orders two WatchNameRevision results: -1 when a
// is older than b, +1 when newer, 0 when neither (the same revision, or
// two lists of the same date). Older means a lower watch-name rule, or the
// same rule and a list of an earlier date: the list's git revision is a
// hash, but golang.org/x/net/publicsuffix names the list as
// "publicsuffix.org's public_suffix_list.dat, git revision SHA (DATE)" with
// DATE the commit's RFC 3339 time. ok is false when either cannot be read
// so ("" included): such a revision says nothing about order.
func CompareWatchNameRevisions(a, b string) (order int, ok bool) {
	ruleA, listA, okA := parseWatchNameRevision(a)
	ruleB, listB, okB := parseWatchNameRevision(b)
	if !okA || !okB {
		return 0, false
	}
	if order = cmp.Compare(ruleA, ruleB); order != 0 {
		return order, true
	}
	return listA.Compare(listB), true
}

// parseWatchNameRevision reads the rule and the list's date out of a
// WatchNameRevision result.
func parseWatchNameRevision(rev string) (rule uint64, list time.Time, ok bool) {
	i := strings.LastIndex(rev, watchNameRuleSep)
	if i < 0 {
		return 0, time.Time{}, false
	}
	rule, err := strconv.ParseUint(rev[i+len(watchNameRuleSep):], 10, 64)
	if err != nil {
		return 0, time.Time{}, false
	}
	psl, found := strings.CutSuffix(rev[:i], ")")
	j := strings.LastIndexByte(psl, '(')
	if !found || j < 0 {
		return 0, time.Time{}, false
	}
	if list, err = time.Parse(time.RFC3339, psl[j+1:]); err != nil {
		return 0, time.Time{}, false
	}
	return rule, list, true
}

// WatchNameFromEmail returns WatchName of the address's domain ("" for an
// invalid address or one under no private suffix).
func WatchNameFromEmail(email string) string {
	_, domain, err := FromEmail(email)
	if err != nil {
		return ""
	}
	return WatchName(domain)
}

// IsWatchName reports whether name is itself a name held under a private
// suffix (WatchName(name) == name): such a name is checked through the DNS
// alone and never reduced to its registrable domain.
func IsWatchName(name string) bool {
	if strings.Count(strings.TrimSuffix(name, "."), ".") < 2 {
		return false // a label and a private suffix of two labels at least
	}
	w := WatchName(name)
	return w != "" && w == strings.ToLower(strings.TrimSuffix(strings.TrimSpace(name), "."))
}

// CheckName returns the name a check of host looks up: host's own name
// when it is held under a private suffix (IsWatchName), else its
// registrable domain.
func CheckName(host string) (string, error) {
	if IsWatchName(host) {
		return WatchName(host), nil
	}
	return Registrable(host)
}

// Covered reports whether watching the registrable domain of email covers
// a lapse of the address's own domain; when it does not (the domain lies
// under a private PSL suffix, see PrivateSuffix) why says so. Invalid
// addresses are not covered either.
func Covered(email string) (covered bool, why string) {
	_, domain, err := FromEmail(email)
	if err != nil {
		return false, err.Error()
	}
	if s := PrivateSuffix(domain); s != "" {
		reg, _ := Registrable(domain)
		return false, fmt.Sprintf("%s lies under the private suffix %s: domainguard watches %s, which stays active when %s lapses with %s's operator (watch the full name with DNS evidence)",
			domain, s, reg, domain, s)
	}
	return true, ""
}
