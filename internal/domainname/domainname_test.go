package domainname

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	label64 := strings.Repeat("a", 64)
	tests := []struct {
		in      string
		want    string
		wantErr string // substring of the error; "" = must succeed
	}{
		{in: "example.com", want: "example.com"},
		{in: "Example.COM", want: "example.com"},
		{in: "example.com.", want: "example.com"},
		{in: "mail.example.co.uk", want: "mail.example.co.uk"},
		{in: "bücher.de", want: "xn--bcher-kva.de"},
		{in: "BÜCHER.de", want: "xn--bcher-kva.de"},
		{in: "xn--bcher-kva.de", want: "xn--bcher-kva.de"},
		{in: "XN--BCHER-KVA.DE", want: "xn--bcher-kva.de"},
		{in: "faß.de", want: "xn--fa-hia.de"},          // IDNA2008, non-transitional
		{in: "раypal.com", want: "xn--ypal-43d9g.com"}, // mixed script: normalised, not rejected
		{in: "пример.рф", want: "xn--e1afmkfd.xn--p1ai"},
		{in: "123.com", want: "123.com"},
		{in: "a-b.com", want: "a-b.com"},
		{in: label63 + ".com", want: label63 + ".com"},
		{in: "", wantErr: "empty name"},
		{in: ".", wantErr: "empty name"},
		{in: "com", wantErr: "at least two labels"},
		{in: "a..b", wantErr: "empty label"},
		{in: ".example.com", wantErr: "empty label"},
		{in: "example.com..", wantErr: "empty label"},
		{in: "*.example.com", wantErr: "wildcard"},
		{in: "foo.>", wantErr: "wildcard"},
		{in: "exa mple.com", wantErr: "space"},
		{in: "example.com\t", wantErr: "control character"},
		{in: "exam\x00ple.com", wantErr: "control character"},
		{in: "exam\nple.com", wantErr: "control character"},
		{in: "exam\x7fple.com", wantErr: "control character"},
		{in: label64 + ".com", wantErr: "label longer than 63"},
		{in: strings.Repeat("a", 300) + ".com", wantErr: "longer than 253"},
		{in: strings.Repeat(label63+".", 4) + "com", wantErr: "longer than 253"},
		{in: "-example.com", wantErr: "hyphen"},
		{in: "example-.com", wantErr: "hyphen"},
		{in: "ab--cd.com", wantErr: "invalid"},
		{in: "under_score.com", wantErr: "disallowed"},
		{in: "xn--zz.de", wantErr: "invalid"},
		{in: "ＡＢＣ.com", wantErr: "disallowed"}, // full-width: not mapped by the registration profile
		{in: "a\u200db.com", wantErr: "invalid"},
		{in: "exa%mple.com", wantErr: "disallowed"},
		{in: "example.com/path", wantErr: "disallowed"},
		{in: "user@example.com", wantErr: "disallowed"},
		{in: "[127.0.0.1]", wantErr: "disallowed"},
		{in: "\xff\xfe.com", wantErr: "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Normalize(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Normalize(%q) = %q, want error containing %q", tt.in, got, tt.wantErr)
				}
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("error %v does not wrap ErrInvalid", err)
				}
				var e *Error
				if !errors.As(err, &e) {
					t.Errorf("error %v is not *Error", err)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q does not contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Normalize(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
			}
			again, err := Normalize(got)
			if err != nil || again != got {
				t.Errorf("Normalize is not idempotent: %q -> %q, %v", got, again, err)
			}
		})
	}
}

func TestRegistrable(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr string
	}{
		{in: "example.com", want: "example.com"},
		{in: "mail.example.com", want: "example.com"},
		{in: "a.b.c.example.com.", want: "example.com"},
		{in: "cs.uni.ac.uk", want: "uni.ac.uk"},
		{in: "example.co.uk", want: "example.co.uk"},
		{in: "foo.github.io", want: "github.io"}, // private suffix walked to ICANN "io"
		{in: "a.b.github.io", want: "github.io"},
		{in: "github.io", want: "github.io"},
		{in: "x.s3.amazonaws.com", want: "amazonaws.com"},
		{in: "www.bücher.de", want: "xn--bcher-kva.de"},
		{in: "Mail.Example.NO", want: "example.no"},
		{in: "example.zzz", want: "example.zzz"}, // TLD unknown to the PSL: "*" rule
		{in: "a.b.example.zzz", want: "example.zzz"},
		{in: "foo.bar.kawasaki.jp", want: "foo.bar.kawasaki.jp"}, // wildcard ICANN rule *.kawasaki.jp
		{in: "co.uk", wantErr: "public suffix"},
		{in: "ac.uk", wantErr: "public suffix"},
		{in: "bar.kawasaki.jp", wantErr: "public suffix"},
		{in: "com", wantErr: "at least two labels"},
		{in: "*.example.com", wantErr: "wildcard"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Registrable(tt.in)
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Registrable(%q) = %q, %v; want ErrInvalid containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Registrable(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestFromEmail(t *testing.T) {
	tests := []struct {
		in         string
		wantLocal  string
		wantDomain string
		wantReg    string
		wantErr    string
	}{
		{in: "alice@example.com", wantLocal: "alice", wantDomain: "example.com", wantReg: "example.com"},
		{in: "  Alice@Mail.Example.COM  ", wantLocal: "Alice", wantDomain: "mail.example.com", wantReg: "example.com"},
		{in: `"a@b"@example.org`, wantLocal: `"a@b"`, wantDomain: "example.org", wantReg: "example.org"},
		{in: "bob@bücher.de", wantLocal: "bob", wantDomain: "xn--bcher-kva.de", wantReg: "xn--bcher-kva.de"},
		{in: "carol@cs.uni.ac.uk", wantLocal: "carol", wantDomain: "cs.uni.ac.uk", wantReg: "uni.ac.uk"},
		{in: "dave@example.com.", wantLocal: "dave", wantDomain: "example.com", wantReg: "example.com"},
		{in: "user@@x.com", wantLocal: "user@", wantDomain: "x.com", wantReg: "x.com"}, // last @ wins; local part is the host's business
		{in: "no-at-sign.example.com", wantErr: "no @"},
		{in: "@example.com", wantErr: "empty local part"},
		{in: "user@", wantErr: "empty name"},
		{in: "user@x.com@", wantErr: "empty name"},
		{in: "user@co.uk", wantDomain: "co.uk", wantLocal: "user", wantErr: "public suffix"},
		{in: "user@exa mple.com", wantErr: "space"},
		{in: "user@*.com", wantErr: "wildcard"},
		{in: strings.Repeat("a", 250) + "@x.com", wantErr: "longer than 254"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			reg, regErr := RegistrableFromEmail(tt.in)
			local, domain, err := FromEmail(tt.in)
			if tt.wantErr != "" {
				if regErr == nil || !errors.Is(regErr, ErrInvalid) || !strings.Contains(regErr.Error(), tt.wantErr) {
					t.Fatalf("RegistrableFromEmail(%q) = %q, %v; want error containing %q", tt.in, reg, regErr, tt.wantErr)
				}
				if tt.wantDomain == "" && err == nil {
					t.Fatalf("FromEmail(%q) = %q, %q; want error", tt.in, local, domain)
				}
				return
			}
			if err != nil || local != tt.wantLocal || domain != tt.wantDomain {
				t.Fatalf("FromEmail(%q) = %q, %q, %v; want %q, %q", tt.in, local, domain, err, tt.wantLocal, tt.wantDomain)
			}
			if regErr != nil || reg != tt.wantReg {
				t.Fatalf("RegistrableFromEmail(%q) = %q, %v; want %q", tt.in, reg, regErr, tt.wantReg)
			}
		})
	}
}

func TestTLD(t *testing.T) {
	for in, want := range map[string]string{
		"example.com":           "com",
		"a.b.co.uk":             "uk",
		"example.com.":          "com",
		"xn--e1afmkfd.xn--p1ai": "xn--p1ai",
		"com":                   "com",
		"":                      "",
	} {
		if got := TLD(in); got != want {
			t.Errorf("TLD(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestErrorMessageTruncatesHugeInput(t *testing.T) {
	_, err := Normalize(strings.Repeat("a", 5000) + ".com")
	if err == nil || len(err.Error()) > 300 {
		t.Fatalf("want a short error, got %d bytes: %v", len(err.Error()), err)
	}
}

func FuzzRegistrable(f *testing.F) {
	for _, s := range []string{"example.com", "foo.github.io", "bücher.de", "co.uk", "a..b", "*.x.com", "раypal.com", "cs.uni.ac.uk", "xn--bcher-kva.de."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		got, err := Registrable(host)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Registrable(%q) error %v does not wrap ErrInvalid", host, err)
			}
			return
		}
		for i := 0; i < len(got); i++ {
			c := got[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
				t.Fatalf("Registrable(%q) = %q contains %q", host, got, c)
			}
		}
		again, err := Normalize(got)
		if err != nil || again != got {
			t.Fatalf("Registrable(%q) = %q does not re-normalise to itself: %q, %v", host, got, again, err)
		}
		if reg, err := Registrable(got); err != nil || reg != got {
			t.Fatalf("Registrable(%q) = %q is not a fixed point: %q, %v", host, got, reg, err)
		}
	})
}

func TestPrivateSuffixAndCoverage(t *testing.T) {
	for _, tt := range []struct {
		email   string
		private string
		covered bool
	}{
		{"a@acme.us.com", "us.com", false},
		{"a@acme.eu.org", "eu.org", false},
		{"a@foo.pp.ua", "pp.ua", false},
		{"a@foo.github.io", "github.io", false},
		{"a@x.foo.github.io", "github.io", false},
		{"a@github.io", "", true}, // the suffix's own operator
		{"a@example.com", "", true},
		{"a@cs.ox.ac.uk", "", true}, // ac.uk is an ICANN suffix
		{"a@example.unknowntld", "", true},
	} {
		_, domain, _ := FromEmail(tt.email)
		if got := PrivateSuffix(domain); got != tt.private {
			t.Errorf("PrivateSuffix(%q) = %q, want %q", domain, got, tt.private)
		}
		covered, why := Covered(tt.email)
		if covered != tt.covered || covered != (why == "") {
			t.Errorf("Covered(%q) = %v, %q; want %v", tt.email, covered, why, tt.covered)
		}
	}
	if got := PublicSuffix("cs.ox.ac.uk"); got != "ac.uk" {
		t.Errorf("PublicSuffix(cs.ox.ac.uk) = %q", got)
	}
	if got := PublicSuffix("foo.github.io"); got != "io" {
		t.Errorf("PublicSuffix(foo.github.io) = %q", got)
	}
}

func TestWatchNameAndCheckName(t *testing.T) {
	for _, tt := range []struct {
		host  string
		watch string // WatchName
		check string // CheckName ("" = error)
	}{
		{"acme.us.com", "acme.us.com", "acme.us.com"},
		{"mail.acme.us.com", "acme.us.com", "us.com"}, // a check is of a stored name: the watch name or a registrable domain
		{"ACME.EU.ORG.", "acme.eu.org", "acme.eu.org"},
		{"foo.pp.ua", "foo.pp.ua", "foo.pp.ua"},
		{"foo.github.io", "foo.github.io", "foo.github.io"},
		{"x.foo.github.io", "foo.github.io", "github.io"},
		{"us.com", "", "us.com"},
		{"github.io", "", "github.io"},
		{"example.com", "", "example.com"},
		{"www.example.com", "", "example.com"},
		{"cs.ox.ac.uk", "", "ox.ac.uk"},
		{"com", "", ""},
	} {
		if got := WatchName(tt.host); got != tt.watch {
			t.Errorf("WatchName(%q) = %q, want %q", tt.host, got, tt.watch)
		}
		if got := IsWatchName(tt.host); got != (tt.watch != "" && tt.watch == tt.check) {
			t.Errorf("IsWatchName(%q) = %v", tt.host, got)
		}
		got, err := CheckName(tt.host)
		if (err != nil) != (tt.check == "") || got != tt.check {
			t.Errorf("CheckName(%q) = %q, %v; want %q", tt.host, got, err, tt.check)
		}
	}
	if got := WatchNameFromEmail("Alice@Foo.GitHub.io"); got != "foo.github.io" {
		t.Errorf("WatchNameFromEmail = %q", got)
	}
}

// The revision names the list compiled in, which the producer keys its
// watch-name backfill on: it must say which list it is, and say it the
// same way every time.
func TestWatchNameRevision(t *testing.T) {
	rev := WatchNameRevision()
	if !strings.Contains(rev, "public_suffix_list.dat, git revision ") || !strings.HasSuffix(rev, "; watch-name rule "+watchNameRule) {
		t.Fatalf("WatchNameRevision() = %q, want the PSL's git revision and the rule version", rev)
	}
	if again := WatchNameRevision(); again != rev {
		t.Fatalf("WatchNameRevision() = %q, then %q", rev, again)
	}
	// The producer's backfill never goes back to an older list only while
	// the revision in use can be ordered: a golang.org/x/net that names its
	// list another way must fail here, not turn that rule off unseen.
	if order, ok := CompareWatchNameRevisions(rev, rev); !ok || order != 0 {
		t.Fatalf("CompareWatchNameRevisions(%q, itself) = %d, %v; want 0, true", rev, order, ok)
	}
}

func TestCompareWatchNameRevisions(t *testing.T) {
	rev := func(sha, date, rule string) string {
		return "publicsuffix.org's public_suffix_list.dat, git revision " + sha + " (" + date + ")" + watchNameRuleSep + rule
	}
	aug := rev("63cb2d6fd0b2d81ba5b1e4fb8e3a1d5b0c8e1f7a", "2023-08-03T10:01:25Z", "1")
	feb := rev("d6c92f1bbb7433e5db7b8405c25d4035fb8ff376", "2026-02-06T07:36:33Z", "1")
	for _, c := range []struct {
		a, b  string
		order int
		ok    bool
	}{
		{aug, feb, -1, true},
		{feb, aug, 1, true},
		{feb, feb, 0, true},
		{feb, rev("0000", "2026-02-06T07:36:33Z", "1"), 0, true},      // another hash of the same date
		{feb, rev("d6c9", "2026-02-06T08:36:33+01:00", "1"), 0, true}, // the same instant
		{rev("d6c9", "2026-02-06T07:36:33Z", "1"), rev("d6c9", "2026-02-06T07:36:34Z", "1"), -1, true},
		{rev("63cb", "2023-08-03T10:01:25Z", "2"), feb, 1, true},   // the rule first
		{feb, rev("63cb", "2023-08-03T10:01:25Z", "10"), -1, true}, // as a number
		{"", feb, 0, false}, // never completed
		{feb, "", 0, false},
		{"another list", feb, 0, false},
		{rev("d6c9", "2026-02-06", "1"), feb, 0, false}, // not RFC 3339
		{rev("d6c9", "2026-02-06T07:36:33Z", "one"), feb, 0, false},
		{rev("d6c9", "2026-02-06T07:36:33Z", "-1"), feb, 0, false},
		{rev("d6c9", "2026-02-06T07:36:33Z", ""), feb, 0, false},
		{"publicsuffix.org's public_suffix_list.dat, git revision d6c9; watch-name rule 1", feb, 0, false}, // no date
		{"2026-02-06T07:36:33Z)" + watchNameRuleSep + "1", feb, 0, false},
		{"(2026-02-06T07:36:33Z" + watchNameRuleSep + "1", feb, 0, false},
	} {
		if order, ok := CompareWatchNameRevisions(c.a, c.b); order != c.order || ok != c.ok {
			t.Errorf("CompareWatchNameRevisions(%q, %q) = %d, %v; want %d, %v", c.a, c.b, order, ok, c.order, c.ok)
		}
	}
}

// Any two strings (a marker row is whatever the table holds) give an
// answer, and one that is antisymmetric.
func FuzzCompareWatchNameRevisions(f *testing.F) {
	f.Add(WatchNameRevision(), "")
	f.Add(WatchNameRevision(), "x (2023-08-03T10:01:25Z)"+watchNameRuleSep+"1")
	f.Add("(2023-08-03T10:01:25+02:00)"+watchNameRuleSep+"18446744073709551615", "()"+watchNameRuleSep)
	f.Fuzz(func(t *testing.T, a, b string) {
		ab, okAB := CompareWatchNameRevisions(a, b)
		ba, okBA := CompareWatchNameRevisions(b, a)
		if okAB != okBA || ab != -ba || ab < -1 || ab > 1 {
			t.Fatalf("CompareWatchNameRevisions(%q, %q) = %d, %v but reversed %d, %v", a, b, ab, okAB, ba, okBA)
		}
	})
}

// OlderKeys lists the forms a row stored before migration 0018 may hold,
// whatever form the lookup comes in, and never the current key.
func TestOlderKeys(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"zoe@xn--bcher-kva.de", []string{"zoe@xn--bcher-kva.de.", "zoe@bücher.de", "zoe@bücher.de."}},
		{"zoe@BÜCHER.de", []string{"zoe@bücher.de", "zoe@xn--bcher-kva.de.", "zoe@bücher.de."}},
		{"Zoe@Example.COM.", []string{"Zoe@example.com."}},
		{"zoe@example.com", []string{"zoe@example.com."}},
		// Labels mixed: the host may have sent either form of each.
		{"zoe@xn--bcher-kva.xn--p1ai", []string{"zoe@xn--bcher-kva.xn--p1ai.", "zoe@xn--bcher-kva.рф", "zoe@xn--bcher-kva.рф.",
			"zoe@bücher.xn--p1ai", "zoe@bücher.xn--p1ai.", "zoe@bücher.рф", "zoe@bücher.рф."}},
		// A domain that does not normalise had its lower-cased form as key.
		{"Zoe@Bad_Domain..X", []string{"Zoe@bad_domain..x"}},
		{"zoe@bad_domain..x", nil},
		{"no-at-sign", nil},
		{"@", nil},
		{"a@", nil},
		{"a@b@Example.com", []string{"a@b@example.com."}},
	} {
		got := OlderKeys(tc.in)
		if !slices.Equal(got, tc.want) {
			t.Errorf("OlderKeys(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if slices.Contains(got, StoredEmail(tc.in)) {
			t.Errorf("OlderKeys(%q) holds the current key", tc.in)
		}
	}
}
