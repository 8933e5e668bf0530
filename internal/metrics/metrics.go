// Package metrics exposes the server's Prometheus metrics: GraphQL
// operations and their latency, HTTP requests, security events, password
// hashing, and database errors.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gqlauth/gqlauth/internal/auth"
)

var _ auth.Observer = (*Metrics)(nil)

// Metrics holds the collectors on a registry of their own.
type Metrics struct {
	reg        *prometheus.Registry
	operations *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	requests   *prometheus.CounterVec
	events     *prometheus.CounterVec
	dbErrors   *prometheus.CounterVec
	emails     *prometheus.CounterVec
	dropped    *prometheus.CounterVec
	pending    prometheus.Gauge
	oldest     prometheus.Gauge
}

// Hashing reports the password hashes running and queued
// (password.Hasher).
type Hashing interface {
	InFlight() int
	Waiting() int
}

// New registers the collectors.
func New(hashing Hashing) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		operations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gqlauth_graphql_operations_total",
			Help: "GraphQL operations by their root fields and outcome (ok, or the first error code).",
		}, []string{"operation", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gqlauth_graphql_operation_duration_seconds",
			Help:    "GraphQL operation latency by root fields.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"operation"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gqlauth_http_requests_total",
			Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gqlauth_auth_events_total",
			Help: "Security events: logins, failures, throttling, refreshes, reuse detected, logouts.",
		}, []string{"event"}),
		dbErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gqlauth_database_errors_total",
			Help: "Failed database calls: unavailable (not reached in time) or other.",
		}, []string{"kind"}),
		emails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gqlauth_emails_total",
			Help: "Account e-mails by what happened: queued, sent, retried (an attempt failed, or was put off while the server failed, and another is due).",
		}, []string{"outcome"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gqlauth_emails_dropped_total",
			Help: "Account e-mails given up: refused (SMTP 5xx), failed_24h, outbox_full, not_queued (the outbox, or the link's token, could not be written), unreadable (its sealed link opens under no key held).",
		}, []string{"reason"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gqlauth_email_outbox_pending",
			Help: "E-mails waiting in the outbox, as of its latest count (every 10 s).",
		}),
		oldest: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gqlauth_email_outbox_oldest_age_seconds",
			Help: "How long the oldest e-mail waiting in the outbox has waited.",
		}),
	}
	m.reg.MustRegister(
		m.operations, m.latency, m.requests, m.events, m.dbErrors, m.emails, m.dropped, m.pending, m.oldest,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gqlauth_password_hashes_in_flight",
			Help: "Password hashes (bcrypt) running now.",
		}, func() float64 { return float64(hashing.InFlight()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gqlauth_password_hashes_waiting",
			Help: "Password hashes waiting for a slot.",
		}, func() float64 { return float64(hashing.Waiting()) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	// Every event counted from the start (at zero), so that dashboards see
	// them before the first occurrence.
	for _, e := range auth.Events {
		m.events.WithLabelValues(string(e))
	}
	for _, k := range []string{"unavailable", "other"} {
		m.dbErrors.WithLabelValues(k)
	}
	for _, k := range []string{"queued", "sent", "retried"} {
		m.emails.WithLabelValues(k)
	}
	for _, k := range []string{"refused", "failed_24h", "outbox_full", "not_queued", "unreadable"} {
		m.dropped.WithLabelValues(k)
	}
	return m
}

// EmailQueued counts an e-mail stored in the outbox (email.Observer).
func (m *Metrics) EmailQueued() { m.emails.WithLabelValues("queued").Inc() }

// EmailSent counts an e-mail delivered.
func (m *Metrics) EmailSent() { m.emails.WithLabelValues("sent").Inc() }

// EmailRetried counts a failed attempt followed by another.
func (m *Metrics) EmailRetried() { m.emails.WithLabelValues("retried").Inc() }

// EmailDropped counts an e-mail given up, by reason (email.Observer and
// auth.Observer).
func (m *Metrics) EmailDropped(reason string) { m.dropped.WithLabelValues(reason).Inc() }

// EmailOutbox sets the outbox's gauges.
func (m *Metrics) EmailOutbox(pending int, oldest time.Duration) {
	m.pending.Set(float64(pending))
	m.oldest.Set(oldest.Seconds())
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// AuthEvent counts a security event (auth.Observer).
func (m *Metrics) AuthEvent(event auth.Event) { m.events.WithLabelValues(string(event)).Inc() }

// DatabaseError counts a failed database call (auth.Observer).
func (m *Metrics) DatabaseError(unavailable bool) {
	kind := "other"
	if unavailable {
		kind = "unavailable"
	}
	m.dbErrors.WithLabelValues(kind).Inc()
}

// Operation records a GraphQL operation.
func (m *Metrics) Operation(operation, outcome string, d time.Duration) {
	m.operations.WithLabelValues(operation, outcome).Inc()
	m.latency.WithLabelValues(operation).Observe(d.Seconds())
}

// Request records an HTTP request.
func (m *Metrics) Request(route string, status int) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
}
