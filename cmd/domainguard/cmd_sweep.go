package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/domainguard/domainguard/producer"
)

func init() {
	register("sweep", command{
		usage: "enqueue every due domain now (within the daily budget), with progress, then exit",
		run:   runSweep,
	})
}

func runSweep(ctx context.Context, inv invocation) error {
	cfg, rest, log, err := loadConfig(inv, flag.NewFlagSet("sweep", flag.ContinueOnError))
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageErr("sweep takes no arguments")
	}
	a, err := openApp(ctx, cfg, log, needs{db: true, nats: true})
	if err != nil {
		return err
	}
	defer a.close()
	p, err := producer.New(a.producerConfig())
	if err != nil {
		return err
	}
	progress := newProgressLine(inv.stderr)
	res, err := p.Sweep(ctx, func(sp producer.SweepProgress) { progress.update(sp.String(), false) })
	progress.done()
	if err != nil {
		return err
	}
	if res.Skipped {
		fmt.Fprintln(inv.stdout, "another sweep is running (a producer replica holds the sweep lock); nothing done")
		return nil
	}
	fmt.Fprintf(inv.stdout, "swept %d due domains in %s: %d enqueued, %d already pending, %d failed, budget left %d%s\n",
		res.Due, res.Duration.Round(time.Millisecond), res.Enqueued, res.AlreadyPending, res.Failed, res.BudgetLeft,
		map[bool]string{true: " (budget exhausted: the rest waits for the next sweep)", false: ""}[res.BudgetExhausted])
	return nil
}
