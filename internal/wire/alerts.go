package wire

import (
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// AlertList answers GET /v1/alerts: the open alerts (pending, firing, or
// with a notification owed) and those changed in the last day, most
// recently changed first, with the configured rules and receivers.
type AlertList struct {
	Items []model.Alert `json:"items"`
	// Total counts the items (the list is not paged).
	Total   int `json:"total"`
	Firing  int `json:"firing"`  // items in state firing
	Pending int `json:"pending"` // items in state pending
	// Rules and Receivers are the alert configuration of the server that
	// answered (empty: no alerts configured).
	Rules     []AlertRule `json:"rules"`
	Receivers []string    `json:"receivers"`
}

// AlertRule describes one configured rule.
type AlertRule struct {
	Name         string          `json:"name"`
	Kind         model.AlertKind `json:"kind"`
	Match        []string        `json:"match,omitempty"`
	For          model.Duration  `json:"for,omitempty"`
	Receivers    []string        `json:"receivers"`
	MaxPerMinute int             `json:"max_per_minute"`
}

// AlertTestResults answers POST /v1/alerts/test: one test notification
// per configured receiver, each with its outcome.
type AlertTestResults struct {
	Results []AlertTestResult `json:"results"`
}

// AlertTestResult is the outcome of one test notification.
type AlertTestResult struct {
	Receiver string         `json:"receiver"`
	OK       bool           `json:"ok"`
	Error    string         `json:"error,omitempty"`
	Duration model.Duration `json:"duration"`
}

// AlertNotification is the JSON body a webhook receiver gets (POST,
// Content-Type application/json; with a secret, the header
// "X-DPE-Signature: sha256=<hex HMAC-SHA256 of the body>"). One call
// carries one alert, or, past a rule's max_per_minute, every alert still
// due in one summary call.
type AlertNotification struct {
	// Status: "firing", "resolved" (every alert of the call is of it),
	// "mixed", or "test" (from POST /v1/alerts/test, with no alerts).
	Status   string `json:"status"`
	Rule     string `json:"rule,omitempty"`
	Receiver string `json:"receiver"`
	Summary  string `json:"summary"`
	// Alerts of the call; More counts those left out of a long summary.
	Alerts []AlertNotice `json:"alerts"`
	More   int           `json:"more,omitempty"`
	Server string        `json:"server"`
	SentAt time.Time     `json:"sent_at"`
}

// AlertNotice is one alert in a notification. ID is the same on every
// retry of this notification (and different for a later one), so a
// receiver can drop repeats.
type AlertNotice struct {
	ID           string           `json:"id"`
	Key          string           `json:"key"`
	Rule         string           `json:"rule"`
	Kind         model.AlertKind  `json:"kind"`
	Subject      string           `json:"subject"`
	State        model.AlertState `json:"state"`
	Notification string           `json:"notification"` // firing or resolved
	Summary      string           `json:"summary"`
	Since        time.Time        `json:"since"`
	FiredAt      *time.Time       `json:"fired_at,omitempty"`
	ResolvedAt   *time.Time       `json:"resolved_at,omitempty"`
}
