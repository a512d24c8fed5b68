package systemd_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

const (
	unitName     = "model-provisioner.service"
	sysusersName = "model-provisioner.sysusers"
	tmpfilesName = "model-provisioner.tmpfiles"

	serviceUser = "model-provisioner"
	stateDir    = "/var/lib/model-provisioner"
	agentBinary = "/usr/bin/model-provisioner"

	// maxExposure is the highest "systemd-analyze security" exposure level
	// the unit may reach (0.0 is fully sandboxed, 10.0 not at all).
	maxExposure = 2.0
)

// TestUnit_SecurityExposure runs systemd's own sandboxing review on the unit
// and fails when its overall exposure level rises above maxExposure.
func TestUnit_SecurityExposure(t *testing.T) {
	analyze := lookTool(t, "systemd-analyze")
	if v := systemdVersion(t, analyze); v < 252 {
		t.Skipf("systemd %d: reviewing a unit file offline needs systemd 252 or later", v)
	}
	unit, err := filepath.Abs(unitName)
	if err != nil {
		t.Fatal(err)
	}

	// --threshold is in tenths; with it the command also fails on its own
	// when the level is too high, which backs up the parsed number.
	res := runTool(t, nil, analyze, "security", "--no-pager", "--offline=true",
		fmt.Sprintf("--threshold=%d", int(maxExposure*10)), unit)
	if res.stderr != "" {
		t.Logf("systemd-analyze security stderr:\n%s", res.stderr)
	}

	exposureLine := regexp.MustCompile(`Overall exposure level for ` + regexp.QuoteMeta(unitName) + `: ([0-9]+\.[0-9]+)`)
	m := exposureLine.FindStringSubmatch(res.stdout)
	if m == nil {
		t.Fatalf("no overall exposure level in systemd-analyze security output (exit %d):\n%s%s", res.code, res.stdout, res.stderr)
	}
	exposure, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("parse exposure level %q: %v", m[1], err)
	}
	t.Logf("overall exposure level: %.1f (limit %.1f)", exposure, maxExposure)
	if exposure > maxExposure {
		// Rows that cost something end in their share of the exposure.
		cost := regexp.MustCompile(`\s[0-9]+\.[0-9]+$`)
		var costly []string
		for _, line := range nonEmptyLines(res.stdout) {
			if cost.MatchString(line) {
				costly = append(costly, line)
			}
		}
		t.Errorf("exposure level %.1f is above %.1f; the settings that cost it:\n%s", exposure, maxExposure, strings.Join(costly, "\n"))
	}
	if res.code != 0 {
		t.Errorf("systemd-analyze security --threshold=%d exited %d", int(maxExposure*10), res.code)
	}
}

// TestUnit_Verify loads the unit the way the service manager would and fails
// on any warning about it. The agent is not installed here, so a copy of the
// unit runs a stand-in executable: verify insists that ExecStart= exists.
func TestUnit_Verify(t *testing.T) {
	analyze := lookTool(t, "systemd-analyze")
	version := systemdVersion(t, analyze)
	stand, err := exec.LookPath("true")
	if err != nil {
		t.Skipf("no true(1) to stand in for the agent: %v", err)
	}

	dir := t.TempDir()
	exe := filepath.Join(dir, "model-provisioner")
	copyFile(t, stand, exe, 0o755)

	text := readFile(t, unitName)
	const execStart = "\nExecStart=" + agentBinary + " "
	if n := strings.Count(text, execStart); n != 1 {
		t.Fatalf("%s: want exactly one line starting %q, found %d", unitName, strings.TrimPrefix(execStart, "\n"), n)
	}
	text = strings.Replace(text, execStart, "\nExecStart="+exe+" ", 1)
	unit := filepath.Join(dir, unitName)
	if err := os.WriteFile(unit, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}

	args := []string{"verify"}
	if version >= 250 {
		// Report, and set the exit status for, this unit only, not the
		// host's units it pulls in (multi-user.target, network-online.target
		// and what they depend on): those are not ours to fix.
		args = append(args, "--recursive-errors=no")
	}
	res := runTool(t, nil, analyze, append(args, unit)...)
	for _, line := range nonEmptyLines(res.stdout + res.stderr) {
		if aboutOtherUnit(line) {
			t.Logf("ignored, about a host unit rather than ours: %s", line)
			continue
		}
		t.Errorf("systemd-analyze verify: %s", line)
	}
	if res.code != 0 && version >= 250 {
		t.Errorf("systemd-analyze verify exited %d", res.code)
	}
}

// unitSubject matches the "<unit file or unit name>[:<line>]: " prefix
// systemd puts on messages about a particular unit.
var unitSubject = regexp.MustCompile(`^(\S+\.(?:service|socket|target|mount|automount|swap|slice|scope|path|timer|device))(?::[0-9]+)?: `)

// aboutOtherUnit reports whether a verify message concerns a unit other than
// ours. Before systemd 250 verify also prints warnings for every unit the
// checked one pulls in, such as a distribution's unit using a setting newer
// or older than the installed systemd; those say nothing about this unit.
// Messages that mention our unit anywhere, or that name no unit at all,
// are never ignored.
func aboutOtherUnit(line string) bool {
	if strings.Contains(line, unitName) {
		return false
	}
	m := unitSubject.FindStringSubmatch(line)
	return m != nil && filepath.Base(m[1]) != unitName
}

// TestUnit_Contract checks the settings the agent and its operators rely on,
// so that tightening the sandbox later cannot silently break them.
func TestUnit_Contract(t *testing.T) {
	text := readFile(t, unitName)
	unit := parseUnit(t, text)

	for _, tc := range []struct {
		section, key, value string
	}{
		// The agent reports READY=1, WATCHDOG=1 and STOPPING=1 itself.
		{"Service", "Type", "notify"},
		{"Service", "NotifyAccess", "main"},
		{"Service", "WatchdogSec", "60s"},
		{"Service", "ExecStart", agentBinary + " run --config /etc/model-provisioner/agent.yaml"},
		{"Service", "ExecReload", "/bin/kill -HUP $MAINPID"},
		{"Service", "TimeoutStopSec", "30s"},
		{"Service", "Restart", "on-failure"},
		{"Service", "RestartSec", "5s"},
		// A static user shared with sysusers.d and tmpfiles.d.
		{"Service", "User", serviceUser},
		{"Service", "Group", serviceUser},
		// Engines running as other users read models and handoff files.
		{"Service", "StateDirectory", filepath.Base(stateDir)},
		{"Service", "StateDirectoryMode", "0755"},
		{"Service", "UMask", "0022"},
		{"Service", "ConfigurationDirectory", "model-provisioner"},
		// Downloads need IPv4 and IPv6; logging and sd_notify need AF_UNIX.
		{"Service", "RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"},
		{"Service", "CapabilityBoundingSet", ""},
		{"Service", "AmbientCapabilities", ""},
		{"Service", "NoNewPrivileges", "yes"},
		{"Service", "ProtectSystem", "strict"},
		{"Install", "WantedBy", "multi-user.target"},
	} {
		t.Run(tc.section+"/"+tc.key, func(t *testing.T) {
			got, ok := unit[tc.section][tc.key]
			if !ok {
				t.Fatalf("[%s] %s= is not set; want %q", tc.section, tc.key, tc.value)
			}
			if !slices.Equal(got, []string{tc.value}) {
				t.Errorf("[%s] %s= is %q; want it set once, to %q", tc.section, tc.key, got, tc.value)
			}
		})
	}

	forbidden := map[string]string{
		"Environment":     "secrets and settings do not belong in the environment: use LoadCredential= and agent.yaml",
		"EnvironmentFile": "secrets do not belong in the environment: use LoadCredential=",
		"SetCredential":   "it would put a secret's value in the unit file itself",
		"LoadCredential":  "an active one fails the start on every host without that file; it is an example only",
		"DynamicUser":     "the agent runs as the static user from sysusers.d",
		"IPAddressDeny":   "models are downloaded from hosts whose addresses are not known in advance",
	}
	for section, keys := range unit {
		for key := range keys {
			if why, bad := forbidden[key]; bad {
				t.Errorf("[%s] %s= must not be set: %s", section, key, why)
			}
		}
	}

	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^#LoadCredential=hf-token:/`),
		regexp.MustCompile(`\$CREDENTIALS_DIRECTORY`),
		regexp.MustCompile(`(?m)^#\s+ReadWritePaths=/etc/llama$`),
	} {
		if !want.MatchString(text) {
			t.Errorf("%s: no line matching %s", unitName, want)
		}
	}
}

// TestSysusers checks the sysusers.d entry and lets systemd-sysusers create
// the user in a scratch root, never on the host.
func TestSysusers(t *testing.T) {
	var entries [][]string
	for _, line := range configLines(t, sysusersName) {
		entries = append(entries, splitQuoted(line))
	}
	want := []string{"u", serviceUser, "-", "model-provisioner agent", stateDir}
	if len(entries) != 1 || !slices.Equal(entries[0], want) {
		t.Fatalf("%s: entries %q; want exactly %q", sysusersName, entries, want)
	}

	root := t.TempDir()
	uid, gid := createUser(t, root)
	t.Logf("systemd-sysusers created %s as %d:%d", serviceUser, uid, gid)
	if uid == 0 || gid == 0 {
		t.Errorf("%s was given uid %d, gid %d; want a non-root system user", serviceUser, uid, gid)
	}
}

// TestTmpfiles creates the directories in a scratch root with
// systemd-tmpfiles and checks their modes and owners.
func TestTmpfiles(t *testing.T) {
	for _, line := range configLines(t, tmpfilesName) {
		f := strings.Fields(line)
		// An age would let systemd-tmpfiles --clean delete models.
		if len(f) > 5 && f[5] != "-" {
			t.Errorf("%s: %q has age %q; nothing of ours may be cleaned up", tmpfilesName, line, f[5])
		}
	}

	tmpfiles := lookTool(t, "systemd-tmpfiles")
	root := t.TempDir()
	uid, gid := createUser(t, root)

	conf, err := os.Open(tmpfilesName)
	if err != nil {
		t.Fatal(err)
	}
	defer conf.Close()
	res := runTool(t, conf, tmpfiles, "--root="+root, "--create", "-")

	// Without root, systemd-tmpfiles creates the directories but cannot
	// hand them to model-provisioner; that failure, and only it, is expected.
	asRoot := os.Geteuid() == 0
	chownDenied := regexp.MustCompile(`^fchownat\(\) of ` + regexp.QuoteMeta(root) + `/\S+ failed: Operation not permitted$`)
	denied := 0
	for _, line := range nonEmptyLines(res.stdout + res.stderr) {
		if !asRoot && chownDenied.MatchString(line) {
			denied++
			continue
		}
		t.Errorf("systemd-tmpfiles: %s", line)
	}
	if res.code != 0 && (asRoot || denied == 0) {
		t.Errorf("systemd-tmpfiles --create exited %d", res.code)
	}
	if !asRoot {
		t.Logf("not root: owners not checked (%d chown calls refused)", denied)
	}

	for _, tc := range []struct {
		path     string
		mode     os.FileMode
		uid, gid int
	}{
		{"/etc/model-provisioner", 0o755, 0, 0},
		{"/etc/model-provisioner/models.d", 0o755, 0, 0},
		{"/etc/model-provisioner/credentials", 0o700, 0, 0},
		{stateDir, 0o755, uid, gid},
		{stateDir + "/handoff", 0o755, uid, gid},
	} {
		t.Run(strings.TrimPrefix(tc.path, "/"), func(t *testing.T) {
			fi, err := os.Stat(filepath.Join(root, tc.path))
			if err != nil {
				t.Fatal(err)
			}
			if !fi.IsDir() || fi.Mode().Perm() != tc.mode {
				t.Errorf("mode %v; want directory with %v", fi.Mode(), tc.mode)
			}
			st, ok := fi.Sys().(*syscall.Stat_t)
			if asRoot && ok && (int(st.Uid) != tc.uid || int(st.Gid) != tc.gid) {
				t.Errorf("owner %d:%d; want %d:%d", st.Uid, st.Gid, tc.uid, tc.gid)
			}
		})
	}
}

// createUser applies the sysusers.d file to root, a scratch directory, and
// returns the uid and gid it gave the service user.
func createUser(t *testing.T, root string) (uid, gid int) {
	t.Helper()
	sysusers := lookTool(t, "systemd-sysusers")
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf, err := os.Open(sysusersName)
	if err != nil {
		t.Fatal(err)
	}
	defer conf.Close()
	// The configuration goes in on stdin: file arguments are looked up
	// inside --root.
	res := runTool(t, conf, sysusers, "--root="+root, "-")
	if res.code != 0 {
		t.Fatalf("systemd-sysusers exited %d:\n%s%s", res.code, res.stdout, res.stderr)
	}

	for _, line := range nonEmptyLines(readFile(t, filepath.Join(root, "etc", "passwd"))) {
		f := strings.Split(line, ":")
		if len(f) != 7 || f[0] != serviceUser {
			continue
		}
		if f[5] != stateDir {
			t.Errorf("home of %s is %q; want %q", serviceUser, f[5], stateDir)
		}
		if !strings.HasSuffix(f[6], "/nologin") {
			t.Errorf("shell of %s is %q; want nologin", serviceUser, f[6])
		}
		uid, uerr := strconv.Atoi(f[2])
		gid, gerr := strconv.Atoi(f[3])
		if uerr != nil || gerr != nil {
			t.Fatalf("bad passwd line %q", line)
		}
		return uid, gid
	}
	t.Fatalf("systemd-sysusers did not create %s:\n%s%s", serviceUser, res.stdout, res.stderr)
	return 0, 0
}

// unitFile maps a section name to its keys and each key to its values, in
// the order they were assigned.
type unitFile map[string]map[string][]string

// parseUnit reads the assignments of a unit file, skipping comments and
// joining continuation lines.
func parseUnit(t *testing.T, text string) unitFile {
	t.Helper()
	u := unitFile{}
	section := ""
	var pending string
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if pending == "" && (line == "" || line[0] == '#' || line[0] == ';') {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			pending += strings.TrimSuffix(line, `\`) + " "
			continue
		}
		line, pending = pending+line, ""
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			t.Fatalf("%s:%d: not a section header or assignment: %q", unitName, n+1, line)
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		u[section][key] = append(u[section][key], value)
	}
	return u
}

// configLines returns the lines of a sysusers.d or tmpfiles.d file that are
// neither blank nor comments.
func configLines(t *testing.T, name string) []string {
	t.Helper()
	var lines []string
	for _, line := range nonEmptyLines(readFile(t, name)) {
		if !strings.HasPrefix(line, "#") {
			lines = append(lines, line)
		}
	}
	return lines
}

// splitQuoted splits a sysusers.d line into fields, keeping double-quoted
// fields whole.
func splitQuoted(line string) []string {
	var fields []string
	for rest := strings.TrimSpace(line); rest != ""; rest = strings.TrimSpace(rest) {
		if rest[0] == '"' {
			if end := strings.IndexByte(rest[1:], '"'); end >= 0 {
				fields = append(fields, rest[1:end+1])
				rest = rest[end+2:]
				continue
			}
		}
		field, after, _ := strings.Cut(rest, " ")
		fields = append(fields, strings.TrimSpace(field))
		rest = after
	}
	return fields
}

type toolResult struct {
	stdout, stderr string
	code           int
}

// runTool runs a systemd command with colours and paging off, so its output
// is plain text whatever the terminal.
func runTool(t *testing.T, stdin io.Reader, name string, args ...string) toolResult {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Env = append(os.Environ(), "SYSTEMD_COLORS=0", "SYSTEMD_LOG_COLOR=0", "SYSTEMD_PAGER=cat")
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run %s: %v", name, err)
	}
	return toolResult{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// lookTool returns the path of a systemd command, skipping the test when it
// is not installed.
func lookTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed (it comes with the systemd package): %v", name, err)
	}
	return path
}

// systemdVersion returns the major version of the systemd that ships analyze.
func systemdVersion(t *testing.T, analyze string) int {
	t.Helper()
	res := runTool(t, nil, analyze, "--version")
	m := regexp.MustCompile(`^systemd ([0-9]+)`).FindStringSubmatch(res.stdout)
	if res.code != 0 || m == nil {
		t.Fatalf("systemd-analyze --version (exit %d): unexpected output %q", res.code, res.stdout+res.stderr)
	}
	v, err := strconv.Atoi(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}

func nonEmptyLines(s string) []string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			lines = append(lines, line)
		}
	}
	return lines
}
