// Package domainr looks up domain status with the commercial Domainr v2
// API (directly with a client_id, or through RapidAPI) or with Fastly's
// Domain Research API, which answers in the same status-token vocabulary.
//
// Both answer with space-separated tokens ("undelegated inactive",
// "active", "deleting", ...). This package parses them and leaves the
// mapping to a phase to lifecycle.ClassifyTokens (DESIGN.md §2).
//
// Credentials never appear in errors or logs: request URLs carrying a
// client_id are redacted before they are put in an error.
package domainr
