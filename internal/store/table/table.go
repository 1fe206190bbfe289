// Package table is the Azure Table Storage backend of store (required in
// Azure): one file per entity (tasks, outbox, notifications, audit,
// idempotency); this file holds configuration, opening, keys, listing and
// errors.
package table

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/handoff-dev/handoff/internal/store"
)

// Store is the Store on Azure Table Storage (or Azurite, its emulator):
// the backend for Function Apps that scale out, where no disk is shared.
//
// # Tables and keys
//
// Three tables, <prefix>tasks, <prefix>notifications and <prefix>audit.
// The PartitionKey of every tenant's entity is the tenant id, so a read
// that names a tenant reaches no other tenant's entities. Keys are built
// from the key form of an id (see tableKey): ids made of letters, digits,
// '-' and '.' (GUIDs, the store's own hex ids) are used as they are, any
// other byte is escaped as "_" and two hex digits, and a form longer than
// 200 characters is replaced by "~" and its SHA-256 in hex. The key form
// never holds '|', '!' or '~' except that hash marker, so the rows below
// cannot collide with each other or with another tenant's.
//
// Times in keys are inverted, 19 digits of MaxInt64 minus the Unix
// microseconds, and ids are inverted digit by digit (0↔f), so that the
// service's ascending RowKey order is the contract's order: time
// descending, then id descending. "T|I" below is that sort key.
//
//	tasks          PK tenant  RK "t|" id     the task (point reads, the ETag check)
//	               PK tenant  RK "i|" T|I    its index row, a full copy (listing)
//	notifications  PK tenant  RK "u|" user "|" T|I
//	audit          PK "!ev|" event id  RK "e"   the event's marker: the entry, and who completed it
//	               PK tenant  RK "a|" T|I    the entry, in its tenant's listing
//	               PK "!all"  RK "a|" T|I    the entry, in the every-tenant listing
//
// # Writes
//
// A task's two rows are in one partition, so every write to them is one
// entity-group transaction: created together (both inserts), updated
// together (the task row on the condition of the service's ETag it was
// read with, If-Match), deleted together. They never diverge. The store's
// own ETag (a random quoted value, as the contract wants) is a property of
// both rows; the service's ETag only guards the read-modify-write.
//
// An audit entry lives in three partitions, which no transaction spans.
// The marker is written first (an insert: a second one fails with 409, so
// of concurrent appends of one event id exactly one inserts it, across
// processes too); then the two listing rows (idempotent upserts of the
// same values); last the marker is marked complete on the condition of its
// service ETag. An append that finds the marker incomplete (its writer
// failed or is still at it) writes the listing rows itself and tries to
// complete it: whoever completes it reports created. So an append that
// failed part way leaves the entry stored but maybe not listed, and the
// caller's retry with the same event id lists it and reports created.
//
// Requests the HTTP pipeline retries (a lost response) are recognised by
// the random values they carry: a create or insert that fails because its
// row exists finds its own id or ETag there, an update that fails its
// condition finds its own new ETag. (Not a delete: one whose answer was
// lost and that was sent again fails with ErrNotFound, the task gone
// either way.)
//
// # Listing
//
// Listings are RowKey ranges in one partition, read in RowKey order; the
// page cursor is the contract's (the time and id of the last item), from
// which the next page's lower RowKey bound is computed (keyset paging).
// Listing every tenant's audit entries reads the single "!all" partition,
// which bounds audit appends to that of one partition (about 2,000
// entities a second on Azure).
//
// # Errors
//
// Errors of the service or the network wrap ErrUnavailable, except that a
// record the service refuses as malformed or too large (400, 413: a string
// property over 32K characters, say) wraps ErrInvalid. Strings must be
// valid UTF-8 (JSON cannot carry anything else). After Close, every method
// fails with ErrUnavailable.
//
// A Table is safe for concurrent use.
type Store struct {
	tasks, notifications, audit *aztables.Client
	closed                      atomic.Bool
}

var _ store.Store = (*Store)(nil)

// Config says which Table Storage account a Table uses and how.
type Config struct {
	// ConnectionString is an account's connection string (an account key
	// or a SAS), or "UseDevelopmentStorage=true" for Azurite on its
	// default port. Azurite elsewhere: "DefaultEndpointsProtocol=http;
	// AccountName=devstoreaccount1;AccountKey=...;
	// TableEndpoint=http://127.0.0.1:PORT/devstoreaccount1;".
	ConnectionString string

	// ServiceURL (https://<account>.table.core.windows.net) with
	// Credential: identity-based access (the identity needs the Storage
	// Table Data Contributor role). Set either ConnectionString or these.
	ServiceURL string
	Credential azcore.TokenCredential

	// TablePrefix names the tables, <prefix>tasks, <prefix>notifications
	// and <prefix>audit: a letter, then up to 49 letters and digits
	// (DefaultTablePrefix if "").
	TablePrefix string

	// Transport sends the HTTP requests (tests); nil is azcore's default.
	Transport policy.Transporter

	// Retry sets the HTTP pipeline's retries; nil is 3 retries of a
	// network error or a 408, 429, 500, 502, 503 or 504 answer, 200 ms
	// backoff doubling up to 2 s, each try bounded to 10 s.
	Retry *policy.RetryOptions

	// managedIdentityClientID is the user-assigned identity
	// ConfigFromEnv chose ("" for system-assigned), for tests.
	managedIdentityClientID string
}

// DefaultTablePrefix is the table prefix when Config.TablePrefix is "".
const DefaultTablePrefix = "handoff"

// Azurite's well-known development account (public, the same everywhere).
const (
	devStoreAccount     = "devstoreaccount1"
	devStoreKey         = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
	devStoreTablePort   = "10002"
	devStoreDefaultHost = "http://127.0.0.1"
)

// Settings ConfigFromEnv reads: the Azure Functions host's own for
// its storage account.
const (
	envWebJobsStorage   = "AzureWebJobsStorage"
	envTableServiceURI  = "AzureWebJobsStorage__tableServiceUri"
	envStorageAccount   = "AzureWebJobsStorage__accountName"
	envStorageClientID  = "AzureWebJobsStorage__clientId"
	envAzureClientID    = "AZURE_CLIENT_ID"
	tableServiceURLTmpl = "https://%s.table.core.windows.net"
)

// ConfigFromEnv returns the Config the Azure Functions
// convention describes: AzureWebJobsStorage, a connection string (or
// UseDevelopmentStorage=true); else AzureWebJobsStorage__tableServiceUri,
// or AzureWebJobsStorage__accountName for
// https://<name>.table.core.windows.net, with a managed identity:
// user-assigned if AzureWebJobsStorage__clientId or AZURE_CLIENT_ID names
// one (in that order), else system-assigned. getenv is os.Getenv or a
// stand-in.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	if cs := strings.TrimSpace(getenv(envWebJobsStorage)); cs != "" {
		return Config{ConnectionString: cs}, nil
	}
	serviceURL := strings.TrimSpace(getenv(envTableServiceURI))
	if serviceURL == "" {
		if name := strings.TrimSpace(getenv(envStorageAccount)); name != "" {
			if !validAccountName(name) {
				return Config{}, fmt.Errorf("store: table: %s %q is not a storage account name (3 to 24 lowercase letters and digits)", envStorageAccount, name)
			}
			serviceURL = fmt.Sprintf(tableServiceURLTmpl, name)
		}
	}
	if serviceURL == "" {
		return Config{}, fmt.Errorf("store: table: no storage account configured: set %s (a connection string, or UseDevelopmentStorage=true for Azurite), or %s or %s for a managed identity",
			envWebJobsStorage, envStorageAccount, envTableServiceURI)
	}
	if err := checkServiceURL(serviceURL); err != nil {
		return Config{}, fmt.Errorf("store: table: %s: %w", envTableServiceURI, err)
	}
	clientID := strings.TrimSpace(getenv(envStorageClientID))
	if clientID == "" {
		clientID = strings.TrimSpace(getenv(envAzureClientID))
	}
	var opts azidentity.ManagedIdentityCredentialOptions
	if clientID != "" {
		opts.ID = azidentity.ClientID(clientID)
	}
	cred, err := azidentity.NewManagedIdentityCredential(&opts)
	if err != nil {
		return Config{}, fmt.Errorf("store: table: managed identity: %w", err)
	}
	return Config{ServiceURL: serviceURL, Credential: cred, managedIdentityClientID: clientID}, nil
}

func validAccountName(name string) bool {
	if len(name) < 3 || len(name) > 24 {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// checkServiceURL checks that u is an https URL of a host (a token is
// never sent in the clear).
func checkServiceURL(u string) error {
	parsed, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("service URL %q: %w", u, err)
	}
	if parsed.Scheme != "https" || parsed.Host == "" || parsed.User != nil || parsed.RawQuery != "" || parsed.Fragment != "" {
		return fmt.Errorf("service URL %q: want https://<account>.table.core.windows.net", u)
	}
	return nil
}

// expandConnectionString returns the connection string aztables parses for
// cs: "UseDevelopmentStorage=true" (with an optional
// DevelopmentStorageProxyUri=http://host) is the Azurite account's
// connection string; any other is cs itself.
func expandConnectionString(cs string) (string, error) {
	var dev, proxy string
	isDev := false
	for part := range strings.SplitSeq(strings.TrimSpace(cs), ";") {
		k, v, _ := strings.Cut(part, "=")
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "usedevelopmentstorage":
			isDev, dev = true, strings.TrimSpace(v)
		case "developmentstorageproxyuri":
			proxy = strings.TrimSpace(v)
		}
	}
	if !isDev {
		return cs, nil
	}
	if !strings.EqualFold(dev, "true") {
		return "", fmt.Errorf("store: table: UseDevelopmentStorage=%s: only UseDevelopmentStorage=true is supported", dev)
	}
	host := devStoreDefaultHost
	if proxy != "" {
		u, err := url.Parse(proxy)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
			return "", fmt.Errorf("store: table: DevelopmentStorageProxyUri %q is not an http(s) URL", proxy)
		}
		host = u.Scheme + "://" + u.Hostname()
		if strings.Contains(u.Hostname(), ":") {
			host = u.Scheme + "://[" + u.Hostname() + "]"
		}
	}
	return "DefaultEndpointsProtocol=http;AccountName=" + devStoreAccount + ";AccountKey=" + devStoreKey +
		";TableEndpoint=" + host + ":" + devStoreTablePort + "/" + devStoreAccount + ";", nil
}

var tablePrefixPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]{0,49}$`)

// tableRetry is the pipeline's retry policy unless Config.Retry sets one.
var tableRetry = policy.RetryOptions{
	MaxRetries:    3,
	TryTimeout:    10 * time.Second,
	RetryDelay:    200 * time.Millisecond,
	MaxRetryDelay: 2 * time.Second,
}

// Open connects to the account cfg names and creates the store's
// tables if missing. It fails with ErrUnavailable when the service cannot
// be reached or refuses (the identity lacks the role, say); ctx bounds it.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	prefix := cfg.TablePrefix
	if prefix == "" {
		prefix = DefaultTablePrefix
	}
	if !tablePrefixPattern.MatchString(prefix) {
		return nil, fmt.Errorf("store: table: table prefix %q: want a letter, then up to 49 letters and digits", prefix)
	}
	opts := &aztables.ClientOptions{}
	opts.Transport = cfg.Transport
	opts.Retry = tableRetry
	if cfg.Retry != nil {
		opts.Retry = *cfg.Retry
	}

	var (
		svc *aztables.ServiceClient
		err error
	)
	switch {
	case cfg.ConnectionString != "" && cfg.ServiceURL != "":
		return nil, errors.New("store: table: set a connection string or a service URL, not both")
	case cfg.ConnectionString != "":
		cs, xerr := expandConnectionString(cfg.ConnectionString)
		if xerr != nil {
			return nil, xerr
		}
		svc, err = aztables.NewServiceClientFromConnectionString(cs, opts)
		if err != nil {
			// aztables' messages hold no part of the string (no key).
			return nil, fmt.Errorf("store: table: connection string: %w", err)
		}
	case cfg.ServiceURL != "":
		if cfg.Credential == nil {
			return nil, errors.New("store: table: a service URL needs a credential")
		}
		if err := checkServiceURL(cfg.ServiceURL); err != nil {
			return nil, fmt.Errorf("store: table: %w", err)
		}
		svc, err = aztables.NewServiceClient(cfg.ServiceURL, cfg.Credential, opts)
		if err != nil {
			return nil, fmt.Errorf("store: table: %w", err)
		}
	default:
		return nil, errors.New("store: table: no connection string or service URL")
	}

	names := [3]string{prefix + "tasks", prefix + "notifications", prefix + "audit"}
	for _, name := range names {
		if _, err := svc.CreateTable(ctx, name, nil); err != nil {
			if st, code, ok := tableStatus(err); ok && st == http.StatusConflict && code == string(aztables.TableAlreadyExists) {
				continue
			}
			return nil, tableErr("create table "+name, err)
		}
	}
	return &Store{
		tasks:         svc.NewClient(names[0]),
		notifications: svc.NewClient(names[1]),
		audit:         svc.NewClient(names[2]),
	}, nil
}

// Close marks the store closed: later calls fail with ErrUnavailable. It
// holds no connection of its own (the HTTP transport's are shared).
func (s *Store) Close() error {
	s.closed.Store(true)
	return nil
}

var errTableClosed = fmt.Errorf("%w: table: the store is closed", store.ErrUnavailable)

func (s *Store) checkOpen() error {
	if s.closed.Load() {
		return errTableClosed
	}
	return nil
}

// Keys.

// tableKeyMax is the longest key form of an id kept readable; a longer one
// is hashed. With it every key stays far below the service's 1 KiB (and
// Azurite's 512 characters).
const tableKeyMax = 200

// tableKey returns the key form of an id (see Table): injective, and
// without the characters keys may not hold (/ \ # ? and control
// characters), quotes, '|', '!' or '~' (but for the hash form's leading
// '~').
func tableKey(id string) string {
	const digits = "0123456789abcdef"
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.':
			b.WriteByte(c)
		default:
			b.WriteByte('_')
			b.WriteByte(digits[c>>4])
			b.WriteByte(digits[c&0xf])
		}
		if b.Len() > tableKeyMax {
			sum := sha256.Sum256([]byte(id))
			return "~" + hex.EncodeToString(sum[:])
		}
	}
	return b.String()
}

// Row key prefixes and the audit log's own partitions (see Table).
const (
	taskRowPrefix      = "t|"
	taskIndexPrefix    = "i|"
	notificationPrefix = "u|"
	auditRowPrefix     = "a|"
	auditAllPartition  = "!all"
	auditEventPrefix   = "!ev|"
	auditMarkerRow     = "e"
)

// sortKey is the RowKey part that orders records newest first, then by id
// descending: the inverted time and the inverted id. at must not be before
// 1970 (the store's times never are).
func sortKey(at time.Time, id string) string {
	inv := []byte(id)
	for i, c := range inv {
		switch {
		case '0' <= c && c <= '9':
			inv[i] = "fedcba9876"[c-'0']
		case 'a' <= c && c <= 'f':
			inv[i] = "543210"[c-'a']
		}
	}
	return fmt.Sprintf("%019d|%s", math.MaxInt64-at.UnixMicro(), inv)
}

// Entities. Times are Edm.Int64 microseconds since the Unix epoch (UTC),
// which JSON carries as strings: they come back exactly as written.

const edmInt64 = "Edm.Int64"

// tableCheckUTF8 checks that each named string (name, value, name, value,
// ...) is valid UTF-8: JSON would replace the rest.
func tableCheckUTF8(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if !utf8.ValidString(pairs[i+1]) {
			return store.Invalidf("%s is not valid UTF-8", pairs[i])
		}
	}
	return nil
}

func marshalEntity(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("store: table: encode entity: %w", err)
	}
	return b, nil
}

// Listing.

// tableList returns the page of the entities of partition pk whose RowKey
// starts with prefix (which ends in '|'), after cursor c. conv turns an
// entity into a record (false: skip it); key gives a record's sort key.
func tableList[E, T any](ctx context.Context, s *Store, client *aztables.Client, op, pk, prefix string, limit int, c string,
	conv func(E) (T, bool), key func(T) (time.Time, string)) (store.Page[T], error) {
	size, err := store.PageSize(limit)
	if err != nil {
		return store.Page[T]{}, err
	}
	after, ok, err := store.DecodeCursor(c)
	if err != nil {
		return store.Page[T]{}, err
	}
	lower := prefix
	if ok {
		if after.At.UnixMicro() < 0 {
			return store.Page[T]{}, store.Invalidf("malformed page cursor")
		}
		lower = prefix + sortKey(after.At, after.ID)
	}
	if err := s.checkOpen(); err != nil {
		return store.Page[T]{}, err
	}
	upper := prefix[:len(prefix)-1] + string(prefix[len(prefix)-1]+1)
	filter := fmt.Sprintf("PartitionKey eq '%s' and RowKey gt '%s' and RowKey lt '%s'", odataQuote(pk), odataQuote(lower), odataQuote(upper))
	top := int32(size + 1)
	pager := client.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter, Top: &top})
	items := make([]T, 0, min(size+1, 16))
	for len(items) <= size && pager.More() {
		resp, err := pager.NextPage(ctx)
		if err != nil {
			return store.Page[T]{}, tableErr(op, err)
		}
		for _, raw := range resp.Entities {
			var e E
			if err := json.Unmarshal(raw, &e); err != nil {
				return store.Page[T]{}, fmt.Errorf("%w: table: %s: decode entity: %w", store.ErrUnavailable, op, err)
			}
			if item, ok := conv(e); ok && len(items) <= size {
				items = append(items, item)
			}
		}
	}
	page := store.Page[T]{Items: items}
	if len(items) > size {
		page.Items = items[:size]
		at, id := key(page.Items[size-1])
		page.Next = store.EncodeCursor(at, id)
	}
	return page, nil
}

// odataQuote escapes s for a quoted OData string literal. Keys never hold
// a quote; this is belt and braces.
func odataQuote(s string) string { return strings.ReplaceAll(s, "'", "''") }

// Errors.

// tableServiceError is an answer of the service, said shortly (the
// ResponseError it wraps prints the whole response).
type tableServiceError struct {
	status int
	code   string
	err    error
}

func (e *tableServiceError) Error() string {
	if e.code == "" {
		return "HTTP " + strconv.Itoa(e.status)
	}
	return "HTTP " + strconv.Itoa(e.status) + " " + e.code
}

func (e *tableServiceError) Unwrap() error { return e.err }

// tableStatus returns the HTTP status and error code of a service answer
// in err; for a failed transaction, those of the operation that failed.
func tableStatus(err error) (status int, code string, ok bool) {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return 0, "", false
	}
	if re.StatusCode == http.StatusAccepted && re.RawResponse != nil {
		if st, c := batchFailure(re.RawResponse); st != 0 {
			return st, c, true
		}
	}
	return re.StatusCode, re.ErrorCode, true
}

// hasStatus reports whether err is the service's answer with that status.
func hasStatus(err error, status int) bool {
	st, _, ok := tableStatus(err)
	return ok && st == status
}

// tableErr wraps an error of the service or the network: ErrInvalid
// for a refused record (400, 413), else ErrUnavailable.
func tableErr(op string, err error) error {
	if st, code, ok := tableStatus(err); ok {
		serr := &tableServiceError{status: st, code: code, err: err}
		if st == http.StatusBadRequest || st == http.StatusRequestEntityTooLarge {
			return fmt.Errorf("%w: table: %s: the service refused the record: %w", store.ErrInvalid, op, serr)
		}
		return fmt.Errorf("%w: table: %s: %w", store.ErrUnavailable, op, serr)
	}
	return fmt.Errorf("%w: table: %s: %w", store.ErrUnavailable, op, err)
}

var batchStatusLine = regexp.MustCompile(`HTTP/1\.[01] ([1-5][0-9][0-9])`)

// batchFailure returns the status and error code of the first failed
// operation in a transaction's multipart answer (the service answers a
// failed transaction with 202 and the failure inside); 0 if none is found.
func batchFailure(resp *http.Response) (int, string) {
	body, err := runtime.Payload(resp)
	if err != nil || len(body) == 0 {
		return 0, ""
	}
	if st, code := multipartFailure(resp.Header.Get("Content-Type"), body, 0); st != 0 {
		return st, code
	}
	for _, m := range batchStatusLine.FindAllSubmatch(body, -1) {
		if st, _ := strconv.Atoi(string(m[1])); st >= 400 {
			return st, ""
		}
	}
	return 0, ""
}

func multipartFailure(contentType string, body []byte, depth int) (int, string) {
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil || !strings.HasPrefix(mediaType, "multipart/") || params["boundary"] == "" || depth > 2 {
		return 0, ""
	}
	r := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for {
		part, err := r.NextPart()
		if err != nil {
			return 0, ""
		}
		data, err := io.ReadAll(part)
		if err != nil {
			return 0, ""
		}
		ct := part.Header.Get("Content-Type")
		if strings.HasPrefix(ct, "multipart/") {
			if st, code := multipartFailure(ct, data, depth+1); st != 0 {
				return st, code
			}
			continue
		}
		inner, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), nil)
		if err != nil {
			continue
		}
		innerBody, _ := io.ReadAll(inner.Body)
		_ = inner.Body.Close()
		if inner.StatusCode < 400 {
			continue
		}
		code := inner.Header.Get("x-ms-error-code")
		if code == "" {
			var e struct {
				OData struct {
					Code string `json:"code"`
				} `json:"odata.error"`
			}
			if json.Unmarshal(innerBody, &e) == nil {
				code = e.OData.Code
			}
		}
		return inner.StatusCode, code
	}
}

// backoff waits before read-modify-write round attempt (from 1), or until
// ctx ends.
func backoff(ctx context.Context, op string, attempt int) error {
	d := min(tableBackoff<<min(attempt-1, 16), tableMaxBackoff)
	timer := time.NewTimer(rand.N(d) + time.Millisecond)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("%w: table: %s: %w", store.ErrUnavailable, op, ctx.Err())
	case <-timer.C:
		return nil
	}
}

// Tasks.

// tableMaxAttempts bounds the read-modify-write rounds of one update or
// delete that keeps losing to concurrent writes (only unconditional ones
// retry: a conditional one fails with ErrPreconditionFailed instead).
// Between rounds it waits a random time up to tableBackoff, doubling from
// round to round up to tableMaxBackoff.
const (
	tableMaxAttempts = 20
	tableBackoff     = 5 * time.Millisecond
	tableMaxBackoff  = 250 * time.Millisecond
)

// micros and fromMicros are how times are kept: microseconds since the
// epoch, UTC (the precision store.NormTime keeps).
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }
