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
