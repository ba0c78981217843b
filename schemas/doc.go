// Package schemas holds domainguard's contracts with the outside world
// (DESIGN.md §6, §7): the NATS subjects and streams, the message payloads as
// Go types with validation, the CloudEvents 1.0 envelope for everything
// domainguard emits, the JSON Schema files describing each payload
// (schemas/json), and the embedded SQL migrations.
//
// Producers of messages build a payload, call Validate, and wrap it with
// NewEvent. Consumers call Decode, which accepts a CloudEvents envelope or
// (for host intake) a bare JSON object, and validates the payload, so a
// malformed message is rejected with a clear error before any work is done.
package schemas
