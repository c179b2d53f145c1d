package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/dpe-engine/dpe/internal/jobtype"
)

// maxProbeOutput bounds the ffprobe JSON read (a file with thousands of
// streams or huge tags is cut, and then fails to parse).
const maxProbeOutput = 4 << 20

// probeHandler runs media.probe.
type probeHandler struct {
	cfg   Config
	spec  jobtype.Spec
	tools ffTools
}

// probeInfo is the result of media.probe: the parts of ffprobe's report
// that jobs branch on.
type probeInfo struct {
	Path        string            `json:"path"`
	Format      string            `json:"format"` // ffprobe's format_name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
	DurationS   float64           `json:"duration_s"`
	Size        int64             `json:"size"`
	BitRate     int64             `json:"bit_rate,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	Streams     []probeStream     `json:"streams"`
	VideoCount  int               `json:"video_streams"`
	AudioCount  int               `json:"audio_streams"`
	durationRaw float64
}

// probeStream is one stream of a probed file.
type probeStream struct {
	Index         int     `json:"index"`
	Type          string  `json:"type"` // video, audio, subtitle, data
	Codec         string  `json:"codec"`
	Profile       string  `json:"profile,omitempty"`
	Width         int     `json:"width,omitempty"`
	Height        int     `json:"height,omitempty"`
	FrameRate     string  `json:"frame_rate,omitempty"` // as a fraction, "25/1"
	PixelFormat   string  `json:"pixel_format,omitempty"`
	SampleRate    int     `json:"sample_rate,omitempty"`
	Channels      int     `json:"channels,omitempty"`
	ChannelLayout string  `json:"channel_layout,omitempty"`
	SampleFormat  string  `json:"sample_format,omitempty"`
	Bits          int     `json:"bits,omitempty"`
	DurationS     float64 `json:"duration_s,omitempty"`
	BitRate       int64   `json:"bit_rate,omitempty"`
}

// Run probes the file.
func (h *probeHandler) Run(ctx context.Context, t Task) (any, error) {
	var p struct {
		Path string `json:"path"`
	}
	if err := decode(h.spec, t.Params, &p); err != nil {
		return nil, err
	}
	path, err := h.cfg.resolve("path", p.Path)
	if err != nil {
		return nil, err
	}
	info, err := probe(ctx, h.tools, path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", jobtype.MediaProbe, err)
	}
	return info, nil
}

// probe runs ffprobe on the regular file at path.
func probe(ctx context.Context, tools ffTools, path string) (probeInfo, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return probeInfo{}, fsErr(err)
	}
	if !fi.Mode().IsRegular() {
		return probeInfo{}, Permanent(fmt.Errorf("%s: not a regular file (%s)", path, fi.Mode().Type()))
	}
	out, err := ffRun(ctx, probeArgs(tools, path), nil, maxProbeOutput)
	if err != nil {
		return probeInfo{}, ffErr(err)
	}
	info, err := parseProbe(out)
	if err != nil {
		return probeInfo{}, fmt.Errorf("%s: %w", path, err)
	}
	info.Path = path
	return info, nil
}

// probeArgs is the ffprobe command line of probe.
func probeArgs(tools ffTools, path string) []string {
	return []string{tools.ffprobe, "-hide_banner", "-loglevel", "error",
		"-print_format", "json", "-show_format", "-show_streams", ffInput(path)}
}

// parseProbe turns ffprobe's JSON into a probeInfo. ffprobe gives numbers
// as strings; one that does not parse is left zero.
func parseProbe(b []byte) (probeInfo, error) {
	var raw struct {
		Format struct {
			FormatName string            `json:"format_name"`
			Duration   string            `json:"duration"`
			Size       string            `json:"size"`
			BitRate    string            `json:"bit_rate"`
			Tags       map[string]string `json:"tags"`
		} `json:"format"`
		Streams []struct {
			Index            int    `json:"index"`
			CodecType        string `json:"codec_type"`
			CodecName        string `json:"codec_name"`
			Profile          string `json:"profile"`
			Width            int    `json:"width"`
			Height           int    `json:"height"`
			AvgFrameRate     string `json:"avg_frame_rate"`
			RFrameRate       string `json:"r_frame_rate"`
			PixFmt           string `json:"pix_fmt"`
			SampleRate       string `json:"sample_rate"`
			Channels         int    `json:"channels"`
			ChannelLayout    string `json:"channel_layout"`
			SampleFmt        string `json:"sample_fmt"`
			BitsPerRawSample string `json:"bits_per_raw_sample"`
			BitsPerSample    int    `json:"bits_per_sample"`
			Duration         string `json:"duration"`
			BitRate          string `json:"bit_rate"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return probeInfo{}, Permanent(fmt.Errorf("ffprobe output: %w", err))
	}
	if raw.Format.FormatName == "" {
		return probeInfo{}, Permanent(errors.New("ffprobe found no format"))
	}
	info := probeInfo{
		Format:  raw.Format.FormatName,
		Size:    atoi64(raw.Format.Size),
		BitRate: atoi64(raw.Format.BitRate),
		Tags:    raw.Format.Tags,
		Streams: []probeStream{},
	}
	info.durationRaw = atof(raw.Format.Duration)
	info.DurationS = round3(info.durationRaw)
	for _, s := range raw.Streams {
		ps := probeStream{
			Index: s.Index, Type: s.CodecType, Codec: s.CodecName, Profile: s.Profile,
			Width: s.Width, Height: s.Height, PixelFormat: s.PixFmt,
			SampleRate: int(atoi64(s.SampleRate)), Channels: s.Channels, ChannelLayout: s.ChannelLayout,
			SampleFormat: s.SampleFmt, DurationS: round3(atof(s.Duration)), BitRate: atoi64(s.BitRate),
		}
		if ps.Bits = int(atoi64(s.BitsPerRawSample)); ps.Bits == 0 {
			ps.Bits = s.BitsPerSample
		}
		if s.CodecType == "video" {
			ps.FrameRate = s.AvgFrameRate
			if ps.FrameRate == "" || ps.FrameRate == "0/0" {
				ps.FrameRate = s.RFrameRate
			}
			info.VideoCount++
		}
		if s.CodecType == "audio" {
			info.AudioCount++
		}
		if info.durationRaw == 0 {
			info.durationRaw = atof(s.Duration)
			info.DurationS = round3(info.durationRaw)
		}
		info.Streams = append(info.Streams, ps)
	}
	return info, nil
}

func atoi64(s string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return n
}

func atof(s string) float64 {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return 0
	}
	return f
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// ffErr classifies the failure of an ffmpeg or ffprobe run: an input it
// cannot read or an encoder it lacks fails the same way every time, so it
// is permanent; anything else (a full disk, a kill) may pass on retry.
func ffErr(err error) error {
	var ee *ExitError
	if !errors.As(err, &ee) {
		return err
	}
	for _, s := range []string{"Invalid data found", "No such file", "Permission denied",
		"does not contain any stream", "Unknown encoder", "Encoder not found", "matches no streams",
		"Invalid argument", "not supported", "Could not find tag for codec"} {
		if strings.Contains(ee.Stderr, s) {
			return Permanent(err)
		}
	}
	return err
}
