package jobtype

// Names of the built-in job types (DESIGN §3).
const (
	Noop     = "noop"
	Copy     = "util.copy"
	Move     = "util.move"
	Delete   = "util.delete"
	Checksum = "util.checksum"
	Mkdir    = "util.mkdir"
	List     = "util.list"
	Sync     = "util.sync"
	Exec     = "exec"
)

// Builtins returns the specs of the built-in job types by name. Each call
// builds a fresh map, so callers may modify it.
func Builtins() map[string]Spec {
	specs := []Spec{
		{
			Name: Noop,
			Doc:  "Does nothing for a while: for tests and benchmarks.",
			Params: []Param{
				{Name: "sleep", Kind: KindDuration, Doc: "how long to wait before finishing", Default: "0s"},
				{Name: "fail", Kind: KindBool, Doc: "fail (retryably) after the sleep"},
				{Name: "result", Kind: KindObject, Doc: "the result to return; default {\"slept\": SLEEP}"},
				{Name: "log", Kind: KindString, Doc: "a line to write to the job's log when it starts"},
			},
		},
		{
			Name: Copy,
			Doc: "Copies a file through a temporary file in the target directory, then renames it. " +
				"A target that already has the source's content is left alone.",
			Params: []Param{
				{Name: "from", Kind: KindString, Path: true, Required: true, Doc: "source file"},
				{Name: "to", Kind: KindString, Path: true, Required: true, Doc: "target file; missing directories are created"},
				{Name: "overwrite", Kind: KindBool, Doc: "replace a target whose content differs", Default: false},
			},
		},
		{
			Name: Move,
			Doc: "Moves a file: a rename on one file system, else copy, verify and delete. " +
				"A missing source with the target present counts as already moved.",
			Params: []Param{
				{Name: "from", Kind: KindString, Path: true, Required: true, Doc: "source file"},
				{Name: "to", Kind: KindString, Path: true, Required: true, Doc: "target file; missing directories are created"},
				{Name: "overwrite", Kind: KindBool, Doc: "replace a target whose content differs", Default: false},
			},
		},
		{
			Name: Delete,
			Doc:  "Deletes a file, a symbolic link or an empty directory.",
			Params: []Param{
				{Name: "path", Kind: KindString, Path: true, Required: true, Doc: "what to delete"},
				{Name: "missing_ok", Kind: KindBool, Doc: "succeed when the path does not exist", Default: true},
			},
		},
		{
			Name: Checksum,
			Doc:  "Computes the checksum of a file.",
			Params: []Param{
				{Name: "path", Kind: KindString, Path: true, Required: true, Doc: "file to read"},
				{Name: "algorithm", Kind: KindString, Enum: []string{"sha256", "md5"}, Doc: "hash function", Default: "sha256"},
			},
		},
		{
			Name: Mkdir,
			Doc:  "Creates a directory and its missing parents.",
			Params: []Param{
				{Name: "path", Kind: KindString, Path: true, Required: true, Doc: "directory to create"},
			},
		},
		{
			Name: List,
			Doc:  "Lists the files of a directory (sorted absolute paths), e.g. for a foreach over a folder.",
			Params: []Param{
				{Name: "path", Kind: KindString, Path: true, Required: true, Doc: "directory to list"},
				{Name: "include", Kind: KindStrings, Doc: "glob patterns a file's name must match one of (e.g. [\"*.wav\"]); case-insensitive; none: every file"},
				{Name: "recursive", Kind: KindBool, Doc: "also list the files of subdirectories", Default: false},
				{Name: "limit", Kind: KindInt, Doc: "refuse a directory holding more matching files than this", Default: 10000},
			},
		},
		{
			Name: Sync,
			Doc: "Mirrors the master root of a location to its replicas (DESIGN §6): copies files that are " +
				"missing or differ (size, then checksum), verifies each copy, and reports what it found.",
			Params: []Param{
				{Name: "location", Kind: KindString, Required: true, Doc: "name of the location (the locations section of the config)"},
				{Name: "delete", Kind: KindBool, Doc: "delete files on the replicas that the master does not have (else they are reported and kept)", Default: false},
				{Name: "dry_run", Kind: KindBool, Doc: "compare and report only: change nothing", Default: false},
				{Name: "algorithm", Kind: KindString, Enum: []string{"sha256", "md5"}, Doc: "checksum used to compare and verify files", Default: "sha256"},
			},
		},
		{
			Name: Exec,
			Doc: "Runs a program without a shell, with a timeout, capturing its output. " +
				"A non-zero exit status fails the job.",
			Params: []Param{
				{Name: "argv", Kind: KindStrings, Required: true, Doc: "program (looked up in PATH) and its arguments"},
				{Name: "dir", Kind: KindString, Path: true, Doc: "working directory"},
				{Name: "env", Kind: KindStrings, Doc: "KEY=VALUE entries added to the processor's environment"},
				{Name: "timeout", Kind: KindDuration, Doc: "kill the program after this long (0: no limit beyond the job's)"},
				{Name: "max_output", Kind: KindInt, NonNegative: true, Doc: "bytes of stdout and of stderr kept, from the start (0: the default)", Default: 65536},
			},
		},
	}
	specs = append(specs, mediaSpecs()...)
	m := make(map[string]Spec, len(specs))
	for _, s := range specs {
		m[s.Name] = s
	}
	return m
}
