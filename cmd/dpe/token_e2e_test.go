package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/model"
)

// TestTokenCLI: the first admin token of a `dpe server` is made with
// --db; the server then refuses anonymous calls, takes the token from a
// 0600 --token-file (a readable one is refused), and `dpe token` creates,
// lists and revokes tokens whose roles the server enforces.
func TestTokenCLI(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "dpe.db")
	out, errOut, code := runDPE(t, dir, "token", "create", "--db", dsn, "--role", "admin", "--name", "root")
	root := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(root, "dpe_") || !strings.Contains(errOut, "shown only now") {
		t.Fatalf("token create --db: exit %d\n%s\n%s", code, out, errOut)
	}
	if _, _, code := runDPE(t, dir, "token", "create", "--db", dsn, "--role", "root", "--name", "x"); code != exitUsage {
		t.Fatalf("bad role: exit %d, want %d", code, exitUsage)
	}
	addr := freeAddr(t)
	url := "http://" + addr
	startDPE(t, "server", dir, "server", "--db", dsn, "--listen", addr)
	waitReady(t, newClient(t, url), 60*time.Second)

	if _, err := newClient(t, url).ListJobs(t.Context(), client.JobQuery{}); !isStatus(err, 401) {
		t.Fatalf("anonymous list: %v, want 401", err)
	}
	tokFile := filepath.Join(dir, "root.token")
	if err := os.WriteFile(tokFile, []byte(root+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runDPE(t, dir, "token", "list", "--server", url, "--token-file", tokFile); code != exitUsage || !strings.Contains(errOut, "chmod 600") {
		t.Fatalf("readable token file: exit %d, want %d: %s", code, exitUsage, errOut)
	}
	if err := os.Chmod(tokFile, 0o600); err != nil {
		t.Fatal(err)
	}
	admin := func(args ...string) (string, string, int) {
		t.Helper()
		return runDPE(t, dir, append(args, "--server", url, "--token-file", tokFile)...)
	}
	out, _, code = admin("token", "create", "--role", "viewer", "--name", "wall")
	viewer := strings.TrimSpace(out)
	if code != 0 || viewer == "" {
		t.Fatalf("create viewer: exit %d %s", code, out)
	}
	if out, errOut, code := admin("token", "create", "--role", "processor", "--name", "audio-farm", "--types", "audio.*,util.copy"); code != 0 || strings.TrimSpace(out) == "" {
		t.Fatalf("create processor with --types: exit %d %s %s", code, out, errOut)
	}
	if _, errOut, code := admin("token", "create", "--role", "viewer", "--name", "v2", "--types", "audio.*"); code != exitUsage || !strings.Contains(errOut, "--types") {
		t.Fatalf("--types on a viewer: exit %d, stderr %q: want %d naming --types", code, errOut, exitUsage)
	}
	out, _, code = admin("token", "list")
	if code != 0 || !strings.Contains(out, "root") || !strings.Contains(out, "wall") || strings.Contains(out, viewer) || !strings.Contains(out, "audio.*,util.copy") {
		t.Fatalf("token list: exit %d\n%s", code, out)
	}
	// The viewer reads, but may not submit or manage tokens.
	if _, _, code := runDPE(t, dir, "job", "list", "--server", url, "--token", viewer); code != 0 {
		t.Fatalf("viewer job list: exit %d", code)
	}
	if _, errOut, code := runDPE(t, dir, "job", "submit", "noop", "--server", url, "--token", viewer); code != 2 || !strings.Contains(errOut, "role may not") {
		t.Fatalf("viewer submit: exit %d, stderr %q: want exit 2, refused for its role", code, errOut)
	}
	if _, _, code := admin("token", "revoke", "wall"); code != 0 {
		t.Fatalf("revoke: exit %d", code)
	}
	if _, errOut, code := runDPE(t, dir, "job", "list", "--server", url, "--token", viewer); code != 2 || !strings.Contains(errOut, "Bearer TOKEN") {
		t.Fatalf("revoked viewer: exit %d, stderr %q: want exit 2, asked for a token", code, errOut)
	}
}

// TestUpAdminToken: `dpe up` makes an admin token on first start, keeps
// it in DATA/admin.token (0600) and prints it once; the CLI in another
// directory finds it for the local server; a restart keeps it without
// printing it; anonymous calls get 401; exec is not served.
func TestUpAdminToken(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	addr := freeAddr(t)
	url := "http://" + addr
	up := startDPE(t, "dpe up", dir, "up", "--data", data, "--listen", addr)
	up.waitLine("dpe is up", 60*time.Second)
	up.waitLine("admin token (shown once", 10*time.Second)
	fi, err := os.Stat(filepath.Join(data, "admin.token"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin.token: %v, mode %v: want 0600", err, fi.Mode().Perm())
	}
	secret, err := readTokenFile(filepath.Join(data, "admin.token"))
	if err != nil || !strings.Contains(up.output(), secret) {
		t.Fatalf("the printed token is not the kept one: %v", err)
	}
	if _, err := newClient(t, url).ListJobs(t.Context(), client.JobQuery{}); !isStatus(err, 401) {
		t.Fatalf("anonymous list: %v, want 401", err)
	}
	elsewhere := t.TempDir()
	if out, errOut, code := runDPE(t, elsewhere, "job", "submit", "noop", "--wait", "--server", url); code != 0 || !strings.Contains(out, "succeeded") {
		t.Fatalf("CLI with the local token: exit %d\n%s%s", code, out, errOut)
	}
	c, err := client.New(client.Config{URLs: []string{url}, Token: secret, Deadline: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	procs, err := c.ListProcessors(t.Context())
	if err != nil || len(procs) == 0 {
		t.Fatalf("processors: %v %v", procs, err)
	}
	for _, p := range procs {
		if _, ok := p.Quota["exec"]; ok {
			t.Fatalf("dpe up serves exec without an allow-list: %+v", p.Quota)
		}
	}
	if err := up.stop(30 * time.Second); err != nil {
		t.Fatalf("dpe up did not stop: %v", err)
	}
	up = startDPE(t, "dpe up again", dir, "up", "--data", data, "--listen", addr)
	up.waitLine("admin token: in", 60*time.Second)
	if strings.Contains(up.output(), secret) {
		t.Fatal("a restart printed the token again")
	}
	if _, err := c.ListJobs(t.Context(), client.JobQuery{}); err != nil {
		t.Fatalf("the kept token after a restart: %v", err)
	}
}

// TestRoleTokensFarm: a whole farm runs on role tokens, each role with
// only its own: a folder watcher (standby, with a trigger token limited
// to its trigger) starts a workflow, a worker and a processor (processor
// tokens) drive it and run its job to success; no role logs a refusal.
func TestRoleTokensFarm(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "dpe.db")
	files := map[string]string{}
	for _, tk := range []struct{ name, role, triggers string }{
		{"root", "admin", ""}, {"farm", "processor", ""}, {"watch", "trigger", "inbox*"},
	} {
		args := []string{"token", "create", "--db", dsn, "--role", tk.role, "--name", tk.name}
		if tk.triggers != "" {
			args = append(args, "--triggers", tk.triggers)
		}
		out, errOut, code := runDPE(t, dir, args...)
		if code != 0 {
			t.Fatalf("token create %s: exit %d %s", tk.name, code, errOut)
		}
		files[tk.name] = filepath.Join(dir, tk.name+".token")
		if err := os.WriteFile(files[tk.name], []byte(out), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	addr := freeAddr(t)
	url := "http://" + addr
	startDPE(t, "server", dir, "server", "--db", dsn, "--listen", addr)
	waitReady(t, newClient(t, url), 60*time.Second)
	tpl := filepath.Join(dir, "ingest.yaml")
	if err := os.WriteFile(tpl, []byte("name: ingest\nargs:\n  path: {type: string}\nsteps:\n  - {id: check, job: noop, params: {sleep: 10ms}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := runDPE(t, dir, "template", "import", tpl, "--server", url, "--token-file", files["root"]); code != 0 {
		t.Fatalf("import: %s%s", out, errOut)
	}
	inbox := filepath.Join(dir, "inbox")
	if err := os.Mkdir(inbox, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "watch.yaml")
	if err := os.WriteFile(cfg, []byte(`folder_watchers:
  - name: inbox
    path: `+inbox+`
    poll: 200ms
    stable_for: 200ms
    on:
      created: {template: ingest, args: {path: "${{ event.path }}"}}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	roles := []*proc{
		startDPE(t, "processor", dir, "processor", "--server", url, "--token-file", files["farm"], "--quota", "noop=2"),
		startDPE(t, "worker", dir, "worker", "--server", url, "--token-file", files["farm"], "--mode", "standby"),
		startDPE(t, "watcher", dir, "folderwatcher", "--server", url, "--token-file", files["watch"], "--config", cfg, "--mode", "standby"),
	}
	if err := os.WriteFile(filepath.Join(inbox, "take1.wav"), []byte("pcm"), 0o644); err != nil {
		t.Fatal(err)
	}
	secret, err := readTokenFile(files["root"])
	if err != nil {
		t.Fatal(err)
	}
	admin, err := client.New(client.Config{URLs: []string{url}, Token: secret, Deadline: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	eventually.True(t, 60*time.Second, func() bool {
		page, err := admin.ListWorkflows(t.Context(), client.WorkflowQuery{Templates: []string{"ingest"}})
		return err == nil && len(page.Items) == 1 && page.Items[0].State == model.InstanceSucceeded
	}, "the watcher's instance to succeed")
	for _, p := range roles {
		// A refusal reads "401 unauthorized" or "403 forbidden" in a
		// role's log (a bare "401" may be part of a temp path).
		if out := p.output(); refusal.MatchString(out) {
			t.Errorf("%s was refused:\n%s", p.name, out)
		}
	}
}

// refusal matches an authentication or authorization refusal in a log.
var refusal = regexp.MustCompile(`\b(401 unauthorized|403 forbidden)\b`)

// TestLimitFlags: the server's limit flags refuse values they cannot mean,
// naming the flag, before anything starts.
func TestLimitFlags(t *testing.T) {
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "dpe.db")
	for _, args := range [][]string{
		{"--rate-limit", "5/d"}, {"--rate-limit", "lots"}, {"--rate-burst", "-1"}, {"--max-waits", "-2"},
	} {
		_, errOut, code := runDPE(t, dir, append([]string{"server", "--db", dsn, "--listen", "127.0.0.1:0"}, args...)...)
		if code != exitUsage || !strings.Contains(errOut, args[0]) {
			t.Errorf("server %v: exit %d, stderr %q: want %d naming the flag", args, code, errOut, exitUsage)
		}
	}
}
