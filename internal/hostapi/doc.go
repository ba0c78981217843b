// Package hostapi is domainguard's HTTP door for host applications that do
// not speak NATS (DOMAINGUARD_API_ADDR; `domainguard api`, or `run` when the
// address is set). JSON, versioned under /v1, bearer tokens from
// DOMAINGUARD_API_TOKENS compared in constant time:
//
//   - POST /v1/events takes the host's intake events (accounts.email.verified
//     and .removed) in the CloudEvents HTTP binding, structured or binary
//     mode, checks them like the intake consumer does, and publishes them to
//     the ACCOUNTS stream with the event id as Nats-Msg-Id: the same path as
//     a host publishing on NATS. 202 on accept, a 4xx JSON error otherwise,
//     and then nothing was published.
//   - GET /v1/addresses/{email} answers, in one indexed query, whether an
//     address may be trusted for a password reset (trusted_for_reset).
//   - GET /v1/openapi.json serves the checked-in OpenAPI 3.1 document
//     (schemas/openapi.v1.json), which a drift test holds to this code.
//
// Token values are never logged; their names go into logs and into the
// Domainguard-Client header of published messages.
package hostapi
