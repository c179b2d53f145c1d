package main

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Latency summarises a sample of durations, in milliseconds (JSON-friendly
// and what the targets are written in). Values may be negative: see the
// dispatch phase, where a job can start before its submitter has read the
// acknowledgement.
type Latency struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}

// summarize returns the nearest-rank percentiles of ds.
func summarize(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	rank := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return Latency{
		N:    len(s),
		P50:  ms(rank(0.50)),
		P99:  ms(rank(0.99)),
		Max:  ms(s[len(s)-1]),
		Mean: ms(sum / time.Duration(len(s))),
	}
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// clockTick is the unit of utime/stime in /proc/PID/stat (USER_HZ). It is
// 100 on every Linux build that matters; getconf confirms it when present.
var clockTick = func() float64 {
	if out, err := exec.Command("getconf", "CLK_TCK").Output(); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && n > 0 {
			return float64(n)
		}
	}
	return 100
}()

// cpuSeconds returns the user+system CPU time a process has used so far,
// from /proc/PID/stat (fields 14 and 15, counted after the ")" that ends
// the command name, which may itself hold spaces). 0 when it is gone.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / clockTick
}

// memKB returns a "Vm..." line of /proc/PID/status in KiB (VmHWM: peak
// resident set, VmRSS: current).
func memKB(pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// resetPeakRSS makes VmHWM start again from the current RSS (writing 5 to
// clear_refs, Linux ≥ 4.0, allowed on our own children), so a phase can
// read its own peak instead of the lifetime one. It reports whether that
// worked; when not, VmHWM stays the peak since the process started.
func resetPeakRSS(pid int) bool {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
}

// machineCPU reads the first line of /proc/stat: busy and total jiffies of
// all cores. The machine is shared, so the busy share of a phase says
// whether dpe had the CPUs to itself.
func machineCPU() (busy, total float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	for i, v := range f[1:] {
		n, _ := strconv.ParseFloat(v, 64)
		if i >= 8 { // guest time is already counted in user
			break
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

// pgBackends returns the CPU seconds used so far by each PostgreSQL
// backend connected to database db, found by its process title
// ("postgres: [CLUSTER: ]USER DB HOST(PORT) STATE"). The bench's own
// counting connection is among them. /proc/PID/stat is world-readable,
// so this works although the backends belong to the postgres user.
// Backends of other databases (other people's tests on this shared server)
// are left out; shared processes (WAL writer, checkpointer) too.
func pgBackends(db string) map[int]float64 {
	out := map[int]float64{}
	if db == "" {
		return out
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		title, err := os.ReadFile(d + "/cmdline")
		if err != nil || !bytes.HasPrefix(title, []byte("postgres: ")) {
			continue
		}
		f := strings.Fields(string(bytes.ReplaceAll(title, []byte{0}, []byte(" "))))
		if len(f) > 1 && strings.HasSuffix(f[1], ":") { // cluster_name
			f = f[1:]
		}
		if len(f) >= 3 && f[2] == db {
			pid, _ := strconv.Atoi(filepath.Base(d))
			out[pid] = cpuSeconds(pid)
		}
	}
	return out
}

// cpuMeter snapshots the CPU time of the server, the other dpe processes,
// the database's backends and the machine at the start of a phase.
type cpuMeter struct {
	server      float64
	others      float64
	pg          map[int]float64
	busy, total float64
	pgDB        string
	serverPID   int
	otherPIDs   []int
}

func startCPU(serverPID int, others []int, pgDB string) *cpuMeter {
	m := &cpuMeter{pgDB: pgDB, serverPID: serverPID, otherPIDs: others}
	m.server = cpuSeconds(serverPID)
	for _, p := range others {
		m.others += cpuSeconds(p)
	}
	m.pg = pgBackends(pgDB)
	m.busy, m.total = machineCPU()
	return m
}

// CPU is the CPU time spent during a phase, in seconds.
type CPU struct {
	Server float64 `json:"server_s"`
	// Clients: the processors and the workflow worker of the phase.
	Clients float64 `json:"clients_s"`
	// Database: the backends of the bench database (PostgreSQL only).
	Database float64 `json:"database_s,omitempty"`
	// MachineBusy: share of all cores busy during the phase, whoever used
	// them (the bench itself and other users of the machine included).
	MachineBusy float64 `json:"machine_busy"`
}

// stop returns the CPU spent since startCPU. Processes that ended in the
// meantime count what they had at the start only, so stop must run before
// the phase's processes are stopped.
func (m *cpuMeter) stop() CPU {
	c := CPU{Server: cpuSeconds(m.serverPID) - m.server}
	for _, p := range m.otherPIDs {
		c.Clients += cpuSeconds(p)
	}
	c.Clients -= m.others
	for pid, s := range pgBackends(m.pgDB) {
		c.Database += s - m.pg[pid] // a new backend started from 0
	}
	busy, total := machineCPU()
	if total > m.total {
		c.MachineBusy = round3((busy - m.busy) / (total - m.total))
	}
	c.Server, c.Clients, c.Database = round3(c.Server), round3(c.Clients), round3(c.Database)
	return c
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

// RouteTime is the server's own account of one API route during a phase,
// from the dpe_http_request_seconds histogram of /metrics: how many
// requests, their mean time inside the handler and the total.
type RouteTime struct {
	Route  string  `json:"route"`
	Count  int64   `json:"count"`
	MeanMS float64 `json:"mean_ms"`
	TotalS float64 `json:"total_s"`
}

// metricsSnapshot is the sum and count of dpe_http_request_seconds per
// route.
type metricsSnapshot map[string]struct {
	sum   float64
	count int64
}

// parseMetrics reads the Prometheus text exposition of /metrics.
func parseMetrics(text []byte) metricsSnapshot {
	snap := metricsSnapshot{}
	for line := range strings.SplitSeq(string(text), "\n") {
		var isSum bool
		rest, ok := strings.CutPrefix(line, "dpe_http_request_seconds_sum{")
		if ok {
			isSum = true
		} else if rest, ok = strings.CutPrefix(line, "dpe_http_request_seconds_count{"); !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		route := ""
		for l := range strings.SplitSeq(labels, ",") {
			if v, ok := strings.CutPrefix(l, `route="`); ok {
				route = strings.TrimSuffix(v, `"`)
			}
		}
		v, _ := strconv.ParseFloat(strings.TrimSpace(value), 64)
		e := snap[route]
		if isSum {
			e.sum = v
		} else {
			e.count = int64(v)
		}
		snap[route] = e
	}
	return snap
}

// routeDelta returns the routes that served requests between a and b,
// busiest (by total time) first.
func routeDelta(a, b metricsSnapshot) []RouteTime {
	var out []RouteTime
	for route, e := range b {
		n := e.count - a[route].count
		if n <= 0 {
			continue
		}
		total := e.sum - a[route].sum
		out = append(out, RouteTime{Route: route, Count: n,
			MeanMS: round3(total / float64(n) * 1000), TotalS: round3(total)})
	}
	slices.SortFunc(out, func(x, y RouteTime) int { return cmp.Compare(y.TotalS, x.TotalS) })
	return out
}
