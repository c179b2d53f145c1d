package jobtype

// Names of the media job types (issue 15).
const (
	AudioLoudness  = "audio.loudness"
	AudioNormalize = "audio.normalize"
)

// mediaSpecs returns the specs of the media job types.
func mediaSpecs() []Spec {
	return []Spec{
		{
			Name: AudioLoudness,
			Doc: "Measures a WAV/BWF/RF64 file per ITU-R BS.1770-4 and EBU R128: integrated loudness, loudness range, " +
				"maximum momentary and short-term loudness, sample and true peak; reports the BWF bext chunk.",
			Params: []Param{
				{Name: "path", Kind: KindString, Path: true, Required: true, Doc: "WAV, BWF or RF64 file to measure"},
				{Name: "stable_for", Kind: KindDuration, Doc: "follow a file still being written until its size has not changed for this long (0: the file is complete)", Default: "0s"},
				{Name: "true_peak", Kind: KindBool, Doc: "measure the true peak (4x oversampled)", Default: true},
			},
		},
		{
			Name: AudioNormalize,
			Doc: "Normalises a WAV/BWF/RF64 file to a target loudness under a true-peak ceiling: mode gain returns the gain " +
				"to apply (playout gain) without writing; mode write writes a gained copy in the same format, keeping bext.",
			Params: []Param{
				{Name: "path", Kind: KindString, Path: true, Required: true, Doc: "source file"},
				{Name: "target_lufs", Kind: KindNumber, Doc: "target integrated loudness in LUFS", Default: -23},
				{Name: "true_peak_max_dbtp", Kind: KindNumber, Doc: "true-peak ceiling in dBTP; the gain is lowered to stay under it", Default: -1},
				{Name: "mode", Kind: KindString, Enum: []string{"gain", "write"}, Doc: "gain: only compute the gain; write: write the gained copy to `to`", Default: "gain"},
				{Name: "to", Kind: KindString, Path: true, Doc: "target file of mode write; missing directories are created"},
				{Name: "limiter", Kind: KindBool, Doc: "reach the target with a true-peak limiter instead of lowering the gain (not implemented: true is refused)", Default: false},
			},
		},
	}
}
