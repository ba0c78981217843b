// Package simulate is a deterministic, seeded discrete-event simulation of
// a site's verified email addresses over a simulated year (DESIGN.md §1–§3,
// §8). A World draws domains with a heavy-tailed number of addresses (a few
// large mailbox providers, organisations, a long tail of custom domains with
// 1–3 addresses), expiration dates spread over the year, healthy renewals
// (some through the auto-renew period) and lapses: hold and/or parking
// nameservers a few days after expiry, then either an expiry auction during
// grace or deletion, redemption, pending delete and release, after which an
// attacker owns the name.
//
// Policies look at that world through the real lifecycle code: the
// domainguard policy schedules with lifecycle.NextCheck and
// lifecycle.RetryAfterFailure, picks the due domains a day's budget allows
// in the sweep's order (lifecycle.UrgencyRule, the rule the producer's
// sweep turns into SQL, then the most overdue first), classifies with
// lifecycle.ClassifyRDAPAfter (as the checker does), detects changes with lifecycle.Changed and
// enforces with lifecycle.Decide; the pypi policy reproduces PyPI's
// reference behaviour (one Domainr lookup per email row every 30 days, at
// most 1,000 a day, unverify when the raw tokens include undelegated,
// inactive, expiring, deleting or unknown). Result reports lookups per day,
// takeovers prevented, detection delays and false unverifications.
//
// Time advances one simulated day at a time; the world's state changes at
// day boundaries and lookups happen at times within the day. An attacker
// obtains a name at the start of its auction or drop day, so an
// unverification on that day is too late.
package simulate
