package domainr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// APIError is an error that the API reported in its response body (Domainr
// sends these even with HTTP 200).
type APIError struct {
	Code    string
	Message string
}

func (e *APIError) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("API error %s: %s", e.Code, e.Message)
	}
	return "API error: " + e.Message
}

// invalidName reports whether the API said the domain or its zone is
// invalid or unsupported: retrying cannot help.
func (e *APIError) invalidName() bool {
	m := strings.ToLower(e.Message)
	aboutName := strings.Contains(m, "domain") || strings.Contains(m, "zone") || strings.Contains(m, "tld")
	bad := strings.Contains(m, "invalid") || strings.Contains(m, "unsupported") ||
		strings.Contains(m, "not supported") || strings.Contains(m, "unknown")
	return aboutName && bad
}

// credentialsRejected reports whether the API refused the credentials.
func (e *APIError) credentialsRejected() bool {
	m := strings.ToLower(e.Message)
	for _, w := range []string{"client_id", "api key", "api-key", "apikey", "unauthorized", "forbidden", "not subscribed", "authenticat"} {
		if strings.Contains(m, w) {
			return true
		}
	}
	return e.Code == "401" || e.Code == "403"
}

// errorBody covers the error shapes seen: Domainr {"errors":[{code,
// message, detail}]}, RapidAPI {"message"}, Fastly {"msg","detail"}.
type errorBody struct {
	Errors []struct {
		Code    json.RawMessage `json:"code"`
		Message string          `json:"message"`
		Detail  string          `json:"detail"`
		Title   string          `json:"title"`
	} `json:"errors"`
	Message string `json:"message"`
	Msg     string `json:"msg"`
	Detail  string `json:"detail"`
}

// apiError extracts a body error, nil if the body reports none.
func apiError(body []byte) *APIError {
	var eb errorBody
	if json.Unmarshal(body, &eb) != nil {
		return nil
	}
	if len(eb.Errors) > 0 {
		e := eb.Errors[0]
		code := strings.Trim(string(e.Code), `"`)
		msg := strings.Join(nonEmpty(e.Title, e.Message, e.Detail), ": ")
		if msg == "" {
			msg = "unspecified error"
		}
		return &APIError{Code: code, Message: msg}
	}
	return nil
}

// topLevelError reads RapidAPI/Fastly style {"message"} / {"msg"} errors,
// used only when the body has no status.
func topLevelError(body []byte) *APIError {
	var eb errorBody
	if json.Unmarshal(body, &eb) != nil {
		return nil
	}
	msg := strings.Join(nonEmpty(eb.Msg, eb.Message, eb.Detail), ": ")
	if msg == "" {
		return nil
	}
	return &APIError{Message: msg}
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

type statusEntry struct {
	Domain string `json:"domain"`
	Zone   string `json:"zone"`
	Status string `json:"status"`
}

// ParseDomainrStatus reads a Domainr v2 /status answer
// ({"status":[{"domain","zone","status",...}]}) and returns the status
// tokens for domain: lower case, deduplicated, in order. Errors reported
// in the body are returned as *APIError.
func ParseDomainrStatus(body []byte, domain string) ([]string, error) {
	body, err := openAnswer(body)
	if err != nil {
		return nil, err
	}
	var v struct {
		Status []json.RawMessage `json:"status"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, fmt.Errorf("domainr answer: %w", err)
	}
	if v.Status == nil {
		if e := topLevelError(body); e != nil {
			return nil, e
		}
		return nil, errors.New("domainr answer has no status array")
	}
	want := normalizeName(domain)
	var entries []statusEntry
	for _, raw := range v.Status {
		var e statusEntry
		if json.Unmarshal(raw, &e) == nil {
			entries = append(entries, e)
		}
	}
	for _, e := range entries {
		if normalizeName(e.Domain) == want {
			return tokens(e.Status)
		}
	}
	if len(entries) == 1 && entries[0].Domain == "" {
		return tokens(entries[0].Status)
	}
	return nil, fmt.Errorf("domainr answer does not mention %q", want)
}

// ParseFastlyStatus reads a Fastly Domain Research /tools/status answer
// ({"domain","zone","status":"undelegated inactive",...}) and returns the
// status tokens for domain, as ParseDomainrStatus does.
func ParseFastlyStatus(body []byte, domain string) ([]string, error) {
	body, err := openAnswer(body)
	if err != nil {
		return nil, err
	}
	var v struct {
		Domain string          `json:"domain"`
		Status json.RawMessage `json:"status"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, fmt.Errorf("fastly answer: %w", err)
	}
	var status string
	if len(v.Status) == 0 || json.Unmarshal(v.Status, &status) != nil {
		if e := topLevelError(body); e != nil {
			return nil, e
		}
		return nil, errors.New("fastly answer has no status string")
	}
	if v.Domain != "" && normalizeName(v.Domain) != normalizeName(domain) {
		return nil, fmt.Errorf("fastly answer is for %q, not %q", normalizeName(v.Domain), normalizeName(domain))
	}
	return tokens(status)
}

// openAnswer trims white space and a UTF-8 byte order mark, checks that a
// JSON object remains and returns the error list it reports, if any, as
// *APIError: what both status answers (Domainr and Fastly) start with.
func openAnswer(body []byte) ([]byte, error) {
	body = bytes.TrimSpace(bytes.TrimPrefix(bytes.TrimSpace(body), []byte("\ufeff")))
	if len(body) == 0 || body[0] != '{' {
		return nil, errors.New("answer is not a JSON object")
	}
	if e := apiError(body); e != nil {
		return nil, e
	}
	return body, nil
}

func normalizeName(s string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s), "."))
}

// tokens splits a status string into lower-case tokens. Tokens are words
// of letters, digits, '-' and '_'; anything else is dropped.
func tokens(status string) ([]string, error) {
	var out []string
	for _, f := range strings.Fields(strings.ToLower(status)) {
		if !isToken(f) || slices.Contains(out, f) {
			continue
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		return nil, errors.New("empty status")
	}
	return out, nil
}

func isToken(s string) bool {
	if len(s) > 32 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
