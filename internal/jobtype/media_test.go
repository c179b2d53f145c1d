package jobtype

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestMediaSpecs(t *testing.T) {
	b := Builtins()
	tests := []struct {
		name   string
		spec   Spec
		params string
		want   string // "" for valid, else part of the error
	}{
		{"loudness path only", b[AudioLoudness], `{"path":"/a.wav"}`, ""},
		{"loudness all", b[AudioLoudness], `{"path":"/a.wav","stable_for":"5s","true_peak":false}`, ""},
		{"loudness no path", b[AudioLoudness], `{}`, "params.path"},
		{"loudness bad stable_for", b[AudioLoudness], `{"path":"/a","stable_for":"soon"}`, "params.stable_for"},
		{"normalize fractional target", b[AudioNormalize], `{"path":"/a","target_lufs":-24.5,"true_peak_max_dbtp":-1}`, ""},
		{"normalize target string", b[AudioNormalize], `{"path":"/a","target_lufs":"-23"}`, "params.target_lufs: must be a number, got string"},
		{"normalize mode", b[AudioNormalize], `{"path":"/a","mode":"louder"}`, "params.mode"},
		{"normalize write", b[AudioNormalize], `{"path":"/a","mode":"write","to":"/b","limiter":false}`, ""},
		{"convert", b[AudioConvert], `{"from":"/a.wav","to":"/b.flac","sample_rate":44100,"bits":16,"channels":"mono"}`, ""},
		{"convert container", b[AudioConvert], `{"from":"/a","to":"/b","container":"ogg"}`, "params.container"},
		{"convert layout", b[AudioConvert], `{"from":"/a","to":"/b","channels":"7.1"}`, "params.channels"},
		{"convert no to", b[AudioConvert], `{"from":"/a"}`, "params.to"},
		{"convert growing", b[AudioConvert], `{"from":"/a.wav","to":"/b.wav","stable_for":"10s"}`, ""},
		{"convert bad stable_for", b[AudioConvert], `{"from":"/a","to":"/b","stable_for":"-1s"}`, "params.stable_for"},
		{"waveform bad stable_for", b[AudioWaveform], `{"path":"/a.wav","peaks":"/a.peaks","stable_for":"later"}`, "params.stable_for"},
		{"waveform", b[AudioWaveform], `{"path":"/a.wav","peaks":"/a.peaks","png":"/a.png","block":512}`, ""},
		{"waveform block string", b[AudioWaveform], `{"path":"/a","peaks":"/p","block":"512"}`, "params.block"},
		{"probe", b[MediaProbe], `{"path":"/a.mxf"}`, ""},
		{"probe extra", b[MediaProbe], `{"path":"/a.mxf","args":"-v"}`, "args"},
		{"transcode", b[MediaTranscode], `{"from":"/a","to":"/b.mp4","video_codec":"hevc","width":1280,"preset":"fast"}`, ""},
		{"transcode codec", b[MediaTranscode], `{"from":"/a","to":"/b","video_codec":"libx264 -x"}`, "params.video_codec"},
		{"transcode negative width", b[MediaTranscode], `{"from":"/a","to":"/b","width":-2}`, "params.width"},
		{"thumbnail", b[MediaThumbnail], `{"from":"/a","to":"/t.jpg","at":"2.5s","width":160}`, ""},
		{"thumbnail at", b[MediaThumbnail], `{"from":"/a","to":"/t.jpg","at":"-1s"}`, "params.at"},
		{"thumbnail format", b[MediaThumbnail], `{"from":"/a","to":"/t","format":"gif"}`, "params.format"},
	}
	for _, tt := range tests {
		err := tt.spec.Validate(json.RawMessage(tt.params))
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: err = %v, want one with %q", tt.name, err, tt.want)
		}
	}
	if !KindNumber.Valid() {
		t.Error("KindNumber is not valid")
	}
}
