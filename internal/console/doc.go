// Package console is domainguard's operator console: a server-rendered web
// UI (html/template, assets embedded, no JavaScript needed, no CDN) for the
// people who approve holds. Pages: overview (counts, coverage, budget,
// breaker, holds, DLQ depth, a 90-day SVG chart), holds (approve/reject with
// a note), search (an address or domain: phase, evidence timeline,
// addresses, audit events, check now), audit log (filters, keyset pages),
// breaker (resume) and DLQ (list, replay).
//
// Every decision goes through the same code as the CLI (enforcer.Store,
// deadletters, producer.EnqueueManual) and is recorded as an
// audit.operator.action event with the actor and the note.
//
// Security: users come from the DOMAINGUARD_CONSOLE_USERS file (one
// name:role:bcrypt-hash line each; roles viewer and operator, only
// operators change anything); sessions live in HMAC-signed HttpOnly
// SameSite=Strict cookies; every form carries a CSRF token; logins are
// rate limited per client address and per name; a strict
// Content-Security-Policy forbids scripts and inline styles; every rendered
// value is escaped by html/template, bidirectional-override and control
// characters are shown as visible code points, and long values are cut.
// Without users the console refuses to start, unless InsecureLocal is set
// and it listens on loopback only.
package console
