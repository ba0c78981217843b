// Package postgres is domainguard's PostgreSQL plumbing: opening a pgx pool
// that waits for a server that is still starting (Open), creating the
// configured database when it is missing (EnsureDatabase), applying the
// embedded SQL migrations under an advisory lock (Migrate), and running a
// private, socket-only cluster for `domainguard run` when no DATABASE_URL is
// given (StartPrivate).
package postgres
