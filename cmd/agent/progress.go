package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// progressBar shows a download's progress on stderr: a redrawn bar on a
// terminal, a plain line every few seconds otherwise (logs, CI). Nothing is
// printed for a model that needs no download.
type progressBar struct {
	w     io.Writer
	tty   bool
	label string

	mu      sync.Mutex
	started time.Time
	last    time.Time
	shown   bool
	done    int64
	total   int64
}

func newProgressBar(w io.Writer, label string) *progressBar {
	tty := false
	if f, ok := w.(*os.File); ok {
		_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
		tty = err == nil
	}
	return &progressBar{w: w, tty: tty, label: label, started: time.Now()}
}

func (p *progressBar) update(done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done, p.total = done, total
	now := time.Now()
	every := 5 * time.Second
	if p.tty {
		every = 200 * time.Millisecond
	}
	if now.Sub(p.last) < every {
		return
	}
	p.last = now
	p.draw(now)
}

func (p *progressBar) draw(now time.Time) {
	p.shown = true
	rate := float64(p.done) / max(now.Sub(p.started).Seconds(), 0.001)
	var line string
	if p.total > 0 {
		pct := float64(p.done) / float64(p.total)
		line = fmt.Sprintf("%s %5.1f%% %s / %s %s/s", p.label, pct*100, humanBytes(p.done), humanBytes(p.total), humanBytes(int64(rate)))
		if p.tty {
			const width = 24
			n := int(pct * width)
			line = fmt.Sprintf("[%s%s] %s", strings.Repeat("=", n), strings.Repeat(" ", width-n), line)
		}
	} else {
		line = fmt.Sprintf("%s %s %s/s", p.label, humanBytes(p.done), humanBytes(int64(rate)))
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
}

// finish draws the final state and ends the bar's line.
func (p *progressBar) finish(ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.shown {
		return
	}
	if ok {
		p.draw(time.Now())
	}
	if p.tty {
		fmt.Fprintln(p.w)
	}
}
