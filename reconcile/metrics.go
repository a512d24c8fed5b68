package reconcile

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/model-provisioner/model-provisioner/verify"
)

// Metrics are the agent's Prometheus metrics. Create one per registry with
// NewMetrics; it is safe for concurrent use and implements Observer.
type Metrics struct {
	passes        prometheus.Counter
	passDuration  prometheus.Histogram
	hashedBytes   prometheus.Counter
	fetchDuration *prometheus.HistogramVec
	verifyDur     prometheus.Histogram
	verifications *prometheus.CounterVec
	errors        *prometheus.CounterVec
	restarts      prometheus.Counter
	overflows     prometheus.Counter
	lastResync    prometheus.Gauge
	modelsDesc    *prometheus.Desc
	dlDoneDesc    *prometheus.Desc
	dlSizeDesc    *prometheus.Desc
	dlRateDesc    *prometheus.Desc

	mu        sync.Mutex
	phases    func() map[Phase]int
	downloads func() map[string][3]float64
}

var _ Observer = (*Metrics)(nil)

// durationBuckets span a stat of a cached file (sub-millisecond) to a
// multi-GB download (an hour).
var durationBuckets = []float64{0.001, 0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600}

// NewMetrics creates the metrics and registers them with reg. A private
// registry is expected: nothing is registered globally.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	const ns = "model_provisioner"
	m := &Metrics{
		passes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "reconcile_passes_total",
			Help: "Reconcile passes started (file events, resync and reverify ticks).",
		}),
		passDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "reconcile_pass_duration_seconds",
			Help:    "Time to read the models directory and plan a pass.",
			Buckets: []float64{0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5},
		}),
		hashedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "fetched_bytes_total",
			Help: "Bytes read from sources and hashed while fetching or verifying models.",
		}),
		fetchDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "fetch_duration_seconds",
			Help:    "Time to make one model present, by source scheme.",
			Buckets: durationBuckets,
		}, []string{"scheme"}),
		verifyDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "verify_duration_seconds",
			Help:    "Time of fetches that hashed bytes (the fingerprint fast path excluded).",
			Buckets: durationBuckets,
		}),
		verifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "verifications_total",
			Help: "Verification outcomes: pass (digest matched), warn (no digest given), fail (mismatch).",
		}, []string{"result"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "errors_total",
			Help: "Errors by reason.",
		}, []string{"reason"}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "watcher_restarts_total",
			Help: "Times the models directory watcher failed and was restarted.",
		}),
		overflows: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "watcher_overflows_total",
			Help: "Times the kernel's file event queue overflowed, forcing a full rescan.",
		}),
		lastResync: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "last_successful_resync_timestamp_seconds",
			Help: "Unix time when every declared model was last found present and verified.",
		}),
		modelsDesc: prometheus.NewDesc(ns+"_models", "Declared models by reconcile phase.", []string{"phase"}, nil),
		dlDoneDesc: prometheus.NewDesc(ns+"_download_done_bytes", "Bytes on disk of each download in flight.", []string{"model"}, nil),
		dlSizeDesc: prometheus.NewDesc(ns+"_download_size_bytes", "Size of each download in flight (-1 unknown).", []string{"model"}, nil),
		dlRateDesc: prometheus.NewDesc(ns+"_download_rate_bytes_per_second", "Smoothed rate of each download in flight.", []string{"model"}, nil),
	}
	for _, r := range []verify.Result{verify.Pass, verify.Warn, verify.Fail} {
		m.verifications.WithLabelValues(string(r))
	}
	for _, c := range []prometheus.Collector{m.passes, m.passDuration, m.hashedBytes, m.fetchDuration, m.verifyDur, m.verifications, m.errors, m.restarts, m.overflows, m.lastResync, (*phaseCollector)(m)} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Fetched implements Observer.
func (m *Metrics) Fetched(scheme string, d time.Duration, hashedBytes int64, _ error) {
	m.fetchDuration.WithLabelValues(scheme).Observe(d.Seconds())
	if hashedBytes > 0 {
		m.hashedBytes.Add(float64(hashedBytes))
		m.verifyDur.Observe(d.Seconds())
	}
}

// Verified implements Observer.
func (m *Metrics) Verified(r verify.Result) { m.verifications.WithLabelValues(string(r)).Inc() }

// WatcherRestarted counts a restart of the directory watcher.
func (m *Metrics) WatcherRestarted() { m.restarts.Inc() }

// WatcherOverflowed counts a kernel event queue overflow.
func (m *Metrics) WatcherOverflowed() { m.overflows.Inc() }

func (m *Metrics) setPhaseSource(fn func() map[Phase]int) {
	m.mu.Lock()
	m.phases = fn
	m.mu.Unlock()
}

func (m *Metrics) setDownloadSource(fn func() map[string][3]float64) {
	m.mu.Lock()
	m.downloads = fn
	m.mu.Unlock()
}

// phaseCollector reports models by phase from the loop's status at scrape
// time, so the gauge can never drift from what /status shows.
type phaseCollector Metrics

func (c *phaseCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.modelsDesc
	ch <- c.dlDoneDesc
	ch <- c.dlSizeDesc
	ch <- c.dlRateDesc
}

func (c *phaseCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	fn, dl := c.phases, c.downloads
	c.mu.Unlock()
	if dl != nil {
		for name, v := range dl() {
			ch <- prometheus.MustNewConstMetric(c.dlDoneDesc, prometheus.GaugeValue, v[0], name)
			ch <- prometheus.MustNewConstMetric(c.dlSizeDesc, prometheus.GaugeValue, v[1], name)
			ch <- prometheus.MustNewConstMetric(c.dlRateDesc, prometheus.GaugeValue, v[2], name)
		}
	}
	var counts map[Phase]int
	if fn != nil {
		counts = fn()
	}
	for _, p := range Phases {
		ch <- prometheus.MustNewConstMetric(c.modelsDesc, prometheus.GaugeValue, float64(counts[p]), string(p))
	}
}
