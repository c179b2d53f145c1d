package api

import (
	"context"
	"net/http"

	"github.com/dpe-engine/dpe/internal/wire"
)

// Alerts is the server's alert service (package alert).
type Alerts interface {
	// List returns the open and recent alerts with the configuration.
	List(ctx context.Context) (wire.AlertList, error)
	// Test sends a test notification to every receiver.
	Test(ctx context.Context) (wire.AlertTestResults, error)
}

func (a *API) alertRoutes() {
	a.handle("GET /v1/alerts", a.listAlerts)
	a.handle("POST /v1/alerts/test", a.testAlerts)
}

func (a *API) listAlerts(w http.ResponseWriter, r *http.Request) {
	list, err := a.alerts.List(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

// testAlerts answers 200 with each receiver's outcome, failures included:
// the call itself worked.
func (a *API) testAlerts(w http.ResponseWriter, r *http.Request) {
	res, err := a.alerts.Test(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
