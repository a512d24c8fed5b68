package nginx

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/model-provisioner/model-provisioner/internal/testserver"
)

// NotInstalled is the message a test fails or skips with when there is no
// nginx binary.
const NotInstalled = "nginx not installed: run .ci/run or apt-get install nginx-light"

// startTimeout bounds how long Start waits for nginx to accept connections.
const startTimeout = 10 * time.Second

// Options configures a server.
type Options struct {
	// Root is the directory served at "/". Start makes it and everything in
	// it world-readable, and its parent directories under os.TempDir()
	// traversable, because nginx workers run unprivileged. Files added
	// later must be made readable by others (0644, directories 0755) by
	// whoever adds them.
	Root string
	// TLS serves HTTPS with a certificate for 127.0.0.1 and localhost,
	// issued by a CA made for this server (see Server.CAFile).
	TLS bool
	// RateLimit is an nginx limit_rate value such as "50m" (bytes per
	// second, per connection); empty means unlimited.
	RateLimit string
	// ServerConfig is extra nginx directives placed inside the server block,
	// e.g. a location that answers with a redirect.
	ServerConfig string
}

// Server is a running nginx. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL, e.g. https://127.0.0.1:PORT, without a trailing
	// slash.
	URL string
	// Root is the absolute path of the served directory.
	Root string
	// CAFile is a PEM file holding the CA that issued the server
	// certificate: what a client subprocess needs in SSL_CERT_FILE. Empty
	// without TLS.
	CAFile string
	// CertPool trusts that CA; nil without TLS.
	CertPool *x509.CertPool
	// AccessLog is the path of the access log, in the format parsed by
	// Requests.
	AccessLog string
	// ErrorLog is the path of nginx's error log.
	ErrorLog string

	prefix   string
	proc     *testserver.Process
	stopOnce sync.Once
}

// Available reports whether an nginx binary can be found.
func Available() bool {
	_, ok := binary()
	return ok
}

// binary finds nginx on PATH or where distributions install it; /usr/sbin
// is often missing from an unprivileged user's PATH.
func binary() (string, bool) {
	return testserver.FindBinary("nginx", "/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")
}

// Start runs nginx serving opts.Root on a free loopback port and returns
// once the port accepts connections. The server is stopped when the test
// ends. Without an nginx binary the test is skipped, or fails when the CI
// environment variable is set, so CI cannot pass by skipping.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, ok := binary()
	testserver.SkipWithout(t, ok, NotInstalled)
	if opts.Root == "" {
		t.Fatal("nginx.Start: Options.Root is empty")
	}
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		t.Fatalf("nginx.Start: %v", err)
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		t.Fatalf("nginx.Start: root %s is not a directory (%v)", root, err)
	}
	if err := exposeTree(t, root); err != nil {
		t.Fatalf("nginx.Start: make %s readable to nginx workers: %v", root, err)
	}

	// The prefix is not made by t.TempDir: that directory is 0700 and nginx
	// workers, which run as nobody, must reach the temp paths inside it.
	prefix, err := os.MkdirTemp("", "nginx-test-")
	if err != nil {
		t.Fatalf("nginx.Start: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(prefix) })
	if err := os.Chmod(prefix, 0o755); err != nil {
		t.Fatalf("nginx.Start: %v", err)
	}
	for _, d := range tempDirs {
		if err := os.MkdirAll(filepath.Join(prefix, "tmp", d), 0o755); err != nil {
			t.Fatalf("nginx.Start: %v", err)
		}
	}

	s := &Server{
		Root:      root,
		AccessLog: filepath.Join(prefix, "access.log"),
		ErrorLog:  filepath.Join(prefix, "error.log"),
		prefix:    prefix,
	}
	c := conf{
		Prefix:       prefix,
		Root:         root,
		RateLimit:    opts.RateLimit,
		ServerConfig: opts.ServerConfig,
		User:         workerUser(),
		Modules:      compiledModules(bin),
	}
	if opts.TLS {
		ca := testserver.NewCA(t)
		leaf := ca.Issue(t)
		c.CertFile = filepath.Join(prefix, "server.crt")
		c.KeyFile = filepath.Join(prefix, "server.key")
		if err := os.WriteFile(c.CertFile, leaf.CertPEM, 0o644); err != nil {
			t.Fatalf("nginx.Start: %v", err)
		}
		if err := os.WriteFile(c.KeyFile, leaf.KeyPEM, 0o600); err != nil {
			t.Fatalf("nginx.Start: %v", err)
		}
		s.CAFile = ca.WriteCAFile(t, prefix)
		s.CertPool = ca.Pool
	}

	// A port found free may be taken before nginx binds it; nginx then exits
	// with "Address already in use" and another port is tried.
	const attempts = 5
	for i := 1; ; i++ {
		c.Port, err = freePort()
		if err != nil {
			t.Fatalf("nginx.Start: %v", err)
		}
		err = s.launch(bin, c)
		if err == nil {
			break
		}
		if errors.Is(err, errAddrInUse) && i < attempts {
			continue
		}
		t.Fatalf("nginx.Start: %v", err)
	}
	t.Cleanup(s.Stop)

	scheme := "http"
	if opts.TLS {
		scheme = "https"
	}
	s.URL = fmt.Sprintf("%s://127.0.0.1:%d", scheme, c.Port)
	return s
}

var errAddrInUse = errors.New("address already in use")

// launch starts nginx with configuration c and waits until it listens.
func (s *Server) launch(bin string, c conf) error {
	confPath := filepath.Join(s.prefix, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(c.render()), 0o644); err != nil {
		return err
	}
	// A previous attempt's logs would be mistaken for this one's.
	os.Remove(s.ErrorLog)
	os.Remove(filepath.Join(s.prefix, "nginx.pid"))

	// -e sends the messages nginx logs before reading its configuration to
	// the test's error log instead of a system path.
	// In its own process group, so its workers can be killed with it.
	proc, err := testserver.StartProcess(exec.Command(bin, "-p", s.prefix+"/", "-c", confPath, "-e", s.ErrorLog), syscall.SIGTERM)
	if err != nil {
		return err
	}
	s.proc = proc

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port))
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-proc.Exited():
			diag := s.diagnostics()
			if strings.Contains(diag, "Address already in use") {
				return fmt.Errorf("port %d: %w", c.Port, errAddrInUse)
			}
			return fmt.Errorf("nginx exited during start-up (%v):\n%s", proc.State(), diag)
		default:
		}
		// The pid file is written after the listening sockets are open, so
		// a connection accepted before it could belong to someone else.
		if s.pidFileIs(proc.Pid()) {
			if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				conn.Close()
				return nil
			}
		}
		if time.Now().After(deadline) {
			proc.Stop(syscall.SIGKILL, 0)
			return fmt.Errorf("nginx did not accept connections on %s within %v:\n%s", addr, startTimeout, s.diagnostics())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) pidFileIs(pid int) bool {
	b, err := os.ReadFile(filepath.Join(s.prefix, "nginx.pid"))
	if err != nil {
		return false
	}
	got, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return err == nil && got == pid
}

// diagnostics is what nginx said: its error log and its own output.
func (s *Server) diagnostics() string {
	var b strings.Builder
	if log, err := os.ReadFile(s.ErrorLog); err == nil && len(log) > 0 {
		fmt.Fprintf(&b, "%s:\n%s", s.ErrorLog, log)
	}
	if s.proc != nil {
		if out := s.proc.Output(); out != "" {
			fmt.Fprintf(&b, "output:\n%s", out)
		}
	}
	if b.Len() == 0 {
		return "(nginx logged nothing)"
	}
	return b.String()
}

// Stop shuts nginx down: a graceful quit, then SIGKILL to the whole process
// group if transfers are still running after a few seconds. It is
// idempotent and called automatically when the test ends; call it directly
// to take the server away in the middle of a test.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		if s.proc != nil {
			s.proc.Stop(syscall.SIGQUIT, 3*time.Second)
		}
	})
}

// Client returns an HTTP client that trusts the server's CA (when TLS is
// on) and does not ask for compression, so ranges address stored bytes.
func (s *Server) Client() *http.Client {
	tr := &http.Transport{
		DisableCompression: true,
		DialContext:        (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	}
	if s.CertPool != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: s.CertPool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr}
}

// FileURL returns the URL of rel, a slash-separated path under Root.
func (s *Server) FileURL(rel string) string {
	return s.URL + "/" + strings.TrimLeft(rel, "/")
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// workerUser is the user directive for a master running as root: workers
// then drop to nobody. Debian names nobody's group nogroup, others nobody.
func workerUser() string {
	if os.Geteuid() != 0 {
		return "" // nginx cannot switch users, and warns if asked to
	}
	if _, err := user.Lookup("nobody"); err != nil {
		return ""
	}
	for _, g := range []string{"nogroup", "nobody"} {
		if _, err := user.LookupGroup(g); err == nil {
			return "nobody " + g
		}
	}
	return "nobody"
}

// exposeTree makes root readable by nginx workers, which run as another
// user: directories 0755, files gain read for all. Parents under
// os.TempDir() gain search permission, since t.TempDir() creates them 0700;
// directories outside it are not changed.
func exposeTree(t testing.TB, root string) error {
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case info.IsDir():
			return chmodAdd(p, info.Mode(), 0o755)
		case info.Mode().IsRegular():
			return chmodAdd(p, info.Mode(), 0o444)
		}
		return nil
	})
	if err != nil {
		return err
	}
	tmp, err := filepath.EvalSymlinks(os.TempDir())
	if err != nil {
		tmp = os.TempDir()
	}
	for dir := filepath.Dir(root); ; dir = filepath.Dir(dir) {
		info, err := os.Stat(dir)
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o001 == 0 {
			if within(dir, tmp) || within(dir, os.TempDir()) {
				if err := chmodAdd(dir, info.Mode(), 0o111); err != nil {
					return err
				}
			} else {
				t.Logf("nginx: %s is not searchable by other users; nginx workers may answer 403", dir)
			}
		}
		if parent := filepath.Dir(dir); parent == dir {
			return nil
		}
	}
}

func chmodAdd(p string, mode fs.FileMode, bits fs.FileMode) error {
	if mode.Perm()&bits == bits {
		return nil
	}
	return os.Chmod(p, mode.Perm()|bits)
}

// within reports whether dir is strictly below base.
func within(dir, base string) bool {
	rel, err := filepath.Rel(base, dir)
	if err != nil || rel == "." || rel == ".." {
		return false
	}
	return !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// compiledModules reports which optional modules with temp paths the binary
// has: a temp path directive for a module built out is a configuration
// error.
func compiledModules(bin string) map[string]bool {
	mods := map[string]bool{"fastcgi": true, "uwsgi": true, "scgi": true, "proxy": true}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-V").CombinedOutput()
	if err != nil {
		return mods
	}
	for m := range mods {
		if bytes.Contains(out, []byte("--without-http_"+m+"_module")) {
			mods[m] = false
		}
	}
	return mods
}
