package handlers

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"

	"github.com/dpe-engine/dpe/internal/jobtype"
	"github.com/dpe-engine/dpe/internal/model"
)

// transcodeHandler runs media.transcode.
type transcodeHandler struct {
	cfg   Config
	spec  jobtype.Spec
	tools ffTools
}

// transcodeParams are media.transcode's params, normalised by check: the
// sidecar digest is taken over them.
type transcodeParams struct {
	From             string `json:"from"`
	To               string `json:"to"`
	Container        string `json:"container"`
	VideoCodec       string `json:"video_codec"`
	AudioCodec       string `json:"audio_codec"`
	Width            int    `json:"width"`
	Height           int    `json:"height"`
	FrameRate        string `json:"frame_rate"`
	CRF              int    `json:"crf"`
	Preset           string `json:"preset"`
	VideoBitrateKbps int    `json:"video_bitrate_kbps"`
	AudioBitrateKbps int    `json:"audio_bitrate_kbps"`
}

// Containers of media.transcode: the ffmpeg muxer of each, and the
// container an extension names.
var (
	videoMuxers = map[string]string{"mp4": "mp4", "mov": "mov", "mkv": "matroska", "mxf": "mxf"}
	videoExts   = map[string]string{".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "mkv", ".mxf": "mxf"}
	videoCodecs = map[string]string{"h264": "libx264", "hevc": "libx265", "mpeg4": "mpeg4",
		"mpeg2": "mpeg2video", "prores": "prores_ks", "copy": "copy"}
	audioCodecs = map[string]string{"aac": "aac", "mp3": "libmp3lame", "pcm16": "pcm_s16le",
		"pcm24": "pcm_s24le", "copy": "copy"}
	// frameRateRE: an integer or a fraction of integers, no sign, no
	// option syntax.
	frameRateRE = regexp.MustCompile(`^[1-9][0-9]{0,5}(/[1-9][0-9]{0,4})?$`)
)

// check fills in the defaults and refuses values outside the allowed
// ranges and combinations. Errors name the param.
func (p *transcodeParams) paths() (from, to *string) { return &p.From, &p.To }

func (p *transcodeParams) check() error {
	bad := func(field, format string, args ...any) error {
		return model.Invalid("params."+field, format, args...)
	}
	if p.Container == "" {
		if p.Container = containerOf(p.To, videoExts); p.Container == "" {
			return bad("container", "not given, and the target's extension names none of mp4, mov, mkv, mxf")
		}
	}
	if _, ok := videoMuxers[p.Container]; !ok {
		return bad("container", "unknown container %q", p.Container)
	}
	if p.VideoCodec == "" {
		p.VideoCodec = "h264"
	}
	if p.AudioCodec == "" {
		p.AudioCodec = "aac"
	}
	if _, ok := videoCodecs[p.VideoCodec]; !ok && p.VideoCodec != "none" {
		return bad("video_codec", "unknown codec %q", p.VideoCodec)
	}
	if _, ok := audioCodecs[p.AudioCodec]; !ok && p.AudioCodec != "none" {
		return bad("audio_codec", "unknown codec %q", p.AudioCodec)
	}
	if p.VideoCodec == "none" && p.AudioCodec == "none" {
		return bad("video_codec", "video and audio both none: nothing to write")
	}
	switch p.Container {
	case "mp4":
		if p.AudioCodec == "pcm16" || p.AudioCodec == "pcm24" {
			return bad("audio_codec", "%s does not fit in mp4 (use mov, mkv or mxf)", p.AudioCodec)
		}
		if p.VideoCodec == "prores" {
			return bad("video_codec", "prores does not fit in mp4 (use mov or mkv)")
		}
	case "mxf":
		if p.VideoCodec != "mpeg2" && p.VideoCodec != "h264" && p.VideoCodec != "copy" && p.VideoCodec != "none" {
			return bad("video_codec", "mxf takes mpeg2, h264 or copy, not %s", p.VideoCodec)
		}
		if p.AudioCodec != "pcm16" && p.AudioCodec != "pcm24" && p.AudioCodec != "copy" && p.AudioCodec != "none" {
			return bad("audio_codec", "mxf takes pcm16, pcm24 or copy, not %s", p.AudioCodec)
		}
	}
	for _, d := range []struct {
		name string
		v    int
	}{{"width", p.Width}, {"height", p.Height}} {
		if d.v != 0 && (d.v < 16 || d.v > 8192 || d.v%2 != 0) {
			return bad(d.name, "%d: want 0 or an even number from 16 to 8192", d.v)
		}
	}
	scaling := p.Width != 0 || p.Height != 0 || p.FrameRate != ""
	encoding := scaling || p.CRF != 0 || p.Preset != "" || p.VideoBitrateKbps != 0
	if encoding && (p.VideoCodec == "copy" || p.VideoCodec == "none") {
		return bad("video_codec", "%s takes no width, height, frame_rate, crf, preset or video_bitrate_kbps", p.VideoCodec)
	}
	if p.FrameRate != "" && !frameRateRE.MatchString(p.FrameRate) {
		return bad("frame_rate", "%q: want N or N/M, such as 25 or 30000/1001", p.FrameRate)
	}
	if p.CRF < 0 || p.CRF > 51 {
		return bad("crf", "%d: want 0 to 51", p.CRF)
	}
	if (p.CRF != 0 || p.Preset != "") && p.VideoCodec != "h264" && p.VideoCodec != "hevc" {
		return bad("crf", "crf and preset apply to h264 and hevc only")
	}
	if p.VideoBitrateKbps < 0 || p.VideoBitrateKbps > 1_000_000 {
		return bad("video_bitrate_kbps", "%d: want 0 to 1000000", p.VideoBitrateKbps)
	}
	if p.AudioBitrateKbps < 0 || p.AudioBitrateKbps > 1024 {
		return bad("audio_bitrate_kbps", "%d: want 0 to 1024", p.AudioBitrateKbps)
	}
	if p.AudioBitrateKbps != 0 && p.AudioCodec != "aac" && p.AudioCodec != "mp3" {
		return bad("audio_bitrate_kbps", "applies to aac and mp3 only")
	}
	return nil
}

// transcodeArgs is the ffmpeg command line writing the checked params'
// transcode of from to out.
func transcodeArgs(tools ffTools, p transcodeParams, from, out string) []string {
	a := append([]string{tools.ffmpeg}, ffCommon...)
	a = append(a, "-i", ffInput(from), "-map_metadata", "0")
	switch p.VideoCodec {
	case "none":
		a = append(a, "-vn")
	default:
		a = append(a, "-c:v", videoCodecs[p.VideoCodec])
		if p.VideoCodec == "h264" || p.VideoCodec == "hevc" {
			a = append(a, "-pix_fmt", "yuv420p")
			if p.CRF != 0 {
				a = append(a, "-crf", strconv.Itoa(p.CRF))
			}
			if p.Preset != "" {
				a = append(a, "-preset", p.Preset)
			}
			if p.VideoCodec == "hevc" && (p.Container == "mp4" || p.Container == "mov") {
				a = append(a, "-tag:v", "hvc1")
			}
		}
		if p.VideoBitrateKbps != 0 {
			a = append(a, "-b:v", strconv.Itoa(p.VideoBitrateKbps)+"k")
		}
		if p.Width != 0 || p.Height != 0 {
			w, h := p.Width, p.Height
			if w == 0 {
				w = -2
			}
			if h == 0 {
				h = -2
			}
			a = append(a, "-vf", fmt.Sprintf("scale=%d:%d", w, h))
		}
		if p.FrameRate != "" {
			a = append(a, "-r", p.FrameRate)
		}
	}
	switch p.AudioCodec {
	case "none":
		a = append(a, "-an")
	default:
		a = append(a, "-c:a", audioCodecs[p.AudioCodec])
		if p.AudioBitrateKbps != 0 {
			a = append(a, "-b:a", strconv.Itoa(p.AudioBitrateKbps)+"k")
		}
		if p.Container == "mxf" && p.AudioCodec != "copy" {
			a = append(a, "-ar", "48000") // MXF carries 48 kHz audio
		}
	}
	if p.Container == "mp4" || p.Container == "mov" {
		a = append(a, "-movflags", "+faststart")
	}
	return append(a, "-f", videoMuxers[p.Container], "-progress", "pipe:1", "-y", ffInput(out))
}

// transcodeResult is the result of media.transcode.
type transcodeResult struct {
	From string `json:"from"`
	To   string `json:"to"`
	// AlreadyDone: the target was made from this source with these
	// params before, and was left alone.
	AlreadyDone bool      `json:"already_done"`
	Output      probeInfo `json:"output"`
}

// Run transcodes unless the target is already made.
func (h *transcodeHandler) Run(ctx context.Context, t Task) (any, error) {
	name := jobtype.MediaTranscode
	var p transcodeParams
	if err := h.cfg.decodeFromTo(h.spec, t.Params, &p); err != nil {
		return nil, err
	}
	from, to := p.From, p.To
	res := transcodeResult{From: from, To: to}
	err := runMedia(ctx, h.cfg, t, name, p, from, to, false, &res.AlreadyDone, func(out string, report *ffProgress) error {
		src, err := probe(ctx, h.tools, from)
		if err != nil {
			return err
		}
		report.DurationUS = int64(src.durationRaw * 1e6)
		_, err = ffRun(ctx, transcodeArgs(h.tools, p, from, out), report, 0)
		return ffErr(err)
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if res.Output, err = probe(ctx, h.tools, to); err != nil {
		return nil, fmt.Errorf("%s: probe the output: %w", name, err)
	}
	return res, nil
}

// runMedia is the frame of the ffmpeg job types: unless the sidecar says
// the target is already made from this source with these params, it calls
// produce with a temporary output path and a progress parser reporting to
// t.Progress, renames the output over to and writes the sidecar. followed
// says produce followed a growing source to its end: the sidecar's key is
// then taken of the source as it ended.
func runMedia(ctx context.Context, cfg Config, t Task, typ string, params any, from, to string, followed bool,
	already *bool, produce func(out string, report *ffProgress) error) (err error) {
	key, err := mediaKey(typ, params, from)
	if err != nil {
		return err
	}
	if alreadyMade(to, key) {
		*already = true
		if t.Progress != nil {
			t.Progress(100, "already made")
		}
		return nil
	}
	tmp, err := newTempTarget(cfg, to)
	if err != nil {
		return err
	}
	defer tmp.abort()
	// A stale sidecar must not vouch for the new target should this run
	// die between the rename and the new sidecar.
	if err := os.Remove(sidecarPath(to)); err != nil && !os.IsNotExist(err) {
		return fsErr(err)
	}
	report := &ffProgress{}
	if t.Progress != nil {
		report.Report = func(pct int, outUS int64) {
			t.Progress(pct, fmt.Sprintf("%.1fs written", float64(outUS)/1e6))
		}
	}
	if err := produce(tmp.path, report); err != nil {
		return err
	}
	if followed {
		// The target was made from the file as it ended up, not as it
		// was when the job started.
		if key, err = mediaKey(typ, params, from); err != nil {
			return err
		}
	}
	if err := tmp.commit(); err != nil {
		return err
	}
	writeSidecar(cfg, to, key)
	return nil
}
