package metrics_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

var (
	dashboardPath = filepath.Join("..", "..", "deploy", "grafana", "dpe.json")
	alertsPath    = filepath.Join("..", "..", "deploy", "prometheus", "alerts.yml")
	seriesName    = regexp.MustCompile(`\bdpe_[a-z_]+\b`)
)

// requirePromtool returns promtool's path; it skips the test when promtool
// is missing, or fails it under DPE_TEST_STRICT=1 (.ci/run installs it).
func requirePromtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("DPE_TEST_STRICT") == "1" {
			t.Fatalf("DPE_TEST_STRICT=1 and promtool is missing (Debian package prometheus): %v", err)
		}
		t.Skipf("needs promtool (Debian package prometheus): %v", err)
	}
	return p
}

// TestAlertRules checks deploy/prometheus/alerts.yml with promtool and
// runs its unit tests (alerts_test.yml: which alert fires when, with what).
func TestAlertRules(t *testing.T) {
	promtool := requirePromtool(t)
	for _, args := range [][]string{
		{"check", "rules", alertsPath},
		{"test", "rules", filepath.Join(filepath.Dir(alertsPath), "alerts_test.yml")},
	} {
		out, err := exec.CommandContext(t.Context(), promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}

// dashboardExprs returns the query of every panel target of the dashboard.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	var exprs []string
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	if len(exprs) == 0 {
		t.Fatalf("%s: no queries", dashboardPath)
	}
	return exprs
}

// checkNamesExposed fails for every dpe_ series name in text that the
// scraped families do not expose (a histogram exposes _bucket, _sum and
// _count), and for every exposed dpe_ family text never uses.
func checkNamesExposed(t *testing.T, what, text string, fams map[string]*dto.MetricFamily) {
	t.Helper()
	used := map[string]bool{}
	for _, name := range seriesName.FindAllString(text, -1) {
		base := name
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(name, suf); ok && fams[b] != nil && fams[b].GetType() == dto.MetricType_HISTOGRAM {
				base = b
			}
		}
		if fams[base] == nil {
			t.Errorf("%s uses %s, which /metrics does not expose", what, name)
		}
		used[base] = true
	}
	if what != "dashboard" {
		return
	}
	var unused []string
	for name := range fams {
		if strings.HasPrefix(name, "dpe_") && !used[name] {
			unused = append(unused, name)
		}
	}
	slices.Sort(unused)
	if len(unused) > 0 {
		t.Errorf("the dashboard shows none of %v", unused)
	}
}

// checkDeploy checks the dashboard and the alert rules against a scrape,
// and the scrape itself with promtool check metrics.
func checkDeploy(t *testing.T, raw []byte, fams map[string]*dto.MetricFamily) {
	t.Helper()
	checkNamesExposed(t, "dashboard", strings.Join(dashboardExprs(t), "\n"), fams)
	rules, err := os.ReadFile(alertsPath)
	if err != nil {
		t.Fatal(err)
	}
	checkNamesExposed(t, "alert rules", string(rules), fams)
	promtool := requirePromtool(t)
	cmd := exec.CommandContext(t.Context(), promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(raw)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
