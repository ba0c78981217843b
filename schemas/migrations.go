package schemas

import "embed"

// Migrations holds the SQL migrations, applied in file-name order
// (NNNN_name.sql) by internal/postgres.Migrate.
//
//go:embed migrations/*.sql
var Migrations embed.FS
