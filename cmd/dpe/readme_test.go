package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/coredb"
	"github.com/dpe-engine/dpe/internal/testpg"
)

// TestREADME runs what README.md and the example templates tell a new
// user to type, exactly as written, against a fresh `dpe up` of the real
// binary, and checks that each exits as documented.
//
// Conventions (README "CLI" section):
//   - README: every line of a fenced code block that starts with `dpe ` or
//     `go run ./cmd/dpe ` is a dpe command (a trailing `\` joins the next
//     line). A trailing comment `# exit N` says it exits N; otherwise it
//     must exit 0. A trailing comment `# not run: REASON` exempts it (a
//     role that runs until stopped, a command for other machines); the
//     test lists each exemption. The `dpe up` line is run as the server of
//     the test (with --listen appended), in a scratch copy of the
//     repository's README.md, Makefile and examples/.
//   - An example template's leading comment: lines `#   $ COMMAND` are run
//     in order, dpe commands and shell checks alike (`test -e FILE`), with
//     the same `# exit N` rule; each template must have a `$ dpe workflow
//     start NAME` line of its own.
//
// A line of a shell block (```sh, bash, shell, console) that names dpe
// elsewhere than at its start fails the test: it could neither run nor be
// exempted.
func TestREADME(t *testing.T) {
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := readDocCommands(filepath.Join(repo, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	examples, err := exampleCommands(filepath.Join(repo, "examples", "templates"))
	if err != nil {
		t.Fatal(err)
	}

	// A scratch working directory holding what README's commands name.
	dir := t.TempDir()
	for _, f := range []string{"README.md", "Makefile"} {
		copyFile(t, filepath.Join(repo, f), filepath.Join(dir, f))
	}
	tpls, _ := filepath.Glob(filepath.Join(repo, "examples", "templates", "*"))
	for _, f := range tpls {
		copyFile(t, f, filepath.Join(dir, "examples", "templates", filepath.Base(f)))
	}
	bin := dpeBinary(t)
	addr := freeAddr(t)
	sh := docShell{t: t, dir: dir, env: append(os.Environ(),
		"PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"DPE_SERVER=http://"+addr, "PWD="+dir, "DPE_LOG_LEVEL=warn")}

	var ups []docCommand
	for _, c := range readme {
		if c.dpe && c.skip == "" && c.subcommand() == "up" {
			ups = append(ups, c)
		}
	}
	if len(ups) != 1 {
		t.Fatalf("README has %d runnable `dpe up` commands, want exactly one (the test's server): %v", len(ups), ups)
	}
	upCmd := exec.Command("sh", "-c", "exec "+ups[0].shellText()+" --listen "+addr)
	upCmd.Dir, upCmd.Env = dir, sh.env
	up := startCmd(t, "dpe up ("+ups[0].where+")", upCmd)
	up.waitLine("dpe is up", 60*time.Second)

	// Key facts of some commands' output, by a part of the command. A
	// fact whose command is not in the docs fails too, so they stay in
	// step.
	facts := map[string][]string{
		"job submit util.checksum --param path=README.md --wait":  {"succeeded", filepath.Join(dir, "README.md")},
		"workflow start ingest --arg path=$PWD/README.md --wait":  {"succeeded", "loc:archive/README.md"},
		"start fanout --arg files=README.md --arg files=Makefile": {"succeeded", `"count":2`},
		`--args-json '{"files":["README.md","Makefile"]}' --wait`: {"succeeded", `"count":2`},
		`--args-json '{"files":[]}' --wait`:                       {"failed", "nothing to do"},
		"template import examples/templates/":                     {"unchanged"},
		"trigger list":                                            {"inbox"},
		"workflow start sync --arg location=archive --wait":       {"succeeded", `"error_count":0`},
	}
	used := map[string]bool{}
	ran, exempt := 0, 0
	for _, c := range append(readme, examples...) {
		switch {
		case c.skip != "":
			exempt++
			t.Logf("not run (%s): %s  [%s]", c.where, c.text, c.skip)
			continue
		case c.dpe && c.subcommand() == "up":
			ran++
			continue // the server of this test
		}
		out, code := sh.run(c)
		ran++
		if code != c.exit {
			t.Errorf("%s: `%s` exited %d, documented %d:\n%s\n--- dpe up:\n%s", c.where, c.text, code, c.exit, out, up.output())
			continue
		}
		for part, want := range facts {
			if !strings.Contains(c.text, part) {
				continue
			}
			used[part] = true
			for _, w := range want {
				if !strings.Contains(out, w) {
					t.Errorf("%s: `%s`: output lacks %q:\n%s", c.where, c.text, w, out)
				}
			}
		}
	}
	for part := range facts {
		if !used[part] {
			t.Errorf("no documented command contains %q: update the facts of TestREADME", part)
		}
	}
	t.Logf("README and examples: %d commands run, %d exempt", ran, exempt)

	// No documented command deleted the user's files.
	for _, f := range []string{"README.md", "Makefile"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("a documented command removed %s: %v", f, err)
		}
	}
	if err := up.stop(60 * time.Second); err != nil {
		t.Errorf("dpe up did not stop cleanly: %v", err)
	}
}

// docCommand is one command of README or an example template's header.
type docCommand struct {
	where string // file:line
	text  string // the command as written, without its trailing comment
	dpe   bool   // a dpe command (else a shell check of an example)
	exit  int    // the documented exit code
	skip  string // the reason of a `# not run:` exemption
}

// shellText is the command for sh: `go run ./cmd/dpe` becomes dpe, the
// binary the test built from this tree.
func (c docCommand) shellText() string {
	if rest, ok := strings.CutPrefix(c.text, "go run ./cmd/dpe "); ok {
		return "dpe " + rest
	}
	return c.text
}

// subcommand is the first word after dpe.
func (c docCommand) subcommand() string {
	f := strings.Fields(strings.TrimPrefix(c.text, "go run ./cmd/dpe"))
	if len(f) > 0 && f[0] == "dpe" {
		f = f[1:]
	}
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// mentionsDPE finds dpe named as a command anywhere in a line.
var mentionsDPE = regexp.MustCompile(`(^|[\s;&|(=])(dpe|\./cmd/dpe)\s`)

// readDocCommands extracts the dpe commands of a Markdown file's fenced
// code blocks.
func readDocCommands(path string) ([]docCommand, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var cmds []docCommand
	sc := bufio.NewScanner(f)
	n, fenced, shell, joined, start := 0, false, false, "", 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if lang, ok := strings.CutPrefix(strings.TrimSpace(line), "```"); ok {
			fenced = !fenced
			switch strings.TrimSpace(lang) {
			case "sh", "bash", "shell", "console":
				shell = fenced
			default:
				shell = false
			}
			continue
		}
		if !fenced {
			continue
		}
		if joined == "" {
			start = n
		}
		if s, ok := strings.CutSuffix(strings.TrimRight(line, " "), `\`); ok {
			joined += s + " "
			continue
		}
		line, joined = strings.TrimSpace(joined+line), ""
		where := fmt.Sprintf("%s:%d", filepath.Base(path), start)
		if !strings.HasPrefix(line, "dpe ") && !strings.HasPrefix(line, "go run ./cmd/dpe ") {
			if shell && mentionsDPE.MatchString(line) {
				return nil, fmt.Errorf("%s: %q names dpe but does not start with it: start the line with dpe or mark it `# not run: REASON`", where, line)
			}
			continue
		}
		c, err := parseDocCommand(where, line)
		if err != nil {
			return nil, err
		}
		c.dpe = true
		cmds = append(cmds, c)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if fenced {
		return nil, fmt.Errorf("%s: unclosed code fence", path)
	}
	return cmds, nil
}

var exitComment = regexp.MustCompile(`^exit (\d+)\b`)

// parseDocCommand splits a line into the command and its trailing
// comment, which may give `exit N` or `not run: REASON`.
func parseDocCommand(where, line string) (docCommand, error) {
	c := docCommand{where: where, text: line}
	cmd, comment := splitComment(line)
	c.text = strings.TrimSpace(cmd)
	comment = strings.TrimSpace(comment)
	if m := exitComment.FindStringSubmatch(comment); m != nil {
		c.exit, _ = strconv.Atoi(m[1])
	}
	if reason, ok := strings.CutPrefix(comment, "not run:"); ok {
		if c.skip = strings.TrimSpace(reason); c.skip == "" {
			return c, fmt.Errorf("%s: `# not run:` wants a reason", where)
		}
	}
	return c, nil
}

// splitComment cuts a shell line at its first # that starts a comment
// (outside quotes, after a blank).
func splitComment(line string) (string, string) {
	var quote rune
	prev := ' '
	for i, r := range line {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && (prev == ' ' || prev == '\t'):
			return line[:i], line[i+1:]
		}
		prev = r
	}
	return line, ""
}

var headerCommand = regexp.MustCompile(`^#\s+\$ (.+)$`)

// exampleCommands extracts the `#   $ COMMAND` lines of the leading
// comment of every example template; each template must document a start
// of itself.
func exampleCommands(dir string) ([]docCommand, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		return nil, err
	}
	var cmds []docCommand
	for _, f := range files {
		if ext := filepath.Ext(f); ext != ".yaml" && ext != ".json" {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		name := strings.TrimSuffix(filepath.Base(f), filepath.Ext(f))
		starts := 0
		for i, line := range strings.Split(string(src), "\n") {
			if !strings.HasPrefix(line, "#") {
				break
			}
			m := headerCommand.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			c, err := parseDocCommand(fmt.Sprintf("examples/templates/%s:%d", filepath.Base(f), i+1), m[1])
			if err != nil {
				return nil, err
			}
			c.dpe = strings.HasPrefix(c.text, "dpe ")
			if strings.HasPrefix(c.text, "dpe workflow start "+name+" ") && c.skip == "" {
				starts++
			}
			cmds = append(cmds, c)
		}
		if starts == 0 {
			return nil, fmt.Errorf("%s: its header documents no `#   $ dpe workflow start %s ...` line", f, name)
		}
	}
	return cmds, nil
}

// docShell runs documented commands with sh in the scratch directory,
// dpe on the PATH and DPE_SERVER pointing at the test's dpe up.
type docShell struct {
	t   *testing.T
	dir string
	env []string
}

// run runs one command and returns its combined output and exit code.
func (s docShell) run(c docCommand) (string, int) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", c.shellText())
	cmd.Dir, cmd.Env = s.dir, s.env
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		s.t.Fatalf("%s: `%s` did not end within 2 minutes:\n%s", c.where, c.text, out.String())
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), ee.ExitCode()
	} else if err != nil {
		s.t.Fatalf("%s: run `%s`: %v", c.where, c.text, err)
	}
	return out.String(), 0
}

// copyFile copies src to dst, creating dst's directory.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestDocConventions checks the parser of TestREADME on the conventions
// it documents.
func TestDocConventions(t *testing.T) {
	md := filepath.Join(t.TempDir(), "doc.md")
	doc := "text dpe status outside a fence is prose\n" +
		"```\nlayout/   what dpe up imports (not a shell block)\n```\n" +
		"```sh\n" +
		"go run ./cmd/dpe up      # server: the test's own\n" +
		"dpe workflow start fanout --args-json '{\"files\":[\"a#b\"]}' --wait   # exit 3: fails\n" +
		"dpe scheduler --config dpe.yaml \\\n  --mode standby   # not run: runs until stopped\n" +
		"make test\n" +
		"```\n"
	if err := os.WriteFile(md, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	cmds, err := readDocCommands(md)
	if err != nil {
		t.Fatal(err)
	}
	want := []docCommand{
		{where: "doc.md:6", text: "go run ./cmd/dpe up", dpe: true},
		{where: "doc.md:7", text: `dpe workflow start fanout --args-json '{"files":["a#b"]}' --wait`, dpe: true, exit: 3},
		{where: "doc.md:8", text: "dpe scheduler --config dpe.yaml    --mode standby", dpe: true, skip: "runs until stopped"},
	}
	if fmt.Sprint(cmds) != fmt.Sprint(want) {
		t.Fatalf("got  %v\nwant %v", cmds, want)
	}
	if cmds[0].subcommand() != "up" || cmds[2].subcommand() != "scheduler" {
		t.Fatalf("subcommands: %q %q", cmds[0].subcommand(), cmds[2].subcommand())
	}

	bad := []string{
		"```sh\nDPE_SERVER=x dpe status\n```\n", // dpe not at the start
		"```sh\ndpe status   # not run:\n```\n", // an exemption without a reason
		"```sh\ndpe status\n",                   // unclosed fence
		"```bash\nsudo dpe up\n```\n",           // dpe not at the start, in bash
	}
	for _, b := range bad {
		if err := os.WriteFile(md, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := readDocCommands(md); err == nil {
			t.Errorf("accepted %q", b)
		}
	}
}

// TestREADMEFailoverDSN backs README's core-DB DSN for a fail-over
// cluster: with a libpq multi-host DSN and target_session_attrs=read-write
// the server connects to whichever host accepts writes, skipping one that
// answers read-only (as a standby does), and works there.
func TestREADMEFailoverDSN(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	standby, primary := testpg.Start(t), testpg.Start(t)
	conn, err := pgx.Connect(ctx, standby.DSN())
	if err != nil {
		t.Fatal(err)
	}
	// New sessions on it are read-only, as on a hot standby.
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+testpg.Database+" SET default_transaction_read_only = on"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	dsn := fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/%s?sslmode=disable&target_session_attrs=read-write",
		standby.Port(), primary.Port(), testpg.Database)
	st, err := coredb.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	defer st.Close()
	if err := st.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	// The schema went to the read-write host, and nothing to the other.
	tables := func(dsn string) int {
		t.Helper()
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		var n int
		if err := c.QueryRow(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'jobs'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if p, s := tables(primary.DSN()), tables(standby.DSN()); p != 1 || s != 0 {
		t.Fatalf("jobs table: %d on the read-write host, %d on the read-only one; want 1 and 0", p, s)
	}
}
