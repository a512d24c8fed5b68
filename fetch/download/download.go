package download

import (
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/model-provisioner/model-provisioner/content"
	"github.com/model-provisioner/model-provisioner/fetch"
	"github.com/model-provisioner/model-provisioner/verify"
)

// Options tune a download. Zero values take the defaults.
type Options struct {
	// Parts is the most ranged parts fetched at once (default 4; 1 turns
	// parallel parts off).
	Parts int
	// PartSize is the smallest part worth its own stream (default 64 MiB):
	// an object under two of them is fetched as one stream.
	PartSize int64
	// Stall is how long a stream may deliver no byte before it is dropped
	// and resumed (default 30s). There is deliberately no whole-request
	// timeout: it would kill a healthy multi-GB body.
	Stall time.Duration
	// Retries is how many consecutive failed attempts a part survives on
	// transient errors (default 6); an attempt that made progress resets
	// the count.
	Retries int
	// RetryBase is the first retry delay, doubled per attempt with jitter
	// and capped at 30s (default 1s). A source's Retry-After wins.
	RetryBase time.Duration
	// Headroom is the free space to leave on the state filesystem; zero
	// leaves none, a negative value takes the default (256 MiB).
	Headroom int64
	// Checkpoint is how many bytes may arrive between two resume
	// checkpoints (default: a twentieth of the object, between 8 and 64 MiB).
	// Checkpoints are also taken every second.
	Checkpoint int64
	// Progress, when set, is called with the bytes on disk and the total
	// (-1 unknown), at most a few times a second.
	Progress func(done, total int64)
	// Logger receives retries and restarts. Optional.
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.Parts <= 0 {
		o.Parts = 4
	}
	if o.PartSize <= 0 {
		o.PartSize = 64 << 20
	}
	if o.Stall <= 0 {
		o.Stall = 30 * time.Second
	}
	if o.Retries <= 0 {
		o.Retries = 6
	}
	if o.RetryBase <= 0 {
		o.RetryBase = time.Second
	}
	if o.Headroom < 0 {
		o.Headroom = 256 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Result describes a committed blob.
type Result struct {
	// Digest and Size of the blob; BlobPath is where it is.
	Digest   verify.Digest
	Size     int64
	BlobPath string
	// Info is the version of the object that was downloaded.
	Info Info
	// Transferred counts the bytes this call received from the source.
	Transferred int64
	// Reused is true when the blob was already in the store and nothing
	// was downloaded.
	Reused bool
}

// Fetch downloads src into the content store under the ingest key and
// commits it. expected, when not zero, is checked before commit and also
// lets a blob already in the store be reused without any network access.
//
// A mismatch with expected deletes the ingest and returns a permanent
// *verify.MismatchError. Cancellation leaves the ingest and its checkpoint
// for the next call to resume.
func Fetch(ctx context.Context, store *content.Store, key string, src Source, expected verify.Digest, opts Options) (Result, error) {
	opts.defaults()
	if !expected.IsZero() && store.Has(expected, -1) {
		return Result{Digest: expected, Size: blobSize(store, expected), BlobPath: store.BlobPath(expected), Reused: true}, nil
	}
	in, err := store.OpenIngest(ctx, key)
	if err != nil {
		return Result{}, err
	}
	// Another process may have committed it while this one waited.
	if !expected.IsZero() && store.Has(expected, -1) {
		in.Remove()
		return Result{Digest: expected, Size: blobSize(store, expected), BlobPath: store.BlobPath(expected), Reused: true}, nil
	}
	for restarts := 0; ; restarts++ {
		res, err := fetchOnce(ctx, store, in, src, expected, opts)
		if err == nil {
			return res, nil
		}
		if (errors.Is(err, ErrChanged) || errors.Is(err, ErrRangeIgnored)) && restarts < 2 {
			opts.Logger.Info("restarting download from zero", "source", src.String(), "reason", err.Error())
			in.State = content.IngestState{}
			continue
		}
		if errors.Is(err, fetch.ErrDigestMismatch) || errors.Is(err, content.ErrNoSpace) && in.Done() == 0 {
			in.Remove()
		} else {
			in.Close()
		}
		return Result{}, err
	}
}

func blobSize(store *content.Store, d verify.Digest) int64 {
	if fi, err := os.Stat(store.BlobPath(d)); err == nil {
		return fi.Size()
	}
	return -1
}

// job is one run of fetchOnce: its parts' live progress, the hasher's
// frontier and the checkpoint bookkeeping.
type job struct {
	store *content.Store
	in    *content.Ingest
	src   Source
	info  Info
	opts  Options
	parts []*partState
	total atomic.Int64 // -1 until known
	moved atomic.Int64 // bytes received this run
	wake  chan struct{}
	// hOff is the hasher's own offset (hasher goroutine only); hState and
	// hStateOff are its last snapshot, guarded by mu, for checkpoints.
	hOff      int64
	mu        sync.Mutex
	hState    []byte
	hStateOff int64
}

type partState struct {
	start, end int64 // end < 0: unknown
	done       atomic.Int64
	finished   atomic.Bool
}

func fetchOnce(ctx context.Context, store *content.Store, in *content.Ingest, src Source, expected verify.Digest, opts Options) (Result, error) {
	info, err := statWithRetry(ctx, src, opts)
	if err != nil {
		return Result{}, err
	}
	st := in.State
	resumable := len(st.Parts) > 0 && st.Size == info.Size && info.Size >= 0 && info.Ranges &&
		(info.ETag != "" && st.ETag == info.ETag || info.ETag == "" && info.LastModified != "" && st.LastModified == info.LastModified)
	if !resumable {
		if len(st.Parts) > 0 && in.Done() > 0 {
			opts.Logger.Info("partial download does not match the source any more; starting over", "source", src.String())
		}
		if err := in.Reset(content.IngestState{Source: src.String(), Size: info.Size, ETag: info.ETag, LastModified: info.LastModified, Parts: plan(info, opts)}); err != nil {
			return Result{}, err
		}
	}
	if info.Size >= 0 {
		if err := store.Preflight(info.Size-in.Done(), opts.Headroom); err != nil {
			return Result{}, fetch.Permanent(err)
		}
		// Reserve the file's length up front: parts write at their offsets,
		// and a sparse file of the final size makes that simple.
		if fi, err := in.File().Stat(); err == nil && fi.Size() < info.Size {
			if err := in.File().Truncate(info.Size); err != nil {
				return Result{}, err
			}
		}
	}

	j := &job{store: store, in: in, src: src, info: info, opts: opts, wake: make(chan struct{}, 1)}
	j.total.Store(info.Size)
	for _, p := range in.State.Parts {
		ps := &partState{start: p.Start, end: p.End}
		ps.done.Store(p.Done)
		if p.End >= 0 && p.Done >= p.End-p.Start {
			ps.finished.Store(true)
		}
		j.parts = append(j.parts, ps)
	}
	h := sha256.New()
	j.hOff = in.State.HashOffset
	if j.hOff > 0 {
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(in.State.HashState); err != nil {
			j.hOff = 0
			h.Reset()
		}
	}
	j.hState, j.hStateOff = in.State.HashState, j.hOff
	if j.hOff == 0 {
		j.hState = nil
	}

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Parts)
	hashDone := make(chan error, 1)
	hctx, stopHash := context.WithCancel(ctx)
	go func() { hashDone <- j.hash(hctx, h) }()
	stopCk := j.checkpointer(gctx)
	for _, p := range j.parts {
		if p.finished.Load() {
			continue
		}
		g.Go(func() error { return j.runPart(gctx, p) }) // waits for a free stream
	}

	err = g.Wait()
	stopCk()
	if err != nil {
		stopHash()
		<-hashDone
		_ = j.checkpoint()
		return Result{}, err
	}
	j.kick()
	if err := <-hashDone; err != nil {
		stopHash()
		return Result{}, err
	}
	stopHash()
	size := j.total.Load()
	if j.hOff != size {
		return Result{}, fmt.Errorf("download %s: hashed %d of %d bytes", src, j.hOff, size)
	}
	got := verify.Digest{Algo: verify.SHA256, Value: hex.EncodeToString(h.Sum(nil))}
	j.progress()
	if !expected.IsZero() && !expected.Equal(got) {
		return Result{}, fetch.Permanent(&verify.MismatchError{Path: src.String(), Expected: expected, Actual: got})
	}
	if info.Size < 0 {
		if err := in.File().Truncate(size); err != nil {
			return Result{}, err
		}
	}
	p, err := store.Commit(in, got, size)
	if err != nil {
		return Result{}, err
	}
	return Result{Digest: got, Size: size, BlobPath: p, Info: info, Transferred: j.moved.Load()}, nil
}

// plan splits the object into parts: one stream unless the source serves
// ranges and the object is at least two PartSize long. A large object is
// cut into parts of at most PartSize (a sixty-fourth of the object, but no
// less than minPart), fetched in order, Parts at a time: the contiguous
// prefix the hasher follows then trails the bytes on disk by at most Parts
// parts, so a resumed download has little to read back and hash, while the
// number of requests stays small.
func plan(info Info, opts Options) []content.Part {
	if !info.Ranges || info.Size < 2*opts.PartSize || opts.Parts == 1 {
		end := info.Size
		return []content.Part{{Start: 0, End: end}}
	}
	piece := min(opts.PartSize, max(info.Size/64, minPart))
	n := max(int64(opts.Parts), (info.Size+piece-1)/piece)
	if most := info.Size / piece; most < n {
		n = most
	}
	chunk := (info.Size + n - 1) / n
	var parts []content.Part
	for off := int64(0); off < info.Size; off += chunk {
		parts = append(parts, content.Part{Start: off, End: min(off+chunk, info.Size)})
	}
	return parts
}

// minPart is the smallest part plan cuts a large object into.
const minPart = 16 << 20

func statWithRetry(ctx context.Context, src Source, opts Options) (Info, error) {
	var info Info
	err := Retry(ctx, opts, src.String(), func() error {
		var err error
		info, err = src.Stat(ctx)
		return err
	})
	return info, err
}

// Retry calls fn until it succeeds, fails with an error that is not
// transient, or has failed opts.Retries times, sleeping with jittered
// exponential backoff (or the source's Retry-After) in between. what names
// the operation in logs.
func Retry(ctx context.Context, opts Options, what string, fn func() error) error {
	opts.defaults()
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			return nil
		}
		if !Transient(err) || attempt >= opts.Retries || ctx.Err() != nil {
			return err
		}
		d := backoff(opts.RetryBase, attempt, retryAfter(err))
		opts.Logger.Info("retrying", "source", what, "attempt", attempt, "retry_in", d.Round(time.Millisecond), "err", err.Error())
		if werr := wait(ctx, d); werr != nil {
			return werr
		}
	}
}

// runPart fetches one part to its end, resuming after transient failures.
func (j *job) runPart(ctx context.Context, p *partState) error {
	failures := 0
	for !p.finished.Load() {
		before := p.done.Load()
		err := j.stream(ctx, p)
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !Transient(err) || errors.Is(err, ErrChanged) || errors.Is(err, ErrRangeIgnored) {
			return err
		}
		if p.done.Load() > before {
			failures = 0
		}
		failures++
		if failures > j.opts.Retries {
			return fmt.Errorf("download %s: giving up after %d attempts: %w", j.src, failures, err)
		}
		d := backoff(j.opts.RetryBase, failures, retryAfter(err))
		j.opts.Logger.Info("download interrupted; resuming", "source", j.src.String(), "offset", p.start+p.done.Load(), "retry_in", d.Round(time.Millisecond), "err", err.Error())
		if err := wait(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

// stream reads one response for part p into the ingest file. It returns nil
// when the part is complete.
func (j *job) stream(ctx context.Context, p *partState) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stall := time.AfterFunc(j.opts.Stall, func() { cancel(ErrStalled) })
	defer stall.Stop()

	off := p.start + p.done.Load()
	body, err := j.src.Range(ctx, off, p.end, j.info)
	if err != nil {
		if c := context.Cause(ctx); errors.Is(c, ErrStalled) {
			return fmt.Errorf("download %s at byte %d: %w after %s", j.src, off, ErrStalled, j.opts.Stall)
		}
		return err
	}
	defer body.Close()
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	f := j.in.File()
	for {
		want := len(buf)
		if p.end >= 0 {
			remaining := p.end - (p.start + p.done.Load())
			if remaining == 0 {
				// A source that sends more than asked for is not trusted
				// for the rest of this response.
				p.finished.Store(true)
				j.kick()
				return nil
			}
			want = int(min(int64(want), remaining))
		}
		// Gather up to fillSize, for at most fillTime, before writing: a
		// TLS body yields one 16 KiB record per read, and a write (and a
		// wake of the hasher) per record costs more than the bytes do on
		// a fast link, while a slow one still reports progress promptly.
		want = min(want, fillSize)
		n := 0
		var rerr error
		var began time.Time
		for n < want && rerr == nil {
			var m int
			m, rerr = body.Read(buf[n:want])
			if m > 0 {
				stall.Reset(j.opts.Stall)
				n += m
			}
			if began.IsZero() {
				began = time.Now()
			} else if time.Since(began) > fillTime {
				break
			}
		}
		if n > 0 {
			at := p.start + p.done.Load()
			if _, werr := f.WriteAt(buf[:n], at); werr != nil {
				return fetch.Permanent(j.store.SpaceError(fmt.Errorf("write download of %s: %w", j.src, werr)))
			}
			p.done.Add(int64(n))
			j.moved.Add(int64(n))
			j.kick()
		}
		if rerr == io.EOF {
			if p.end < 0 {
				j.total.Store(p.start + p.done.Load())
				p.finished.Store(true)
				j.kick()
				return nil
			}
			if p.start+p.done.Load() < p.end {
				return fmt.Errorf("download %s: body ended at byte %d of %d: %w", j.src, p.start+p.done.Load(), p.end, io.ErrUnexpectedEOF)
			}
			continue
		}
		if rerr != nil {
			if c := context.Cause(ctx); errors.Is(c, ErrStalled) {
				return fmt.Errorf("download %s at byte %d: %w: no data for %s", j.src, p.start+p.done.Load(), ErrStalled, j.opts.Stall)
			}
			return fmt.Errorf("download %s at byte %d: %w", j.src, p.start+p.done.Load(), rerr)
		}
	}
}

// fillSize and fillTime bound what a stream gathers before it writes.
const (
	fillSize = 256 << 10
	fillTime = 10 * time.Millisecond
)

func (j *job) kick() {
	select {
	case j.wake <- struct{}{}:
	default:
	}
}

// frontier returns how far the bytes from offset 0 are contiguous on disk,
// and whether that is the whole object.
func (j *job) frontier() (int64, bool) {
	var f int64
	for _, p := range j.parts {
		if f < p.start {
			return f, false
		}
		f = p.start + p.done.Load()
		if !p.finished.Load() {
			return f, false
		}
	}
	return f, true
}

// hash follows the contiguous prefix on disk and feeds it to h, so the
// digest is ready the moment the last byte lands. It reads back what the
// parts just wrote, from the page cache; with parallel parts there is no
// other order in which the bytes could be hashed in one pass.
func (j *job) hash(ctx context.Context, h hash.Hash) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	f := j.in.File()
	lastSnap := j.hOff
	for {
		front, complete := j.frontier()
		for j.hOff < front {
			n := int(min(int64(len(buf)), front-j.hOff))
			m, err := f.ReadAt(buf[:n], j.hOff)
			if m > 0 {
				h.Write(buf[:m])
				j.hOff += int64(m)
			}
			if err != nil && !(errors.Is(err, io.EOF) && m == n) {
				return fmt.Errorf("hash download of %s: %w", j.src, err)
			}
			if j.hOff-lastSnap >= 8<<20 {
				j.snapshot(h)
				lastSnap = j.hOff
			}
		}
		if complete {
			j.snapshot(h)
			return nil
		}
		select {
		case <-ctx.Done():
			j.snapshot(h)
			return ctx.Err()
		case <-j.wake:
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// snapshot publishes the hash state at the current hash offset for the next
// checkpoint.
func (j *job) snapshot(h hash.Hash) {
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return
	}
	j.mu.Lock()
	j.hState, j.hStateOff = state, j.hOff
	j.mu.Unlock()
}

// checkpointer saves resume state every Checkpoint bytes or every second,
// and reports progress. The returned func stops it and waits for it.
func (j *job) checkpointer(ctx context.Context) func() {
	every := j.opts.Checkpoint
	if every <= 0 {
		every = min(max(j.info.Size/20, 8<<20), 64<<20)
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		lastSave, lastBytes := time.Now(), j.moved.Load()
		for {
			select {
			case <-ctx.Done():
				return
			case <-done:
				return
			case <-tick.C:
			}
			j.progress()
			moved := j.moved.Load()
			if moved-lastBytes >= every || (moved != lastBytes && time.Since(lastSave) >= time.Second) {
				if err := j.checkpoint(); err != nil {
					j.opts.Logger.Warn("could not save download checkpoint", "source", j.src.String(), "err", err.Error())
				}
				lastSave, lastBytes = time.Now(), moved
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// checkpoint records durable progress. The hash snapshot is read before the
// parts' progress: parts only grow, so the state never claims hashed bytes
// that are not also claimed written; Save fsyncs the data before writing the
// state, so it never claims bytes a crash could lose.
func (j *job) checkpoint() error {
	j.mu.Lock()
	hOff, hState := j.hStateOff, j.hState
	j.mu.Unlock()
	st := j.in.State
	st.Parts = make([]content.Part, len(j.parts))
	for i, p := range j.parts {
		st.Parts[i] = content.Part{Start: p.start, End: p.end, Done: p.done.Load()}
	}
	st.HashOffset, st.HashState = hOff, hState
	j.in.State = st
	return j.in.Save()
}

func (j *job) progress() {
	if j.opts.Progress == nil {
		return
	}
	var done int64
	for _, p := range j.parts {
		done += p.done.Load()
	}
	j.opts.Progress(done, j.total.Load())
}

// backoff returns the delay before retry number attempt: exponential from
// base with jitter, capped at 30s, or what the source asked for.
func backoff(base time.Duration, attempt int, asked time.Duration) time.Duration {
	if asked > 0 {
		return min(asked, 5*time.Minute)
	}
	d := base
	for i := 1; i < attempt && d < 30*time.Second; i++ {
		d *= 2
	}
	d = min(d, 30*time.Second)
	return d/2 + time.Duration(rand.Float64()*float64(d/2))
}

func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}
