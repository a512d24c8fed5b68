// Command benchtool is the measuring half of bench/run: it generates test
// files, times commands (wall time, CPU time and peak RSS from the kernel's
// rusage of each waited child), and drives a running agent through the
// scenarios that need more than a stopwatch (resume after SIGKILL, resync
// passes read from /metrics, reaction to a spec file appearing).
//
// Every subcommand prints plain "key value" lines on stdout that bench/run
// reads; progress and errors go to stderr.
//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchtool gen|sha256|time|resume|ready|resync|react|port ...")
		os.Exit(2)
	}
	cmds := map[string]func([]string) error{
		"gen":    gen,
		"sha256": sum,
		"time":   timeCmd,
		"resume": resume,
		"ready":  ready,
		"resync": resync,
		"react":  react,
		"port":   freePort,
	}
	run, ok := cmds[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "benchtool: unknown subcommand %q\n", os.Args[1])
		os.Exit(2)
	}
	if err := run(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "benchtool %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// gen writes pseudo-random files of the given size (incompressible, so no
// layer can cheat on them) and prints "HEX  PATH" lines, the sha256sum
// format, hashing while writing.
func gen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	size := fs.Int64("size", 1<<20, "bytes per file")
	seed := fs.Uint64("seed", 1, "seed of the first file; each next file uses seed+1")
	fs.Parse(args)
	buf := make([]byte, 1<<20)
	for i, p := range fs.Args() {
		rng := rand.NewChaCha8(seedBytes(*seed + uint64(i)))
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		h := sha256.New()
		w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
		for left := *size; left > 0; {
			n := min(left, int64(len(buf)))
			rng.Read(buf[:n])
			if _, err := w.Write(buf[:n]); err != nil {
				f.Close()
				return err
			}
			left -= n
		}
		if err := w.Flush(); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		fmt.Printf("%s  %s\n", hex.EncodeToString(h.Sum(nil)), p)
	}
	return nil
}

func seedBytes(s uint64) [32]byte {
	var b [32]byte
	binary.LittleEndian.PutUint64(b[:], s)
	return b
}

// sum is the bare Go sha256 loop the agent is compared with: one reader,
// a 1 MiB buffer, the standard library's sha256.
func sum(args []string) error {
	buf := make([]byte, 1<<20)
	for _, p := range args {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		h := sha256.New()
		_, err = io.CopyBuffer(h, f, buf)
		f.Close()
		if err != nil {
			return err
		}
		fmt.Printf("%s  %s\n", hex.EncodeToString(h.Sum(nil)), p)
	}
	return nil
}

// run is one timed execution of a command.
type run struct {
	wall, cpu float64 // seconds
	maxRSS    int64   // KiB, the largest of the process and its waited-for descendants
}

func runOnce(argv []string, stdout io.Writer) (run, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start).Seconds()
	if err != nil {
		return run{}, fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, lastLines(stderr.String(), 5))
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	return run{wall: wall, cpu: cpu, maxRSS: ru.Maxrss}, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func shell(script string) error {
	if script == "" {
		return nil
	}
	cmd := exec.Command("sh", "-c", script)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("prepare %q: %w", script, err)
	}
	return nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// percentile is the nearest-rank percentile of xs.
func percentile(xs []float64, p float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	i := int(p/100*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func fmtRuns(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatFloat(x, 'f', 3, 64)
	}
	return strings.Join(parts, ",")
}

// timeCmd runs a command n times, each after the prepare script, and
// prints the median wall and CPU time and the largest peak RSS. The
// command's stdout is discarded; a failing run fails the measurement.
func timeCmd(args []string) error {
	fs := flag.NewFlagSet("time", flag.ExitOnError)
	n := fs.Int("n", 3, "repetitions")
	prepare := fs.String("prepare", "", "sh script run before each repetition (not timed)")
	fs.Parse(args)
	argv := fs.Args()
	if len(argv) == 0 {
		return errors.New("no command")
	}
	var walls, cpus []float64
	var rss int64
	for range *n {
		if err := shell(*prepare); err != nil {
			return err
		}
		r, err := runOnce(argv, io.Discard)
		if err != nil {
			return err
		}
		walls, cpus = append(walls, r.wall), append(cpus, r.cpu)
		rss = max(rss, r.maxRSS)
	}
	fmt.Printf("median %.4f\ncpu %.4f\nmaxrss_kib %d\nruns %s\n", median(walls), median(cpus), rss, fmtRuns(walls))
	return nil
}

// ingestFraction is the durable share of the download under state, as its
// resume checkpoint (ingest/*/state.json) records it, and the share already
// hashed (the restart resumes the digest from there).
func ingestFraction(state string) (done, hashed float64) {
	matches, _ := filepath.Glob(filepath.Join(state, "ingest", "*", "state.json"))
	for _, m := range matches {
		raw, err := os.ReadFile(m)
		if err != nil {
			continue
		}
		var st struct {
			Size       int64 `json:"size"`
			HashOffset int64 `json:"hash_offset"`
			Parts      []struct {
				Done int64 `json:"done"`
			} `json:"parts"`
		}
		if json.Unmarshal(raw, &st) != nil || st.Size <= 0 {
			continue
		}
		var n int64
		for _, p := range st.Parts {
			n += p.Done
		}
		return float64(n) / float64(st.Size), float64(st.HashOffset) / float64(st.Size)
	}
	return 0, 0
}

// resume times an interrupted download: the command runs until its
// checkpoint reports the fraction at, is killed with SIGKILL, and runs
// again to the end. The total of both runs is what is reported.
func resume(args []string) error {
	fs := flag.NewFlagSet("resume", flag.ExitOnError)
	n := fs.Int("n", 3, "repetitions")
	state := fs.String("state", "", "state directory the command downloads into")
	at := fs.Float64("at", 0.5, "kill once the checkpoint reports this fraction")
	prepare := fs.String("prepare", "", "sh script run before each repetition (not timed)")
	fs.Parse(args)
	argv := fs.Args()
	if len(argv) == 0 || *state == "" {
		return errors.New("need -state and a command")
	}
	var totals, firsts, seconds, killedAt, hashedAt []float64
	for range *n {
		if err := shell(*prepare); err != nil {
			return err
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		start := time.Now()
		if err := cmd.Start(); err != nil {
			return err
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		frac := 0.0
	poll:
		for {
			select {
			case err := <-exited:
				return fmt.Errorf("finished before reaching %.0f%% (at %.0f%%): %v: %s", *at*100, frac*100, err, lastLines(stderr.String(), 5))
			case <-time.After(2 * time.Millisecond):
			}
			if frac, _ = ingestFraction(*state); frac >= *at {
				break poll
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		first := time.Since(start).Seconds()
		// What the restart starts from: the last checkpoint on disk.
		frac, hashed := ingestFraction(*state)
		r, err := runOnce(argv, io.Discard)
		if err != nil {
			return err
		}
		firsts, seconds = append(firsts, first), append(seconds, r.wall)
		totals, killedAt = append(totals, first+r.wall), append(killedAt, frac)
		hashedAt = append(hashedAt, hashed)
	}
	fmt.Printf("median %.4f\nfirst %.4f\nsecond %.4f\nkilled_at %.3f\nhashed_at %.3f\nruns %s\n",
		median(totals), median(firsts), median(seconds), median(killedAt), median(hashedAt), fmtRuns(totals))
	return nil
}

// ready waits for the agent's /readyz and prints the time it took from the
// start of this command.
func ready(args []string) error {
	fs := flag.NewFlagSet("ready", flag.ExitOnError)
	url := fs.String("url", "", "agent base URL, http://127.0.0.1:PORT")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after")
	fs.Parse(args)
	start := time.Now()
	for time.Since(start) < *timeout {
		resp, err := http.Get(*url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				fmt.Printf("seconds %.4f\n", time.Since(start).Seconds())
				return nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("%s/readyz not ready after %s", *url, *timeout)
}

// metrics reads the unlabelled samples of the agent's /metrics.
func metrics(url string) (map[string]float64, error) {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok || strings.Contains(name, "{") {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[name] = v
		}
	}
	return out, sc.Err()
}

const (
	mLastResync = "model_provisioner_last_successful_resync_timestamp_seconds"
	mHashed     = "model_provisioner_fetched_bytes_total"
	mPassSum    = "model_provisioner_reconcile_pass_duration_seconds_sum"
	mPassCount  = "model_provisioner_reconcile_pass_duration_seconds_count"
)

// resync triggers n full passes of an idle agent with SIGHUP (an unchanged
// configuration means "resync now") and measures each from the signal to
// the moment the agent records that every declared model was found
// present and verified (last_successful_resync_timestamp_seconds). It also
// reports the planning part of the pass (reading models.d, from the pass
// duration histogram) and the bytes hashed meanwhile.
func resync(args []string) error {
	fs := flag.NewFlagSet("resync", flag.ExitOnError)
	url := fs.String("url", "", "agent base URL")
	pid := fs.Int("pid", 0, "agent pid")
	n := fs.Int("n", 3, "passes")
	fs.Parse(args)
	before, err := metrics(*url)
	if err != nil {
		return err
	}
	var passes []float64
	for range *n {
		m0, err := metrics(*url)
		if err != nil {
			return err
		}
		t0 := time.Now()
		if err := syscall.Kill(*pid, syscall.SIGHUP); err != nil {
			return err
		}
		for {
			m, err := metrics(*url)
			if err != nil {
				return err
			}
			if m[mLastResync] > float64(t0.UnixNano())/1e9 && m[mPassCount] > m0[mPassCount] {
				passes = append(passes, m[mLastResync]-float64(t0.UnixNano())/1e9)
				break
			}
			if time.Since(t0) > 5*time.Minute {
				return errors.New("no successful resync within 5 minutes")
			}
			time.Sleep(time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond)
	}
	after, err := metrics(*url)
	if err != nil {
		return err
	}
	plan := 0.0
	if c := after[mPassCount] - before[mPassCount]; c > 0 {
		plan = (after[mPassSum] - before[mPassSum]) / c
	}
	fmt.Printf("median %.4f\nmax %.4f\nplan %.4f\nhashed_bytes %.0f\nruns %s\n",
		median(passes), slices.Max(passes), plan, after[mHashed]-before[mHashed], fmtRuns(passes))
	return nil
}

// react measures, n times, the time from the rename of a new spec file into
// the models directory to the appearance of its handoff file. Every spec
// names the same, already verified model under a new name, so the agent
// has nothing to hash: what is measured is the watcher, the pass and the
// handoff write.
func react(args []string) error {
	fs := flag.NewFlagSet("react", flag.ExitOnError)
	models := fs.String("models", "", "the agent's models.d")
	handoffDir := fs.String("handoff", "", "the agent's handoff directory")
	staging := fs.String("staging", "", "directory on the same filesystem as models.d where specs are written first")
	ref := fs.String("ref", "", "model_ref of the verified model")
	digest := fs.String("digest", "", "its sha256 hex")
	n := fs.Int("n", 200, "trials")
	fs.Parse(args)
	w, err := newFileWaiter(*handoffDir)
	if err != nil {
		return err
	}
	defer w.Close()
	var lat []float64
	for i := range *n {
		name := fmt.Sprintf("react-%04d", i)
		spec := fmt.Sprintf("name: %s\nmodel_ref: %s\nexpected_digest:\n  algo: sha256\n  value: %s\n", name, *ref, *digest)
		tmp := filepath.Join(*staging, name+".yaml")
		if err := os.WriteFile(tmp, []byte(spec), 0o644); err != nil {
			return err
		}
		want := name + ".json"
		w.Arm(want)
		t0 := time.Now()
		if err := os.Rename(tmp, filepath.Join(*models, name+".yaml")); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := w.Wait(ctx, filepath.Join(*handoffDir, want))
		cancel()
		if err != nil {
			return fmt.Errorf("trial %d: %w", i, err)
		}
		lat = append(lat, time.Since(t0).Seconds())
		// Let the agent go idle, so that each trial starts from the same state.
		time.Sleep(30 * time.Millisecond)
	}
	fmt.Printf("p50 %.4f\np99 %.4f\nmax %.4f\nmin %.4f\n", percentile(lat, 50), percentile(lat, 99), slices.Max(lat), slices.Min(lat))
	return nil
}

// freePort prints a TCP port on 127.0.0.1 that was free a moment ago.
func freePort([]string) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Println(l.Addr().(*net.TCPAddr).Port)
	return nil
}
