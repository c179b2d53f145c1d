package api_test

import (
	"testing"

	"github.com/dpe-engine/dpe/internal/api"
	"github.com/dpe-engine/dpe/internal/model"
)

// newSecret creates a token through the API and returns its secret.
func newSecret(t *testing.T, url, admin, body string) string {
	t.Helper()
	s, _ := must(t, 201, "POST", url+"/v1/tokens", body, bearer(admin)).object(t)["secret"].(string)
	if s == "" {
		t.Fatal("token created without a secret")
	}
	return s
}

// TestIdempotencyKeyPerToken: an Idempotency-Key is the caller's own. The
// same key sent with another token neither replays the first caller's
// answer nor is refused as reused; the first caller still gets its replay.
func TestIdempotencyKeyPerToken(t *testing.T) {
	url, secrets, _ := apiServer(t, true, func(*api.Config) {})
	a := bearer(secrets[model.RoleOperator])
	b := bearer(newSecret(t, url, secrets[model.RoleAdmin], `{"name":"ops-2","role":"operator"}`))
	withKey := func(h map[string]string) map[string]string {
		return map[string]string{"Authorization": h["Authorization"], "Idempotency-Key": "k-1"}
	}
	must(t, 404, "POST", url+"/v1/jobs/999/retry", "", withKey(a))
	if r := must(t, 404, "POST", url+"/v1/jobs/999/retry", "", withKey(a)); r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatal("the first caller's repeat is not a replay")
	}
	if r := must(t, 404, "POST", url+"/v1/jobs/999/retry", "", withKey(b)); r.header.Get("Idempotent-Replayed") != "" {
		t.Fatal("another token got the first caller's stored answer")
	}
	// Another request under the same key: the other token's own, not a reuse.
	must(t, 404, "POST", url+"/v1/jobs/998/retry", "", withKey(bearer(secrets[model.RoleAdmin])))
}

// TestClaimKeyPerToken: a claim's Idempotency-Key returns the jobs of the
// earlier claim with that key only to the same token: another processor
// token naming the same processor and key gets none of them.
func TestClaimKeyPerToken(t *testing.T) {
	url, secrets, _ := apiServer(t, true, func(*api.Config) {})
	must(t, 201, "POST", url+"/v1/jobs", `{"type":"noop"}`, bearer(secrets[model.RoleAdmin]))
	p1 := map[string]string{"Authorization": "Bearer " + secrets[model.RoleProcessor], "Idempotency-Key": "claim-1"}
	p2 := map[string]string{"Authorization": "Bearer " + newSecret(t, url, secrets[model.RoleAdmin], `{"name":"proc-2","role":"processor"}`), "Idempotency-Key": "claim-1"}
	body := `{"processor":"p","slots":{"noop":1}}`
	jobsOf := func(h map[string]string) int {
		list, _ := must(t, 200, "POST", url+"/v1/claims", body, h).object(t)["jobs"].([]any)
		return len(list)
	}
	if n := jobsOf(p1); n != 1 {
		t.Fatalf("first claim: %d jobs, want 1", n)
	}
	if n := jobsOf(p1); n != 1 {
		t.Fatalf("repeat by the same token: %d jobs, want the same 1", n)
	}
	if n := jobsOf(p2); n != 0 {
		t.Fatalf("same key, another token: %d jobs, want none of the first caller's", n)
	}
}
