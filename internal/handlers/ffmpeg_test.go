package handlers

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/jobtype"
	"github.com/dpe-engine/dpe/internal/wav"
)

// requireFFmpeg skips the test when ffmpeg or ffprobe is missing, or fails
// it under DPE_TEST_STRICT=1.
func requireFFmpeg(t *testing.T) ffTools {
	t.Helper()
	tools, err := findFFmpeg(Config{})
	if err != nil {
		if os.Getenv("DPE_TEST_STRICT") == "1" {
			t.Fatalf("DPE_TEST_STRICT=1 and %v", err)
		}
		t.Skipf("needs ffmpeg: %v", err)
	}
	return tools
}

// ffmpegGen runs ffmpeg with args (lavfi sources) to make a test file.
func ffmpegGen(t *testing.T, tools ffTools, args ...string) {
	t.Helper()
	cmd := exec.Command(tools.ffmpeg, append([]string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
	}
}

// testVideo writes a video of seconds with a 1 kHz tone at path (mp4,
// mpeg4 video 320x240 at 25 fps, aac audio).
func testVideo(t *testing.T, tools ffTools, path string, seconds string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	ffmpegGen(t, tools, "-f", "lavfi", "-i", "testsrc=duration="+seconds+":size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000:duration="+seconds,
		"-c:v", "mpeg4", "-q:v", "5", "-c:a", "aac", "-shortest", path)
}

func TestProbe(t *testing.T) {
	tools := requireFFmpeg(t)
	b := setup(t)
	src := filepath.Join(b.root, "in", "clip.mp4")
	testVideo(t, tools, src, "2")
	res, err := b.run(t, jobtype.MediaProbe, map[string]any{"path": src})
	if err != nil {
		t.Fatal(err)
	}
	info := res.(probeInfo)
	if !strings.Contains(info.Format, "mp4") || info.VideoCount != 1 || info.AudioCount != 1 ||
		info.DurationS < 1.9 || info.DurationS > 2.2 || info.Size == 0 {
		t.Fatalf("probe = %+v", info)
	}
	for _, s := range info.Streams {
		switch s.Type {
		case "video":
			if s.Codec != "mpeg4" || s.Width != 320 || s.Height != 240 || s.FrameRate != "25/1" {
				t.Errorf("video stream = %+v", s)
			}
		case "audio":
			if s.Codec != "aac" || s.SampleRate != 48000 || s.Channels != 1 {
				t.Errorf("audio stream = %+v", s)
			}
		}
	}
	// Not media: permanent. Outside the roots: permanent.
	bad := filepath.Join(b.root, "notes.txt")
	writeFile(t, bad, "not a video")
	if _, err := b.run(t, jobtype.MediaProbe, map[string]any{"path": bad}); !IsPermanent(err) {
		t.Errorf("probe of a text file: err = %v, want permanent", err)
	}
	out := filepath.Join(b.outside, "clip.mp4")
	testVideo(t, tools, out, "1")
	if _, err := b.run(t, jobtype.MediaProbe, map[string]any{"path": out}); !IsPermanent(err) {
		t.Errorf("probe outside the roots: err = %v, want permanent", err)
	}
}

func TestTranscode(t *testing.T) {
	tools := requireFFmpeg(t)
	b := setup(t)
	src := filepath.Join(b.root, "in", "clip.mp4")
	testVideo(t, tools, src, "2")
	to := filepath.Join(b.root, "proxy", "clip.mp4")
	params := map[string]any{"from": src, "to": to, "width": 160, "crf": 30, "preset": "ultrafast", "audio_bitrate_kbps": 96}
	pr := &progress{}
	res, err := b.h[jobtype.MediaTranscode].Run(context.Background(), task(t, jobtype.MediaTranscode, params, pr))
	if err != nil {
		t.Fatal(err)
	}
	r := res.(transcodeResult)
	if r.AlreadyDone || r.Output.VideoCount != 1 || r.Output.AudioCount != 1 {
		t.Fatalf("result = %+v", r)
	}
	for _, s := range r.Output.Streams {
		if s.Type == "video" && (s.Codec != "h264" || s.Width != 160 || s.Height != 120) {
			t.Errorf("video = %+v, want h264 160x120", s)
		}
		if s.Type == "audio" && s.Codec != "aac" {
			t.Errorf("audio = %+v, want aac", s)
		}
	}
	if got := pr.reports(); len(got) == 0 || got[len(got)-1] != 100 || !slices.IsSorted(got) {
		t.Errorf("progress = %v, want rising to 100", got)
	}
	if names := listDir(t, filepath.Dir(to)); !slices.Equal(names, []string{".clip.mp4.dpe-media.json", "clip.mp4"}) {
		t.Errorf("target dir = %v", names)
	}
	before, _ := os.Stat(to)

	// Again: already made, left alone.
	res, err = b.run(t, jobtype.MediaTranscode, params)
	if err != nil {
		t.Fatal(err)
	}
	if !res.(transcodeResult).AlreadyDone {
		t.Error("second run redid the transcode")
	}
	after, _ := os.Stat(to)
	if !after.ModTime().Equal(before.ModTime()) {
		t.Error("second run rewrote the target")
	}
	// Other params: redone.
	params["width"] = 128
	res, err = b.run(t, jobtype.MediaTranscode, params)
	if err != nil {
		t.Fatal(err)
	}
	if r := res.(transcodeResult); r.AlreadyDone || r.Output.Streams[0].Width != 128 {
		t.Errorf("changed params: %+v", r)
	}

	// Refused params are permanent and run nothing.
	for _, bad := range []map[string]any{
		{"from": src, "to": to, "video_codec": "x264 -vf evil"},
		{"from": src, "to": filepath.Join(b.root, "x.avi")},
		{"from": src, "to": to, "frame_rate": "25;rm"},
		{"from": src, "to": filepath.Join(b.outside, "x.mp4")},
		{"from": src, "to": src},
	} {
		if _, err := b.run(t, jobtype.MediaTranscode, bad); !IsPermanent(err) {
			t.Errorf("params %v: err = %v, want permanent", bad, err)
		}
	}
}

// TestTranscodeCancel cancels a transcode once it reports progress: the
// job ends with the context's error, no ffmpeg of it is left, and neither
// target nor temporary file remains.
func TestTranscodeCancel(t *testing.T) {
	tools := requireFFmpeg(t)
	b := setup(t)
	src := filepath.Join(b.root, "in", "long.mp4")
	testVideo(t, tools, src, "30")
	to := filepath.Join(b.root, "out", "long.mkv")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan struct{})
	tk := task(t, jobtype.MediaTranscode, map[string]any{"from": src, "to": to, "video_codec": "hevc", "preset": "veryslow"}, nil)
	tk.Progress = func(pct int, _ string) {
		if pct < 100 {
			select {
			case <-started:
			default:
				close(started)
			}
		}
	}
	done := make(chan error, 1)
	go func() {
		_, err := b.h[jobtype.MediaTranscode].Run(ctx, tk)
		done <- err
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("transcode ended before it reported progress: %v", err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	eventually.True(t, 10*time.Second, func() bool { return len(processesWith(t, b.root)) == 0 }, "ffmpeg processes of the test are gone")
	if names := listDir(t, filepath.Dir(to)); len(names) != 0 {
		t.Errorf("left in the target dir: %v", names)
	}
}

// processesWith returns the pids of the processes whose command line
// mentions s.
func processesWith(t *testing.T, s string) []string {
	t.Helper()
	dirs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil || len(dirs) == 0 {
		t.Skip("no /proc to look for processes in")
	}
	var pids []string
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err == nil && bytes.Contains(b, []byte(s)) {
			pids = append(pids, filepath.Base(filepath.Dir(d)))
		}
	}
	return pids
}

func TestThumbnail(t *testing.T) {
	tools := requireFFmpeg(t)
	b := setup(t)
	src := filepath.Join(b.root, "clip.mp4")
	testVideo(t, tools, src, "2")
	tests := []struct {
		name   string
		params map[string]any
		codec  string
		w, h   int
		at     float64
	}{
		{"png default", map[string]any{"to": "thumb.png"}, "png", 320, 240, 1},
		{"jpeg by extension, scaled", map[string]any{"to": "thumb.jpg", "width": 160, "at": "500ms"}, "mjpeg", 160, 120, 0.5},
		{"past the end: the middle", map[string]any{"to": "mid.png", "at": "1h", "format": "png"}, "png", 320, 240, 1},
		{"first frame", map[string]any{"to": "first.png", "at": "0s", "width": 0}, "png", 320, 240, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			to := filepath.Join(b.root, "thumbs", tt.params["to"].(string))
			tt.params["to"], tt.params["from"] = to, src
			res, err := b.run(t, jobtype.MediaThumbnail, tt.params)
			if err != nil {
				t.Fatal(err)
			}
			r := res.(thumbnailResult)
			if r.Width != tt.w || r.Height != tt.h || r.AtS < tt.at-0.05 || r.AtS > tt.at+0.05 {
				t.Errorf("result = %+v, want %dx%d at %.1fs", r, tt.w, tt.h, tt.at)
			}
			info, err := probe(context.Background(), tools, to)
			if err != nil {
				t.Fatal(err)
			}
			if len(info.Streams) != 1 || info.Streams[0].Codec != tt.codec {
				t.Errorf("image = %+v, want one %s stream", info, tt.codec)
			}
		})
	}
	// An audio file has no frame to take: permanent.
	wavPath := filepath.Join(b.root, "tone.wav")
	writeTone(t, wavPath, tone{code: wav.FormatPCM, bits: 16, rate: 48000, dbfs: []float64{-20}, seconds: 0.5})
	if _, err := b.run(t, jobtype.MediaThumbnail, map[string]any{"from": wavPath, "to": filepath.Join(b.root, "t.png")}); !IsPermanent(err) {
		t.Errorf("thumbnail of audio: err = %v, want permanent", err)
	}
}

// TestUnavailable: without ffmpeg in PATH the ffmpeg types have no handler
// and Unavailable says why; the other media types stay.
func TestUnavailable(t *testing.T) {
	real, realErr := findFFmpeg(Config{})
	t.Setenv("PATH", t.TempDir())
	cfg := Config{}
	un := Unavailable(cfg)
	hs := Builtins(cfg)
	for _, typ := range jobtype.FFmpegTypes {
		if !strings.Contains(un[typ], "ffmpeg not found") || !strings.Contains(un[typ], "ffprobe not found") {
			t.Errorf("Unavailable[%s] = %q", typ, un[typ])
		}
		if hs[typ] != nil {
			t.Errorf("Builtins has a handler for %s without ffmpeg", typ)
		}
	}
	if hs[jobtype.AudioLoudness] == nil || un[jobtype.AudioLoudness] != "" {
		t.Error("audio.loudness needs no ffmpeg but is unavailable")
	}
	// Programs given by path need no PATH.
	if realErr != nil {
		return // nothing to give; the part above is the point
	}
	cfg = Config{FFmpeg: real.ffmpeg, FFprobe: real.ffprobe}
	if un := Unavailable(cfg); un != nil {
		t.Errorf("Unavailable with the programs given = %v", un)
	}
	if Builtins(cfg)[jobtype.MediaProbe] == nil {
		t.Error("no media.probe handler with the programs given")
	}
}
