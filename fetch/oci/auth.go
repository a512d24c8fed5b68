package oci

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"

	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
)

// CredentialFile is the name of the systemd credential (in
// $CREDENTIALS_DIRECTORY) holding a Docker config file for the agent.
const CredentialFile = "docker-config.json"

// DefaultDockerConfig returns the Docker CLI's config file:
// $DOCKER_CONFIG/config.json, else ~/.docker/config.json ("" when there is
// no home directory).
func DefaultDockerConfig() string {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "config.json")
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return ""
	}
	return filepath.Join(home, ".docker", "config.json")
}

// configFiles lists the Docker config files searched for credentials, in
// order: the configured file, or else the systemd credential and then the
// Docker CLI's own file. An explicitly configured path comes first because
// the operator chose it; the systemd credential comes before the home
// directory's file because it was given to this service in particular.
func configFiles(configured string) []string {
	var out []string
	if configured != "" {
		out = append(out, configured)
	}
	if d := os.Getenv("CREDENTIALS_DIRECTORY"); d != "" {
		out = append(out, filepath.Join(d, CredentialFile))
	}
	if configured == "" {
		if p := DefaultDockerConfig(); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// keychain finds registry credentials in Docker config files. The files are
// read each time a registry asks for credentials (the auth client caches
// what it gets, so this is once per registry until a credential stops
// working), which picks up a rotated password without a restart.
type keychain struct {
	files []string
}

// credential implements auth.CredentialFunc: the first file with an entry
// for hostport wins. Files that do not exist are skipped; a file that
// cannot be read or parsed is an error naming it, never silently
// anonymous.
func (k keychain) credential(ctx context.Context, hostport string) (auth.Credential, error) {
	for _, p := range k.files {
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		store, err := credentials.NewStore(p, credentials.StoreOptions{})
		if err != nil {
			return auth.EmptyCredential, &keychainError{fmt.Errorf("read registry credentials from %s: %w; fix or remove the file", p, err)}
		}
		cred, err := credentials.Credential(store)(ctx, hostport)
		if err != nil {
			return auth.EmptyCredential, &keychainError{fmt.Errorf("registry credentials for %s from %s: %w", hostport, p, err)}
		}
		if cred != auth.EmptyCredential {
			return cred, nil
		}
	}
	return auth.EmptyCredential, nil
}

// keychainError is a credentials file that could not be used: retrying
// does not help until an operator fixes it.
type keychainError struct{ err error }

func (e *keychainError) Error() string { return e.err.Error() }
func (e *keychainError) Unwrap() error { return e.err }

// describe names the files searched, for error messages.
func (k keychain) describe() string {
	if len(k.files) == 0 {
		return "no Docker config file (no home directory and none configured)"
	}
	return strings.Join(k.files, ", ")
}

// insecureList holds the registries allowed over plain HTTP.
type insecureList struct {
	hosts map[string]bool // "host" (any port) or "host:port"
	nets  []*net.IPNet
}

func parseInsecure(entries []string) (insecureList, error) {
	l := insecureList{hosts: map[string]bool{}}
	for _, e := range entries {
		e = strings.ToLower(strings.TrimSpace(e))
		if e == "" {
			return l, errors.New("insecure registry entry is empty")
		}
		if _, n, err := net.ParseCIDR(e); err == nil {
			l.nets = append(l.nets, n)
			continue
		}
		if strings.Contains(e, "/") {
			return l, fmt.Errorf("insecure registry %q: give HOST, HOST:PORT or a CIDR, without a scheme or path", e)
		}
		l.hosts[e] = true
	}
	return l, nil
}

// plainHTTP reports whether registry (host or host:port, lower-case) is
// spoken to over plain HTTP: loopback addresses always, as Docker does (the
// traffic never leaves the machine), and registries listed as insecure.
// Everything else is HTTPS only, with no fallback.
func (l insecureList) plainHTTP(registry string) bool {
	host := registry
	if h, _, err := net.SplitHostPort(registry); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	ip := net.ParseIP(host)
	if host == "localhost" || ip != nil && ip.IsLoopback() {
		return true
	}
	if l.hosts[registry] || l.hosts[host] {
		return true
	}
	for _, n := range l.nets {
		if ip != nil && n.Contains(ip) {
			return true
		}
	}
	return false
}
