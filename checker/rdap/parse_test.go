package rdap

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func mustTime(t *testing.T, s string) *time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return &v
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

func TestParseDomain(t *testing.T) {
	tests := []struct {
		file          string
		statuses      []string
		registered    string
		expires       string
		lastChanged   string
		deletion      string
		handle        string
		registrar     string
		nameservers   []string
		detailHas     []string
		detailMissing bool
	}{
		{
			file:        "active-com.json",
			statuses:    []string{"client delete prohibited", "client transfer prohibited", "client update prohibited", "server delete prohibited"},
			registered:  "2010-03-01T12:00:00Z",
			expires:     "2026-03-01T12:00:00Z",
			lastChanged: "2024-02-20T08:15:00Z",
			handle:      "2001234567_DOMAIN_COM-VRSN",
			registrar:   "292",
			nameservers: []string{"ns1.example-dns.net", "ns2.example-dns.net"},
		},
		{
			file:        "arp-healthy-com.json",
			statuses:    []string{"auto renew period", "client transfer prohibited"},
			registered:  "2015-05-20T09:30:00Z",
			expires:     "2026-05-20T09:30:00Z",
			lastChanged: "2025-05-21T00:00:00Z",
			handle:      "2001234568_DOMAIN_COM-VRSN",
			registrar:   "292",
			nameservers: []string{"ns1.example-dns.net", "ns2.example-dns.net"},
		},
		{
			file:        "arp-hold-com.json",
			statuses:    []string{"auto renew period", "client hold", "client transfer prohibited"},
			registered:  "2015-05-10T09:30:00Z",
			expires:     "2026-05-10T09:30:00Z",
			lastChanged: "2025-05-15T00:00:00Z",
			handle:      "2001234569_DOMAIN_COM-VRSN",
			registrar:   "292",
			nameservers: []string{"ns1.parking-registrar.test", "ns2.parking-registrar.test"},
		},
		{
			file:        "redemption-com.json",
			statuses:    []string{"pending delete", "redemption period"},
			registered:  "2012-04-01T00:00:00Z",
			expires:     "2025-04-01T00:00:00Z",
			lastChanged: "2025-05-20T00:00:00Z",
			handle:      "2001234570_DOMAIN_COM-VRSN",
			registrar:   "292",
		},
		{
			file:        "pending-delete-com.json",
			statuses:    []string{"pending delete"},
			registered:  "2012-03-01T00:00:00Z",
			expires:     "2025-03-01T00:00:00Z",
			lastChanged: "2025-05-28T00:00:00Z",
			deletion:    "2025-06-02T18:00:00Z",
			handle:      "2001234571_DOMAIN_COM-VRSN",
			registrar:   "292",
		},
		{
			// .no publishes neither status nor expiration, and its
			// registrar has no IANA id.
			file:        "no-status-no.json",
			registered:  "2017-01-24T12:09:23Z",
			lastChanged: "2021-01-14T05:16:59Z",
			handle:      "EKS12345D-NORID",
			nameservers: []string{"ns1.eksempel-dns.no", "ns2.eksempel-dns.no"},
		},
		{
			file:        "expired-past-xyz.json",
			statuses:    []string{"client hold", "client transfer prohibited"},
			registered:  "2019-05-01T00:00:00Z",
			expires:     "2025-05-01T23:59:59Z",
			handle:      "D900001-CNIC",
			registrar:   "9999",
			nameservers: []string{"ns1.example-dns.net"},
		},
		{
			// date only, +0000 without colon, space separator, placeholder
			// years; numeric registrar id; duplicate and dotted nameservers.
			file:        "odd-dates-com.json",
			statuses:    []string{"active"},
			registered:  "2010-03-01T00:00:00Z",
			expires:     "2026-03-01T07:00:00Z",
			lastChanged: "2024-02-20T08:15:00Z",
			handle:      "2001234572_DOMAIN_COM-VRSN",
			registrar:   "1647",
			nameservers: []string{"ns0.example-dns.net", "ns1.example-dns.net"},
			detailHas:   []string{`ignored deletion date "0000-00-00T00:00:00Z"`},
		},
		{
			file:        "escaped-slashes-com.json",
			statuses:    []string{"client transfer prohibited"},
			registered:  "2021-03-16T17:07:37Z",
			expires:     "2026-03-16T17:07:37Z",
			handle:      "2001234573_DOMAIN_COM-VRSN",
			registrar:   "1647",
			nameservers: []string{"ns1.dns-parking.test", "ns2.dns-parking.test"},
		},
		{
			// "Registered", "EXPIRY", "last update", a later
			// "reregistration", a numeric eventAction; the registrant's
			// IANA-looking id is not the registrar's.
			file:        "nonstandard-events-com.json",
			statuses:    []string{"client transfer prohibited", "active"},
			registered:  "2023-07-01T10:00:00Z",
			expires:     "2026-07-01T10:00:00Z",
			lastChanged: "2024-07-01T22:00:00Z",
			handle:      "2001234574_DOMAIN_COM-VRSN",
			registrar:   "146",
			nameservers: []string{"ns1.example-dns.net"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			ev, err := ParseDomain(readFixture(t, tt.file))
			if err != nil {
				t.Fatalf("ParseDomain: %v", err)
			}
			if !slices.Equal(ev.Statuses, tt.statuses) {
				t.Errorf("statuses = %q, want %q", ev.Statuses, tt.statuses)
			}
			for _, c := range []struct {
				name string
				got  *time.Time
				want string
			}{
				{"registered", ev.RegisteredAt, tt.registered},
				{"expires", ev.ExpiresAt, tt.expires},
				{"last changed", ev.LastChangedAt, tt.lastChanged},
				{"deletion", ev.DeletionAt, tt.deletion},
			} {
				var want *time.Time
				if c.want != "" {
					want = mustTime(t, c.want)
				}
				if !sameTime(c.got, want) {
					t.Errorf("%s = %v, want %v", c.name, c.got, want)
				}
			}
			if ev.Handle != tt.handle {
				t.Errorf("handle = %q, want %q", ev.Handle, tt.handle)
			}
			if ev.RegistrarIANAID != tt.registrar {
				t.Errorf("registrar = %q, want %q", ev.RegistrarIANAID, tt.registrar)
			}
			if !slices.Equal(ev.Nameservers, tt.nameservers) {
				t.Errorf("nameservers = %q, want %q", ev.Nameservers, tt.nameservers)
			}
			for _, s := range tt.detailHas {
				if !strings.Contains(ev.Detail, s) {
					t.Errorf("detail %q lacks %q", ev.Detail, s)
				}
			}
			if len(tt.detailHas) == 0 && ev.Detail != "" {
				t.Errorf("unexpected detail %q", ev.Detail)
			}
			if ev.NotFound {
				t.Error("NotFound set by the parser")
			}
		})
	}
}

func TestParseDomainRejects(t *testing.T) {
	tests := []struct {
		name string
		body []byte
	}{
		{"html", readFixture(t, "html-body.html")},
		{"truncated", readFixture(t, "truncated-com.json")},
		{"error object", readFixture(t, "error-object.json")},
		{"empty", nil},
		{"array", []byte(`[{"ldhName":"example.com"}]`)},
		{"null", []byte(`null`)},
		{"nameserver object", []byte(`{"objectClassName":"nameserver","ldhName":"ns1.example.com"}`)},
		{"no class, no name", []byte(`{"status":["active"]}`)},
		{"wrong type for ldhName", []byte(`{"objectClassName":"domain","ldhName":7}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ev, err := ParseDomain(tt.body); err == nil {
				t.Fatalf("ParseDomain accepted it: %+v", ev)
			}
		})
	}
}

func TestParseDomainLenientShapes(t *testing.T) {
	// A single status string, a non-string handle and malformed array
	// elements are tolerated; the rest of the answer is kept.
	body := []byte(`{"objectClassName":"domain","ldhName":"x.example","handle":12,
		"status":"client hold","events":[7,{"eventAction":"expiration","eventDate":"2026-01-02T03:04:05Z"}],
		"entities":["junk",{"roles":"registrar"}],"nameservers":[null,{"ldhName":"NS.X.EXAMPLE."}]}`)
	ev, err := ParseDomain(body)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ev.Statuses, []string{"client hold"}) || ev.Handle != "" ||
		!sameTime(ev.ExpiresAt, mustTime(t, "2026-01-02T03:04:05Z")) ||
		!slices.Equal(ev.Nameservers, []string{"ns.x.example"}) {
		t.Fatalf("got %+v", ev)
	}
}

func TestParseDomainByteOrderMark(t *testing.T) {
	body := append([]byte("\ufeff\n"), readFixture(t, "active-com.json")...)
	ev, err := ParseDomain(body)
	if err != nil || ev.Handle != "2001234567_DOMAIN_COM-VRSN" {
		t.Fatalf("ParseDomain with BOM: %+v, %v", ev, err)
	}
}

func TestParseDate(t *testing.T) {
	tests := []struct {
		in   string
		want string // RFC 3339; "" = rejected
	}{
		{"2024-06-12T22:09:39Z", "2024-06-12T22:09:39Z"},
		{"2024-06-12T22:09:39.881923Z", "2024-06-12T22:09:39.881923Z"},
		{"2013-09-11T11:58:06.0Z", "2013-09-11T11:58:06Z"},
		{"2004-08-30T22:55:00+00:00", "2004-08-30T22:55:00Z"},
		{"2028-09-13T07:00:00.000+0000", "2028-09-13T07:00:00Z"},
		{"2024-07-02T00:00:00+02:00", "2024-07-01T22:00:00Z"},
		{"2024-07-02T00:00:00+02", "2024-07-01T22:00:00Z"},
		{"2024-07-02t00:00:00z", "2024-07-02T00:00:00Z"},
		{"2024-07-02T00:00:00", "2024-07-02T00:00:00Z"},
		{"2024-07-02T00:00:00.5", "2024-07-02T00:00:00.5Z"},
		{"2024-07-02T10:11Z", "2024-07-02T10:11:00Z"},
		{"2024-07-02 10:11:12", "2024-07-02T10:11:12Z"},
		{"2024-07-02 10:11:12Z", "2024-07-02T10:11:12Z"},
		{"2024-07-02 10:11:12 +0100", "2024-07-02T09:11:12Z"},
		{"2024-07-02 10:11:12 UTC", "2024-07-02T10:11:12Z"},
		{"2024-07-02", "2024-07-02T00:00:00Z"},
		{" 2024-07-02 ", "2024-07-02T00:00:00Z"},
		{"2024.07.02", "2024-07-02T00:00:00Z"},
		{"02-Jul-2024", "2024-07-02T00:00:00Z"},
		{"0000-00-00T00:00:00Z", ""},
		{"0001-01-01T00:00:00Z", ""},
		{"9999-12-31T23:59:59Z", ""},
		{"1970-01-01T00:00:00Z", ""},
		{"", ""},
		{"yesterday", ""},
		{"2024-13-45", ""},
		{strings.Repeat("2", 100), ""},
	}
	for _, tt := range tests {
		got, ok := ParseDate(tt.in)
		if tt.want == "" {
			if ok {
				t.Errorf("ParseDate(%q) = %v, want rejected", tt.in, got)
			}
			continue
		}
		want, err := time.Parse(time.RFC3339Nano, tt.want)
		if err != nil {
			t.Fatal(err)
		}
		if !ok || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("ParseDate(%q) = %v, %v; want %v", tt.in, got, ok, want)
		}
	}
}

func TestParseBootstrap(t *testing.T) {
	b, err := ParseBootstrap(readFixture(t, "bootstrap.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"com":   "https://rdap.verisign.test/com/v1/",
		"net":   "https://rdap.verisign.test/com/v1/",
		"org":   "https://rdap.pir.test/", // http listed first: https chosen, slash added
		"ngo":   "https://rdap.pir.test/",
		"xyz":   "https://rdap.centralnic.test/xyz/",
		"click": "https://rdap.centralnic.test/xyz/",
	}
	if len(b.Services) != len(want) {
		t.Errorf("services = %v, want %v", b.Services, want)
	}
	for tld, base := range want {
		if got, ok := b.BaseURL(strings.ToUpper(tld)); !ok || got != base {
			t.Errorf("BaseURL(%s) = %q, %v; want %q", tld, got, ok, base)
		}
	}
	if _, ok := b.BaseURL("uz"); ok {
		t.Error("http-only service for .uz accepted")
	}
	if b.Publication != "2025-05-01T00:00:00Z" {
		t.Errorf("publication = %q", b.Publication)
	}

	for _, bad := range []string{``, `[]`, `{"services":null}`, `{"version":"1.0"}`,
		`{"services":[[["uz"],["http://cctld.uz/"]]]}`, `{"services":[1,2]}`, `<html>`} {
		if _, err := ParseBootstrap([]byte(bad)); err == nil {
			t.Errorf("ParseBootstrap(%q) accepted", bad)
		}
	}
}

// RFC 9083's "reinstantiation" (the object created again after deletion)
// moves the registration date like "reregistration" does.
func TestReinstantiationIsAReregistration(t *testing.T) {
	body := []byte(`{"objectClassName":"domain","ldhName":"example.com","status":["active"],"events":[
		{"eventAction":"registration","eventDate":"2015-03-01T00:00:00Z"},
		{"eventAction":"reinstantiation","eventDate":"2026-05-07T12:00:00Z"},
		{"eventAction":"expiration","eventDate":"2027-05-07T12:00:00Z"}]}`)
	ev, err := ParseDomain(body)
	if err != nil {
		t.Fatal(err)
	}
	if want := mustTime(t, "2026-05-07T12:00:00Z"); ev.RegisteredAt == nil || !ev.RegisteredAt.Equal(*want) {
		t.Fatalf("registered = %v, want the reinstantiation date %v", ev.RegisteredAt, want)
	}
}
