-- Operator console and host API (issue 17): the note an operator gives with
-- a decision, and indexes for the console's audit log pages and charts.

ALTER TABLE holds ADD COLUMN note text;
ALTER TABLE breaker ADD COLUMN resume_note text;

-- Audit log pages: newest first, keyset on (created_at, id), optionally by type.
CREATE INDEX audit_log_created_idx ON audit_log (created_at, id);
CREATE INDEX audit_log_type_created_idx ON audit_log (type, created_at, id);
