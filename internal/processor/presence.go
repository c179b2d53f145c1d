package processor

import (
	"context"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// presenceLoop announces the processor every PresenceEvery, and at once
// when woken (drain begins), until ctx ends.
func (p *Processor) presenceLoop(ctx context.Context) {
	t := time.NewTicker(p.cfg.PresenceEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.presenceWake:
		}
		if err := p.announce(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("presence announcement failed", "err", err)
		}
	}
}

// announce tells the server who this processor is and what it runs. The
// call is bounded by one presence interval: the next one will do.
func (p *Processor) announce(ctx context.Context) error {
	p.mu.Lock()
	running := 0
	used := make(map[string]int, len(p.cfg.Quota))
	for typ := range p.cfg.Quota {
		used[typ] = p.running[typ]
		running += p.running[typ]
	}
	info := model.Processor{
		ID:     p.cfg.ID,
		Host:   p.host,
		Labels: p.cfg.Labels,
		Quota:  p.cfg.Quota,
		ProcessorPresence: model.ProcessorPresence{
			Unavailable: p.cfg.Unavailable,
			Version:     p.cfg.Version,
			Used:        used,
			Every:       model.Duration(p.cfg.PresenceEvery),
		},
		Running:  running,
		Draining: p.draining,
		Started:  p.started,
	}
	p.mu.Unlock()
	actx, cancel := context.WithTimeout(ctx, p.cfg.PresenceEvery)
	defer cancel()
	return p.c.PutProcessor(actx, info)
}
