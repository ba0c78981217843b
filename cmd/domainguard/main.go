// Command domainguard stops domain-resurrection account takeovers: it
// watches the registration status of every email domain a site trusts for
// account recovery and unverifies addresses whose domain lapses.
//
// One binary, one file per command (DESIGN.md §5). Commands parse their
// flags, wire the parts and run; the logic lives in the role and lifecycle
// packages. Run `domainguard help` for the list.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// invocation is what a command gets from main: its arguments and the
// process's streams and environment, so tests can run commands in-process.
type invocation struct {
	args   []string
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

type command struct {
	usage string // one line: arguments and what it does
	run   func(ctx context.Context, inv invocation) error
}

// commands is filled by the cmd_*.go files' init functions.
var commands = map[string]command{}

func register(name string, c command) { commands[name] = c }

// errUsage marks an error caused by wrong arguments (exit status 2).
var errUsage = errors.New("usage")

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runMain(ctx, invocation{args: os.Args[1:], stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
	stop()
	os.Exit(code)
}

func runMain(ctx context.Context, inv invocation) int {
	if len(inv.args) == 0 || inv.args[0] == "help" || inv.args[0] == "-h" || inv.args[0] == "--help" {
		printUsage(inv.stdout)
		if len(inv.args) == 0 {
			return 2
		}
		return 0
	}
	name := inv.args[0]
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(inv.stderr, "domainguard: unknown command %q\n\n", name)
		printUsage(inv.stderr)
		return 2
	}
	inv.args = inv.args[1:]
	if err := c.run(ctx, inv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(inv.stderr, "domainguard %s: %v\n", name, err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: domainguard COMMAND [flags] [args]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-15s %s\n", n, commands[n].usage)
	}
	fmt.Fprintln(w, "\nEvery command takes the configuration flags (see `domainguard COMMAND -h`);")
	fmt.Fprintln(w, "each mirrors an environment variable (DESIGN.md §5).")
}
