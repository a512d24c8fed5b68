package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/model-provisioner/model-provisioner/content"
	"github.com/model-provisioner/model-provisioner/desired"
	"github.com/model-provisioner/model-provisioner/reconcile"
	"github.com/model-provisioner/model-provisioner/redact"
	"github.com/model-provisioner/model-provisioner/watch"
)

// runCommand is the long-running agent.
type runCommand struct {
	stdout, stderr io.Writer
	secrets        *redact.Secrets
}

func (c *runCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	cf := bindConfig(fs, configKeys...)
	fs.Usage = func() {
		io.WriteString(fs.Output(), "Usage: model-provisioner run [--config FILE] [flags]\n\n"+
			"Runs the agent: watches the models directory, keeps every declared model\n"+
			"present, verified and handed off, and serves /metrics, /healthz, /readyz and\n"+
			"/status. SIGHUP reloads the configuration; SIGTERM stops.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args, c.stderr)
	if err != nil {
		return err
	}
	if err := exactArgs(pos, 0, "no arguments"); err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	level := new(slog.LevelVar)
	log := newLogger(c.stderr, cfg.LogFormat, level, c.secrets)
	level.Set(parseLevel(cfg.LogLevel))

	// SIGHUP is caught for the whole run so that a reload never kills the
	// process by default action.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	a := &agent{log: log, level: level, secrets: c.secrets}
	return a.run(ctx, cfg, hup, func() (Config, error) { return cf.load() })
}

// agent wires the parts together and owns reloads. Everything a
// configuration change can affect is rebuilt as one "generation"; the
// metrics registry and the readiness already reached outlive generations.
type agent struct {
	log     *slog.Logger
	level   *slog.LevelVar
	secrets *redact.Secrets

	reg     *prometheus.Registry
	metrics *reconcile.Metrics
	loop    atomic.Pointer[reconcile.Loop]
	ready   atomic.Bool
}

func (a *agent) run(ctx context.Context, cfg Config, hup <-chan os.Signal, reload func() (Config, error)) error {
	a.reg = prometheus.NewRegistry()
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var err error
	if a.metrics, err = reconcile.NewMetrics(a.reg); err != nil {
		return err
	}
	a.log.Info("starting", "models_dir", cfg.ModelsDir, "state_dir", cfg.StateDir, "handoff_dir", cfg.Handoff(), "listen", cfg.Listen, "concurrency", cfg.Concurrency, "resync", cfg.Resync)
	for {
		gen, err := a.start(ctx, cfg)
		if err != nil {
			return err
		}
		next, stop := a.waitForReload(ctx, cfg, gen, hup, reload)
		if stop {
			notify("STOPPING=1")
			a.log.Info("stopping")
			err := gen.stop()
			a.log.Info("stopped")
			return err
		}
		notify("RELOADING=1")
		if err := gen.stop(); err != nil {
			return err
		}
		a.log.Info("configuration reloaded", "models_dir", next.ModelsDir, "state_dir", next.StateDir, "listen", next.Listen)
		cfg = next
	}
}

// waitForReload blocks until the agent must stop or a valid new
// configuration that differs from cfg is loaded. A SIGHUP with an unchanged
// configuration only triggers a resync; an invalid one is refused and the
// running configuration kept.
func (a *agent) waitForReload(ctx context.Context, cfg Config, gen *generation, hup <-chan os.Signal, reload func() (Config, error)) (Config, bool) {
	for {
		select {
		case <-ctx.Done():
			return cfg, true
		case <-gen.done:
			return cfg, true
		case <-hup:
			next, err := reload()
			if err != nil {
				a.log.Error("configuration reload refused; keeping the running configuration", "err", oneLine(err.Error()))
				continue
			}
			a.level.Set(parseLevel(next.LogLevel))
			if reflect.DeepEqual(next, cfg) {
				a.log.Info("SIGHUP: configuration unchanged; resyncing")
				gen.loop.Trigger(watch.Signal{Rescan: true, Reason: "sighup"})
				continue
			}
			if next.LogFormat != cfg.LogFormat {
				a.log.Warn("log_format changes take effect at the next restart")
			}
			return next, false
		}
	}
}

// generation is one configuration's running watcher, loop and server.
type generation struct {
	loop   *reconcile.Loop
	cancel context.CancelFunc
	group  *errgroup.Group
	done   chan struct{}
	err    error
}

func (g *generation) stop() error {
	g.cancel()
	<-g.done
	if errors.Is(g.err, context.Canceled) {
		return nil
	}
	return g.err
}

func (a *agent) start(parent context.Context, cfg Config) (*generation, error) {
	cat, err := openCatalog(cfg.StateDir, a.log)
	if err != nil {
		return nil, err
	}
	store, err := content.Open(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	fetchers, err := newFetchers(cfg, store, a.secrets, a.log)
	if err != nil {
		store.Close()
		return nil, err
	}
	prov, err := reconcile.NewProvisioner(reconcile.ProvisionerConfig{
		Catalog: cat, Fetchers: fetchers, HandoffDir: cfg.Handoff(), Logger: a.log, Observer: a.metrics, Content: store,
		BatchUses: true,
	})
	if err != nil {
		return nil, err
	}
	var heartbeat time.Duration
	if wd, err := daemon.SdWatchdogEnabled(false); err == nil && wd > 0 {
		// Ping at half the watchdog interval, from the loop goroutine: a
		// wedged loop stops the pings and systemd restarts the agent.
		heartbeat = wd / 2
	}
	loop, err := reconcile.NewLoop(reconcile.LoopConfig{
		ModelsDir:        cfg.ModelsDir,
		Provisioner:      prov,
		Catalog:          cat,
		Concurrency:      cfg.Concurrency,
		RetiredRetention: cfg.RetiredRetention,
		Heartbeat:        heartbeat,
		OnHeartbeat: func() {
			if !a.ready.Load() {
				// Before READY=1 only the start timeout runs; a first pass
				// that is still downloading asks for more time instead of
				// being killed and restarted from scratch.
				notify(fmt.Sprintf("EXTEND_TIMEOUT_USEC=%d", (4 * heartbeat).Microseconds()))
			}
			notify("WATCHDOG=1")
		},
		OnReady: func() {
			if !a.ready.Swap(true) {
				a.log.Info("ready")
			}
			notify("READY=1")
		},
		Metrics: a.metrics,
		Logger:  a.log,
	})
	if err != nil {
		return nil, err
	}
	w, err := watch.New(watch.Config{
		Dir:      cfg.ModelsDir,
		Resync:   cfg.Resync,
		Reverify: cfg.Reverify,
		Relevant: func(name string) bool { return desired.IsSpecFile(name) && !desired.Ignored(name) },
		Logger:   a.log,
		Hooks: watch.Hooks{
			OnOverflow: a.metrics.WatcherOverflowed,
			OnRestart:  func(error) { a.metrics.WatcherRestarted() },
		},
	})
	if err != nil {
		return nil, err
	}
	srv, err := a.listen(cfg.Listen)
	if err != nil {
		return nil, err
	}
	a.loop.Store(loop)

	ctx, cancel := context.WithCancel(parent)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return w.Run(gctx) })
	g.Go(func() error { return loop.Run(gctx, w.C()) })
	if srv != nil {
		g.Go(func() error { return srv.serve(gctx) })
	}
	gen := &generation{loop: loop, cancel: cancel, group: g, done: make(chan struct{})}
	go func() {
		gen.err = g.Wait()
		store.Close()
		if gen.err != nil && !errors.Is(gen.err, context.Canceled) {
			a.log.Error("agent stopped on error", "err", gen.err)
		}
		close(gen.done)
	}()
	return gen, nil
}

// notify sends a state change to systemd when running under it with
// Type=notify; elsewhere it does nothing.
func notify(state string) {
	_, _ = daemon.SdNotify(false, state)
}

func parseLevel(s string) slog.Level {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return lv
}
