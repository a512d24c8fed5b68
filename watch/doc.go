// Package watch tells the reconcile loop when to look at the models
// directory again. It turns filesystem events on that directory (fsnotify,
// which is inotify on Linux) and cron schedules into "resync now" signals. It
// never reads or parses spec files: a Signal only says that something may
// have changed, and the receiver re-reads the whole directory.
//
// Signals are debounced and coalesced. Editors, configuration-management
// tools and the kubelet change a file through several steps (a temp file, a
// rename, a backup, a lock symlink), so a signal is sent once events have
// been quiet for Config.Settle, and at the latest Config.MaxDelay after the
// first event of a burst, however long the burst goes on. The signal channel
// holds one signal; a signal that nobody has read yet absorbs later ones
// instead of blocking the watcher or losing what they carried.
//
// Events are only an optimisation. Periodic resync (Config.Resync) is what
// makes the agent correct, and whenever the watcher may have missed events it
// says so with Signal.Rescan:
//
//   - at start;
//   - when the models directory appears, disappears or is replaced. The
//     directory may be missing at start; its parent is watched for it, and
//     when even the parent is missing it is polled for with capped backoff;
//   - when the kernel's event queue overflows;
//   - when the watcher fails and has been restarted with capped, jittered
//     exponential backoff.
//
// Only the models directory itself is watched, not its subdirectories.
// Kubernetes ConfigMap and Secret volumes need no more than that: the kubelet
// publishes an update by renaming the hidden "..data_tmp" symlink over
// "..data", and that rename is an event in the models directory. Events on
// names starting with ".." are therefore always relevant, whatever
// Config.Relevant says.
package watch
