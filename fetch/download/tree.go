package download

import (
	"sync"

	"github.com/model-provisioner/model-provisioner/content"
	"github.com/model-provisioner/model-provisioner/fetch"
)

// TreeProgress sums the progress of the files of a multi-file model into
// one report. It is safe for concurrent use by the files' downloads.
type TreeProgress struct {
	mu    sync.Mutex
	fn    func(done, total int64)
	done  []int64
	total int64
}

// NewTreeProgress reports to fn (which may be nil) for files of the given
// sizes.
func NewTreeProgress(fn func(done, total int64), sizes []int64) *TreeProgress {
	p := &TreeProgress{fn: fn, done: make([]int64, len(sizes))}
	for _, s := range sizes {
		p.total += s
	}
	return p
}

// File returns the progress callback of file i, or nil when nobody listens.
func (p *TreeProgress) File(i int) func(done, total int64) {
	if p.fn == nil {
		return nil
	}
	return func(done, _ int64) {
		p.mu.Lock()
		p.done[i] = done
		var sum int64
		for _, d := range p.done {
			sum += d
		}
		p.mu.Unlock()
		p.fn(sum, p.total)
	}
}

// TreeResult prunes models/<name> to exactly files and describes the
// directory model they make.
func TreeResult(store *content.Store, name string, files []fetch.File, hashed bool) (fetch.Result, error) {
	keep := make(map[string]bool, len(files))
	var size int64
	for _, fl := range files {
		keep[fl.Path] = true
		size += fl.SizeBytes
	}
	if err := store.Prune(name, keep); err != nil {
		return fetch.Result{}, err
	}
	return fetch.Result{LocalPath: store.ModelDir(name), IsDir: true, SizeBytes: size, Files: files, Hashed: hashed, Owned: true}, nil
}
