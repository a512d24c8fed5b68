package registry

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/model-provisioner/model-provisioner/internal/testserver"
)

// NotInstalled is the message a test fails or skips with when there is no
// docker-registry binary.
const NotInstalled = "docker-registry not installed: run scripts/install-test-deps (or apt-get install docker-registry)"

// startTimeout bounds how long Start waits for the registry to answer.
const startTimeout = 15 * time.Second

// Options configures a server.
type Options struct {
	// Users turns on basic authentication when not empty: user name to
	// password, written to an htpasswd file as bcrypt hashes (the only
	// format the registry accepts). Push authenticates as the first user
	// in name order.
	Users map[string]string
}

// Server is a running registry and the proxy in front of it. Its methods
// are safe for concurrent use.
type Server struct {
	// Host is the proxy's 127.0.0.1:PORT: the registry name clients put in
	// references (oci://HOST/REPO:TAG). Loopback, so plain HTTP is expected.
	Host string
	// URL is http://Host.
	URL string
	// RegistryHost is the registry's own 127.0.0.1:PORT, bypassing the
	// proxy.
	RegistryHost string
	// Root is the registry's filesystem storage directory.
	Root string

	dir      string
	proxy    *proxy
	user     string
	password string

	proc     *testserver.Process
	stopOnce sync.Once
}

// Available reports whether a docker-registry binary can be found.
func Available() bool {
	_, ok := binary()
	return ok
}

// binary finds the registry: Debian installs it as /usr/bin/docker-registry.
func binary() (string, bool) {
	return testserver.FindBinary("docker-registry", "/usr/bin/docker-registry")
}

// Start runs a registry with empty storage on a free loopback port, and the
// counting proxy in front of it on another, and returns once the registry
// answers. Both are stopped when the test ends. Without the binary the test
// is skipped, or fails when the CI environment variable is set, so CI cannot
// pass by skipping.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, ok := binary()
	testserver.SkipWithout(t, ok, NotInstalled)
	dir := t.TempDir()
	s := &Server{dir: dir, Root: filepath.Join(dir, "storage")}
	if err := os.MkdirAll(s.Root, 0o755); err != nil {
		t.Fatalf("registry.Start: %v", err)
	}
	c := conf{Root: s.Root, Secret: randomHex(t, 16)}
	if len(opts.Users) > 0 {
		c.Htpasswd = filepath.Join(dir, "htpasswd")
		if err := writeHtpasswd(c.Htpasswd, opts.Users); err != nil {
			t.Fatalf("registry.Start: %v", err)
		}
		s.user = firstUser(opts.Users)
		s.password = opts.Users[s.user]
	}

	// A port found free may be taken before the registry binds it; it then
	// exits with "address already in use" and another port is tried.
	const attempts = 5
	var err error
	for i := 1; ; i++ {
		c.Port, err = freePort()
		if err != nil {
			t.Fatalf("registry.Start: %v", err)
		}
		err = s.launch(bin, c)
		if err == nil {
			break
		}
		if errors.Is(err, errAddrInUse) && i < attempts {
			continue
		}
		t.Fatalf("registry.Start: %v", err)
	}
	t.Cleanup(s.Stop)
	s.RegistryHost = net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port))

	s.proxy, err = startProxy("http://" + s.RegistryHost)
	if err != nil {
		t.Fatalf("registry.Start: %v", err)
	}
	t.Cleanup(s.proxy.close)
	s.Host = s.proxy.addr
	s.URL = "http://" + s.Host
	return s
}

var errAddrInUse = errors.New("address already in use")

// conf is what varies between generated configurations.
type conf struct {
	Root, Secret, Htpasswd string
	Port                   int
}

// render writes the configuration in the registry's version 0.1 format.
// Upload purging and the storage health check are off: both start
// background work that a short-lived test server does not need.
func (c conf) render() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# Generated for one test; removed when the test ends.")
	p("version: 0.1")
	p("log:")
	p("  level: warn")
	p("  accesslog:")
	p("    disabled: true")
	p("storage:")
	p("  filesystem:")
	p("    rootdirectory: %s", yamlQuote(c.Root))
	p("  delete:")
	p("    enabled: true")
	p("  maintenance:")
	p("    uploadpurging:")
	p("      enabled: false")
	p("http:")
	p("  addr: 127.0.0.1:%d", c.Port)
	p("  secret: %s", yamlQuote(c.Secret))
	if c.Htpasswd != "" {
		p("auth:")
		p("  htpasswd:")
		p("    realm: model-provisioner-test")
		p("    path: %s", yamlQuote(c.Htpasswd))
	}
	return b.String()
}

// yamlQuote makes s one double-quoted YAML scalar.
func yamlQuote(s string) string {
	return strconv.Quote(s)
}

// launch starts the registry with configuration c and waits until it
// answers the API's base endpoint.
func (s *Server) launch(bin string, c conf) error {
	cfgPath := filepath.Join(s.dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(c.render()), 0o644); err != nil {
		return err
	}
	proc, err := testserver.StartProcess(exec.Command(bin, "serve", cfgPath), syscall.SIGKILL)
	if err != nil {
		return err
	}
	s.proc = proc

	base := fmt.Sprintf("http://127.0.0.1:%d/v2/", c.Port)
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-proc.Exited():
			diag := proc.Output()
			if strings.Contains(diag, "address already in use") {
				return fmt.Errorf("port %d: %w", c.Port, errAddrInUse)
			}
			return fmt.Errorf("docker-registry exited during start-up (%v):\n%s", proc.State(), diag)
		default:
		}
		// The API version header tells this registry from anything else
		// that may have taken the port.
		if resp, err := client.Get(base); err == nil {
			resp.Body.Close()
			if resp.Header.Get("Docker-Distribution-Api-Version") != "" && (resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			proc.Stop(syscall.SIGKILL, 0)
			return fmt.Errorf("docker-registry did not answer on %s within %v:\n%s", base, startTimeout, proc.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop shuts the registry down: SIGTERM, then SIGKILL if it is still
// running after a few seconds. It is idempotent and called automatically
// when the test ends; call it directly to take the registry away in the
// middle of a test (the proxy then answers 502).
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		if s.proc != nil {
			s.proc.Stop(syscall.SIGTERM, 5*time.Second)
		}
	})
}

// Output returns what the registry has logged so far (warnings and errors).
func (s *Server) Output() string {
	if s.proc == nil {
		return ""
	}
	return s.proc.Output()
}

// writeHtpasswd writes users as an htpasswd file of bcrypt hashes. The
// lowest cost keeps start-up and every authenticated request fast.
func writeHtpasswd(path string, users map[string]string) error {
	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	sort.Strings(names)
	var b bytes.Buffer
	for _, u := range names {
		h, err := bcrypt.GenerateFromPassword([]byte(users[u]), bcrypt.MinCost)
		if err != nil {
			return fmt.Errorf("hash password of %s: %w", u, err)
		}
		fmt.Fprintf(&b, "%s:%s\n", u, h)
	}
	return os.WriteFile(path, b.Bytes(), 0o600)
}

func firstUser(users map[string]string) string {
	var first string
	for u := range users {
		if first == "" || u < first {
			first = u
		}
	}
	return first
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random: %v", err)
	}
	return hex.EncodeToString(b)
}
