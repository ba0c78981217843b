package domainr

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseDomainrStatus(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		domain  string
		want    []string
		apiErr  bool
		wantErr bool
	}{
		{"single", `{"status":[{"domain":"example.com","zone":"com","status":"undelegated inactive","summary":"inactive"}]}`, "example.com", []string{"undelegated", "inactive"}, false, false},
		{"picks the asked domain", `{"status":[{"domain":"a.com","status":"active"},{"domain":"EXAMPLE.com.","status":"deleting"}]}`, "example.com", []string{"deleting"}, false, false},
		{"byte order mark", "\ufeff" + `{"status":[{"domain":"example.com","status":"active"}]}`, "example.com", []string{"active"}, false, false},
		{"entry without domain", `{"status":[{"status":"active parked"}]}`, "example.com", []string{"active", "parked"}, false, false},
		{"duplicates and junk tokens", `{"status":[{"domain":"example.com","status":"active  ACTIVE <b> parked"}]}`, "example.com", []string{"active", "parked"}, false, false},
		{"errors array", `{"errors":[{"code":400,"message":"Invalid domain","detail":"x"}]}`, "example.com", nil, true, true},
		{"rapidapi message", `{"message":"Invalid API key"}`, "example.com", nil, true, true},
		{"other domain only", `{"status":[{"domain":"other.com","status":"inactive"}]}`, "example.com", nil, false, true},
		{"empty status", `{"status":[{"domain":"example.com","status":"   "}]}`, "example.com", nil, false, true},
		{"no status array", `{}`, "example.com", nil, false, true},
		{"not an object", `["active"]`, "example.com", nil, false, true},
		{"html", `<html></html>`, "example.com", nil, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDomainrStatus([]byte(tt.body), tt.domain)
			var ae *APIError
			if errors.As(err, &ae) != tt.apiErr || (err != nil) != tt.wantErr {
				t.Fatalf("err = %v (%T)", err, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("tokens = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseFastlyStatus(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    []string
		apiErr  bool
		wantErr bool
	}{
		{"inactive", `{"domain":"example.com","zone":"com","status":"undelegated inactive","tags":"generic","scope":"tld"}`, []string{"undelegated", "inactive"}, false, false},
		{"no domain field", `{"status":"active"}`, []string{"active"}, false, false},
		{"upper-case domain", `{"domain":"EXAMPLE.COM","status":"Expiring"}`, []string{"expiring"}, false, false},
		{"errors array", `{"errors":[{"title":"Bad request","detail":"invalid domain"}]}`, nil, true, true},
		{"msg", `{"msg":"Provided credentials are missing or invalid"}`, nil, true, true},
		{"other domain", `{"domain":"other.com","status":"inactive"}`, nil, false, true},
		{"status not a string", `{"domain":"example.com","status":["active"]}`, nil, false, true},
		{"empty", ``, nil, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseFastlyStatus([]byte(tt.body), "example.com")
			var ae *APIError
			if errors.As(err, &ae) != tt.apiErr || (err != nil) != tt.wantErr {
				t.Fatalf("err = %v (%T)", err, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("tokens = %q, want %q", got, tt.want)
			}
		})
	}
}

func checkTokens(t *testing.T, toks []string, err error) {
	t.Helper()
	if err != nil {
		if toks != nil {
			t.Fatalf("tokens %q with error %v", toks, err)
		}
		return
	}
	if len(toks) == 0 {
		t.Fatal("no tokens and no error")
	}
	for i, tok := range toks {
		if !isToken(tok) || tok != strings.ToLower(tok) || slices.Contains(toks[:i], tok) {
			t.Fatalf("bad token list %q", toks)
		}
	}
}

func FuzzParseDomainrStatus(f *testing.F) {
	f.Add([]byte(domainrBody("example.com", "undelegated inactive")), "example.com")
	f.Add([]byte(`{"errors":[{"code":400,"message":"Invalid domain"}]}`), "example.com")
	f.Add([]byte(`{"message":"You are not subscribed to this API."}`), "example.com")
	f.Fuzz(func(t *testing.T, body []byte, domain string) {
		toks, err := ParseDomainrStatus(body, domain)
		checkTokens(t, toks, err)
	})
}

func FuzzParseFastlyStatus(f *testing.F) {
	f.Add([]byte(fastlyBody("example.com", "undelegated inactive")), "example.com")
	f.Add([]byte(`{"msg":"Bad request","detail":"Invalid domain"}`), "example.com")
	f.Fuzz(func(t *testing.T, body []byte, domain string) {
		toks, err := ParseFastlyStatus(body, domain)
		checkTokens(t, toks, err)
	})
}
