package jobtype

// Names of the media job types (issue 15).
const (
	AudioLoudness  = "audio.loudness"
	AudioNormalize = "audio.normalize"
	AudioConvert   = "audio.convert"
	AudioWaveform  = "audio.waveform"
	MediaProbe     = "media.probe"
	MediaTranscode = "media.transcode"
	MediaThumbnail = "media.thumbnail"
)

// FFmpegTypes are the media job types that run ffmpeg or ffprobe: a
// processor without them does not serve these types.
var FFmpegTypes = []string{AudioConvert, MediaProbe, MediaTranscode, MediaThumbnail}

// stableFor is the param of the job types that can read a WAV file still
// being written (a growing file, such as a recording in progress).
var stableFor = Param{Name: "stable_for", Kind: KindDuration, Default: "0s",
	Doc: "follow a WAV file still being written (data size 0, 0xFFFFFFFF or short of the file) to its end, " +
		"which is when neither its size nor its header has changed for this long (0: the file is complete)"}

// mediaSpecs returns the specs of the media job types.
func mediaSpecs() []Spec {
	return []Spec{
		{
			Name: AudioLoudness,
			Doc: "Measures a WAV/BWF/RF64 file per ITU-R BS.1770-4 and EBU R128: integrated loudness, loudness range, " +
				"maximum momentary and short-term loudness, sample and true peak; reports the BWF bext chunk.",
			Params: []Param{
				{Name: "path", Kind: KindString, Path: true, Required: true, Doc: "WAV, BWF or RF64 file to measure"},
				stableFor,
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
				{Name: "true_peak_max_dbtp", Kind: KindNumber, Doc: "true-peak ceiling in dBTP; the gain is lowered to stay under it, or the limiter holds the peaks under it", Default: -1},
				{Name: "mode", Kind: KindString, Enum: []string{"gain", "write"}, Doc: "gain: only compute the gain; write: write the gained copy to `to`", Default: "gain"},
				{Name: "to", Kind: KindString, Path: true, Doc: "target file of mode write; missing directories are created"},
				{Name: "limiter", Kind: KindBool, Doc: "mode write only: when the full gain would put the true peak over the ceiling, apply it and a look-ahead true-peak limiter (3 ms attack, 100 ms release) instead of lowering the gain; the copy measures the target within 0.5 LU where the material allows", Default: false},
			},
		},
		{
			Name: AudioConvert,
			Doc: "Converts an audio file's sample rate, bit depth, channel layout and container (WAV/BWF, FLAC, MP3, M4A/AAC): " +
				"WAV to WAV natively when only the sample format changes, else through ffmpeg; a WAV target keeps the source's bext chunk, " +
				"FLAC/MP3/M4A carry its text as tags. A target already converted from the same source with the same params is left alone " +
				"(a hidden sidecar .NAME.dpe-media.json records it); any other file at the target is replaced.",
			Params: []Param{
				{Name: "from", Kind: KindString, Path: true, Required: true, Doc: "source audio file"},
				{Name: "to", Kind: KindString, Path: true, Required: true, Doc: "target file; missing directories are created"},
				{Name: "container", Kind: KindString, Enum: []string{"wav", "bwf", "flac", "mp3", "m4a"}, Doc: "target container (bwf: WAV with a bext chunk, made when the source has none); default from the target's extension"},
				{Name: "sample_rate", Kind: KindInt, Doc: "target sample rate: 8000, 16000, 22050, 32000, 44100, 48000, 88200, 96000 or 192000 (0: keep)", Default: 0},
				{Name: "bits", Kind: KindInt, Doc: "target bit depth of wav/bwf/flac: 16, 24 or 32 (0: keep where the container allows)", Default: 0},
				{Name: "float", Kind: KindBool, Doc: "wav/bwf: IEEE float samples (bits 32 or 64)", Default: false},
				{Name: "channels", Kind: KindString, Enum: []string{"", "mono", "stereo", "5.1"}, Doc: "target channel layout (empty: keep)", Default: ""},
				{Name: "bitrate_kbps", Kind: KindInt, Doc: "mp3/m4a bit rate, 32 to 512 kbit/s", Default: 192},
				stableFor,
			},
		},
		{
			Name: AudioWaveform,
			Doc: "Writes a waveform of a WAV/BWF/RF64 file: a peak file (min/max per block at several zoom levels, " +
				"format DPEPEAK1, see internal/waveform) and, when png is given, a PNG rendering. Streams the file in constant memory.",
			Params: []Param{
				{Name: "path", Kind: KindString, Path: true, Required: true, Doc: "WAV, BWF or RF64 file"},
				{Name: "peaks", Kind: KindString, Path: true, Required: true, Doc: "peak file to write"},
				{Name: "png", Kind: KindString, Path: true, Doc: "PNG image to write (empty: none)"},
				{Name: "block", Kind: KindInt, Doc: "frames per peak of the finest level (64 to 65536, a power of two)", Default: 256},
				{Name: "width", Kind: KindInt, Doc: "PNG width in pixels (16 to 8192)", Default: 1024},
				{Name: "height", Kind: KindInt, Doc: "PNG height in pixels (16 to 4096)", Default: 256},
				stableFor,
			},
		},
		{
			Name: MediaProbe,
			Doc:  "Describes a media file with ffprobe: container, duration, bit rate and streams.",
			Params: []Param{
				{Name: "path", Kind: KindString, Path: true, Required: true, Doc: "media file"},
			},
		},
		{
			Name: MediaTranscode,
			Doc: "Transcodes a media file with ffmpeg into a container and codecs from fixed lists (a proxy, a mezzanine). " +
				"Reports progress; a target already made from the same source with the same params is left alone " +
				"(a hidden sidecar .NAME.dpe-media.json records it); any other file at the target is replaced.",
			Params: []Param{
				{Name: "from", Kind: KindString, Path: true, Required: true, Doc: "source media file"},
				{Name: "to", Kind: KindString, Path: true, Required: true, Doc: "target file; missing directories are created"},
				{Name: "container", Kind: KindString, Enum: []string{"mp4", "mov", "mkv", "mxf"}, Doc: "target container; default from the target's extension"},
				{Name: "video_codec", Kind: KindString, Enum: []string{"h264", "hevc", "mpeg4", "mpeg2", "prores", "copy", "none"}, Doc: "video codec (none: drop video)", Default: "h264"},
				{Name: "audio_codec", Kind: KindString, Enum: []string{"aac", "mp3", "pcm16", "pcm24", "copy", "none"}, Doc: "audio codec (none: drop audio)", Default: "aac"},
				{Name: "width", Kind: KindInt, NonNegative: true, Doc: "scale to this width, keeping the aspect ratio when height is 0 (0: keep)", Default: 0},
				{Name: "height", Kind: KindInt, NonNegative: true, Doc: "scale to this height, keeping the aspect ratio when width is 0 (0: keep)", Default: 0},
				{Name: "frame_rate", Kind: KindString, Doc: "output frame rate: N or N/M such as 25 or 30000/1001 (empty: keep)"},
				{Name: "crf", Kind: KindInt, NonNegative: true, Doc: "h264/hevc constant rate factor 0-51 (0: the encoder's default)", Default: 0},
				{Name: "preset", Kind: KindString, Enum: []string{"", "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"}, Doc: "h264/hevc preset"},
				{Name: "video_bitrate_kbps", Kind: KindInt, NonNegative: true, Doc: "video bit rate (0: the encoder's default)", Default: 0},
				{Name: "audio_bitrate_kbps", Kind: KindInt, NonNegative: true, Doc: "aac/mp3 bit rate (0: the encoder's default)", Default: 0},
			},
		},
		{
			Name: MediaThumbnail,
			Doc: "Writes one frame of a video as a PNG or JPEG image with ffmpeg; like media.transcode, a thumbnail already made " +
				"from the same source with the same params is left alone, any other file at the target replaced.",
			Params: []Param{
				{Name: "from", Kind: KindString, Path: true, Required: true, Doc: "source video file"},
				{Name: "to", Kind: KindString, Path: true, Required: true, Doc: "image file; missing directories are created"},
				{Name: "at", Kind: KindDuration, Doc: "time of the frame; past the end, the middle of the video", Default: "1s"},
				{Name: "width", Kind: KindInt, NonNegative: true, Doc: "image width, 16 to 4096, keeping the aspect ratio (0: the video's)", Default: 320},
				{Name: "format", Kind: KindString, Enum: []string{"png", "jpeg"}, Doc: "image format; default from the target's extension (.jpg/.jpeg: jpeg, else png)"},
			},
		},
	}
}
