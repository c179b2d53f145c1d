package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dpe-engine/dpe/internal/jobtype"
	"github.com/dpe-engine/dpe/internal/wav"
)

// followParam is the param of the jobs that can read a WAV file still
// being written (audio.loudness, audio.convert, audio.waveform). It is
// decoded apart from the other params: how the source is waited for does
// not change what is made from it, so it is no part of a target's key.
type followParam struct {
	StableFor string `json:"stable_for"`
}

// waitHook pauses between looks at a growing file; nil polls on a timer.
// Tests set it to advance a fake clock.
type waitHook func(ctx context.Context) error

// follow returns how a job of spec with params reads its WAV source: nil
// for a complete file, or following it while it grows until neither its
// size nor its header has changed for stable_for (see wav.Follow).
func (c Config) follow(spec jobtype.Spec, params json.RawMessage, wait waitHook) (*wav.Follow, error) {
	var p followParam
	if err := decode(spec, params, &p); err != nil {
		return nil, err
	}
	if p.StableFor == "" {
		return nil, nil
	}
	stable, err := time.ParseDuration(p.StableFor)
	if err != nil { // Validate checked it
		return nil, Permanent(fmt.Errorf("%s: params.stable_for: %w", spec.Name, err))
	}
	if stable <= 0 {
		return nil, nil
	}
	return &wav.Follow{StableFor: stable, Clock: c.Clock, Wait: wait}, nil
}
