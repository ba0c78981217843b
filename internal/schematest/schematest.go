// Package schematest compiles domainguard's JSON Schemas for tests that
// hold a document (the OpenAPI and AsyncAPI documents, responses of the
// host API) to them.
package schematest

import (
	"bytes"
	"fmt"
	"io/fs"
	"path"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/domainguard/domainguard/schemas"
)

// Compiler returns a compiler with every file of schemas.JSONSchemas
// registered under its $id, plus each extra document under its URL, with
// format assertions on.
func Compiler(extra map[string][]byte) (*jsonschema.Compiler, error) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	files, err := fs.Glob(schemas.JSONSchemas, "json/*.json")
	if err != nil {
		return nil, err
	}
	add := func(url string, raw []byte) error {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return fmt.Errorf("%s: %w", url, err)
		}
		return c.AddResource(url, doc)
	}
	for _, f := range files {
		raw, err := schemas.JSONSchemas.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if err := add(schemas.SchemaBaseURL+path.Base(f), raw); err != nil {
			return nil, err
		}
	}
	for url, raw := range extra {
		if err := add(url, raw); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Validate checks a JSON value (raw bytes) against a compiled schema.
func Validate(s *jsonschema.Schema, raw []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	return s.Validate(v)
}
