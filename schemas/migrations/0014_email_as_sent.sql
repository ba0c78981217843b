-- The address exactly as the host sent it (issue #14): email stays the key
-- domainguard normalises to (local part as given, domain part lower case),
-- and email_as_sent keeps the form of the host's latest applied event or
-- import row (surrounding white space aside), so audit events, `status`
-- and the host API can name the address the way the host knows it. NULL
-- for addresses stored before this column existed.
ALTER TABLE emails ADD COLUMN email_as_sent text;
