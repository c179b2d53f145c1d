// Package tracing is dpe's OpenTelemetry set-up, shared by every role:
// an OTLP/HTTP span exporter that is off unless an endpoint is
// configured, and the deterministic trace context of workflow instances,
// steps and jobs (ids.go) that lets any process emit its part of an
// instance's trace without a propagation field on the wire.
//
// One instance is one trace: its root span is the instance (created to
// finished), its children the steps (nested as the template nests them),
// and each job attempt's span, emitted by whichever processor ran it, is a
// child of its step's span. The ids are derived from the instance's id and
// creation time, so the worker, the server and any processor compute the
// same ones.
package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Config configures a Provider.
type Config struct {
	// Role names the process: service.name is "dpe-" + Role.
	Role string
	// Version is service.version.
	Version string
	// Endpoint is the OTLP/HTTP base URL (e.g. http://jaeger:4318; the
	// path /v1/traces is added when the URL has none). Empty: the
	// standard environment decides (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as
	// is, else OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces); when neither is
	// set, tracing is off.
	Endpoint string
	// Getenv reads the environment (nil: os.Getenv).
	Getenv func(string) string
	// Exporter, when set, receives the spans instead of an OTLP exporter
	// (tests: tracetest.InMemoryExporter); it turns tracing on.
	Exporter sdktrace.SpanExporter
	// Attributes are added to the resource (e.g. service.instance.id).
	Attributes []attribute.KeyValue
	Log        *slog.Logger
}

// Provider makes the spans of one role. A nil or disabled Provider makes
// none and costs nothing.
type Provider struct {
	sdk *sdktrace.TracerProvider // nil: off
	tp  trace.TracerProvider
}

// Endpoint resolves where spans go: the flag's URL, else the standard
// environment variables; "" means tracing is off. A bad URL is an error
// naming where it came from.
func Endpoint(flag string, getenv func(string) string) (string, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") || getenv("OTEL_TRACES_EXPORTER") == "none" {
		return "", nil
	}
	src, raw, exact := "--otlp-endpoint", flag, false
	switch {
	case raw != "":
	case getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "":
		src, raw, exact = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), true
	case getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "":
		src, raw = "OTEL_EXPORTER_OTLP_ENDPOINT", getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	default:
		return "", nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%s %q: want an http or https URL such as http://collector:4318", src, raw)
	}
	if !exact && !strings.HasSuffix(u.Path, "/v1/traces") {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
	}
	return u.String(), nil
}

// New sets up tracing for a role: off (a Provider that makes no spans,
// and no exporter) unless an endpoint or an exporter is configured.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	exp := cfg.Exporter
	if exp == nil {
		ep, err := Endpoint(cfg.Endpoint, cfg.Getenv)
		if err != nil {
			return nil, err
		}
		if ep == "" {
			return &Provider{tp: noop.NewTracerProvider()}, nil
		}
		if exp, err = otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(ep)); err != nil {
			return nil, fmt.Errorf("otlp exporter for %s: %w", ep, err)
		}
		if cfg.Log != nil {
			cfg.Log.Info("sending traces", "endpoint", ep, "service", "dpe-"+cfg.Role)
		}
	}
	attrs := append([]attribute.KeyValue{
		attribute.String("service.name", "dpe-"+cfg.Role),
		attribute.String("service.version", cfg.Version),
	}, cfg.Attributes...)
	// No schema URL: merging resources of different schemas fails.
	res, err := resource.New(ctx, resource.WithHost(), resource.WithProcessPID(), resource.WithTelemetrySDK(),
		resource.WithFromEnv(), resource.WithAttributes(attrs...))
	if err != nil && res == nil {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	sdk := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithIDGenerator(idGenerator{}),
	)
	return &Provider{sdk: sdk, tp: sdk}, nil
}

// Enabled reports whether spans are exported.
func (p *Provider) Enabled() bool { return p != nil && p.sdk != nil }

// TracerProvider is the provider's OpenTelemetry face (a no-op one when
// off).
func (p *Provider) TracerProvider() trace.TracerProvider {
	if p == nil {
		return noop.NewTracerProvider()
	}
	return p.tp
}

func (p *Provider) tracer() trace.Tracer {
	return p.TracerProvider().Tracer("github.com/dpe-engine/dpe")
}

// Flush exports the spans ended so far.
func (p *Provider) Flush(ctx context.Context) error {
	if !p.Enabled() {
		return nil
	}
	return p.sdk.ForceFlush(ctx)
}

// Shutdown exports what is left and stops the exporter; it waits at most
// 5 s past ctx's end, so a dead collector does not hold a role's stop.
func (p *Provider) Shutdown(ctx context.Context) error {
	if !p.Enabled() {
		return nil
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := p.sdk.Shutdown(sctx); err != nil {
		return fmt.Errorf("flush traces: %w", err)
	}
	return nil
}
