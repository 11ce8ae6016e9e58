package cli

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/meshwork/meshwork/node"
)

// Progress display for long work (mesh wait, mesh folder join --wait):
// the daemon computes the figures (node.Progress, in every FolderInfo);
// this only polls and draws them. On a terminal it is a bar on stderr,
// redrawn each poll; otherwise a plain line on stderr every
// plainLineEvery, from the first such interval on, so that a short wait in
// a script prints nothing extra. stdout is never touched.

const (
	progressPoll   = time.Second
	plainLineEvery = 10 * time.Second
)

// progressText is one line of progress for people:
// "1,234 of 20,000 files, 12.3 MB of 204.8 MB, 4.1 MB/s, about 47s left".
func progressText(p node.Progress) string {
	s := fmt.Sprintf("%s of %s files, %s of %s", humanize.Comma(int64(p.FilesDone)), humanize.Comma(int64(p.FilesTotal)),
		humanBytes(p.BytesDone), humanBytes(p.BytesTotal))
	if p.Rate > 0 {
		s += ", " + humanBytes(int64(p.Rate)) + "/s"
	}
	if p.ETASeconds >= 0.5 {
		s += ", about " + time.Duration(p.ETASeconds*float64(time.Second)).Round(time.Second).String() + " left"
	}
	return s
}

// humanBytes is n in decimal units (as Syncthing and most file managers show).
func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTP"[exp])
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progressWatch draws folder name's progress on w until stop is called.
type progressWatch struct {
	stopCh chan struct{}
	done   chan struct{}
	once   sync.Once
}

// watchProgress starts drawing folder name's progress on w (a bar when w
// is a terminal, else plain lines), polling the daemon through c.
func watchProgress(c *client, name string, w io.Writer) *progressWatch {
	pw := &progressWatch{stopCh: make(chan struct{}), done: make(chan struct{})}
	go pw.run(c, name, w, isTerminal(w))
	return pw
}

// stop ends the display (clearing the bar) and waits for its goroutine,
// which is bounded by one poll of the daemon.
func (pw *progressWatch) stop() {
	pw.once.Do(func() { close(pw.stopCh) })
	<-pw.done
}

func (pw *progressWatch) run(c *client, name string, w io.Writer, tty bool) {
	defer close(pw.done)
	var bar *progressbar.ProgressBar
	defer func() {
		if bar != nil {
			_ = bar.Clear()
		}
	}()
	tick := time.NewTicker(progressPoll)
	defer tick.Stop()
	lastLine, primed := time.Now(), false // the first line is due plainLineEvery after the start
	for {
		select {
		case <-pw.stopCh:
			return
		case <-tick.C:
		}
		if !tty {
			// Ask only for a line that is due, and once halfway before it
			// (the daemon's rate needs a sample to start from): a script's
			// short waits put no extra load on the daemon.
			due := time.Since(lastLine)
			if due < plainLineEvery/2 || (due < plainLineEvery && primed) {
				continue
			}
			if due < plainLineEvery {
				folderProgress(c, name)
				primed = true
				continue
			}
		}
		p, ok := folderProgress(c, name)
		if !ok {
			continue // not synced here yet, or the daemon busy: the wait itself reports errors
		}
		switch {
		case tty:
			if total := max(p.BytesTotal, 1); bar == nil || bar.GetMax64() != total {
				// A new bar when the total changes: ChangeMax64 would turn
				// the bar's own time prediction back on. The daemon's
				// figures only (its rate covers every transfer and outlives
				// this command): the bar's own rate and times are off.
				if bar != nil {
					_ = bar.Clear()
				}
				bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(w), progressbar.OptionSetWidth(25),
					progressbar.OptionSetPredictTime(false), progressbar.OptionSetElapsedTime(false), progressbar.OptionClearOnFinish())
			}
			bar.Describe(name + ": " + progressText(p))
			_ = bar.Set64(p.BytesDone)
		default:
			fmt.Fprintf(w, "mesh: %s: %s\n", name, progressText(p))
			lastLine, primed = time.Now(), false
		}
	}
}

// folderProgress asks the daemon for folder name's progress.
func folderProgress(c *client, name string) (node.Progress, bool) {
	var infos []node.FolderInfo
	if err := c.call("GET", "/v1/folders", nil, &infos, nil); err != nil {
		return node.Progress{}, false
	}
	for _, fi := range infos {
		if fi.Name == name && fi.Progress != nil {
			return *fi.Progress, true
		}
	}
	return node.Progress{}, false
}
