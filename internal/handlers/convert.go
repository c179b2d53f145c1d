package handlers

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/dpe-engine/dpe/internal/jobtype"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wav"
)

// convertHandler runs audio.convert.
type convertHandler struct {
	cfg   Config
	spec  jobtype.Spec
	tools ffTools
	wait  waitHook
}

// convertParams are audio.convert's params, normalised by check.
type convertParams struct {
	From        string `json:"from"`
	To          string `json:"to"`
	Container   string `json:"container"`
	SampleRate  int    `json:"sample_rate"`
	Bits        int    `json:"bits"`
	Float       bool   `json:"float"`
	Channels    string `json:"channels"`
	BitrateKbps int    `json:"bitrate_kbps"`
}

var (
	audioExts   = map[string]string{".wav": "wav", ".bwf": "bwf", ".flac": "flac", ".mp3": "mp3", ".m4a": "m4a", ".aac": "m4a"}
	audioMuxers = map[string]string{"wav": "wav", "bwf": "wav", "flac": "flac", "mp3": "mp3", "m4a": "ipod"}
	sampleRates = []int{8000, 16000, 22050, 32000, 44100, 48000, 88200, 96000, 192000}
	// channelCounts: the channels of each layout param.
	channelCounts = map[string]int{"mono": 1, "stereo": 2, "5.1": 6}
)

// check fills in the defaults and refuses values outside the allowed
// ranges and combinations.
func (p *convertParams) paths() (from, to *string) { return &p.From, &p.To }

func (p *convertParams) check() error {
	bad := func(field, format string, args ...any) error {
		return model.Invalid("params."+field, format, args...)
	}
	if p.Container == "" {
		if p.Container = containerOf(p.To, audioExts); p.Container == "" {
			return bad("container", "not given, and the target's extension names none of wav, bwf, flac, mp3, m4a")
		}
	}
	if _, ok := audioMuxers[p.Container]; !ok {
		return bad("container", "unknown container %q", p.Container)
	}
	if p.SampleRate != 0 && !slices.Contains(sampleRates, p.SampleRate) {
		return bad("sample_rate", "%d: want 0 or one of %v", p.SampleRate, sampleRates)
	}
	if _, ok := channelCounts[p.Channels]; !ok && p.Channels != "" {
		return bad("channels", "unknown layout %q", p.Channels)
	}
	lossy := p.Container == "mp3" || p.Container == "m4a"
	switch {
	case lossy && (p.Bits != 0 || p.Float):
		return bad("bits", "%s has no bit depth", p.Container)
	case p.Float && p.Container == "flac":
		return bad("float", "flac holds integer samples")
	case p.Float && p.Bits != 0 && p.Bits != 32 && p.Bits != 64:
		return bad("bits", "float samples have 32 or 64 bits, not %d", p.Bits)
	case !p.Float && p.Bits != 0 && p.Bits != 16 && p.Bits != 24 && p.Bits != 32:
		return bad("bits", "%d: want 0, 16, 24 or 32", p.Bits)
	case p.Container == "flac" && p.Bits == 32:
		return bad("bits", "flac takes 16 or 24 bits")
	case p.Container == "mp3" && p.SampleRate > 48000:
		return bad("sample_rate", "mp3 goes up to 48000 Hz")
	case p.Container == "mp3" && p.Channels == "5.1":
		return bad("channels", "mp3 holds mono or stereo")
	}
	if !lossy {
		p.BitrateKbps = 0
	} else if p.BitrateKbps == 0 {
		p.BitrateKbps = 192
	}
	if p.BitrateKbps != 0 && (p.BitrateKbps < 32 || p.BitrateKbps > 512) {
		return bad("bitrate_kbps", "%d: want 32 to 512", p.BitrateKbps)
	}
	return nil
}

// isWAV reports whether the container is a WAV file.
func (p *convertParams) isWAV() bool { return p.Container == "wav" || p.Container == "bwf" }

// pcmCodec is the ffmpeg encoder of WAV samples of bits (float or not).
func pcmCodec(bits int, float bool) string {
	if float {
		return "pcm_f" + strconv.Itoa(bits) + "le"
	}
	return "pcm_s" + strconv.Itoa(bits) + "le"
}

// convertArgs is the ffmpeg command line converting from (whose audio
// has srcBits valid bits, 0 for a lossy source) to out. frames > 0 ends
// the audio after that many frames: those a followed WAV file was found to
// hold, whatever its header says.
func convertArgs(tools ffTools, p convertParams, srcBits int, frames int64, from, out string) []string {
	a := append([]string{tools.ffmpeg}, ffCommon...)
	a = append(a, "-i", ffInput(from), "-map", "0:a:0", "-vn", "-map_metadata", "0")
	var filters []string
	if frames > 0 {
		filters = append(filters, "atrim=end_sample="+strconv.FormatInt(frames, 10))
	}
	var format []string
	if p.SampleRate != 0 {
		format = append(format, "sample_rates="+strconv.Itoa(p.SampleRate))
	}
	if p.Channels != "" {
		format = append(format, "channel_layouts="+p.Channels)
	}
	if format != nil {
		filters = append(filters, "aformat="+strings.Join(format, ":"))
	}
	if filters != nil {
		a = append(a, "-af", strings.Join(filters, ","))
	}
	bits := p.Bits
	if bits == 0 {
		switch {
		case p.Float:
			bits = 32
		case srcBits > 0 && srcBits <= 16:
			bits = 16
		case srcBits > 24 && p.Container != "flac":
			bits = 32
		default:
			bits = 24
		}
	}
	switch p.Container {
	case "wav", "bwf":
		a = append(a, "-c:a", pcmCodec(bits, p.Float), "-rf64", "auto")
	case "flac":
		a = append(a, "-c:a", "flac")
		if bits == 16 {
			a = append(a, "-sample_fmt", "s16")
		} else {
			a = append(a, "-sample_fmt", "s32", "-bits_per_raw_sample", "24")
		}
	case "mp3":
		a = append(a, "-c:a", "libmp3lame", "-b:a", strconv.Itoa(p.BitrateKbps)+"k", "-id3v2_version", "3")
	case "m4a":
		a = append(a, "-c:a", "aac", "-b:a", strconv.Itoa(p.BitrateKbps)+"k", "-movflags", "+faststart")
	}
	return append(a, "-f", audioMuxers[p.Container], "-progress", "pipe:1", "-y", ffInput(out))
}

// convertResult is the result of audio.convert.
type convertResult struct {
	From        string  `json:"from"`
	To          string  `json:"to"`
	Container   string  `json:"container"`
	Method      string  `json:"method,omitempty"` // "native" (WAV to WAV) or "ffmpeg"; empty when already done
	BextKept    bool    `json:"bext_kept"`
	AlreadyDone bool    `json:"already_done"`
	SampleRate  int     `json:"sample_rate,omitempty"`
	Channels    int     `json:"channels,omitempty"`
	Codec       string  `json:"codec,omitempty"`
	Bits        int     `json:"bits,omitempty"`
	DurationS   float64 `json:"duration_s"`
}

// Run converts unless the target is already made.
func (h *convertHandler) Run(ctx context.Context, t Task) (any, error) {
	name := jobtype.AudioConvert
	var p convertParams
	if err := h.cfg.decodeFromTo(h.spec, t.Params, &p); err != nil {
		return nil, err
	}
	from, to := p.From, p.To
	follow, err := h.cfg.follow(h.spec, t.Params, h.wait)
	if err != nil {
		return nil, err
	}
	res := convertResult{From: from, To: to, Container: p.Container}
	err = runMedia(ctx, h.cfg, t, name, p, from, to, follow != nil, &res.AlreadyDone, func(out string, report *ffProgress) error {
		src, bext, err := openWAVInfo(ctx, from, follow)
		if err != nil {
			return err
		}
		if src == nil && follow != nil {
			return Permanent(fmt.Errorf("params.stable_for: only a WAV, BWF or RF64 source can be followed while it grows; %s is none", from))
		}
		if src != nil && p.isWAV() && (p.SampleRate == 0 || p.SampleRate == src.SampleRate) &&
			(p.Channels == "" || channelCounts[p.Channels] == src.Channels) {
			res.Method = "native"
			kept, err := convertWAV(ctx, h.cfg, t, from, out, p, bext, follow)
			res.BextKept = kept
			return err
		}
		res.Method = "ffmpeg"
		info, err := probe(ctx, h.tools, from)
		if err != nil {
			return err
		}
		if info.AudioCount == 0 {
			return Permanent(fmt.Errorf("%s: no audio stream", from))
		}
		srcBits := 0
		for _, s := range info.Streams {
			if s.Type == "audio" {
				srcBits = s.Bits
				break
			}
		}
		report.DurationUS = int64(info.durationRaw * 1e6)
		var frames int64
		if follow != nil {
			// ffmpeg reads a file as it is when it starts: follow the
			// file to its end first, then convert the frames found.
			if frames, err = followToEnd(ctx, t, h.cfg, from, follow); err != nil {
				return err
			}
			if frames == 0 {
				return Permanent(fmt.Errorf("%s: no samples once the file stopped growing", from))
			}
			report.DurationUS = frames * 1e6 / int64(src.SampleRate)
		}
		if _, err := ffRun(ctx, convertArgs(h.tools, p, srcBits, frames, from, out), report, 0); err != nil {
			return ffErr(err)
		}
		if p.isWAV() && (bext != nil || p.Container == "bwf") {
			res.BextKept = bext != nil
			return addBext(ctx, h.cfg, out, bext, src)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	info, err := probe(ctx, h.tools, to)
	if err != nil {
		return nil, fmt.Errorf("%s: probe the output: %w", name, err)
	}
	res.DurationS = info.DurationS
	for _, s := range info.Streams {
		if s.Type == "audio" {
			res.SampleRate, res.Channels, res.Codec, res.Bits = s.SampleRate, s.Channels, s.Codec, s.Bits
			break
		}
	}
	return res, nil
}

// openWAVInfo returns the format and bext chunk of the file at path when
// it is a WAV file ffmpeg is not needed to read, else nil. With follow it
// waits for a header still being written.
func openWAVInfo(ctx context.Context, path string, follow *wav.Follow) (*wav.Format, *wav.Bext, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fsErr(err)
	}
	defer f.Close()
	r, err := wav.Open(ctx, f, follow)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctxErr(ctx)
		}
		return nil, nil, nil // not a WAV file this package reads: ffmpeg may
	}
	wf := r.Format()
	return &wf, r.Bext(), nil
}

// convertWAV writes the WAV file from to out in the sample format of p,
// keeping the channels, the rate and the bext chunk (or making one for
// container bwf). It reports whether a source bext was kept.
func convertWAV(ctx context.Context, cfg Config, t Task, from, out string, p convertParams, bext *wav.Bext, follow *wav.Follow) (bool, error) {
	in, err := os.Open(from)
	if err != nil {
		return false, fsErr(err)
	}
	defer in.Close()
	r, err := wav.Open(ctx, in, follow)
	if err != nil {
		return false, wavErr(ctx, from, err)
	}
	sf := r.Format()
	code, bits := sf.Code, sf.Bits
	if p.Float {
		code, bits = wav.FormatFloat, 32
	} else if p.Bits != 0 {
		code = wav.FormatPCM
	}
	if p.Bits != 0 {
		bits = p.Bits
	}
	tf, err := wav.NewFormat(code, sf.Channels, sf.SampleRate, bits, sf.Extensible || sf.Channels > 2, sf.ChannelMask)
	if err != nil {
		return false, Permanent(fmt.Errorf("%s: %w", from, err))
	}
	var body []byte
	switch {
	case bext != nil:
		body = bext.Raw
	case p.Container == "bwf":
		body = newBext(tf).Marshal()
	}
	prog := newMeter(t, cfg.Clock, "converted", r.DataSize())
	err = writeWAV(ctx, out, tf, body, func(w *wav.Writer) error {
		buf := make([]float64, 16384*sf.Channels)
		for {
			n, rerr := r.Read(ctx, buf)
			if n > 0 {
				if err := w.Write(buf[:n]); err != nil {
					return fsErr(err)
				}
				prog.total = r.DataSize() // grows with a growing file
				prog.update(r.BytesRead())
			}
			if errors.Is(rerr, io.EOF) {
				return nil
			}
			if rerr != nil {
				return wavErr(ctx, from, rerr)
			}
		}
	})
	return bext != nil, err
}

// followToEnd reads the WAV file at path, following it while it grows,
// until it has been stable for follow.StableFor, and returns the frames it
// holds then.
func followToEnd(ctx context.Context, t Task, cfg Config, path string, follow *wav.Follow) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fsErr(err)
	}
	defer f.Close()
	r, err := wav.Open(ctx, f, follow)
	if err != nil {
		return 0, wavErr(ctx, path, err)
	}
	prog := newMeter(t, cfg.Clock, "followed", 0)
	for {
		_, err := r.ReadRaw(ctx, 16384)
		if errors.Is(err, io.EOF) {
			return r.Frames(), nil
		}
		if err != nil {
			return 0, wavErr(ctx, path, err)
		}
		prog.total = r.DataSize()
		prog.update(r.BytesRead())
	}
}

// writeWAV creates out as a WAV file of format f with bext body (nil:
// none), lets fill write the samples and closes it.
func writeWAV(ctx context.Context, out string, f wav.Format, bext []byte, fill func(*wav.Writer) error) error {
	file, err := os.Create(out)
	if err != nil {
		return fsErr(err)
	}
	defer file.Close()
	w, err := wav.Create(file, f, bext)
	if err != nil {
		return fsErr(err)
	}
	if err := fill(w); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("write %s: %w", out, fsErr(err))
	}
	if ctx.Err() != nil {
		return ctxErr(ctx)
	}
	return file.Close()
}

// newBext is the bext chunk of a BWF made from a file that had none.
func newBext(f wav.Format) *wav.Bext {
	mode := "stereo"
	switch f.Channels {
	case 1:
		mode = "mono"
	case 2:
	default:
		mode = "multichannel"
	}
	return &wav.Bext{Originator: "dpe", CodingHistory: fmt.Sprintf("A=PCM,F=%d,W=%d,M=%s,T=dpe audio.convert\r\n", f.SampleRate, f.Bits, mode)}
}

// addBext rewrites the WAV file that ffmpeg wrote at out with a bext
// chunk: the source's (its time reference, a count of samples, scaled to
// the new rate) or, when src had none, a new one.
func addBext(ctx context.Context, cfg Config, out string, bext *wav.Bext, src *wav.Format) error {
	in, err := os.Open(out)
	if err != nil {
		return fsErr(err)
	}
	defer in.Close()
	r, err := wav.Open(ctx, in, nil)
	if err != nil {
		return wavErr(ctx, out, err)
	}
	f := r.Format()
	var body []byte
	if bext == nil {
		body = newBext(f).Marshal()
	} else {
		body = slices.Clone(bext.Raw)
		if src != nil && src.SampleRate != f.SampleRate && len(body) >= 346 {
			ref := bext.TimeReference * uint64(f.SampleRate) / uint64(src.SampleRate)
			binary.LittleEndian.PutUint64(body[338:], ref)
		}
	}
	tmp, err := newTempTarget(cfg, out)
	if err != nil {
		return err
	}
	defer tmp.abort()
	err = writeWAV(ctx, tmp.path, f, body, func(w *wav.Writer) error {
		for {
			n, rerr := r.ReadRaw(ctx, 16384)
			if n > 0 {
				if err := w.WriteRaw(r.RawBuffer()[:n]); err != nil {
					return fsErr(err)
				}
			}
			if errors.Is(rerr, io.EOF) {
				return nil
			}
			if rerr != nil {
				return wavErr(ctx, out, rerr)
			}
		}
	})
	if err != nil {
		return err
	}
	return fsErr(os.Rename(tmp.path, out))
}
