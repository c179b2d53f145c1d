package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/token"
	"github.com/dpe-engine/dpe/internal/wire"
)

// jobsOf says where a route names the jobs it acts on.
type jobsOf int

const (
	pathJob        jobsOf = iota // the {id} of the path
	claimedTypes                 // the types of a claim's slots
	heartbeatJobs                // jobs[].id of a heartbeat
	completionJobs               // completions[].id of a batch
)

// typeScoped are the routes on which a processor token with job type
// patterns (model.Token.Types) reaches only jobs of those types: it may
// claim them, renew, report, release and log them, and nothing else.
var typeScoped = map[string]jobsOf{
	"POST /v1/claims":             claimedTypes,
	"POST /v1/heartbeats":         heartbeatJobs,
	"POST /v1/completions":        completionJobs,
	"POST /v1/jobs/{id}/progress": pathJob,
	"POST /v1/jobs/{id}/complete": pathJob,
	"POST /v1/jobs/{id}/release":  pathJob,
	"POST /v1/jobs/{id}/logs":     pathJob,
}

// scope wraps the handler of a typeScoped route: a caller whose token
// has job type patterns gets 403 for a job, or a claim, of another type.
// The body is read here (and given back to h) only for such a caller; a
// job that does not exist, or a body that does not parse, is left to h to
// answer. Each job named costs a read: only tokens with patterns pay it.
func (a *API) scope(pattern string, h http.HandlerFunc) http.HandlerFunc {
	kind, ok := typeScoped[pattern]
	if !ok {
		return h
	}
	limit := int64(MaxBody)
	if kind == completionJobs {
		limit = MaxBatchBody
	}
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := PrincipalOf(r.Context())
		if !ok || len(p.Types) == 0 {
			h(w, r)
			return
		}
		var types []string
		var ids []int64
		if kind == pathJob {
			id, err := pathID(r)
			if err != nil {
				h(w, r)
				return
			}
			ids = []int64{id}
		} else {
			body, prob := readBody(w, r, limit)
			if prob != nil {
				writeProblem(w, *prob)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			types, ids = jobsIn(kind, body)
			// One read per job: bounded by the largest batch of reports.
			if len(ids) > wire.MaxCompletions {
				writeProblem(w, wire.Problem{Title: "invalid input", Status: http.StatusUnprocessableEntity,
					Detail: fmt.Sprintf("at most %d jobs per call with a token limited to job types", wire.MaxCompletions), Field: jobsField[kind]})
				return
			}
		}
		for _, id := range ids {
			j, err := a.jobs.Get(r.Context(), id)
			if errors.Is(err, model.ErrNotFound) {
				continue
			}
			if err != nil {
				a.writeError(w, r, err)
				return
			}
			types = append(types, j.Type)
		}
		for _, t := range types {
			if !token.MayServe(p.Types, t) {
				writeProblem(w, wire.Problem{Title: "forbidden", Status: http.StatusForbidden, Detail: "the token may not serve jobs of this type"})
				return
			}
		}
		h(w, r)
	}
}

// jobsField names the list of jobs in a body.
var jobsField = map[jobsOf]string{heartbeatJobs: "jobs", completionJobs: "completions"}

// jobsIn reads the job types or ids a body names (none when it does not
// parse: the handler refuses it then).
func jobsIn(kind jobsOf, body []byte) (types []string, ids []int64) {
	switch kind {
	case claimedTypes:
		var c model.ClaimRequest
		if json.Unmarshal(body, &c) == nil {
			for t := range c.Slots {
				types = append(types, t)
			}
		}
	case heartbeatJobs:
		var hb wire.HeartbeatRequest
		if json.Unmarshal(body, &hb) == nil {
			for _, j := range hb.Jobs {
				ids = append(ids, j.ID)
			}
		}
	case completionJobs:
		var b wire.CompletionBatch
		if json.Unmarshal(body, &b) == nil {
			for _, c := range b.Completions {
				ids = append(ids, c.ID)
			}
		}
	}
	return types, ids
}
