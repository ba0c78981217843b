package main

import (
	"context"
	"flag"
)

func init() {
	register("migrate", command{
		usage: "apply the embedded database migrations (idempotent), creating the database if missing",
		run:   runMigrate,
	})
}

func runMigrate(ctx context.Context, inv invocation) error {
	cfg, rest, log, err := loadConfig(inv, flag.NewFlagSet("migrate", flag.ContinueOnError))
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageErr("migrate takes no arguments, got %q", rest)
	}
	a, err := openApp(ctx, cfg, log, needs{db: true, migrate: true})
	if err != nil {
		return err
	}
	a.close()
	return nil
}
