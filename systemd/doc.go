// Package systemd holds the files that run the agent as a system service,
// and the tests that check them with systemd's own tools:
//
//   - model-provisioner.service: the unit, Type=notify with a watchdog,
//     sandboxed so that "systemd-analyze security" rates its exposure at
//     2.0 or lower;
//   - model-provisioner.sysusers: the static system user it runs as
//     (install as /usr/lib/sysusers.d/model-provisioner.conf);
//   - model-provisioner.tmpfiles: its configuration and handoff directories
//     (install as /usr/lib/tmpfiles.d/model-provisioner.conf).
//
// The package has no Go API; it exists so that "go test ./..." checks the
// files on every change.
package systemd
