package store

import (
	"maps"
	"strings"

	"github.com/dpe-engine/dpe/internal/model"
)

// unavailablePrefix marks the entries of a processor's stored labels that
// carry its Unavailable map: the processors table keeps both in its labels
// column, so reporting unavailable types needed no schema change. The
// prefix starts with U+2400 (the symbol for NUL; PostgreSQL's jsonb refuses
// NUL itself), which no label key in use starts with.
const unavailablePrefix = "\u2400unavailable:"

// ProcessorLabels returns what an engine stores in the labels column of p:
// its labels plus one entry per unavailable type.
func ProcessorLabels(p model.Processor) map[string]string {
	if len(p.Unavailable) == 0 {
		return p.Labels
	}
	m := maps.Clone(p.Labels)
	if m == nil {
		m = make(map[string]string, len(p.Unavailable))
	}
	for typ, reason := range p.Unavailable {
		m[unavailablePrefix+typ] = reason
	}
	return m
}

// SplitProcessorLabels undoes ProcessorLabels: the labels and the
// unavailable types of a stored labels column, each nil when empty.
func SplitProcessorLabels(stored map[string]string) (labels, unavailable map[string]string) {
	for k, v := range stored {
		if typ, ok := strings.CutPrefix(k, unavailablePrefix); ok {
			if unavailable == nil {
				unavailable = map[string]string{}
			}
			unavailable[typ] = v
			continue
		}
		if labels == nil {
			labels = map[string]string{}
		}
		labels[k] = v
	}
	return labels, unavailable
}
