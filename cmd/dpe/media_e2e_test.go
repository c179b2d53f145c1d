package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/loudness"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wav"
)

// TestMediaUnavailable: `dpe up` on a PATH without ffmpeg announces the
// ffmpeg job types as unavailable, with the reason, and has no quota for
// them; `dpe status` shows it.
func TestMediaUnavailable(t *testing.T) {
	dpeBinary(t) // built now, while PATH has go
	dir := t.TempDir()
	t.Setenv("PATH", t.TempDir())
	addr := freeAddr(t)
	srv := "http://" + addr
	up := startDPE(t, "dpe up", dir, "up", "--data", filepath.Join(dir, "data"), "--listen", addr)
	up.waitLine("dpe is up", 60*time.Second)
	var procs []model.Processor
	eventually.True(t, 30*time.Second, func() bool {
		out, _, code := runDPE(t, dir, "status", "-o", "json", "--server", srv)
		var st struct {
			Processors []model.Processor `json:"processors"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
			return false
		}
		procs = st.Processors
		return len(procs) == 1 && procs[0].Unavailable != nil
	}, "the processor announces unavailable types")
	p := procs[0]
	for _, typ := range []string{"media.probe", "media.transcode", "media.thumbnail", "audio.convert"} {
		if !strings.Contains(p.Unavailable[typ], "ffmpeg not found") {
			t.Errorf("unavailable[%s] = %q", typ, p.Unavailable[typ])
		}
		if _, ok := p.Quota[typ]; ok {
			t.Errorf("quota has %s, which is unavailable", typ)
		}
	}
	if p.Quota["audio.loudness"] == 0 {
		t.Errorf("quota %v lacks audio.loudness, which needs no ffmpeg", p.Quota)
	}
	out, _, code := runDPE(t, dir, "status", "--server", srv)
	if code != 0 || !strings.Contains(out, "media.transcode unavailable: ffmpeg not found") {
		t.Errorf("dpe status: exit %d\n%s", code, out)
	}
}

// writeSine writes a stereo 48 kHz 24-bit WAV of a 1 kHz sine at dbfs
// (which measures dbfs LUFS) for seconds.
func writeSine(t *testing.T, path string, dbfs float64, seconds int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := wav.NewFormat(wav.FormatPCM, 2, 48000, 24, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	w, err := wav.Create(fh, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := math.Pow(10, dbfs/20)
	s := make([]float64, 0, 2*48000*seconds)
	for n := 0; n < 48000*seconds; n++ {
		v := a * math.Sin(2*math.Pi*1000*float64(n)/48000)
		s = append(s, v, v)
	}
	if err := w.Write(s); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// integrated measures the integrated loudness of a WAV file.
func integrated(t *testing.T, path string) float64 {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	r, err := wav.Open(context.Background(), fh, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := r.Format()
	m, err := loudness.New(f.SampleRate, loudness.Weights(f.Channels, f.ChannelMask), loudness.Options{})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]float64, 8192*f.Channels)
	for {
		n, err := r.Read(context.Background(), buf)
		if aerr := m.Add(buf[:n]); aerr != nil {
			t.Fatal(aerr)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return m.Result().Integrated
}

// TestMediaTemplates runs the media example templates against `dpe up`:
// ingest-loudness normalises a quiet file and delivers one in spec
// unchanged, loudness-report measures a folder, and (with ffmpeg) proxy
// makes a proxy and a thumbnail.
func TestMediaTemplates(t *testing.T) {
	u := startUp(t)
	dpe := u.dpe
	dir, up := u.dir, u.up
	output := func(name string, v any) {
		t.Helper()
		out, errOut, code := dpe("workflow", "show", name, "-o", "json")
		var d model.InstanceDetail
		if code != 0 || json.Unmarshal([]byte(out), &d) != nil {
			t.Fatalf("workflow show %s: exit %d\n%s%s", name, code, out, errOut)
		}
		if err := json.Unmarshal(d.Instance.Output, v); err != nil {
			t.Fatalf("output of %s: %v\n%s", name, err, out)
		}
	}

	in := filepath.Join(dir, "in")
	delivery := filepath.Join(dir, "delivery")
	writeSine(t, filepath.Join(in, "quiet.wav"), -30, 5)
	writeSine(t, filepath.Join(in, "fine.wav"), -23.4, 5)
	type ingestOut struct {
		Delivered    string  `json:"delivered"`
		MeasuredLUFS float64 `json:"measured_lufs"`
		Normalized   bool    `json:"normalized"`
		GainDB       float64 `json:"gain_db"`
	}
	for _, tc := range []struct {
		file       string
		normalized bool
		measured   float64
	}{{"quiet.wav", true, -30}, {"fine.wav", false, -23.4}} {
		out, errOut, code := dpe("workflow", "start", "ingest-loudness", "--name", "ingest-"+tc.file,
			"--arg", "path="+filepath.Join(in, tc.file), "--arg", "delivery="+delivery, "--wait")
		if code != 0 || !strings.Contains(out, "succeeded") {
			t.Fatalf("ingest-loudness %s: exit %d\n%s\n%s\n%s", tc.file, code, out, errOut, up.output())
		}
		var o ingestOut
		output("ingest-"+tc.file, &o)
		if o.Normalized != tc.normalized || math.Abs(o.MeasuredLUFS-tc.measured) > 0.1 || o.Delivered != filepath.Join(delivery, tc.file) {
			t.Errorf("%s: output %+v, want normalized %v, measured %.1f", tc.file, o, tc.normalized, tc.measured)
		}
		want := tc.measured
		if tc.normalized {
			want = -23
			if math.Abs(o.GainDB-7) > 0.1 {
				t.Errorf("%s: gain %.2f dB, want 7", tc.file, o.GainDB)
			}
		}
		if got := integrated(t, o.Delivered); math.Abs(got-want) > 0.1 {
			t.Errorf("%s delivered at %.2f LUFS, want %.1f", tc.file, got, want)
		}
		for _, ext := range []string{".peaks", ".png"} {
			if _, err := os.Stat(filepath.Join(delivery, strings.TrimSuffix(tc.file, ".wav")+ext)); err != nil {
				t.Errorf("waveform: %v", err)
			}
		}
	}

	// The nightly report over the input folder: both files measured.
	out, errOut, code := dpe("workflow", "start", "loudness-report", "--name", "report", "--arg", "folder="+in, "--wait")
	if code != 0 || !strings.Contains(out, "succeeded") {
		t.Fatalf("loudness-report: exit %d\n%s\n%s\n%s", code, out, errOut, up.output())
	}
	var rep struct {
		Files int `json:"files"`
	}
	output("report", &rep)
	if rep.Files != 2 {
		t.Errorf("report measured %d files, want 2", rep.Files)
	}

	if _, err := exec.LookPath("ffmpeg"); err != nil {
		if os.Getenv("DPE_TEST_STRICT") == "1" {
			t.Fatalf("DPE_TEST_STRICT=1 and no ffmpeg: %v", err)
		}
		t.Skipf("proxy template needs ffmpeg: %v", err)
	}
	video := filepath.Join(in, "clip.mp4")
	gen := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
		"-f", "lavfi", "-i", "testsrc=duration=2:size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000:duration=2",
		"-c:v", "mpeg4", "-c:a", "aac", "-shortest", video)
	if b, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	proxies := filepath.Join(dir, "proxies")
	out, errOut, code = dpe("workflow", "start", "proxy", "--name", "proxy", "--arg", "path="+video,
		"--arg", "proxies="+proxies, "--arg", "width=160", "--wait")
	if code != 0 || !strings.Contains(out, "succeeded") {
		t.Fatalf("proxy: exit %d\n%s\n%s\n%s", code, out, errOut, up.output())
	}
	for _, f := range []string{"clip.mp4", "clip.jpg"} {
		if fi, err := os.Stat(filepath.Join(proxies, f)); err != nil || fi.Size() == 0 {
			t.Errorf("proxy output %s: %v", f, err)
		}
	}
}
