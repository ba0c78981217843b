package main

import (
	"fmt"
	"io"
	"os"
	"time"
)

// progressLine prints a progress line: redrawn in place on a terminal,
// and at most every 5 seconds as plain lines otherwise (logs, CI).
type progressLine struct {
	w        io.Writer
	terminal bool
	last     time.Time
	drawn    bool
}

func newProgressLine(w io.Writer) *progressLine {
	p := &progressLine{w: w}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.terminal = true
		}
	}
	return p
}

func (p *progressLine) update(line string, final bool) {
	now := time.Now()
	if p.terminal {
		if !final && now.Sub(p.last) < 200*time.Millisecond {
			return
		}
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.drawn = true
	} else {
		if !final && now.Sub(p.last) < 5*time.Second {
			return
		}
		fmt.Fprintln(p.w, line)
	}
	p.last = now
}

func (p *progressLine) done() {
	if p.terminal && p.drawn {
		fmt.Fprintln(p.w)
	}
}
