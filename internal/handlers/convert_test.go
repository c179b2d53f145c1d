package handlers

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dpe-engine/dpe/internal/jobtype"
	"github.com/dpe-engine/dpe/internal/wav"
)

func TestConvert(t *testing.T) {
	tools := requireFFmpeg(t)
	b := setup(t)
	bext := &wav.Bext{Description: "take one", Originator: "desk 3", OriginationDate: "2026-12-06",
		OriginationTime: "21:00:00", TimeReference: 48000 * 3600, CodingHistory: "A=PCM,F=48000,W=24,M=stereo\r\n"}
	src := filepath.Join(b.root, "in", "take.wav")
	if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
		t.Fatal(err)
	}
	writeTone(t, src, tone{code: wav.FormatPCM, bits: 24, rate: 48000, dbfs: []float64{-20, -20}, seconds: 1, bext: bext})
	tests := []struct {
		name      string
		params    map[string]any
		method    string
		codec     string
		rate, ch  int
		bits      int
		timeRef   uint64 // want this bext time reference; 0: no bext expected
		wantTag   string // a tag ffprobe must report, for non-WAV targets
		sizeLimit int64  // the target must be smaller (lossy)
	}{
		{"wav 24 to 16 natively", map[string]any{"to": "a.wav", "bits": 16}, "native", "pcm_s16le", 48000, 2, 16, 48000 * 3600, "", 0},
		{"wav to float natively", map[string]any{"to": "f.wav", "float": true}, "native", "pcm_f32le", 48000, 2, 32, 48000 * 3600, "", 0},
		{"resample keeps bext, scaled", map[string]any{"to": "b.wav", "sample_rate": 44100}, "ffmpeg", "pcm_s24le", 44100, 2, 24, 44100 * 3600, "", 0},
		{"downmix to mono bwf", map[string]any{"to": "m.bwf", "channels": "mono", "bits": 16}, "ffmpeg", "pcm_s16le", 48000, 1, 16, 48000 * 3600, "", 0},
		{"flac carries tags", map[string]any{"to": "c.flac"}, "ffmpeg", "flac", 48000, 2, 24, 0, "take one", 0},
		{"mp3", map[string]any{"to": "d.mp3", "bitrate_kbps": 128}, "ffmpeg", "mp3", 48000, 2, 0, 0, "", 48000 * 6},
		{"m4a at 44.1k", map[string]any{"to": "e.m4a", "sample_rate": 44100}, "ffmpeg", "aac", 44100, 2, 0, 0, "", 48000 * 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			to := filepath.Join(b.root, "out", tt.params["to"].(string))
			tt.params["to"], tt.params["from"] = to, src
			pr := &progress{}
			res, err := b.h[jobtype.AudioConvert].Run(context.Background(), task(t, jobtype.AudioConvert, tt.params, pr))
			if err != nil {
				t.Fatal(err)
			}
			r := res.(convertResult)
			if r.Method != tt.method || r.Codec != tt.codec || r.SampleRate != tt.rate || r.Channels != tt.ch ||
				(tt.bits != 0 && r.Bits != tt.bits) || r.DurationS < 0.95 || r.DurationS > 1.1 {
				t.Errorf("result = %+v", r)
			}
			if got := pr.reports(); len(got) == 0 || got[len(got)-1] != 100 {
				t.Errorf("progress = %v, want it to end at 100", got)
			}
			if tt.timeRef != 0 {
				f, err := os.Open(to)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				wr, err := wav.Open(context.Background(), f, nil)
				if err != nil {
					t.Fatal(err)
				}
				x := wr.Bext()
				if x == nil || x.Description != bext.Description || x.Originator != bext.Originator || x.TimeReference != tt.timeRef {
					t.Errorf("bext = %+v, want %q, time reference %d", x, bext.Description, tt.timeRef)
				}
			}
			if tt.wantTag != "" {
				info, err := probe(context.Background(), tools, to)
				if err != nil {
					t.Fatal(err)
				}
				found := false
				for _, v := range info.Tags {
					found = found || v == tt.wantTag
				}
				if !found {
					t.Errorf("tags = %v, want one %q", info.Tags, tt.wantTag)
				}
			}
			if tt.sizeLimit != 0 {
				if fi, err := os.Stat(to); err != nil || fi.Size() >= tt.sizeLimit {
					t.Errorf("lossy target: %v, %v", fi.Size(), err)
				}
			}
			// Again: left alone.
			res, err = b.run(t, jobtype.AudioConvert, tt.params)
			if err != nil || !res.(convertResult).AlreadyDone {
				t.Errorf("second run: %+v, %v; want already done", res, err)
			}
		})
	}
	for _, bad := range []map[string]any{
		{"to": "x.mp3", "bits": 24},
		{"to": "x.flac", "bits": 32},
		{"to": "x.wav", "sample_rate": 12345},
		{"to": "x.ogg"},
		{"to": "x.mp3", "sample_rate": 96000},
	} {
		bad["from"], bad["to"] = src, filepath.Join(b.root, "out", bad["to"].(string))
		if _, err := b.run(t, jobtype.AudioConvert, bad); !IsPermanent(err) {
			t.Errorf("params %v: err = %v, want permanent", bad, err)
		}
	}
}

// TestTargetIsSource: the jobs that make one file from another refuse a
// target that is their source, for good (no retry), before touching it.
func TestTargetIsSource(t *testing.T) {
	b := setup(t)
	src := filepath.Join(b.root, "in", "take.wav")
	if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
		t.Fatal(err)
	}
	writeTone(t, src, tone{code: wav.FormatPCM, bits: 16, rate: 48000, dbfs: []float64{-20}, seconds: 1})
	before, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{jobtype.AudioConvert, jobtype.MediaTranscode, jobtype.MediaThumbnail} {
		t.Run(typ, func(t *testing.T) {
			h, ok := b.h[typ]
			if !ok {
				t.Fatalf("no handler for %s", typ)
			}
			_, err := h.Run(context.Background(), task(t, typ, map[string]any{"from": src, "to": src}, &progress{}))
			if err == nil || !strings.Contains(err.Error(), typ+": params.to: is the source itself") || !IsPermanent(err) {
				t.Fatalf("to = from: %v, want a permanent refusal naming params.to", err)
			}
			after, err := os.ReadFile(src)
			if err != nil || !bytes.Equal(after, before) {
				t.Fatalf("the source changed (%v)", err)
			}
		})
	}
}
