package schemas

import _ "embed"

// OpenAPI is the OpenAPI 3.1 document of the host HTTP API
// (internal/hostapi), served at /v1/openapi.json.
//
//go:embed openapi.v1.json
var OpenAPI []byte

// AsyncAPI is the AsyncAPI 3.0 document of the NATS subjects and their
// CloudEvents; its payloads refer to the JSON Schemas in json/.
//
//go:embed asyncapi.v1.json
var AsyncAPI []byte
