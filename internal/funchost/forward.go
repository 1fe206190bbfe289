package funchost

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"github.com/handoff-dev/handoff/handler/problem"
)

// newProxy forwards a request to the worker as the host's
// DefaultHttpWorkerService.ProcessHttpInAndOutInvocationRequest does with
// enableForwardingHttpRequest (DefaultHttpWorkerService.cs:74-115), through
// HttpRequestExtensions.ToHttpRequestMessage (HttpRequestExtensions.cs:155-181).
func (h *Host) newProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(pr.In.Context().Value(targetKey{}).(*url.URL))
			pr.Out.Host = pr.In.Host
			// Every header is copied as received (HttpRequestExtensions.cs:162-165):
			// Rewrite mode drops these before calling us.
			for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded"} {
				if v, ok := pr.In.Header[k]; ok {
					pr.Out.Header[k] = v
				}
			}
			pr.Out.URL.RawQuery = RebuildQuery(pr.In.URL.RawQuery)
			copyBodyAsTheHost(pr.In, pr.Out)
			addHostHeaders(pr.Out.Header, invocationID())
			addTraceparent(pr.Out.Header)
		},
		Transport: h.transport,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			h.log.printf("forwarding %s %s failed: %v", r.Method, r.URL.Path, err)
			problem.Error(w, http.StatusBadGateway, "the "+h.cfg.Name+" handler did not answer")
		},
	}
}

// addHostHeaders adds what the host adds to every request to the worker
// (DefaultHttpWorkerService.cs:161-166): its version, the invocation id, and
// its product appended to the User-Agent.
func addHostHeaders(hdr http.Header, invocation string) {
	hdr.Set("X-Azure-Functions-HostVersion", HostVersion)
	hdr.Set("X-Azure-Functions-InvocationId", invocation)
	ua := "Azure-Functions-Host/" + HostVersion
	if prev := hdr.Get("User-Agent"); prev != "" {
		ua = prev + " " + ua
	}
	hdr.Set("User-Agent", ua)
}

// addTraceparent gives a request that came without a traceparent one of
// the host's: the host sends the request with a plain HttpClient
// (DefaultHttpWorkerService.cs:74-115), whose DiagnosticsHandler
// (dotnet/runtime src/libraries/System.Net.Http/src/System/Net/Http/
// DiagnosticsHandler.cs, InjectHeaders) adds the W3C id of the current
// Activity, the host's request, only when the request has no traceparent
// already. A client's traceparent (and tracestate) is copied with every
// other header and reaches the handler unchanged. The host's activity is
// minted here: a new trace id and span id, sampled. (Whether Azure strips
// the header instead, as a closed host pull request, #9576, says, is not
// known: docs/telemetry.md.)
func addTraceparent(hdr http.Header) {
	if hdr.Get("traceparent") != "" {
		return
	}
	var ids [24]byte
	_, _ = rand.Read(ids[:]) // crypto/rand.Read never fails
	hdr.Set("traceparent", "00-"+hex.EncodeToString(ids[:16])+"-"+hex.EncodeToString(ids[16:])+"-01")
}

// contentHeaders are .NET's HttpContentHeaders: the host copies the
// request's headers onto the request message with TryAddWithoutValidation,
// which refuses these, and sets only Content-Length and Content-Type again,
// on the body (HttpRequestExtensions.cs:162-178).
var contentHeaders = []string{
	"Allow", "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
	"Content-Location", "Content-MD5", "Content-Range", "Content-Type", "Expires", "Last-Modified",
}

// copyBodyAsTheHost keeps the body only when the request declares a
// Content-Length above 0 (HttpRequestExtensions.cs:170-178): a chunked
// body reaches the worker empty, and without a body no Content-Type either.
func copyBodyAsTheHost(in, out *http.Request) {
	for _, k := range contentHeaders {
		out.Header.Del(k)
	}
	out.TransferEncoding = nil
	if in.ContentLength > 0 {
		out.ContentLength = in.ContentLength
		if ct := in.Header.Get("Content-Type"); ct != "" {
			out.Header.Set("Content-Type", ct)
		}
		return
	}
	out.Body, out.ContentLength = http.NoBody, 0
}

// RebuildQuery rebuilds a query string as the host does: into a dictionary
// whose repeated keys have their values joined with commas
// (HttpRequestExtensions.GetQueryCollectionAsDictionary, :231), then
// appended with every key and value percent-encoded
// (QueryHelpers.AddQueryString with UrlEncoder.Default; :159). Keys keep the
// order of their first appearance; a pair that does not decode is dropped,
// as ASP.NET's query parser skips it.
func RebuildQuery(raw string) string {
	if raw == "" {
		return ""
	}
	var keys []string
	values := map[string][]string{}
	for pair := range strings.SplitSeq(raw, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		k, err1 := url.QueryUnescape(k)
		v, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil || k == "" {
			continue
		}
		if _, ok := values[k]; !ok {
			keys = append(keys, k)
		}
		values[k] = append(values[k], v)
	}
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(encodeQueryPart(k) + "=" + encodeQueryPart(strings.Join(values[k], ",")))
	}
	return b.String()
}

// encodeQueryPart percent-encodes all but RFC 3986's unreserved
// characters, as UrlEncoder.Default does for ASCII.
func encodeQueryPart(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}
