package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Names of the alert series.
const (
	NameAlertsFiring       = "dpe_alerts_firing"
	NameAlertNotifications = "dpe_alert_notifications_total"
	NameAlertEvaluations   = "dpe_alert_evaluations_total"
)

// Alerts is what the alert evaluator reports. A nil *Alerts reports
// nothing.
type Alerts struct {
	firing        *prometheus.GaugeVec
	notifications *prometheus.CounterVec
	evaluations   prometheus.Counter
}

// NewAlerts registers the alert series on reg.
func NewAlerts(reg prometheus.Registerer) *Alerts {
	m := &Alerts{
		firing: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: NameAlertsFiring, Help: "Alerts firing, by rule and kind (reported by the server that evaluates alerts; 0 elsewhere).",
		}, []string{"rule", "kind"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameAlertNotifications, Help: "Notification calls to alert receivers, by receiver and result (sent, failed).",
		}, []string{"receiver", "result"}),
		evaluations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: NameAlertEvaluations, Help: "Evaluations of the alert rules completed by this server.",
		}),
	}
	reg.MustRegister(m.firing, m.notifications, m.evaluations)
	return m
}

// Configured starts the series of the configured rules (0 firing) and
// receivers (0 sent, 0 failed), so they are exposed before anything
// happens.
func (m *Alerts) Configured(rules [][2]string, receivers []string) {
	if m == nil {
		return
	}
	for _, r := range rules {
		m.firing.WithLabelValues(r[0], r[1])
	}
	for _, r := range receivers {
		m.notifications.WithLabelValues(r, "sent")
		m.notifications.WithLabelValues(r, "failed")
	}
}

// Firing sets the number of firing alerts of each rule (rule → kind →
// count); rules absent from the map read 0.
func (m *Alerts) Firing(counts map[[2]string]int) {
	if m == nil {
		return
	}
	m.firing.Reset()
	for k, n := range counts {
		m.firing.WithLabelValues(k[0], k[1]).Set(float64(n))
	}
}

// Notified counts one call to receiver; ok says whether it was accepted.
func (m *Alerts) Notified(receiver string, ok bool) {
	if m == nil {
		return
	}
	result := "sent"
	if !ok {
		result = "failed"
	}
	m.notifications.WithLabelValues(receiver, result).Inc()
}

// Evaluated counts one completed evaluation.
func (m *Alerts) Evaluated() {
	if m == nil {
		return
	}
	m.evaluations.Inc()
}
