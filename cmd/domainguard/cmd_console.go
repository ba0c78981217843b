package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/domainguard/domainguard/enforcer"
	"github.com/domainguard/domainguard/internal/config"
	"github.com/domainguard/domainguard/internal/console"
	"github.com/domainguard/domainguard/internal/hostapi"
	"github.com/domainguard/domainguard/producer"
)

func init() {
	register("console", command{
		usage: "[--insecure-local] | adduser NAME ROLE: the operator web console (DOMAINGUARD_CONSOLE_ADDR, default 127.0.0.1:8080); adduser writes a user to DOMAINGUARD_CONSOLE_USERS, password on stdin",
		run:   runConsole,
	})
	register("api", command{
		usage: "the host HTTP API (DOMAINGUARD_API_ADDR, default 127.0.0.1:8081; tokens in DOMAINGUARD_API_TOKENS)",
		run:   runAPI,
	})
}

// consoleStdin is where `console adduser` reads the password (tests
// replace it).
var consoleStdin io.Reader = os.Stdin

func runConsole(ctx context.Context, inv invocation) error {
	fs := flag.NewFlagSet("console", flag.ContinueOnError)
	insecure := fs.Bool("insecure-local", false, "no login: everyone is the operator \"local\" (only on a loopback address)")
	cfg, rest, log, err := loadConfig(inv, fs)
	if err != nil {
		return err
	}
	if len(rest) > 0 && rest[0] == "adduser" {
		return addConsoleUser(cfg, rest[1:], inv)
	}
	if len(rest) > 0 {
		return usageErr("console [--insecure-local] | console adduser NAME ROLE")
	}
	if cfg.ConsoleAddr == "" {
		cfg.ConsoleAddr = config.DefaultConsoleAddr
	}
	a, err := openApp(ctx, cfg, log, needs{db: true, migrate: true, metrics: true, metricsOptional: true})
	if err != nil {
		return err
	}
	defer a.close()
	// NATS serves the DLQ page and check now; the rest works without it.
	nctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	err = a.openNATS(nctx, needs{})
	cancel()
	if err != nil {
		log.Warn("console: no NATS connection; the DLQ page and check now are unavailable", "error", err)
	}
	st, err := enforcer.NewStore(a.enforcerConfig())
	if err != nil {
		return err
	}
	var prod *producer.Producer
	if a.js != nil {
		if prod, err = newProducer(a); err != nil {
			return err
		}
	}
	if err := startConsole(ctx, a, st, prod, *insecure); err != nil {
		return err
	}
	<-ctx.Done()
	log.Info("console stopped")
	return nil
}

func addConsoleUser(cfg config.Config, args []string, inv invocation) error {
	if len(args) != 2 {
		return usageErr("console adduser NAME ROLE (role viewer or operator; the password is read from stdin)")
	}
	if cfg.ConsoleUsers == "" {
		return usageErr("set DOMAINGUARD_CONSOLE_USERS (or --console-users) to the users file to write")
	}
	line, err := bufio.NewReader(consoleStdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read password from stdin: %w", err)
	}
	password := strings.TrimRight(line, "\r\n")
	if err := console.AddUser(cfg.ConsoleUsers, args[0], args[1], password); err != nil {
		return err
	}
	fmt.Fprintf(inv.stdout, "user %s (%s) written to %s\n", args[0], args[1], cfg.ConsoleUsers)
	return nil
}

func newProducer(a *app) (*producer.Producer, error) {
	return producer.New(a.producerConfig())
}

// startConsole serves the console on a.cfg.ConsoleAddr until ctx ends,
// with the given store and producer (prod nil: no check now).
func startConsole(ctx context.Context, a *app, st *enforcer.Store, prod *producer.Producer, insecure bool) error {
	cc := console.Config{
		Addr: a.cfg.ConsoleAddr, InsecureLocal: insecure, Pool: a.pool, Store: st, JS: a.js, Topology: a.topo,
		DailyBudget: a.cfg.DailyLookupBudget, Logger: a.log, Registerer: a.reg,
	}
	if prod != nil {
		cc.Enqueue = prod.EnqueueManual
	}
	if sources, err := coverageSources(a.cfg, a.log); err != nil {
		a.log.Warn("console: coverage sources unavailable; the overview shows no coverage", "error", err)
	} else {
		cc.Coverage = &sources
	}
	if a.cfg.ConsoleUsers != "" {
		users, err := console.LoadUsers(a.cfg.ConsoleUsers)
		if err != nil {
			return err
		}
		cc.Users = users
	}
	c, err := console.New(cc)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	_, err = c.Start(ctx)
	return err
}

func runAPI(ctx context.Context, inv invocation) error {
	cfg, rest, log, err := loadConfig(inv, flag.NewFlagSet("api", flag.ContinueOnError))
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageErr("api takes no arguments")
	}
	if cfg.APIAddr == "" {
		cfg.APIAddr = config.DefaultAPIAddr
	}
	a, err := openApp(ctx, cfg, log, needs{db: true, migrate: true, nats: true, metrics: true, metricsOptional: true, serve: true})
	if err != nil {
		return err
	}
	defer a.close()
	if err := startAPI(ctx, a); err != nil {
		return err
	}
	<-ctx.Done()
	log.Info("host API stopped")
	return nil
}

// startAPI serves the host API on a.cfg.APIAddr until ctx ends.
func startAPI(ctx context.Context, a *app) error {
	tokens, err := hostapi.ParseTokens(a.cfg.APITokens)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	api, err := hostapi.New(hostapi.Config{Tokens: tokens, Pool: a.pool, JS: a.js, Topology: a.topo, Logger: a.log, Registerer: a.reg})
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	_, err = api.Start(ctx, a.cfg.APIAddr)
	return err
}
