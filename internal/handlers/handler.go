// Package handlers holds the built-in job types (DESIGN §3): noop, the
// util.* file operations, util.sync (DESIGN §6) and exec. Each handler
// decodes its params with the jobtype spec the server validated them
// against, confines every path to the processor's allowed roots, stops
// promptly when its context ends, and is idempotent, because a job may run
// again after its processor died.
package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/dpe-engine/dpe/internal/clock"
	"github.com/dpe-engine/dpe/internal/jobtype"
	"github.com/dpe-engine/dpe/internal/location"
	"github.com/dpe-engine/dpe/internal/paths"
)

// Task is one claimed job as a handler sees it.
type Task struct {
	ID      int64
	Type    string
	Params  json.RawMessage
	Attempt int
	// Progress reports percent (0-100) and a short message. The processor
	// sets it; it is cheap and safe to call from any goroutine. Handlers
	// also accept a nil Progress (tests), which drops the reports.
	Progress func(percent int, message string)
	// Log writes a line to the job's log (level: model.LogDebug, LogInfo,
	// LogWarn or LogError), kept by the server with the job and shown
	// with it and its workflow. The processor sets it and batches the
	// lines with its heartbeats; it never blocks. Handlers call Logf,
	// which accepts a nil Log (tests) and drops the lines.
	Log func(level, message string)
}

// Logf writes a formatted line to the job's log when the task has a Log.
func (t Task) Logf(level, format string, args ...any) {
	if t.Log != nil {
		t.Log(level, fmt.Sprintf(format, args...))
	}
}

// Handler runs one job. It must stop promptly when ctx is cancelled
// (cancel, lease lost, timeout, shutdown). The result is marshalled to
// JSON. An error fails the attempt: it is retried unless IsPermanent. A
// handler may return a result with an error (exec does, with the captured
// output) for the processor to record.
type Handler interface {
	Run(ctx context.Context, t Task) (result any, err error)
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(ctx context.Context, t Task) (any, error)

// Run calls f.
func (f HandlerFunc) Run(ctx context.Context, t Task) (any, error) { return f(ctx, t) }

// Config is what the built-in handlers need from their processor.
type Config struct {
	// Guard confines every path in params; nil accepts any path.
	Guard *paths.Guard
	// Log receives the handlers' warnings; nil discards them.
	Log *slog.Logger
	// Exec is what exec jobs may run; exec is served only when it allows
	// a program.
	Exec ExecPolicy
	// Clock paces progress reports and times exec runs; nil is the
	// system clock.
	Clock clock.Clock
	// Locations are the named locations (DESIGN §6): util.sync mirrors
	// them, and write targets named loc:NAME/... go to their first
	// writable root (see resolveTarget). Nil: util.sync fails with "no
	// locations configured". Loc: paths in params are read through
	// Guard.Locations, which the processor sets to Locations.Resolve.
	Locations *location.Set
	// FFmpeg and FFprobe are the programs of the ffmpeg job types
	// (jobtype.FFmpegTypes): a path, or a name looked up in PATH; empty:
	// "ffmpeg" and "ffprobe". When either is missing those types have no
	// handler, and Unavailable says why.
	FFmpeg, FFprobe string
}

// withDefaults fills in the nil fields that have a default.
func (c Config) withDefaults() Config {
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	return c
}

// Builtins returns a handler for each built-in job type, keyed by the names
// of jobtype.Builtins(). Without a program in cfg.Exec.Allow the map has no "exec"
// entry, so a processor serving it does not claim exec jobs at all (another
// processor that allows exec can run them). Likewise without ffmpeg and
// ffprobe the map has no entry for jobtype.FFmpegTypes (see Unavailable).
func Builtins(cfg Config) map[string]Handler {
	cfg = cfg.withDefaults()
	specs := jobtype.Builtins()
	m := map[string]Handler{
		jobtype.Noop:     &noopHandler{cfg: cfg, spec: specs[jobtype.Noop]},
		jobtype.Copy:     &copyHandler{cfg: cfg, spec: specs[jobtype.Copy]},
		jobtype.Move:     &moveHandler{cfg: cfg, spec: specs[jobtype.Move], rename: cfg.Guard.Rename},
		jobtype.Delete:   &deleteHandler{cfg: cfg, spec: specs[jobtype.Delete]},
		jobtype.Checksum: &checksumHandler{cfg: cfg, spec: specs[jobtype.Checksum]},
		jobtype.Mkdir:    &mkdirHandler{cfg: cfg, spec: specs[jobtype.Mkdir]},
		jobtype.List:     &listHandler{cfg: cfg, spec: specs[jobtype.List]},
		jobtype.Sync:     &syncHandler{cfg: cfg, spec: specs[jobtype.Sync]},
	}
	m[jobtype.AudioLoudness] = &loudnessHandler{cfg: cfg, spec: specs[jobtype.AudioLoudness]}
	m[jobtype.AudioNormalize] = &normalizeHandler{cfg: cfg, spec: specs[jobtype.AudioNormalize]}
	m[jobtype.AudioWaveform] = &waveformHandler{cfg: cfg, spec: specs[jobtype.AudioWaveform]}
	if tools, err := findFFmpeg(cfg); err == nil {
		m[jobtype.MediaProbe] = &probeHandler{cfg: cfg, spec: specs[jobtype.MediaProbe], tools: tools}
		m[jobtype.MediaTranscode] = &transcodeHandler{cfg: cfg, spec: specs[jobtype.MediaTranscode], tools: tools}
		m[jobtype.MediaThumbnail] = &thumbnailHandler{cfg: cfg, spec: specs[jobtype.MediaThumbnail], tools: tools}
		m[jobtype.AudioConvert] = &convertHandler{cfg: cfg, spec: specs[jobtype.AudioConvert], tools: tools}
	}
	if cfg.Exec.Enabled() {
		m[jobtype.Exec] = &execHandler{cfg: cfg, spec: specs[jobtype.Exec]}
	}
	return m
}
