// Package storetest is the conformance suite every store engine runs
// (store/postgres, store/sqlite). It checks the semantics documented in
// package store, method by method, on a fixed clock: every call gets its
// time from the test, never from time.Now, and nothing sleeps.
//
// Engines must keep timestamps to at least millisecond precision; the suite
// compares times truncated to the millisecond and uses millisecond-aligned
// times throughout.
//
// Usage, in an engine's tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return openTestStore(t) })
//	}
//
// open must return a fresh, empty, migrated store and register its cleanup
// (Close) with t.Cleanup. Subtests call it in parallel.
package storetest

import (
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/store"
)

// T0 is the base time of every test: all times are T0 plus an offset.
var T0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// Opener returns a fresh, empty, migrated store whose cleanup is registered
// on t.
type Opener func(t *testing.T) store.Store

// Run runs the whole conformance suite against the engine behind open.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	groups := []struct {
		name string
		run  func(t *testing.T, open Opener)
	}{
		{"Store", testStore},
		{"JobInsert", testJobInsert},
		{"JobGet", testJobGet},
		{"JobList", testJobList},
		{"JobClaim", testJobClaim},
		{"JobClaimLimits", testJobClaimLimits},
		{"JobClaimConcurrent", testJobClaimConcurrent},
		{"JobClaimKey", testJobClaimKey},
		{"JobHeartbeat", testJobHeartbeat},
		{"JobComplete", testJobComplete},
		{"JobCompleteMany", testJobCompleteMany},
		{"JobRelease", testJobRelease},
		{"JobRescue", testJobRescue},
		{"Reports", testReports},
		{"JobCancel", testJobCancel},
		{"JobRetry", testJobRetry},
		{"JobSetPriority", testJobSetPriority},
		{"JobSetPriorityByInstance", testJobSetPriorityByInstance},
		{"JobCounts", testJobCounts},
		{"JobPurge", testJobPurge},
		{"Types", testTypes},
		{"TypeUpdate", testTypeUpdate},
		{"Processors", testProcessors},
		{"Idempotency", testIdempotency},
		{"Leases", testLeases},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) { g.run(t, open) })
	}
}
