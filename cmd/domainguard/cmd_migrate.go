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
	cfg, _, log, err := loadConfig(inv, flag.NewFlagSet("migrate", flag.ContinueOnError))
	if err != nil {
		return err
	}
	a, err := openApp(ctx, cfg, log, needs{db: true, migrate: true})
	if err != nil {
		return err
	}
	a.close()
	return nil
}
