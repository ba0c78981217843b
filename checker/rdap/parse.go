package rdap

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/domainguard/domainguard/lifecycle"
)

// domainObject is the part of an RFC 9083 domain object that matters here.
// Array members are decoded element by element so that one malformed
// element (a quirk of some servers) does not discard the whole answer.
type domainObject struct {
	ObjectClassName string            `json:"objectClassName"`
	LDHName         string            `json:"ldhName"`
	Handle          json.RawMessage   `json:"handle"`
	Status          json.RawMessage   `json:"status"`
	Events          []json.RawMessage `json:"events"`
	Entities        []json.RawMessage `json:"entities"`
	Nameservers     []json.RawMessage `json:"nameservers"`
	ErrorCode       json.RawMessage   `json:"errorCode"`
}

type event struct {
	EventAction string `json:"eventAction"`
	EventDate   string `json:"eventDate"`
}

type entity struct {
	Roles     []string `json:"roles"`
	PublicIDs []struct {
		Type       string `json:"type"`
		Identifier any    `json:"identifier"`
	} `json:"publicIds"`
}

type nameserver struct {
	LDHName string `json:"ldhName"`
}

// ParseDomain turns an RDAP domain answer (RFC 9083) into Evidence: status
// (normalised), registration/expiration/last-changed/deletion dates,
// handle, registrar IANA id and nameservers. Provider, Server and
// ObservedAt are left for the caller. Dates that cannot be read, or are
// placeholders (year 0, 9999), are dropped and named in Detail.
//
// It fails when body is not a JSON object, is an RDAP error object, or is
// an object of another class; it never panics.
func ParseDomain(body []byte) (lifecycle.Evidence, error) {
	var ev lifecycle.Evidence
	body = trimBody(body)
	if len(body) == 0 || body[0] != '{' {
		return ev, errors.New("rdap answer is not a JSON object")
	}
	var obj domainObject
	if err := json.Unmarshal(body, &obj); err != nil {
		return ev, fmt.Errorf("rdap answer: %w", err)
	}
	if len(obj.ErrorCode) > 0 && obj.LDHName == "" {
		return ev, fmt.Errorf("rdap answer is an error object (errorCode %s)", obj.ErrorCode)
	}
	if obj.ObjectClassName != "" && !strings.EqualFold(obj.ObjectClassName, "domain") {
		return ev, fmt.Errorf("rdap answer is a %q object, not a domain", obj.ObjectClassName)
	}
	if obj.ObjectClassName == "" && obj.LDHName == "" {
		return ev, errors.New("rdap answer has neither objectClassName nor ldhName")
	}

	ev.Handle = rawString(obj.Handle)
	ev.Statuses = parseStatuses(obj.Status)
	var notes []string
	for _, raw := range obj.Events {
		var e event
		if json.Unmarshal(raw, &e) != nil {
			continue
		}
		if note := applyEvent(&ev, e); note != "" {
			notes = append(notes, note)
		}
	}
	ev.RegistrarIANAID = registrarIANAID(obj.Entities)
	ev.Nameservers = parseNameservers(obj.Nameservers)
	ev.Detail = strings.Join(notes, "; ")
	return ev, nil
}

// trimBody drops surrounding white space and a UTF-8 byte order mark.
func trimBody(body []byte) []byte {
	return bytes.TrimSpace(bytes.TrimPrefix(bytes.TrimSpace(body), []byte("\ufeff")))
}

// rawString returns a JSON string value, or "" for anything else.
func rawString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return strings.TrimSpace(s)
}

// parseStatuses accepts the standard array and, leniently, a single string.
func parseStatuses(raw json.RawMessage) []string {
	if len(raw) == 0 {
		return nil
	}
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) != nil {
		list = []json.RawMessage{raw}
	}
	var out []string
	for _, item := range list {
		s := rawString(item)
		if s == "" {
			continue
		}
		n := lifecycle.NormalizeRDAPStatus(s)
		if n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// eventKind maps an eventAction, standard or not, to what it means here.
func eventKind(action string) string {
	a := strings.ToLower(strings.TrimSpace(action))
	a = strings.NewReplacer("_", " ", "-", " ").Replace(a)
	a = strings.Join(strings.Fields(a), " ")
	switch a {
	case "registration", "registered", "creation", "created":
		return "registration"
	case "reregistration", "re registration", "reinstantiation", "re instantiation":
		// RFC 9083 §10.2.3: the object was instantiated again (after a
		// deletion) — a new registration, like reregistration.
		return "reregistration"
	case "expiration", "expiry", "expires", "expiration date":
		return "expiration"
	case "last changed", "last update", "last updated", "last modified", "last change":
		return "last changed"
	case "deletion", "deleted":
		return "deletion"
	case "transfer":
		return "transfer"
	}
	return "" // includes "last update of rdap database"
}

// applyEvent records one event; it returns a note when the date is unusable.
func applyEvent(ev *lifecycle.Evidence, e event) string {
	kind := eventKind(e.EventAction)
	if kind == "" || kind == "transfer" {
		return "" // a transfer changes the registrar, not the registration
	}
	t, ok := ParseDate(e.EventDate)
	if !ok {
		return fmt.Sprintf("ignored %s date %q", kind, truncate(e.EventDate, 40))
	}
	later := func(p **time.Time) {
		if *p == nil || t.After(**p) {
			*p = &t
		}
	}
	switch kind {
	case "registration", "reregistration":
		later(&ev.RegisteredAt)
	case "expiration":
		later(&ev.ExpiresAt)
	case "last changed":
		later(&ev.LastChangedAt)
	case "deletion":
		later(&ev.DeletionAt)
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// dateLayouts are tried in order after upper-casing the input.
var dateLayouts = []string{
	time.RFC3339Nano,                         // 2006-01-02T15:04:05.999999999Z07:00
	"2006-01-02T15:04:05.999999999Z0700",     // ...000+0000 (MarkMonitor)
	"2006-01-02T15:04:05.999999999Z07",       // +01
	"2006-01-02T15:04:05.999999999",          // no zone: UTC
	"2006-01-02T15:04Z07:00",                 // no seconds
	"2006-01-02 15:04:05.999999999Z07:00",    // space instead of T
	"2006-01-02 15:04:05.999999999Z0700",     //
	"2006-01-02 15:04:05.999999999 Z07:00",   // space before zone
	"2006-01-02 15:04:05.999999999 Z0700",    //
	"2006-01-02 15:04:05.999999999",          //
	"2006-01-02 15:04:05.999999999 MST",      // "2021-01-01 00:00:00 UTC"
	"2006-01-02T15:04:05.999999999 MST",      //
	"2006-01-02",                             // date only
	"2006-01-02Z07:00",                       // 2021-01-01Z
	"2006.01.02 15:04:05",                    // dotted
	"2006.01.02",                             //
	"02-Jan-2006",                            // whois style
	time.RFC1123Z, time.RFC1123, time.RFC850, // HTTP style
}

// ParseDate reads an RDAP event date leniently: RFC 3339 with or without
// fractional seconds, zone offsets with or without a colon, no zone (taken
// as UTC), a space instead of "T", or a bare date. Placeholder years (0,
// 9999 and later, before 1985) are rejected. The result is in UTC.
func ParseDate(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 64 {
		return time.Time{}, false
	}
	upper := strings.ToUpper(s)
	for _, layout := range dateLayouts {
		in := upper
		if strings.Contains(layout, "Jan") || strings.Contains(layout, "MST") {
			in = s
		}
		t, err := time.Parse(layout, in)
		if err != nil {
			continue
		}
		if y := t.Year(); y < 1985 || y >= 9999 {
			return time.Time{}, false
		}
		return t.UTC(), true
	}
	return time.Time{}, false
}

// registrarIANAID finds the IANA id of the entity with role registrar.
func registrarIANAID(entities []json.RawMessage) string {
	for _, raw := range entities {
		var e entity
		if json.Unmarshal(raw, &e) != nil {
			continue
		}
		if !slices.ContainsFunc(e.Roles, func(r string) bool { return strings.EqualFold(strings.TrimSpace(r), "registrar") }) {
			continue
		}
		for _, id := range e.PublicIDs {
			if !strings.EqualFold(strings.TrimSpace(id.Type), "IANA Registrar ID") {
				continue
			}
			switch v := id.Identifier.(type) {
			case string:
				if v = strings.TrimSpace(v); v != "" {
					return v
				}
			case float64:
				if v >= 0 && v < 1e9 && v == float64(int64(v)) {
					return fmt.Sprintf("%d", int64(v))
				}
			}
		}
	}
	return ""
}

// parseNameservers returns lower-case host names without trailing dot,
// sorted and deduplicated.
func parseNameservers(list []json.RawMessage) []string {
	var out []string
	for _, raw := range list {
		var ns nameserver
		if json.Unmarshal(raw, &ns) != nil {
			continue
		}
		name := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(ns.LDHName), "."))
		if name != "" {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
