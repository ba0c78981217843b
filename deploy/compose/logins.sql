-- Compose only: one login per domainguard role, with the passwords passed
-- as psql variables (see compose.yaml, service "grants"). Idempotent: the
-- passwords are reset on every run.
SELECT format('CREATE ROLE %I LOGIN IN ROLE %I', login, grp)
  FROM (VALUES ('dg_producer', 'domainguard_producer'),
               ('dg_enforcer', 'domainguard_enforcer'),
               ('dg_operator', 'domainguard_operator')) AS l(login, grp)
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = login) \gexec
ALTER ROLE dg_producer PASSWORD :'producer_password';
ALTER ROLE dg_enforcer PASSWORD :'enforcer_password';
ALTER ROLE dg_operator PASSWORD :'operator_password';
