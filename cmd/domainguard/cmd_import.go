package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/domainguard/domainguard/producer"
)

func init() {
	register("import", command{
		usage: "FILE.csv: bulk load user_id,email,verified_at rows (header optional); safe to re-run; exits 1 when any row is bad",
		run:   runImport,
	})
}

func runImport(ctx context.Context, inv invocation) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	maxBad := fs.Int("show-bad", 50, "print at most this many bad rows")
	cfg, rest, log, err := loadConfig(inv, fs)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageErr("import FILE.csv (use - for standard input)")
	}
	in, size := os.Stdin, int64(0)
	if rest[0] != "-" {
		f, err := os.Open(rest[0])
		if err != nil {
			return err
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil {
			size = st.Size()
		}
		in = f
	}
	a, err := openApp(ctx, cfg, log, needs{db: true})
	if err != nil {
		return err
	}
	defer a.close()
	progress := newProgressLine(inv.stderr)
	res, err := producer.Import(ctx, a.pool, in, producer.ImportOptions{
		Size:              size,
		Progress:          func(p producer.ImportProgress) { progress.update(p.String(), p.Done) },
		WatchPrivateNames: cfg.DNSEvidenceInUse(),
	})
	progress.done()
	if err != nil {
		return err
	}
	for i, b := range res.Bad {
		if i >= *maxBad {
			fmt.Fprintf(inv.stderr, "... and %d more bad rows\n", res.BadCount-int64(i))
			break
		}
		fmt.Fprintf(inv.stderr, "bad row %s\n", b)
	}
	fmt.Fprintf(inv.stdout, "read %d rows in %s, imported %d, bad %d: %d new addresses, %d re-verified, %d unchanged, %d new domains\n",
		res.Rows, res.Elapsed.Round(time.Millisecond), res.Rows-res.BadCount, res.BadCount, res.Inserted, res.Updated, res.Unchanged, res.NewDomains)
	if res.BadCount > 0 {
		// The good rows are in; the exit status tells a script that some
		// were not. Fix them and re-run: the import is idempotent.
		return fmt.Errorf("%d of %d rows were bad and not imported (listed above); fix them and re-run (safe: rows already imported are unchanged)", res.BadCount, res.Rows)
	}
	return nil
}
