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
	"strings"
	"syscall"

	"github.com/domainguard/domainguard/internal/buildinfo"
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
	// usage is "ARGS: what it does" (or only "what it does" for a command
	// without arguments), one line.
	usage string
	run   func(ctx context.Context, inv invocation) error
	// synopsis (the arguments after the command name) and summary (one
	// line: what it does) override what parts derives from usage.
	// Optional.
	synopsis, summary string
}

// parts returns the command's synopsis and one-line summary: the fields
// when set, else usage split at its first ": " (the arguments never hold
// one).
func (c command) parts() (synopsis, summary string) {
	synopsis, summary = c.synopsis, c.summary
	args, desc, found := strings.Cut(c.usage, ": ")
	if !found {
		args, desc = "", c.usage
	}
	if synopsis == "" {
		synopsis = args
	}
	if summary == "" {
		summary = desc
	}
	return synopsis, summary
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
	if len(inv.args) == 0 {
		printUsage(inv.stderr)
		return 2
	}
	switch inv.args[0] {
	case "version", "--version", "-version":
		fmt.Fprintln(inv.stdout, buildinfo.Get())
		return 0
	case "help", "-h", "--help", "-help":
		if len(inv.args) < 2 {
			printUsage(inv.stdout)
			return 0
		}
		// `domainguard help CMD` is `domainguard CMD -h` on stdout.
		name := inv.args[1]
		if _, ok := commands[name]; !ok {
			fmt.Fprintf(inv.stderr, "domainguard help: unknown command %q\n\n", name)
			printUsage(inv.stderr)
			return 2
		}
		inv.args = []string{name, "-h"}
		inv.stderr = inv.stdout
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
	fmt.Fprintln(w, "usage: domainguard COMMAND [ARGS] [flags]")
	fmt.Fprintln(w, "       domainguard help COMMAND   the command's arguments, flags and settings")
	fmt.Fprintln(w, "       domainguard version        which build this is")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		synopsis, summary := commands[n].parts()
		fmt.Fprintf(w, "  %s\n", strings.TrimSpace(n+" "+synopsis))
		fmt.Fprintf(w, "      %s\n", summary)
	}
	fmt.Fprintln(w, "\nEvery command also takes the settings (`domainguard help COMMAND` lists them);")
	fmt.Fprintln(w, "each is a flag and an environment variable (DESIGN.md §5), the flag winning.")
}

// printCommandHelp is a command's -h: synopsis and summary, the command's
// own flags, then the settings every command shares under their own
// heading. own names the command's own flags.
func printCommandHelp(w io.Writer, fs *flag.FlagSet, own map[string]bool) {
	name := fs.Name()
	if c, ok := commands[name]; ok {
		synopsis, summary := c.parts()
		fmt.Fprintf(w, "usage: domainguard %s [flags]\n\n%s\n", strings.TrimSpace(name+" "+synopsis), summary)
	} else {
		fmt.Fprintf(w, "usage: domainguard %s [flags]\n", name)
	}
	subset := func(mine bool) *flag.FlagSet {
		sub := flag.NewFlagSet(name, flag.ContinueOnError)
		sub.SetOutput(w)
		fs.VisitAll(func(f *flag.Flag) {
			if own[f.Name] == mine {
				sub.Var(f.Value, f.Name, f.Usage)
				sub.Lookup(f.Name).DefValue = f.DefValue
			}
		})
		return sub
	}
	if len(own) > 0 {
		fmt.Fprintf(w, "\nflags of %s:\n", name)
		subset(true).PrintDefaults()
	}
	fmt.Fprintln(w, "\nsettings (every command; each flag mirrors the environment variable named, and wins over it):")
	subset(false).PrintDefaults()
}
