package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// buildDPE compiles cmd/dpe of the module at repo into dir once; every
// role of the bench runs that binary, so the numbers are those of the real
// processes talking real HTTP.
func buildDPE(ctx context.Context, repo, dir string) (string, error) {
	bin := filepath.Join(dir, "dpe")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/dpe")
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/dpe: %w\n%s", err, out)
	}
	return bin, nil
}

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// proc is one dpe subprocess. Its stderr (where dpe logs) goes to a file
// and, line by line, to an optional hook.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, valid after done
}

// lineWriter cuts a stream into lines, copies them to a file and hands
// each complete line to hook.
type lineWriter struct {
	file *os.File
	hook func(line []byte)
	buf  []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	_, _ = w.file.Write(p)
	if w.hook == nil {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.hook(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

// startProc runs bin with args, logging to dir/name.log.
func startProc(bin, dir, name string, hook func([]byte), args ...string) (*proc, error) {
	f, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = f
	cmd.Stderr = &lineWriter{file: f, hook: hook}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM (dpe drains: claims stop, running jobs finish, the
// server closes its listener), then SIGKILL after grace. Only this process
// is signalled, by its pid.
func (p *proc) stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// cluster is the server and the client roles of one engine's run.
type cluster struct {
	bin, dir string
	url      string
	server   *proc
	workers  []*proc // processors and workflow workers of the current phase
	events   *jobEvents
	seq      int // numbers the log files of successive roles
}

// startServer starts `dpe server` on dsn and waits until /readyz answers
// (the core database reached, migrated).
func startServer(ctx context.Context, bin, dir, dsn string) (*cluster, error) {
	return startServerAs(ctx, bin, dir, dsn, "server")
}

// startServerAs is startServer logging to dir/name.log, with extra
// flags.
func startServerAs(ctx context.Context, bin, dir, dsn, name string, extra ...string) (*cluster, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cl := &cluster{bin: bin, dir: dir, url: "http://" + addr, events: newJobEvents()}
	args := append([]string{"server", "--db", dsn, "--listen", addr, "--shutdown-grace", "5s", "--pprof"}, extra...)
	cl.server, err = startProc(bin, dir, name, nil, args...)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := http.Get(cl.url + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return cl, nil
			}
		}
		select {
		case <-cl.server.done:
			return nil, fmt.Errorf("server exited at start (%v); see %s", cl.server.err, filepath.Join(dir, name+".log"))
		case <-ctx.Done():
			cl.server.stop(5 * time.Second)
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cl.server.stop(5 * time.Second)
			return nil, errors.New("server not ready within 60s")
		}
	}
}

// close stops every role, the server last.
func (cl *cluster) close() {
	cl.stopWorkers()
	cl.server.stop(10 * time.Second)
}

// startProcessors starts n `dpe processor` with quota noop=quota each and
// waits until each has logged "processor started" (announced, about to
// claim). debug turns on the per-job debug records the dispatch phase
// reads; other phases keep info so logging costs nothing measurable.
func (cl *cluster) startProcessors(ctx context.Context, n, quota int, debug bool) error {
	level := "info"
	if debug {
		level = "debug"
	}
	ready := make(chan struct{}, n)
	for range n {
		cl.seq++
		p, err := startProc(cl.bin, cl.dir, fmt.Sprintf("processor-%d", cl.seq), cl.hook(ready, "processor started"),
			"processor", "--server", cl.url, "--quota", "noop="+strconv.Itoa(quota),
			"--lease-ttl", "30s", "--grace", "10s", "--log-level", level)
		if err != nil {
			return err
		}
		cl.workers = append(cl.workers, p)
	}
	return cl.waitReady(ctx, ready, n)
}

// startWorker starts one `dpe worker` (concurrent mode, default limits).
func (cl *cluster) startWorker(ctx context.Context) error {
	ready := make(chan struct{}, 1)
	cl.seq++
	p, err := startProc(cl.bin, cl.dir, fmt.Sprintf("worker-%d", cl.seq), cl.hook(ready, "worker starting"),
		"worker", "--server", cl.url)
	if err != nil {
		return err
	}
	cl.workers = append(cl.workers, p)
	return cl.waitReady(ctx, ready, 1)
}

func (cl *cluster) waitReady(ctx context.Context, ready <-chan struct{}, n int) error {
	timeout := time.After(30 * time.Second)
	for range n {
		select {
		case <-ready:
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout:
			return fmt.Errorf("roles not started within 30s; logs in %s", cl.dir)
		}
	}
	return nil
}

// hook returns a log-line hook that signals ready once on the line whose
// msg is readyMsg and feeds job records to cl.events.
func (cl *cluster) hook(ready chan<- struct{}, readyMsg string) func([]byte) {
	var once sync.Once
	needle := []byte(`msg="` + readyMsg + `"`)
	return func(line []byte) {
		if bytes.Contains(line, needle) {
			once.Do(func() { ready <- struct{}{} })
			return
		}
		cl.events.parse(line)
	}
}

// workerPIDs returns the pids of the running processors and workers.
func (cl *cluster) workerPIDs() []int {
	var out []int
	for _, p := range cl.workers {
		out = append(out, p.pid())
	}
	return out
}

// stopWorkers stops the processors and workers of the phase, in parallel.
func (cl *cluster) stopWorkers() {
	var wg sync.WaitGroup
	for _, p := range cl.workers {
		wg.Go(func() { p.stop(15 * time.Second) })
	}
	wg.Wait()
	cl.workers = nil
}

// jobEvents collects, from processors' debug logs, when each job's handler
// started (the record "job started", written right before the handler's
// goroutine is launched) and when its outcome was delivered.
type jobEvents struct {
	mu      sync.Mutex
	started map[int64]time.Time
	done    map[int64]bool
	changed chan struct{} // closed and replaced on every new event
}

func newJobEvents() *jobEvents {
	return &jobEvents{started: map[int64]time.Time{}, done: map[int64]bool{}, changed: make(chan struct{})}
}

// parse reads one slog text record: time=2006-01-02T15:04:05.000Z07:00
// level=DEBUG msg="job started" job=ID ... The time has millisecond
// resolution, truncated.
func (e *jobEvents) parse(line []byte) {
	s := string(line)
	started := strings.Contains(s, `msg="job started"`)
	if !started && !strings.Contains(s, `msg="outcome delivered"`) {
		return
	}
	var at time.Time
	var id int64
	for f := range strings.FieldsSeq(s) {
		if v, ok := strings.CutPrefix(f, "time="); ok {
			at, _ = time.Parse(time.RFC3339Nano, v)
		} else if v, ok := strings.CutPrefix(f, "job="); ok {
			id, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if id == 0 {
		return
	}
	e.mu.Lock()
	if started {
		e.started[id] = at
	} else {
		e.done[id] = true
	}
	close(e.changed)
	e.changed = make(chan struct{})
	e.mu.Unlock()
}

// wait blocks until job id's outcome was delivered and returns when its
// handler started (as logged).
func (e *jobEvents) wait(ctx context.Context, id int64, timeout time.Duration) (time.Time, error) {
	limit := time.After(timeout)
	for {
		e.mu.Lock()
		at, ok := e.started[id]
		done := e.done[id]
		ch := e.changed
		e.mu.Unlock()
		if ok && done {
			return at, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-limit:
			return time.Time{}, fmt.Errorf("job %d: no start and delivery logged within %v", id, timeout)
		}
	}
}

// cpuProfile writes the server's CPU profile over d (dpe server --pprof)
// to file.
func (cl *cluster) cpuProfile(ctx context.Context, d time.Duration, file string) error {
	secs := max(1, int(d.Round(time.Second)/time.Second))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", cl.url, secs), nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /debug/pprof/profile: %s", res.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, res.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
