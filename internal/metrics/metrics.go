// Package metrics owns cometbot's Prometheus collectors and serves them on
// GET /metrics. The engine, the gateway client, the platform adapters and
// the store report through small interfaces defined where they are used
// (bot.Metrics, llm.Metrics, slack.Metrics, discord.Metrics and
// storage.Options.ObserveCommit); *Metrics implements all of them.
//
// Every label is low-cardinality: platform names, outcomes, wire formats,
// HTTP status codes, API method names and catalog model ids (anything else
// is reported as "other"). No user, channel or conversation id is ever a
// label.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// OtherModel is the model label of a model the catalog does not know.
const OtherModel = "other"

// Options configure New.
type Options struct {
	// KnownModel reports whether id is a catalog model id; ids it refuses
	// are counted as OtherModel, so the model label stays bounded. Nil
	// counts every model as OtherModel.
	KnownModel func(id string) bool
	// NoProcess leaves out the Go runtime and process collectors (tests).
	NoProcess bool
}

// Metrics holds the collectors in a registry of their own.
type Metrics struct {
	reg   *prometheus.Registry
	known func(string) bool

	turns        *prometheus.CounterVec
	gwRequests   *prometheus.CounterVec
	gwRetries    *prometheus.CounterVec
	tokens       *prometheus.CounterVec
	cost         *prometheus.CounterVec
	firstToken   prometheus.Histogram
	firstVisible prometheus.Histogram
	turnSeconds  prometheus.Histogram
	platRequests *prometheus.CounterVec
	platWait     *prometheus.HistogramVec
	inflight     prometheus.Gauge
	queued       prometheus.Gauge
	dbCommit     prometheus.Histogram
}

// latencyBuckets span 50 ms to 2 minutes: model latency and whole turns.
var latencyBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60, 120}

// New builds the collectors and registers them.
func New(opts Options) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), known: opts.KnownModel}
	m.turns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cometbot_turns_total",
		Help: "Turns finished, by platform and outcome (ok, failed, cancelled, refused, interrupted).",
	}, []string{"platform", "outcome"})
	m.gwRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cometbot_gateway_requests_total",
		Help: "HTTP requests to the LLM gateway, by wire format and status code (\"error\": no response).",
	}, []string{"format", "code"})
	m.gwRetries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cometbot_gateway_retries_total",
		Help: "Gateway calls made again, by reason (an error kind, format-fallback or param-rejected).",
	}, []string{"reason"})
	m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cometbot_tokens_total",
		Help: "Tokens the gateway counted, by model (catalog id or other) and kind (input, output).",
	}, []string{"model", "kind"})
	m.cost = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cometbot_cost_usd_total",
		Help: "Cost in US dollars at catalog prices, by model (catalog id or other).",
	}, []string{"model"})
	m.firstToken = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "cometbot_first_token_seconds",
		Help:    "From the model call's start to the first answer text from the gateway.",
		Buckets: latencyBuckets,
	})
	m.firstVisible = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "cometbot_first_visible_seconds",
		Help:    "From the engine taking the event to the first answer text handed to the platform.",
		Buckets: latencyBuckets,
	})
	m.turnSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "cometbot_turn_seconds",
		Help:    "From the engine taking the event to the turn's end (queueing included).",
		Buckets: latencyBuckets,
	})
	m.platRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cometbot_platform_requests_total",
		Help: "Platform API calls, by platform, method (Slack API method, Discord route) and HTTP status code (\"error\": no response).",
	}, []string{"platform", "method", "code"})
	m.platWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cometbot_platform_wait_seconds",
		Help:    "Time a platform call waited for the pacer (rate-limit budgets and 429 pauses).",
		Buckets: []float64{0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60},
	}, []string{"platform"})
	m.inflight = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "cometbot_inflight_turns",
		Help: "Turns running now (loading history, calling the model or delivering).",
	})
	m.queued = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "cometbot_queued_turns",
		Help: "Turns accepted and waiting behind an earlier turn of their conversation.",
	})
	m.dbCommit = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "cometbot_db_commit_seconds",
		Help:    "Duration of one store commit (a group of writes and its fsync).",
		Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5},
	})
	m.reg.MustRegister(m.turns, m.gwRequests, m.gwRetries, m.tokens, m.cost, m.firstToken, m.firstVisible,
		m.turnSeconds, m.platRequests, m.platWait, m.inflight, m.queued, m.dbCommit)
	if !opts.NoProcess {
		m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return m
}

// Registry returns the registry the collectors are in (tests gather it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// model bounds a model label to catalog ids.
func (m *Metrics) model(id string) string {
	if id != "" && m.known != nil && m.known(id) {
		return id
	}
	return OtherModel
}

// code is an HTTP status code as a label; 0 (no response) is "error".
func code(c int) string {
	if c <= 0 {
		return "error"
	}
	return strconv.Itoa(c)
}

// TurnQueued moves the queued-turns gauge by delta (bot.Metrics).
func (m *Metrics) TurnQueued(delta int) { m.queued.Add(float64(delta)) }

// TurnRunning moves the in-flight-turns gauge by delta (bot.Metrics).
func (m *Metrics) TurnRunning(delta int) { m.inflight.Add(float64(delta)) }

// TurnDone counts a finished turn and observes its duration (bot.Metrics).
func (m *Metrics) TurnDone(platform, outcome string, d time.Duration) {
	m.turns.WithLabelValues(platform, outcome).Inc()
	m.turnSeconds.Observe(d.Seconds())
}

// FirstToken observes the time to the first answer text (bot.Metrics).
func (m *Metrics) FirstToken(d time.Duration) { m.firstToken.Observe(d.Seconds()) }

// FirstVisible observes the time from the event to the first text handed
// to the platform (bot.Metrics).
func (m *Metrics) FirstVisible(d time.Duration) { m.firstVisible.Observe(d.Seconds()) }

// Usage counts a model call's tokens and cost (bot.Metrics).
func (m *Metrics) Usage(model string, input, output int, costUSD float64) {
	model = m.model(model)
	if input > 0 {
		m.tokens.WithLabelValues(model, "input").Add(float64(input))
	}
	if output > 0 {
		m.tokens.WithLabelValues(model, "output").Add(float64(output))
	}
	if costUSD > 0 {
		m.cost.WithLabelValues(model).Add(costUSD)
	}
}

// GatewayRequest counts one gateway HTTP request (llm.Metrics); status 0
// means no response.
func (m *Metrics) GatewayRequest(format string, status int) {
	m.gwRequests.WithLabelValues(format, code(status)).Inc()
}

// GatewayRetry counts a gateway call made again, and why (llm.Metrics).
func (m *Metrics) GatewayRetry(reason string) { m.gwRetries.WithLabelValues(reason).Inc() }

// PlatformRequest counts one platform API call (slack.Metrics,
// discord.Metrics); status 0 means no response.
func (m *Metrics) PlatformRequest(platform, method string, status int) {
	m.platRequests.WithLabelValues(platform, method, code(status)).Inc()
}

// PlatformWait observes a pacing delay before a platform call.
func (m *Metrics) PlatformWait(platform string, d time.Duration) {
	m.platWait.WithLabelValues(platform).Observe(d.Seconds())
}

// DBCommit observes one store commit (storage.Options.ObserveCommit).
func (m *Metrics) DBCommit(d time.Duration) { m.dbCommit.Observe(d.Seconds()) }
