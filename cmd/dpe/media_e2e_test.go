package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/model"
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
