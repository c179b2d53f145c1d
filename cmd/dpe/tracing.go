package main

import (
	"context"
	"flag"
	"log/slog"

	"github.com/dpe-engine/dpe/internal/tracing"
)

// traceFlag is --otlp-endpoint, taken by the roles that make spans.
type traceFlag struct{ endpoint string }

func (t *traceFlag) register(fs *flag.FlagSet) {
	fs.StringVar(&t.endpoint, "otlp-endpoint", "", "send traces to this OTLP/HTTP collector, e.g. http://jaeger:4318 (default: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT; none: no traces)")
}

// start sets up the traces of one role of this process (service.name
// dpe-ROLE); the returned stop flushes them and is deferred by the
// command, so spans ended during the roles' shutdown go out too.
func (t *traceFlag) start(ctx context.Context, e *env, role string, log *slog.Logger) (*tracing.Provider, func(), error) {
	tp, err := tracing.New(ctx, tracing.Config{Role: role, Version: version, Endpoint: t.endpoint, Getenv: e.getenv, Log: log})
	if err != nil {
		return nil, nil, usagef("%v", err)
	}
	return tp, func() {
		if err := tp.Shutdown(ctx); err != nil {
			log.Warn("traces not all sent", "role", role, "err", err)
		}
	}, nil
}
