-- Addresses are keyed by the local part as sent and the domain part
-- normalised to the IDNA A-label, lower case, no trailing dot
-- (domainname.StoredEmail; issue #14). Keys written before had the domain
-- part only lower-cased, so "a@bücher.de", "a@xn--bcher-kva.de" and
-- "a@example.com." were other keys than the forms the host may use later.
-- PostgreSQL cannot compute IDNA, so the producer rekeys such rows at its
-- start (producer.RekeyAddresses). These partial indexes hold exactly the
-- rows that may need it (a non-ASCII byte or an upper-case letter after
-- the last "@", or a trailing dot), so that the start finds them without
-- scanning the tables, and finds none at all once they are rekeyed. The
-- predicates are written once more in producer/rekey.go (rekeyPredicate):
-- keep both the same, or the planner cannot use the indexes.
CREATE INDEX emails_rekey_idx ON emails (user_id, email)
    WHERE email ~ '([^[:ascii:]]|[A-Z])[^@]*$' OR email LIKE '%.';
CREATE INDEX email_removals_rekey_idx ON email_removals (user_id, email)
    WHERE email ~ '([^[:ascii:]]|[A-Z])[^@]*$' OR email LIKE '%.';
