package schemas_test

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/domainguard/domainguard/internal/schematest"
	"github.com/domainguard/domainguard/schemas"
)

// TestAsyncAPIMatchesSubjects holds the checked-in AsyncAPI document to the
// code: one channel per subject or subject family of schemas.Subjects, each
// message's payload the schema SchemaFileFor names, and every payload schema
// compiles.
func TestAsyncAPIMatchesSubjects(t *testing.T) {
	var doc struct {
		AsyncAPI string `json:"asyncapi"`
		Channels map[string]struct {
			Address  string                     `json:"address"`
			Messages map[string]json.RawMessage `json:"messages"`
		} `json:"channels"`
		Operations map[string]struct {
			Action string `json:"action"`
		} `json:"operations"`
		Components struct {
			Messages map[string]struct {
				Payload struct {
					Ref string `json:"$ref"`
				} `json:"payload"`
			} `json:"messages"`
		} `json:"components"`
	}
	if err := json.Unmarshal(schemas.AsyncAPI, &doc); err != nil {
		t.Fatalf("schemas/asyncapi.v1.json: %v", err)
	}
	if doc.AsyncAPI != "3.0.0" {
		t.Errorf("asyncapi %q, want 3.0.0", doc.AsyncAPI)
	}
	c, err := schematest.Compiler(nil)
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for id, ch := range doc.Channels {
		// {domain} and {stream} stand for the family's last tokens.
		subject := strings.NewReplacer(".{domain}", ".>", ".{stream}", ".>").Replace(ch.Address)
		documented = append(documented, subject)
		want, ok := schemas.SchemaFileFor(subject)
		if !ok {
			t.Errorf("channel %s: %s has no schema in the code", id, ch.Address)
			continue
		}
		if len(ch.Messages) != 1 {
			t.Errorf("channel %s: %d messages, want 1", id, len(ch.Messages))
		}
		got := doc.Components.Messages[id].Payload.Ref
		if got != want {
			t.Errorf("channel %s: payload %q, code says %q", id, got, want)
			continue
		}
		if _, err := c.Compile(schemas.SchemaBaseURL + strings.TrimPrefix(got, "json/")); err != nil {
			t.Errorf("channel %s: payload schema: %v", id, err)
		}
		op, ok := doc.Operations[id]
		wantAction := "send"
		if strings.HasPrefix(ch.Address, "accounts.") {
			wantAction = "receive"
		}
		if !ok || op.Action != wantAction {
			t.Errorf("channel %s: operation %+v, want %s", id, op, wantAction)
		}
	}
	code := slices.Clone(schemas.Subjects())
	sort.Strings(code)
	sort.Strings(documented)
	if !slices.Equal(code, documented) {
		t.Errorf("AsyncAPI channels %v, schemas.Subjects %v", documented, code)
	}
}
