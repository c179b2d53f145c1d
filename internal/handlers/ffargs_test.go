package handlers

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

var testTools = ffTools{ffmpeg: "/usr/bin/ffmpeg", ffprobe: "/usr/bin/ffprobe"}

// argsTail drops the program and the common arguments.
func argsTail(a []string) string {
	return strings.Join(a[1+len(ffCommon):], " ")
}

func TestTranscodeArgs(t *testing.T) {
	tests := []struct {
		name string
		p    transcodeParams
		want string // the arguments after ffCommon; "" when check refuses
		err  string
	}{
		{"defaults from extension", transcodeParams{To: "/o/a.mp4"},
			"-i file:/i/a.mov -map_metadata 0 -c:v libx264 -pix_fmt yuv420p -c:a aac -movflags +faststart -f mp4 -progress pipe:1 -y file:/o/t", ""},
		{"proxy", transcodeParams{To: "/o/a.mov", Width: 640, CRF: 28, Preset: "veryfast", AudioBitrateKbps: 128, FrameRate: "30000/1001"},
			"-i file:/i/a.mov -map_metadata 0 -c:v libx264 -pix_fmt yuv420p -crf 28 -preset veryfast -vf scale=640:-2 -r 30000/1001 -c:a aac -b:a 128k -movflags +faststart -f mov -progress pipe:1 -y file:/o/t", ""},
		{"mxf mpeg2 pcm", transcodeParams{To: "/o/a.mxf", VideoCodec: "mpeg2", AudioCodec: "pcm24", VideoBitrateKbps: 50000, Height: 720},
			"-i file:/i/a.mov -map_metadata 0 -c:v mpeg2video -b:v 50000k -vf scale=-2:720 -c:a pcm_s24le -ar 48000 -f mxf -progress pipe:1 -y file:/o/t", ""},
		{"hevc in mkv, audio dropped", transcodeParams{To: "/o/a.bin", Container: "mkv", VideoCodec: "hevc", AudioCodec: "none"},
			"-i file:/i/a.mov -map_metadata 0 -c:v libx265 -pix_fmt yuv420p -an -f matroska -progress pipe:1 -y file:/o/t", ""},
		{"copy video", transcodeParams{To: "/o/a.mkv", VideoCodec: "copy", AudioCodec: "mp3"},
			"-i file:/i/a.mov -map_metadata 0 -c:v copy -c:a libmp3lame -f matroska -progress pipe:1 -y file:/o/t", ""},
		{"unknown extension", transcodeParams{To: "/o/a.avi"}, "", "params.container"},
		{"option as codec", transcodeParams{To: "/o/a.mp4", VideoCodec: "-vf"}, "", "params.video_codec"},
		{"pcm in mp4", transcodeParams{To: "/o/a.mp4", AudioCodec: "pcm16"}, "", "params.audio_codec"},
		{"odd width", transcodeParams{To: "/o/a.mp4", Width: 641}, "", "params.width"},
		{"huge height", transcodeParams{To: "/o/a.mp4", Height: 10000}, "", "params.height"},
		{"frame rate injection", transcodeParams{To: "/o/a.mp4", FrameRate: "25 -i x"}, "", "params.frame_rate"},
		{"crf range", transcodeParams{To: "/o/a.mp4", CRF: 52}, "", "params.crf"},
		{"crf on mpeg4", transcodeParams{To: "/o/a.mp4", VideoCodec: "mpeg4", CRF: 20}, "", "params.crf"},
		{"scale with copy", transcodeParams{To: "/o/a.mp4", VideoCodec: "copy", Width: 640}, "", "params.video_codec"},
		{"nothing to write", transcodeParams{To: "/o/a.mp4", VideoCodec: "none", AudioCodec: "none"}, "", "params.video_codec"},
		{"mxf with aac", transcodeParams{To: "/o/a.mxf", VideoCodec: "mpeg2"}, "", "params.audio_codec"},
		{"bitrate of pcm", transcodeParams{To: "/o/a.mov", AudioCodec: "pcm16", AudioBitrateKbps: 128}, "", "params.audio_bitrate_kbps"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.check()
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("check: err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			a := transcodeArgs(testTools, tt.p, "/i/a.mov", "/o/t")
			if a[0] != testTools.ffmpeg || !slices.Equal(a[1:1+len(ffCommon)], ffCommon) {
				t.Fatalf("argv starts %v", a)
			}
			if got := argsTail(a); got != tt.want {
				t.Errorf("argv:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
	// A followed source: the frames found end the audio, before any
	// resampling.
	p := convertParams{To: "/o/a.flac", SampleRate: 44100}
	if err := p.check(); err != nil {
		t.Fatal(err)
	}
	want := "-i file:/i/a -map 0:a:0 -vn -map_metadata 0 -af atrim=end_sample=96000,aformat=sample_rates=44100 -c:a flac"
	if got := argsTail(convertArgs(testTools, p, 24, 96000, "/i/a", "/o/t")); !strings.HasPrefix(got, want) {
		t.Errorf("argv of a followed source:\n got %s\nwant %s ...", got, want)
	}
}

func TestConvertArgs(t *testing.T) {
	tests := []struct {
		name    string
		p       convertParams
		srcBits int
		want    string
		err     string
	}{
		{"wav resample", convertParams{To: "/o/a.wav", SampleRate: 44100}, 24,
			"-i file:/i/a -map 0:a:0 -vn -map_metadata 0 -af aformat=sample_rates=44100 -c:a pcm_s24le -rf64 auto -f wav -progress pipe:1 -y file:/o/t", ""},
		{"bwf mono 16", convertParams{To: "/o/a.bwf", Channels: "mono", Bits: 16}, 24,
			"-i file:/i/a -map 0:a:0 -vn -map_metadata 0 -af aformat=channel_layouts=mono -c:a pcm_s16le -rf64 auto -f wav -progress pipe:1 -y file:/o/t", ""},
		{"float from lossy", convertParams{To: "/o/a.wav", Float: true}, 0,
			"-i file:/i/a -map 0:a:0 -vn -map_metadata 0 -c:a pcm_f32le -rf64 auto -f wav -progress pipe:1 -y file:/o/t", ""},
		{"flac keeps 16", convertParams{To: "/o/a.flac"}, 16,
			"-i file:/i/a -map 0:a:0 -vn -map_metadata 0 -c:a flac -sample_fmt s16 -f flac -progress pipe:1 -y file:/o/t", ""},
		{"flac from 32 is 24", convertParams{To: "/o/a.flac", SampleRate: 96000, Channels: "5.1"}, 32,
			"-i file:/i/a -map 0:a:0 -vn -map_metadata 0 -af aformat=sample_rates=96000:channel_layouts=5.1 -c:a flac -sample_fmt s32 -bits_per_raw_sample 24 -f flac -progress pipe:1 -y file:/o/t", ""},
		{"mp3 default bit rate", convertParams{To: "/o/a.mp3"}, 24,
			"-i file:/i/a -map 0:a:0 -vn -map_metadata 0 -c:a libmp3lame -b:a 192k -id3v2_version 3 -f mp3 -progress pipe:1 -y file:/o/t", ""},
		{"m4a", convertParams{To: "/o/a.aac", BitrateKbps: 256}, 24,
			"-i file:/i/a -map 0:a:0 -vn -map_metadata 0 -c:a aac -b:a 256k -movflags +faststart -f ipod -progress pipe:1 -y file:/o/t", ""},
		{"no container", convertParams{To: "/o/a.ogg"}, 0, "", "params.container"},
		{"rate off the list", convertParams{To: "/o/a.wav", SampleRate: 47999}, 0, "", "params.sample_rate"},
		{"bits of mp3", convertParams{To: "/o/a.mp3", Bits: 16}, 0, "", "params.bits"},
		{"float flac", convertParams{To: "/o/a.flac", Float: true}, 0, "", "params.float"},
		{"float 24", convertParams{To: "/o/a.wav", Float: true, Bits: 24}, 0, "", "params.bits"},
		{"bits 20", convertParams{To: "/o/a.wav", Bits: 20}, 0, "", "params.bits"},
		{"layout injection", convertParams{To: "/o/a.wav", Channels: "stereo,evil"}, 0, "", "params.channels"},
		{"mp3 5.1", convertParams{To: "/o/a.mp3", Channels: "5.1"}, 0, "", "params.channels"},
		{"mp3 bit rate", convertParams{To: "/o/a.mp3", BitrateKbps: 8}, 0, "", "params.bitrate_kbps"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.check()
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("check: err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := argsTail(convertArgs(testTools, tt.p, tt.srcBits, 0, "/i/a", "/o/t")); got != tt.want {
				t.Errorf("argv:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestThumbnailArgs(t *testing.T) {
	w0, w160 := 0, 160
	tests := []struct {
		name string
		p    thumbnailParams
		at   time.Duration
		want string
	}{
		{"png", thumbnailParams{To: "/o/t.png", Width: &w160}, 1500 * time.Millisecond,
			"-ss 1.500 -i file:/i/a -map 0:v:0 -frames:v 1 -an -vf scale=160:-2 -c:v png -f image2 -update 1 -progress pipe:1 -y file:/o/t"},
		{"jpeg full size", thumbnailParams{To: "/o/t.JPG", Width: &w0}, 0,
			"-ss 0.000 -i file:/i/a -map 0:v:0 -frames:v 1 -an -c:v mjpeg -q:v 3 -pix_fmt yuvj420p -f image2 -update 1 -progress pipe:1 -y file:/o/t"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.p.check(); err != nil {
				t.Fatal(err)
			}
			if got := argsTail(thumbnailArgs(testTools, tt.p, tt.at, "/i/a", "/o/t")); got != tt.want {
				t.Errorf("argv:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
	big := 5000
	p := thumbnailParams{To: "/o/t.png", Width: &big}
	if err := p.check(); err == nil || !strings.Contains(err.Error(), "params.width") {
		t.Errorf("width 5000: err = %v", err)
	}
	at := model.Duration(time.Second)
	if p := (thumbnailParams{To: "/o/t.gif"}); p.check() != nil || p.Format != "png" || *p.Width != 320 || *p.At != at {
		t.Errorf("defaults = %+v", p)
	}
}
