package api_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/api"
	"github.com/dpe-engine/dpe/internal/clock"
	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/model"
)

// TestRateLimit: a token's changes past its burst are refused with a 429
// naming the limit and when to retry, until the (fake) clock refills its
// bucket; other tokens and machine traffic are not affected.
func TestRateLimit(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	url, secrets, _ := apiServer(t, true, func(c *api.Config) {
		c.Clock = clk
		c.Limits = api.Limits{Rate: 1, Burst: 2}
	})
	op := bearer(secrets[model.RoleOperator])
	must(t, 201, "POST", url+"/v1/jobs", `{"type":"noop"}`, op)
	must(t, 201, "POST", url+"/v1/jobs", `{"type":"noop"}`, op)
	a := must(t, 429, "POST", url+"/v1/jobs", `{"type":"noop"}`, op)
	p := asProblem(t, a)
	if a.header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After %q, want 1", a.header.Get("Retry-After"))
	}
	for _, want := range []string{"token operator", "1 per second", "at most 2 at once", "retry in 1 second"} {
		if !strings.Contains(p.Detail, want) {
			t.Errorf("detail %q: want it to say %q", p.Detail, want)
		}
	}
	// Reads are not limited; neither is another token.
	must(t, 200, "GET", url+"/v1/jobs", "", op)
	must(t, 201, "POST", url+"/v1/jobs", `{"type":"noop"}`, bearer(secrets[model.RoleAdmin]))
	// Machine traffic is never limited.
	proc := bearer(secrets[model.RoleProcessor])
	for range 10 {
		must(t, 200, "POST", url+"/v1/claims", `{"processor":"p1","slots":{"other":1}}`, proc)
		must(t, 200, "POST", url+"/v1/heartbeats", `{"processor":"p1","jobs":[]}`, proc)
	}
	clk.Advance(time.Second)
	must(t, 201, "POST", url+"/v1/jobs", `{"type":"noop"}`, op)
	must(t, 429, "POST", url+"/v1/jobs", `{"type":"noop"}`, op)
}

// TestRateLimitByAddress: with no token required, the limit counts per
// client address.
func TestRateLimitByAddress(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	url, _, _ := apiServer(t, false, func(c *api.Config) {
		c.Clock = clk
		c.Limits = api.Limits{Rate: 0.5} // 30 per minute, one at once
	})
	must(t, 201, "POST", url+"/v1/jobs", `{"type":"noop"}`, nil)
	a := must(t, 429, "POST", url+"/v1/jobs", `{"type":"noop"}`, nil)
	if p := asProblem(t, a); !strings.Contains(p.Detail, "address 127.0.0.1") || !strings.Contains(p.Detail, "30 per minute") {
		t.Errorf("detail %q: want the address and the limit", p.Detail)
	}
	if a.header.Get("Retry-After") != "2" {
		t.Errorf("Retry-After %q, want 2", a.header.Get("Retry-After"))
	}
	clk.Advance(2 * time.Second)
	must(t, 201, "POST", url+"/v1/jobs", `{"type":"noop"}`, nil)
}

// TestLongPollCap: a token may keep MaxWaits claims waiting at once; the
// next is refused with a 429 saying so, other tokens are not, and the
// token may claim again once a wait ends. Real HTTP, real waits.
func TestLongPollCap(t *testing.T) {
	url, secrets, _ := apiServer(t, true, func(c *api.Config) { c.Limits = api.Limits{MaxWaits: 2} })
	proc := bearer(secrets[model.RoleProcessor])
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	// Three calls that would wait for work, on both long-poll routes:
	// whichever comes third is refused at once, the other two wait.
	waiting := []struct{ path, body string }{
		{"/v1/claims", `{"processor":"p1","slots":{"noop":1},"wait":"50s"}`},
		{"/v1/worker/claims", `{"worker":"w1","limit":1,"wait":"50s"}`},
		{"/v1/claims", `{"processor":"p2","slots":{"noop":1},"wait":"50s"}`},
	}
	refused := make(chan answer, len(waiting))
	for _, c := range waiting {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, "POST", url+c.path, strings.NewReader(c.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", proc["Authorization"])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return // cancelled at the end of the test
			}
			defer resp.Body.Close()
			if resp.StatusCode == http.StatusTooManyRequests {
				body, _ := io.ReadAll(resp.Body)
				refused <- answer{status: resp.StatusCode, header: resp.Header, body: body}
			}
		})
	}
	var a answer
	select {
	case a = <-refused:
	case <-time.After(10 * time.Second):
		t.Fatal("no call refused with two of the token's calls waiting")
	}
	if p := asProblem(t, a); !strings.Contains(p.Detail, "token processor") || !strings.Contains(p.Detail, "2 calls waiting") {
		t.Errorf("detail %q: want the token and the cap", p.Detail)
	}
	if a.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	// The two waiting hold the token's cap: a claim that would not wait is
	// refused too; another token is not affected.
	if got := call(t, "POST", url+"/v1/claims", `{"processor":"p3","slots":{"noop":1}}`, proc); got.status != 429 {
		t.Errorf("a claim beside two waiting: status %d, want 429", got.status)
	}
	must(t, 200, "POST", url+"/v1/claims", `{"processor":"p3","slots":{"noop":1}}`, bearer(secrets[model.RoleAdmin]))
	cancel()
	wg.Wait()
	select {
	case a := <-refused:
		t.Errorf("a second call refused: %s", a.body)
	default:
	}
	eventually.True(t, 10*time.Second, func() bool {
		return call(t, "POST", url+"/v1/claims", `{"processor":"p2","slots":{"noop":1}}`, proc).status == 200
	}, "the token claims again once its waits end")
}
