package funcapp

import (
	"context"
	"io"
	"log/slog"
)

// NewLogHandler returns a JSON slog handler that writes records at Warn
// and above to stderr and the others to stdout. The Functions host logs a
// custom handler's stdout lines at Information and its stderr lines at
// Error, or Warning when the line contains "warn" (WorkerProcess.cs in
// Azure/azure-functions-host, with the custom handler's
// UseStdErrorStreamForErrorsOnly): a Warn record's JSON line carries
// "level":"WARN", so it lands at Warning, and an Error record at Error,
// where Application Insights alerts see it.
//
// A record logged with a context that holds a span carries its trace_id
// and span_id ([WithTraceContext]).
func NewLogHandler(stdout, stderr io.Writer, opts *slog.HandlerOptions) slog.Handler {
	return WithTraceContext(levelSplit{low: slog.NewJSONHandler(stdout, opts), high: slog.NewJSONHandler(stderr, opts)})
}

// levelSplit sends records below Warn to low, the rest to high.
type levelSplit struct{ low, high slog.Handler }

func (s levelSplit) pick(l slog.Level) slog.Handler {
	if l >= slog.LevelWarn {
		return s.high
	}
	return s.low
}

func (s levelSplit) Enabled(ctx context.Context, l slog.Level) bool {
	return s.pick(l).Enabled(ctx, l)
}

func (s levelSplit) Handle(ctx context.Context, r slog.Record) error {
	return s.pick(r.Level).Handle(ctx, r)
}

func (s levelSplit) WithAttrs(attrs []slog.Attr) slog.Handler {
	return levelSplit{low: s.low.WithAttrs(attrs), high: s.high.WithAttrs(attrs)}
}

func (s levelSplit) WithGroup(name string) slog.Handler {
	return levelSplit{low: s.low.WithGroup(name), high: s.high.WithGroup(name)}
}
