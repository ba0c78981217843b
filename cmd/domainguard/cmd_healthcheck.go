package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"strings"
	"time"
)

func init() {
	register("healthcheck", command{
		usage: "probe /readyz (or --path) on DOMAINGUARD_METRICS_ADDR; for container health checks without a shell",
		run:   runHealthcheck,
	})
}

func runHealthcheck(ctx context.Context, inv invocation) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	path := fs.String("path", "/readyz", "endpoint to probe")
	cfg, _, _, err := loadConfig(inv, fs)
	if err != nil {
		return err
	}
	if cfg.MetricsAddr == "" {
		return usageErr("healthcheck needs DOMAINGUARD_METRICS_ADDR")
	}
	host := cfg.MetricsAddr
	if strings.HasPrefix(host, ":") {
		host = "127.0.0.1" + host
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+*path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("probe %s: %w", req.URL, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("probe %s: %s", req.URL, resp.Status)
	}
	fmt.Fprintln(inv.stdout, "ok")
	return nil
}
