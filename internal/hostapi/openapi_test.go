package hostapi

import (
	"encoding/json"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/domainguard/domainguard/internal/schematest"
	"github.com/domainguard/domainguard/schemas"
)

const openAPIURL = "https://domainguard.dev/openapi.v1.json"

type openAPIDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas map[string]struct {
			Required   []string                   `json:"required"`
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"schemas"`
	} `json:"components"`
}

func loadOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	if err := json.Unmarshal(schemas.OpenAPI, &doc); err != nil {
		t.Fatalf("schemas/openapi.v1.json: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi %q, want 3.1.0", doc.OpenAPI)
	}
	return doc
}

// TestOpenAPIMatchesRoutes: every route is documented and every documented
// operation is a route.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	var documented, served []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	a := &API{}
	for _, rt := range a.routes() {
		served = append(served, rt.pattern)
	}
	sort.Strings(documented)
	sort.Strings(served)
	if !slices.Equal(documented, served) {
		t.Errorf("documented operations %v, served routes %v", documented, served)
	}
}

// TestOpenAPISchemasMatchTypes: the response schemas have exactly the JSON
// fields of the Go types, all required (none is omitempty).
func TestOpenAPISchemasMatchTypes(t *testing.T) {
	doc := loadOpenAPI(t)
	for name, v := range map[string]any{"Address": Address{}, "AddressUser": AddressUser{}, "Accepted": Accepted{}, "Error": Error{}} {
		s, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("components.schemas.%s is missing", name)
			continue
		}
		var fields []string
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			tag := rt.Field(i).Tag.Get("json")
			if strings.Contains(tag, "omitempty") {
				t.Errorf("%s.%s is omitempty: the API always sends every field", name, rt.Field(i).Name)
			}
			fields = append(fields, strings.Split(tag, ",")[0])
		}
		var props []string
		for p := range s.Properties {
			props = append(props, p)
		}
		req := slices.Clone(s.Required)
		sort.Strings(fields)
		sort.Strings(props)
		sort.Strings(req)
		if !slices.Equal(fields, props) || !slices.Equal(fields, req) {
			t.Errorf("%s: Go fields %v, schema properties %v, required %v", name, fields, props, req)
		}
	}
}

// TestResponsesMatchOpenAPI sends good and bad requests and validates each
// answer against the schema the document gives for its status code.
func TestResponsesMatchOpenAPI(t *testing.T) {
	c, err := schematest.Compiler(map[string][]byte{openAPIURL: schemas.OpenAPI})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]struct {
				Content map[string]struct {
					Schema json.RawMessage `json:"schema"`
				} `json:"content"`
			} `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(schemas.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	e.exec(t, `INSERT INTO domains (name, phase, last_checked_at) VALUES ('ok.org', 'active', now())`)
	e.exec(t, `INSERT INTO emails (user_id, email, domain, verified, verified_at, unverified_at, unverify_reason) VALUES
		('u1', 'a@ok.org', 'ok.org', true, now(), NULL, NULL), ('u2', 'a@ok.org', 'ok.org', false, now() - interval '1 day', now(), 'domain_expired')`)
	ce := with(bearer(goodToken), "Content-Type", "application/cloudevents+json")
	reqs := []struct {
		method, path, docPath string
		header                map[string]string
		body                  string
	}{
		{"GET", "/v1/addresses/a@ok.org", "/v1/addresses/{email}", bearer(goodToken), ""},
		{"GET", "/v1/addresses/b@ok.org", "/v1/addresses/{email}", bearer(goodToken), ""},
		{"GET", "/v1/addresses/nonsense", "/v1/addresses/{email}", bearer(goodToken), ""},
		{"GET", "/v1/addresses/a@ok.org", "/v1/addresses/{email}", nil, ""},
		{"POST", "/v1/events", "/v1/events", ce, structuredEvent("drift-1", verifiedType, `{"user_id":"u1","email":"a@ok.org","verified_at":"2026-01-02T03:04:05Z"}`)},
		{"POST", "/v1/events", "/v1/events", ce, `{`},
		{"POST", "/v1/events", "/v1/events", with(ce, "Content-Type", "text/plain"), `x`},
		{"POST", "/v1/events", "/v1/events", ce, strings.Repeat(" ", 70<<10)},
		{"GET", "/v1/openapi.json", "/v1/openapi.json", nil, ""},
	}
	for _, r := range reqs {
		code, body := e.do(t, r.method, r.path, r.header, r.body)
		op, ok := doc.Paths[r.docPath][strings.ToLower(r.method)]
		if !ok {
			t.Fatalf("%s %s is not documented", r.method, r.docPath)
		}
		if _, ok := op.Responses[strconv.Itoa(code)]; !ok {
			t.Errorf("%s %s answered %d, which the document does not list", r.method, r.path, code)
			continue
		}
		ptr := "#/paths/" + strings.NewReplacer("~", "~0", "/", "~1").Replace(r.docPath) + "/" + strings.ToLower(r.method) +
			"/responses/" + strconv.Itoa(code) + "/content/application~1json/schema"
		sch, err := c.Compile(openAPIURL + ptr)
		if err != nil {
			t.Fatalf("compile %s: %v", ptr, err)
		}
		if err := schematest.Validate(sch, body); err != nil {
			t.Errorf("%s %s -> %d: body does not match the document: %v\n%s", r.method, r.path, code, err, body)
		}
	}
}
