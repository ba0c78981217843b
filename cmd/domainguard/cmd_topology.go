package main

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"
)

func init() {
	register("topology", command{
		usage: "create or update the JetStream streams and consumers (for an operator when roles run with DOMAINGUARD_MANAGE_TOPOLOGY=false), and print them",
		run:   runTopology,
	})
}

func runTopology(ctx context.Context, inv invocation) error {
	cfg, rest, log, err := loadConfig(inv, flag.NewFlagSet("topology", flag.ContinueOnError))
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageErr("topology takes no arguments")
	}
	cfg.ManageTopology = true // this command is how the topology gets managed
	a, err := openApp(ctx, cfg, log, needs{nats: true, createTopology: true})
	if err != nil {
		return err
	}
	defer a.close()
	w := tabwriter.NewWriter(inv.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "STREAM\tSUBJECTS\tRETENTION\tSTORAGE\tREPLICAS\tMESSAGES\tCONSUMERS")
	for _, sc := range a.topo.Streams() {
		s, err := a.js.Stream(ctx, sc.Name)
		if err != nil {
			return fmt.Errorf("stream %s: %w", sc.Name, err)
		}
		info := s.CachedInfo()
		var durables []string
		for _, cc := range a.topo.Consumers()[sc.Name] {
			durables = append(durables, cc.Durable)
		}
		fmt.Fprintf(w, "%s\t%v\t%s\t%s\t%d\t%d\t%v\n", sc.Name, info.Config.Subjects, info.Config.Retention,
			info.Config.Storage, info.Config.Replicas, info.State.Msgs, durables)
	}
	return w.Flush()
}
