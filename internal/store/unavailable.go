package store

import (
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// The processors table keeps what a processor says about itself beyond its
// labels and quota (its unavailable types, version, used slots and
// announcement interval) in its labels column, under keys with reserved
// prefixes, so reporting them needed no schema change. The prefixes start
// with U+2400 (the symbol for NUL; PostgreSQL's jsonb refuses NUL itself),
// which no label key in use starts with.
const (
	unavailablePrefix = "\u2400unavailable:"
	usedPrefix        = "\u2400used:"
	versionKey        = "\u2400version"
	everyKey          = "\u2400every"
)

// ProcessorLabels returns what an engine stores in the labels column of p:
// its labels plus one entry per unavailable type and per used type, its
// version and its announcement interval.
func ProcessorLabels(p model.Processor) map[string]string {
	if len(p.Unavailable) == 0 && len(p.Used) == 0 && p.Version == "" && p.Every == 0 {
		return p.Labels
	}
	m := maps.Clone(p.Labels)
	if m == nil {
		m = make(map[string]string, len(p.Unavailable)+len(p.Used)+2)
	}
	for typ, reason := range p.Unavailable {
		m[unavailablePrefix+typ] = reason
	}
	for typ, n := range p.Used {
		m[usedPrefix+typ] = strconv.Itoa(n)
	}
	if p.Version != "" {
		m[versionKey] = p.Version
	}
	if p.Every > 0 {
		m[everyKey] = time.Duration(p.Every).String()
	}
	return m
}

// SplitProcessorLabels undoes ProcessorLabels: it sets p's Labels,
// Unavailable, Used, Version and Every from a stored labels column (the
// maps nil when empty). Entries it cannot read are dropped.
func SplitProcessorLabels(stored map[string]string, p *model.Processor) {
	p.Labels, p.Unavailable, p.Used = nil, nil, nil
	for k, v := range stored {
		if typ, ok := strings.CutPrefix(k, unavailablePrefix); ok {
			if p.Unavailable == nil {
				p.Unavailable = map[string]string{}
			}
			p.Unavailable[typ] = v
			continue
		}
		if typ, ok := strings.CutPrefix(k, usedPrefix); ok {
			if n, err := strconv.Atoi(v); err == nil {
				if p.Used == nil {
					p.Used = map[string]int{}
				}
				p.Used[typ] = n
			}
			continue
		}
		switch k {
		case versionKey:
			p.Version = v
			continue
		case everyKey:
			if d, err := time.ParseDuration(v); err == nil {
				p.Every = model.Duration(d)
			}
			continue
		}
		if p.Labels == nil {
			p.Labels = map[string]string{}
		}
		p.Labels[k] = v
	}
}
