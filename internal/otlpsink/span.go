package otlpsink

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// Span is one received span, with ids as lowercase hex.
type Span struct {
	TraceID string `json:"trace_id"`
	SpanID  string `json:"span_id"`
	// ParentSpanID is "" for a root span.
	ParentSpanID string `json:"parent_span_id,omitempty"`
	// Service is the resource's service.name ("unknown_service" when
	// the exporter sent none, as the SDK's default).
	Service string    `json:"service"`
	Name    string    `json:"name"`
	Kind    string    `json:"kind"` // server, client, internal, producer, consumer or unspecified
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	// Status is "unset", "ok" or "error"; StatusMessage its description.
	Status        string `json:"status"`
	StatusMessage string `json:"status_message,omitempty"`
	// Attributes are the span's attributes, each value formatted as text.
	Attributes map[string]string `json:"attributes,omitempty"`
	Links      []Link            `json:"links,omitempty"`
}

// Duration is End - Start, or 0 when the span's times are not in order.
func (s Span) Duration() time.Duration {
	if s.End.Before(s.Start) {
		return 0
	}
	return s.End.Sub(s.Start)
}

// Link is a span's link to another span (e.g. a redelivery's link to the
// create that queued the event).
type Link struct {
	TraceID    string            `json:"trace_id"`
	SpanID     string            `json:"span_id"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// DefaultServiceName is a span's Service when its resource has no
// service.name.
const DefaultServiceName = "unknown_service"

// Byte lengths of OTLP's ids.
const (
	traceIDBytes = 16
	spanIDBytes  = 8
)

// ParseTraceID checks that s is a W3C trace id (32 hex digits, not all
// zero) and returns it in lowercase.
func ParseTraceID(s string) (string, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != traceIDBytes {
		return "", fmt.Errorf("%q is not a trace id (32 hex digits)", s)
	}
	if allZero(b) {
		return "", errors.New("the all-zero trace id is invalid")
	}
	return hex.EncodeToString(b), nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// convert turns an OTLP span of service into a Span; a span whose ids are
// malformed is an error (the whole request is refused).
func convert(service string, p *tracepb.Span) (Span, error) {
	tid, sid, parent := p.GetTraceId(), p.GetSpanId(), p.GetParentSpanId()
	if len(tid) != traceIDBytes || allZero(tid) {
		return Span{}, fmt.Errorf("span %q has an invalid trace id (%d bytes)", p.GetName(), len(tid))
	}
	if len(sid) != spanIDBytes || allZero(sid) {
		return Span{}, fmt.Errorf("span %q has an invalid span id (%d bytes)", p.GetName(), len(sid))
	}
	if len(parent) != 0 && len(parent) != spanIDBytes {
		return Span{}, fmt.Errorf("span %q has an invalid parent span id (%d bytes)", p.GetName(), len(parent))
	}
	s := Span{
		TraceID: hex.EncodeToString(tid), SpanID: hex.EncodeToString(sid),
		Service: service, Name: p.GetName(), Kind: kindName(p.GetKind()),
		Start: unixNano(p.GetStartTimeUnixNano()), End: unixNano(p.GetEndTimeUnixNano()),
		Status: statusName(p.GetStatus().GetCode()), StatusMessage: p.GetStatus().GetMessage(),
		Attributes: attributes(p.GetAttributes()),
	}
	if len(parent) != 0 && !allZero(parent) {
		s.ParentSpanID = hex.EncodeToString(parent)
	}
	for _, l := range p.GetLinks() {
		if len(l.GetTraceId()) != traceIDBytes || len(l.GetSpanId()) != spanIDBytes {
			return Span{}, fmt.Errorf("span %q has a link with invalid ids", p.GetName())
		}
		s.Links = append(s.Links, Link{
			TraceID: hex.EncodeToString(l.GetTraceId()), SpanID: hex.EncodeToString(l.GetSpanId()),
			Attributes: attributes(l.GetAttributes()),
		})
	}
	return s, nil
}

func unixNano(n uint64) time.Time {
	if n == 0 || n > 1<<63-1 {
		return time.Time{}
	}
	return time.Unix(0, int64(n)).UTC()
}

func kindName(k tracepb.Span_SpanKind) string {
	switch k {
	case tracepb.Span_SPAN_KIND_SERVER:
		return "server"
	case tracepb.Span_SPAN_KIND_CLIENT:
		return "client"
	case tracepb.Span_SPAN_KIND_INTERNAL:
		return "internal"
	case tracepb.Span_SPAN_KIND_PRODUCER:
		return "producer"
	case tracepb.Span_SPAN_KIND_CONSUMER:
		return "consumer"
	}
	return "unspecified"
}

func statusName(c tracepb.Status_StatusCode) string {
	switch c {
	case tracepb.Status_STATUS_CODE_OK:
		return "ok"
	case tracepb.Status_STATUS_CODE_ERROR:
		return "error"
	}
	return "unset"
}

// serviceName is a resource's service.name.
func serviceName(attrs []*commonpb.KeyValue) string {
	for _, kv := range attrs {
		if kv.GetKey() == "service.name" {
			if v := kv.GetValue().GetStringValue(); v != "" {
				return v
			}
		}
	}
	return DefaultServiceName
}

func attributes(kvs []*commonpb.KeyValue) map[string]string {
	if len(kvs) == 0 {
		return nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = formatValue(kv.GetValue())
	}
	return m
}

// formatValue writes an attribute value as text: arrays as [a, b],
// key-value lists as {k: v}, bytes as hex.
func formatValue(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_DoubleValue:
		return strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
	case *commonpb.AnyValue_BytesValue:
		return hex.EncodeToString(x.BytesValue)
	case *commonpb.AnyValue_ArrayValue:
		var parts []string
		for _, e := range x.ArrayValue.GetValues() {
			parts = append(parts, formatValue(e))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case *commonpb.AnyValue_KvlistValue:
		var parts []string
		for _, kv := range x.KvlistValue.GetValues() {
			parts = append(parts, kv.GetKey()+": "+formatValue(kv.GetValue()))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return ""
}
