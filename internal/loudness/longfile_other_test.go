//go:build !unix

package loudness_test

import (
	"os"
	"time"
)

// maxRSS is unknown where rusage is not: 0.
func maxRSS(*os.ProcessState) int64 { return 0 }

// selfCPU is unknown where rusage is not: 0.
func selfCPU() time.Duration { return 0 }
