package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"time"
	"unsafe"
)

// fileWaiter reports when a file appears in a directory, from inotify
// events, so that a reaction time is not rounded up to a polling interval.
type fileWaiter struct {
	fd     int
	events chan string
}

func newFileWaiter(dir string) (*fileWaiter, error) {
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if _, err := syscall.InotifyAddWatch(fd, dir, syscall.IN_CREATE|syscall.IN_MOVED_TO|syscall.IN_CLOSE_WRITE); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	w := &fileWaiter{fd: fd, events: make(chan string, 4096)}
	go w.read()
	return w, nil
}

// read forwards the names of created or moved-in files until the
// descriptor is closed.
func (w *fileWaiter) read() {
	buf := make([]byte, 64<<10)
	for {
		n, err := syscall.Read(w.fd, buf)
		if err != nil || n <= 0 {
			close(w.events)
			return
		}
		for off := 0; off+syscall.SizeofInotifyEvent <= n; {
			ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := buf[off+syscall.SizeofInotifyEvent : off+syscall.SizeofInotifyEvent+int(ev.Len)]
			for i, c := range name {
				if c == 0 {
					name = name[:i]
					break
				}
			}
			w.events <- string(name)
			off += syscall.SizeofInotifyEvent + int(ev.Len)
		}
	}
}

// Arm drops events queued before the trial starts.
func (w *fileWaiter) Arm(string) {
	for {
		select {
		case <-w.events:
		default:
			return
		}
	}
}

// Wait returns once path exists: at once if it already does, else at the
// event that creates it.
func (w *fileWaiter) Wait(ctx context.Context, path string) error {
	base := filepath.Base(path)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case name, ok := <-w.events:
			if !ok {
				return errors.New("inotify closed")
			}
			if name != base {
				continue
			}
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		if _, err := os.Stat(path); err == nil {
			return nil
		}
	}
}

func (w *fileWaiter) Close() error { return syscall.Close(w.fd) }
