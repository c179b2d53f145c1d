package postgres

import (
	"testing"

	"github.com/dpe-engine/dpe/internal/store"
	"github.com/dpe-engine/dpe/internal/store/storetest"
)

// TestConformance runs the shared store suite, each store in a fresh schema
// of one fresh database.
func TestConformance(t *testing.T) {
	db := newTestDB(t)
	storetest.Run(t, func(t *testing.T) store.Store { return db.open(t) })
}

// TestWorkflowConformance runs the shared workflow suite (templates,
// instances, and the wake-ups the job methods owe to instances) the same
// way.
func TestWorkflowConformance(t *testing.T) {
	db := newTestDB(t)
	storetest.RunWorkflow(t, func(t *testing.T) store.WorkflowStore { return db.open(t) })
}

// TestTriggerConformance runs the shared trigger suite (trigger rows,
// mirrors, records and the instances TriggerDo creates) the same way.
func TestTriggerConformance(t *testing.T) {
	db := newTestDB(t)
	storetest.RunTrigger(t, func(t *testing.T) storetest.TriggerEngine { return db.open(t) })
}

// TestTokenConformance runs the shared token suite.
func TestTokenConformance(t *testing.T) {
	db := newTestDB(t)
	storetest.RunTokens(t, func(t *testing.T) store.TokenStore { return db.open(t) })
}

// TestAuditConformance runs the shared audit suite.
func TestAuditConformance(t *testing.T) {
	db := newTestDB(t)
	storetest.RunAudit(t, func(t *testing.T) store.AuditStore { return db.open(t) })
}

// TestAlertConformance runs the shared alert suite.
func TestAlertConformance(t *testing.T) {
	db := newTestDB(t)
	storetest.RunAlerts(t, func(t *testing.T) storetest.AlertEngine { return db.open(t) })
}
