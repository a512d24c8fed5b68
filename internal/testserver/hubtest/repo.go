package hubtest

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"
)

// RepoOption configures a repository; options given to a later AddRepo
// call for the same repository add to earlier ones.
type RepoOption func(*repoConfig)

type repoConfig struct {
	gated        bool
	private      bool
	tokens       map[string]bool
	lfsThreshold int64 // <0: the Hub's default
	cdnRate      int64 // bytes per second; 0: unlimited
}

// Gated makes the repository gated: its files and metadata need
// "Authorization: Bearer <token>" with one of tokens. Without a token the
// Hub answers 401 with X-Error-Code GatedRepo; with another token, 403 with
// the same code (the user has not been granted access).
func Gated(tokens ...string) RepoOption {
	return func(c *repoConfig) {
		c.gated = true
		for _, tk := range tokens {
			c.tokens[tk] = true
		}
	}
}

// Private makes the repository private: without one of tokens it is
// indistinguishable from a missing repository (401, X-Error-Code
// RepoNotFound).
func Private(tokens ...string) RepoOption {
	return func(c *repoConfig) {
		c.private = true
		for _, tk := range tokens {
			c.tokens[tk] = true
		}
	}
}

// CDNRate paces the CDN's bodies for this repository's files at about
// bytesPerSec, so that a download is still running when a test cancels or
// kills it. Zero means unlimited.
func CDNRate(bytesPerSec int64) RepoOption {
	return func(c *repoConfig) { c.cdnRate = bytesPerSec }
}

// LFSThreshold overrides, for this repository, the size from which a file
// is stored in LFS (see WithLFSThreshold).
func LFSThreshold(n int64) RepoOption {
	return func(c *repoConfig) { c.lfsThreshold = n }
}

type repo struct {
	org, name string
	cfg       repoConfig
	commits   map[string]*commit
	refs      map[string]string // branch or tag -> commit id
	created   time.Time
}

func (r *repo) id() string { return r.org + "/" + r.name }

// revision resolves a ref name or full commit id.
func (r *repo) revision(rev string) (*commit, bool) {
	if sha, ok := r.refs[rev]; ok {
		return r.commits[sha], true
	}
	if c, ok := r.commits[strings.ToLower(rev)]; ok && len(rev) == 40 {
		return c, true
	}
	return nil, false
}

// splitRevision finds the revision at the start of segs (which a client may
// spell over several segments, e.g. refs/pr/1) and returns it with the rest.
func (r *repo) splitRevision(segs []string) (*commit, string, []string, bool) {
	for k := 1; k <= len(segs); k++ {
		rev := strings.Join(segs[:k], "/")
		if c, ok := r.revision(rev); ok {
			return c, rev, segs[k:], true
		}
	}
	return nil, "", nil, false
}

// commit is immutable once built, as are its files: handlers keep using
// them after releasing h.mu, while AddRepo and SetRef only add commits and
// move refs.
type commit struct {
	sha   string
	time  time.Time
	files map[string]*file
	dirs  map[string]string // directory path -> git tree id; "" is the root
	paths []string          // file paths, sorted
}

type file struct {
	path    string
	data    []byte
	gitOID  string // git blob id of what git stores: the content, or the LFS pointer
	lfs     bool
	sha256  string
	pointer []byte
}

func newFile(p string, data []byte, lfs bool) *file {
	f := &file{path: p, data: data, lfs: lfs}
	sum := sha256.Sum256(data)
	f.sha256 = hex.EncodeToString(sum[:])
	stored := data
	if lfs {
		f.pointer = []byte(fmt.Sprintf("version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n", f.sha256, len(data)))
		stored = f.pointer
	}
	f.gitOID = GitBlobID(stored)
	return f
}

func (f *file) size() int64 { return int64(len(f.data)) }

// GitBlobID is git's object id of a blob with content b:
// sha1("blob <len>\x00" + b). The Hub uses it as the ETag of files kept in
// git, and as the oid of every file in the tree API.
func GitBlobID(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// SHA256 is the hex sha256 of b: the LFS oid and X-Linked-Etag of a file
// stored in LFS.
func SHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// validPath reports whether p is a clean relative slash path.
func validPath(p string) bool {
	if p == "" || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || path.Clean(p) != p {
		return false
	}
	for _, s := range strings.Split(p, "/") {
		if s == "." || s == ".." || s == "" {
			return false
		}
	}
	return true
}

// treeNode is a directory while building git trees.
type treeNode struct {
	files map[string]*file
	dirs  map[string]*treeNode
}

// buildCommit computes git-compatible tree and commit ids, so that commit
// ids are 40-hex, deterministic, and change whenever content or history
// does.
func buildCommit(files map[string]*file, parent string, seq int, message string) *commit {
	root := &treeNode{files: map[string]*file{}, dirs: map[string]*treeNode{}}
	for p, f := range files {
		n := root
		segs := strings.Split(p, "/")
		for _, d := range segs[:len(segs)-1] {
			child, ok := n.dirs[d]
			if !ok {
				child = &treeNode{files: map[string]*file{}, dirs: map[string]*treeNode{}}
				n.dirs[d] = child
			}
			n = child
		}
		n.files[segs[len(segs)-1]] = f
	}
	c := &commit{files: files, dirs: map[string]string{}}
	treeID := writeTree(root, "", c.dirs)
	for p := range files {
		c.paths = append(c.paths, p)
	}
	sort.Strings(c.paths)

	c.time = baseTime.Add(time.Duration(seq) * time.Minute)
	var body bytes.Buffer
	fmt.Fprintf(&body, "tree %s\n", treeID)
	if parent != "" {
		fmt.Fprintf(&body, "parent %s\n", parent)
	}
	who := fmt.Sprintf("Hub Fixture <fixture@hubtest.invalid> %d +0000", c.time.Unix())
	fmt.Fprintf(&body, "author %s\ncommitter %s\n\n%s\n", who, who, message)
	h := sha1.New()
	fmt.Fprintf(h, "commit %d\x00", body.Len())
	h.Write(body.Bytes())
	c.sha = hex.EncodeToString(h.Sum(nil))
	return c
}

// baseTime is the time of a repository's first commit.
var baseTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// writeTree returns the git tree id of n and records it, and those of the
// directories below it, in ids by path.
func writeTree(n *treeNode, dir string, ids map[string]string) string {
	type entry struct {
		mode, name, sortKey string
		id                  []byte
	}
	var entries []entry
	for name, f := range n.files {
		id, _ := hex.DecodeString(f.gitOID)
		entries = append(entries, entry{"100644", name, name, id})
	}
	for name, d := range n.dirs {
		sub := writeTree(d, path.Join(dir, name), ids)
		id, _ := hex.DecodeString(sub)
		// git orders a directory as if its name ended in "/".
		entries = append(entries, entry{"40000", name, name + "/", id})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].sortKey < entries[j].sortKey })
	var body bytes.Buffer
	for _, e := range entries {
		fmt.Fprintf(&body, "%s %s\x00", e.mode, e.name)
		body.Write(e.id)
	}
	h := sha1.New()
	fmt.Fprintf(h, "tree %d\x00", body.Len())
	h.Write(body.Bytes())
	id := hex.EncodeToString(h.Sum(nil))
	ids[dir] = id
	return id
}
