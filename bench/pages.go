package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

// pageTarget is the goal of every monitor page: p99 of the time its
// requests take, as the browser makes them, with the big plant loaded.
const pageTarget = 200 * time.Millisecond

// Pages is the pages phase: the monitor's pages read over real HTTP, with
// a viewer token, first on the empty core database (the baseline), then
// on the same database bulk-loaded with a big plant (see loadPages).
type Pages struct {
	Load     pageLoad `json:"load"`
	Requests int      `json:"requests_per_page"`
	// Healthz is GET /healthz on the loaded server: the round trip that
	// touches no table, measured in the same run.
	Healthz Latency    `json:"healthz"`
	Pages   []PageTime `json:"pages"`
}

// PageTime is one page: the wall time of all its requests (those the
// browser sends at once in parallel, then those that wait for them).
type PageTime struct {
	Page     string   `json:"page"`
	Requests []string `json:"requests"`
	// Empty: on the empty database (nil for detail pages, which need a
	// loaded row).
	Empty  *Latency `json:"empty,omitempty"`
	Loaded Latency  `json:"loaded"`
}

// pageClient makes the monitor's requests with a bearer token. Like a
// browser it keeps up to 6 connections to the server open.
type pageClient struct {
	base, token string
	http        *http.Client
}

func newPageClient(base, token string) *pageClient {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 6
	tr.MaxConnsPerHost = 6
	return &pageClient{base: base, token: token, http: &http.Client{Transport: tr, Timeout: time.Minute}}
}

func (pc *pageClient) close() { pc.http.CloseIdleConnections() }

// get reads path to the end; v, when not nil, gets the JSON body.
func (pc *pageClient) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, pc.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if pc.token != "" {
		req.Header.Set("Authorization", "Bearer "+pc.token)
	}
	res, err := pc.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %.200s", path, res.Status, b)
	}
	if v != nil {
		return json.Unmarshal(b, v)
	}
	return nil
}

// all gets the paths in parallel, as the browser's Promise.all does.
func (pc *pageClient) all(ctx context.Context, paths ...string) error {
	errs := make([]error, len(paths))
	var wg sync.WaitGroup
	for i, p := range paths {
		wg.Go(func() { errs[i] = pc.get(ctx, p, nil) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// monitorPage is one page of the monitor: what it requests for its i-th
// sample (detail pages vary the row). detail pages need the loaded plant.
type monitorPage struct {
	name     string
	requests []string // as documented in the report
	detail   bool
	load     func(ctx context.Context, pc *pageClient, rng *rand.Rand) error
}

// logLimit is the monitor's page size of a log (web/static/js/logs.js).
const logLimit = 1000

// monitorPages lists the pages and the requests each makes, as
// web/static/js/pages/*.js make them on a first load (no ETag yet).
func monitorPages(ld *pageLoad) []monitorPage {
	wfStates := []model.InstanceState{model.InstancePending, model.InstanceRunning, model.InstanceSucceeded, model.InstanceFailed, model.InstanceCanceled}
	list := func(name, query string) monitorPage {
		return monitorPage{name: name, requests: []string{"/v1/workflows?" + query, "/v1/templates"},
			load: func(ctx context.Context, pc *pageClient, _ *rand.Rand) error {
				return pc.all(ctx, "/v1/workflows?"+query, "/v1/templates")
			}}
	}
	jobs := func(name, query string) monitorPage {
		return monitorPage{name: name, requests: []string{"/v1/jobs?" + query},
			load: func(ctx context.Context, pc *pageClient, _ *rand.Rand) error {
				return pc.get(ctx, "/v1/jobs?"+query, nil)
			}}
	}
	// A deep page: a cursor into the oldest tenth of the loaded rows.
	deep := func(lo, hi int64) int64 { return lo + (hi-lo)/10 }
	instance := func(rng *rand.Rand) int64 {
		return ld.MinInstance + rng.Int64N(max(1, ld.MaxInstance-ld.MinInstance+1))
	}
	pages := []monitorPage{
		{name: "overview: counts", requests: []string{"/v1/status", "/v1/leases", "5 × /v1/workflows?state=S&limit=1"},
			load: func(ctx context.Context, pc *pageClient, _ *rand.Rand) error {
				paths := []string{"/v1/status", "/v1/leases"}
				for _, s := range wfStates {
					paths = append(paths, "/v1/workflows?state="+string(s)+"&limit=1")
				}
				return pc.all(ctx, paths...)
			}},
		{name: "overview: last-hour chart", requests: []string{"≤ 5 × /v1/jobs?created_after=NOW-1h&limit=1000[&after=NEXT], one after the other"},
			load: func(ctx context.Context, pc *pageClient, _ *rand.Rand) error {
				since := url.QueryEscape(time.Now().Add(-time.Hour).UTC().Format(time.RFC3339Nano))
				after := ""
				for range 5 {
					var page struct{ Next string }
					if err := pc.get(ctx, "/v1/jobs?created_after="+since+"&limit=1000"+after, &page); err != nil {
						return err
					}
					if page.Next == "" {
						return nil
					}
					after = "&after=" + page.Next
				}
				return nil
			}},
		list("workflows: first page", "limit=50"),
		list("workflows: state=failed", "state=failed&limit=50"),
		list("workflows: state=running", "state=running&limit=50"),
		list("workflows: template="+pageTemplates[1].name, "template="+pageTemplates[1].name+"&limit=50"),
		list("workflows: template+state", "state=failed&template="+pageTemplates[2].name+"&limit=50"),
		{name: "workflows: name=", requests: []string{"/v1/workflows?name=NAME&limit=50", "/v1/templates"},
			load: func(ctx context.Context, pc *pageClient, rng *rand.Rand) error {
				n := instance(rng) - ld.MinInstance + 1
				name := fmt.Sprintf("%s-%07d", pageTemplates[n%int64(len(pageTemplates))].name, n)
				return pc.all(ctx, "/v1/workflows?name="+url.QueryEscape(name)+"&limit=50", "/v1/templates")
			}},
		list("workflows: deep page", fmt.Sprintf("after=%d&limit=50", deep(ld.MinInstance, ld.MaxInstance))),
		list("workflows: state=failed, deep", fmt.Sprintf("state=failed&after=%d&limit=50", deep(ld.MinInstance, ld.MaxInstance))),
		{name: "workflow detail", detail: true,
			requests: []string{"/v1/workflows/ID", "/v1/jobs?workflow=ID&limit=1000", "/v1/workflows/ID/logs?limit=1000", "then /v1/templates/T?version=1"},
			load: func(ctx context.Context, pc *pageClient, rng *rand.Rand) error {
				id := instance(rng)
				if err := pc.all(ctx, fmt.Sprintf("/v1/workflows/%d", id), fmt.Sprintf("/v1/jobs?workflow=%d&limit=1000", id),
					fmt.Sprintf("/v1/workflows/%d/logs?limit=%d", id, logLimit)); err != nil {
					return err
				}
				tpl := pageTemplates[(id-ld.MinInstance+1)%int64(len(pageTemplates))].name
				return pc.get(ctx, "/v1/templates/"+tpl+"?version=1", nil)
			}},
		jobs("jobs: first page", "limit=50"),
		jobs("jobs: state=failed", "state=failed&limit=50"),
		jobs("jobs: state=queued", "state=queued&limit=50"),
		jobs("jobs: type=plant.transcode", "type=plant.transcode&limit=50"),
		jobs("jobs: state+type", "state=failed&type=plant.notify&limit=50"),
		{name: "jobs: workflow=ID", requests: []string{"/v1/jobs?workflow=ID&limit=50"},
			load: func(ctx context.Context, pc *pageClient, rng *rand.Rand) error {
				return pc.get(ctx, fmt.Sprintf("/v1/jobs?workflow=%d&limit=50", instance(rng)), nil)
			}},
		jobs("jobs: deep page", fmt.Sprintf("after=%d&limit=50", deep(ld.MinJob, ld.MaxJob))),
		jobs("jobs: state=failed, deep", fmt.Sprintf("state=failed&after=%d&limit=50", deep(ld.MinJob, ld.MaxJob))),
		{name: "job detail", detail: true, requests: []string{"/v1/jobs/ID", "/v1/jobs/ID/logs?limit=1000"},
			load: func(ctx context.Context, pc *pageClient, rng *rand.Rand) error {
				id := ld.MinJob + rng.Int64N(max(1, ld.MaxJob-ld.MinJob+1))
				return pc.all(ctx, fmt.Sprintf("/v1/jobs/%d", id), fmt.Sprintf("/v1/jobs/%d/logs?limit=%d", id, logLimit))
			}},
		{name: "farm", requests: []string{"/v1/status", "/v1/leases", "/v1/jobs?state=running&limit=1000"},
			load: func(ctx context.Context, pc *pageClient, _ *rand.Rand) error {
				return pc.all(ctx, "/v1/status", "/v1/leases", "/v1/jobs?state=running&limit=1000")
			}},
	}
	return pages
}

// pageRetention keeps the loaded month of history: with the default of
// 7 days the server would purge three quarters of it at start. A plant
// that shows a month on its monitor sets this.
var pageRetention = []string{"--retention", (35 * 24 * time.Hour).String()}

// pageWarmup requests of each page are not recorded: connections, plans
// and the page cache of a cold start.
const pageWarmup = 5

// timePage loads page n times (after pageWarmup unrecorded ones), one at
// a time, and summarizes the wall times.
func timePage(ctx context.Context, pc *pageClient, p monitorPage, n int, seed uint64) (Latency, error) {
	rng := rand.New(rand.NewPCG(seed, 1))
	ds := make([]time.Duration, 0, n)
	for i := range n + pageWarmup {
		t0 := time.Now()
		if err := p.load(ctx, pc, rng); err != nil {
			return Latency{}, fmt.Errorf("%s: %w", p.name, err)
		}
		if i >= pageWarmup {
			ds = append(ds, time.Since(t0))
		}
	}
	return summarize(ds), nil
}

// pages runs the phase. It restarts the server twice (so that the token
// it creates turns authentication on, and so that the bulk load runs with
// no server writing), which leaves the engine's first server stopped: it
// runs after every other phase.
func (r *run) pages(ctx context.Context) (*Pages, error) {
	o := r.o
	types := append([]string{"plant.publish"}, pageJobTypes[1:]...)
	for _, t := range pageTemplates {
		types = append(types, t.work)
	}
	for _, t := range types {
		if _, err := r.c.PutType(ctx, wire.TypeSet{Type: t, Create: true}); err != nil {
			return nil, fmt.Errorf("register job type %s: %w", t, err)
		}
	}
	for _, t := range pageTemplates {
		if _, err := r.c.ImportTemplate(ctx, []byte(pageTemplateYAML(t.name, t.work)), "application/yaml"); err != nil {
			return nil, fmt.Errorf("import template %s: %w", t.name, err)
		}
	}
	tok, err := r.c.CreateToken(ctx, wire.TokenRequest{Name: "bench-viewer", Role: model.RoleViewer})
	if err != nil {
		return nil, fmt.Errorf("create the viewer token: %w", err)
	}
	r.cl.close()
	p := &Pages{Requests: o.pageRequests}
	pages := monitorPages(&p.Load)

	// The baseline: the list pages on the empty database.
	empty, err := startServerAs(ctx, r.cl.bin, r.cl.dir, r.db.dsn, "server-pages-empty", pageRetention...)
	if err != nil {
		return nil, err
	}
	pc := newPageClient(empty.url, tok.Secret)
	emptyN := max(20, o.pageRequests/4)
	var emptyTimes []*Latency
	for i, pg := range pages {
		if pg.detail {
			emptyTimes = append(emptyTimes, nil)
			continue
		}
		l, err := timePage(ctx, pc, pg, emptyN, uint64(i))
		if err != nil {
			pc.close()
			empty.close()
			return nil, fmt.Errorf("empty database: %w", err)
		}
		emptyTimes = append(emptyTimes, &l)
	}
	pc.close()
	empty.close()

	logf("%s: loading %s instances and %s jobs", r.db.engine, count(o.pageInstances), count(o.pageJobs))
	if p.Load, err = r.db.loadPages(ctx, o.pageInstances, o.pageJobs); err != nil {
		return nil, err
	}
	logf("%s: loaded %s instances, %s jobs (%s of them the instances'), %s steps in %.1f s", r.db.engine,
		count(p.Load.Instances), count(p.Load.Jobs), count(p.Load.AttachedJobs), count(p.Load.Steps), p.Load.Seconds)
	pages = monitorPages(&p.Load)

	loaded, err := startServerAs(ctx, r.cl.bin, r.cl.dir, r.db.dsn, "server-pages-loaded", pageRetention...)
	if err != nil {
		return nil, err
	}
	defer loaded.close()
	pc = newPageClient(loaded.url, tok.Secret)
	defer pc.close()
	hz := monitorPage{name: "healthz", load: func(ctx context.Context, pc *pageClient, _ *rand.Rand) error {
		return pc.get(ctx, "/healthz", nil)
	}}
	if p.Healthz, err = timePage(ctx, pc, hz, o.pageRequests, 0); err != nil {
		return nil, err
	}
	for i, pg := range pages {
		l, err := timePage(ctx, pc, pg, o.pageRequests, uint64(i))
		if err != nil {
			return nil, err
		}
		p.Pages = append(p.Pages, PageTime{Page: pg.name, Requests: pg.requests, Empty: emptyTimes[i], Loaded: l})
		logf("%s: %-32s p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms", r.db.engine, pg.name, l.P50, l.P99, l.Max)
	}
	return p, nil
}

// pagesRows prints the pages phase of one engine.
func pagesRows(row func(...string), p *Pages) {
	ld := p.Load
	row("pages", fmt.Sprintf("%s instances, %s jobs (%s of instances), %s steps, loaded in %.1f s; %d requests per page",
		count(ld.Instances), count(ld.Jobs), count(ld.AttachedJobs), count(ld.Steps), ld.Seconds, p.Requests),
		"loaded p50 / p99 / max", "empty p50 / p99", "p99 ÷ healthz p99", "target")
	row("", "GET /healthz (baseline)", fmt.Sprintf("%.2f / %.2f / %.2f ms", p.Healthz.P50, p.Healthz.P99, p.Healthz.Max), "", "", "")
	for _, pt := range p.Pages {
		empty := "—"
		if pt.Empty != nil {
			empty = fmt.Sprintf("%.2f / %.2f ms", pt.Empty.P50, pt.Empty.P99)
		}
		ratio := "—"
		if p.Healthz.P99 > 0 {
			ratio = strconv.FormatFloat(pt.Loaded.P99/p.Healthz.P99, 'f', 1, 64)
		}
		result := "PASS"
		if pt.Loaded.P99 > ms(pageTarget) {
			result = "FAIL"
		}
		row("", pt.Page, fmt.Sprintf("%.2f / %.2f / %.2f ms", pt.Loaded.P50, pt.Loaded.P99, pt.Loaded.Max), empty, ratio, result)
	}
}
