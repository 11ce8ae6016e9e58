package relay

import (
	"strings"
	"time"

	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/prometheus/client_golang/prometheus"
)

// metricsNamespace prefixes every metric the relay itself defines. The
// libp2p host's own metrics (libp2p_*) go to the same registry.
const metricsNamespace = "meshrelay"

// metrics holds the relay's Prometheus collectors, registered on a private
// registry. It implements relayv2.MetricsTracer.
type metrics struct {
	up                  prometheus.Gauge
	reservationRequests *prometheus.CounterVec // by status
	reservationsOpened  *prometheus.CounterVec // by kind: new, renewal
	reservationsActive  prometheus.Gauge
	circuitRequests     *prometheus.CounterVec // by status
	circuitsActive      prometheus.Gauge
	circuitsOpened      prometheus.Counter
	circuitDuration     prometheus.Histogram
	bytesRelayed        prometheus.Counter
	authRequests        *prometheus.CounterVec // by status
	authorised          prometheus.Gauge
}

var _ relayv2.MetricsTracer = (*metrics)(nil)

func newMetrics(reg prometheus.Registerer) *metrics {
	ns := metricsNamespace
	m := &metrics{
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "relay_up",
			Help: "1 while the circuit relay service is running.",
		}),
		reservationRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "reservation_requests_total",
			Help: "Reservation requests handled, by response status (ok, permission_denied: refused by the ACL, reservation_refused: over a limit, ...).",
		}, []string{"status"}),
		reservationsOpened: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "reservations_opened_total",
			Help: "Reservations granted, new or renewed.",
		}, []string{"kind"}),
		reservationsActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "reservations_active",
			Help: "Reservations currently held.",
		}),
		circuitRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "circuit_requests_total",
			Help: "Circuit (relayed connection) requests handled, by response status.",
		}, []string{"status"}),
		circuitsActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "circuits_active",
			Help: "Relayed connections currently open.",
		}),
		circuitsOpened: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "circuits_opened_total",
			Help: "Relayed connections opened.",
		}),
		circuitDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "circuit_duration_seconds",
			Help:    "Lifetime of closed relayed connections.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9), // 1 s … ~18 h
		}),
		bytesRelayed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "relayed_bytes_total",
			Help: "Bytes relayed, both directions added.",
		}),
		authRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "auth_requests_total",
			Help: "Membership proofs handled, by status (ok, or the reason for refusal).",
		}, []string{"status"}),
		authorised: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "authorised_peers",
			Help: "Connected peers currently authorised by a membership proof.",
		}),
	}
	reg.MustRegister(m.up, m.reservationRequests, m.reservationsOpened, m.reservationsActive,
		m.circuitRequests, m.circuitsActive, m.circuitsOpened, m.circuitDuration,
		m.bytesRelayed, m.authRequests, m.authorised)
	return m
}

func statusLabel(s pbv2.Status) string { return strings.ToLower(s.String()) }

// RelayStatus implements relayv2.MetricsTracer.
func (m *metrics) RelayStatus(enabled bool) {
	if enabled {
		m.up.Set(1)
	} else {
		m.up.Set(0)
	}
}

// ConnectionOpened implements relayv2.MetricsTracer.
func (m *metrics) ConnectionOpened() {
	m.circuitsOpened.Inc()
	m.circuitsActive.Inc()
}

// ConnectionClosed implements relayv2.MetricsTracer.
func (m *metrics) ConnectionClosed(d time.Duration) {
	m.circuitsActive.Dec()
	m.circuitDuration.Observe(d.Seconds())
}

// ConnectionRequestHandled implements relayv2.MetricsTracer.
func (m *metrics) ConnectionRequestHandled(status pbv2.Status) {
	m.circuitRequests.WithLabelValues(statusLabel(status)).Inc()
}

// ReservationAllowed implements relayv2.MetricsTracer.
func (m *metrics) ReservationAllowed(isRenewal bool) {
	if isRenewal {
		m.reservationsOpened.WithLabelValues("renewal").Inc()
		return
	}
	m.reservationsOpened.WithLabelValues("new").Inc()
	m.reservationsActive.Inc()
}

// ReservationClosed implements relayv2.MetricsTracer.
func (m *metrics) ReservationClosed(cnt int) { m.reservationsActive.Sub(float64(cnt)) }

// ReservationRequestHandled implements relayv2.MetricsTracer.
func (m *metrics) ReservationRequestHandled(status pbv2.Status) {
	m.reservationRequests.WithLabelValues(statusLabel(status)).Inc()
}

// BytesTransferred implements relayv2.MetricsTracer.
func (m *metrics) BytesTransferred(cnt int) { m.bytesRelayed.Add(float64(cnt)) }
