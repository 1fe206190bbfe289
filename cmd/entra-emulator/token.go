package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/handoff-dev/handoff/emulator/entra"
)

// Environment variables the client subcommands read as defaults.
const (
	envURL = "ENTRA_EMULATOR_URL" // the running emulator's base URL
	envCA  = "ENTRA_EMULATOR_CA"  // its CA certificate (PEM file)
)

// runToken is `entra-emulator token`: a token from the running emulator.
func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("entra-emulator token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: entra-emulator token --user bob --resource API [flags]   (a delegated token)")
		fmt.Fprintln(stderr, "       entra-emulator token --app CLIENT --resource API [flags] (an app-only token)")
		fs.PrintDefaults()
	}
	c := clientFlags(fs)
	var req entra.MintRequest
	fs.StringVar(&req.User, "user", "", "user: username, oid, or a bare name (bob) in any tenant")
	fs.StringVar(&req.Client, "app", "", "calling app's client id (app-only token; or the client of a user token)")
	fs.StringVar(&req.Resource, "resource", "", "the API: client id or identifier URI (required)")
	scopes := fs.String("scopes", "", "scope values of the resource, comma or space separated (default: those consented)")
	fs.StringVar(&req.Tenant, "tenant", "", "tenant id or domain (default: the user's tenant, or the app's home tenant)")
	lifetime := fs.Duration("lifetime", 0, fmt.Sprintf("token lifetime, at most %s (default: the emulator's, 1h)", entra.MaxMintLifetime))
	claims := fs.String("claims", "", `JSON object merged into the claims last; null removes a claim: '{"roles":["Admin"],"name":null}'`)
	asJSON := fs.Bool("json", false, "print the whole token response as JSON")
	fs.BoolVar(&req.Expired, "expired", false, "wrong on purpose: expired an hour ago")
	fs.BoolVar(&req.NotYetValid, "not-yet-valid", false, "wrong on purpose: valid from an hour from now")
	fs.StringVar(&req.Audience, "audience", "", "wrong on purpose: this aud instead")
	fs.StringVar(&req.Issuer, "issuer", "", "wrong on purpose: this iss instead")
	fs.BoolVar(&req.BadSignature, "bad-signature", false, "wrong on purpose: the current kid, signed by another key")
	fs.BoolVar(&req.UnknownKID, "unknown-kid", false, "wrong on purpose: a kid the emulator never published")
	fs.BoolVar(&req.V1, "v1", false, "a v1 token (ver 1.0, sts-style issuer) whatever the resource asks for")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("token: unexpected arguments: %v", fs.Args())
	}
	if req.Resource == "" || (req.User == "" && req.Client == "") {
		return errors.New("token: --resource and one of --user or --app are required (see entra-emulator token -h)")
	}
	req.Scopes = strings.FieldsFunc(*scopes, func(r rune) bool { return r == ',' || r == ' ' })
	if *lifetime < 0 || *lifetime%time.Second != 0 {
		return errors.New("token: --lifetime must be a positive whole number of seconds")
	}
	req.LifetimeSeconds = int64(*lifetime / time.Second)
	if *claims != "" {
		if err := json.Unmarshal([]byte(*claims), &req.Claims); err != nil || req.Claims == nil {
			return fmt.Errorf("token: --claims must be a JSON object: %v", err)
		}
	}
	hc, err := c.httpClient()
	if err != nil {
		return err
	}
	resp, err := entra.Mint(ctx, hc, c.url, req)
	if err != nil {
		return explainTLS(err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(resp)
	}
	_, err = fmt.Fprintln(stdout, resp.AccessToken)
	return err
}

// emulatorClient says where the running emulator is and how to trust it.
type emulatorClient struct {
	url, ca, stateDir string
}

func clientFlags(fs *flag.FlagSet) *emulatorClient {
	c := &emulatorClient{}
	url := os.Getenv(envURL)
	if url == "" {
		url = entra.DefaultBaseURL
	}
	fs.StringVar(&c.url, "url", url, "the running emulator's base URL (env "+envURL+")")
	fs.StringVar(&c.ca, "ca", os.Getenv(envCA), "the emulator's CA certificate, PEM (env "+envCA+"; default: STATE-DIR/ca.pem, else the system's roots)")
	fs.StringVar(&c.stateDir, "state-dir", "", "the emulator's -state-dir, whose ca.pem to trust")
	return c
}

// caFile is the CA file to trust, or "" for the system's roots.
func (c *emulatorClient) caFile() string {
	if c.ca == "" && c.stateDir != "" {
		return filepath.Join(c.stateDir, "ca.pem")
	}
	return c.ca
}

func (c *emulatorClient) httpClient() (*http.Client, error) {
	f := c.caFile()
	if f == "" {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
	}
	pem, err := os.ReadFile(f)
	if err != nil {
		return nil, fmt.Errorf("the emulator's CA: %w", err)
	}
	hc, err := entra.ClientTrusting(pem)
	if err != nil {
		return nil, fmt.Errorf("the emulator's CA: %s holds %w", f, err)
	}
	return hc, nil
}

// explainTLS turns an untrusted-certificate error into the flag to pass.
func explainTLS(err error) error {
	var unknown x509.UnknownAuthorityError
	var verify *tls.CertificateVerificationError
	if errors.As(err, &unknown) || errors.As(err, &verify) {
		return fmt.Errorf("the emulator's certificate is not trusted: pass --ca DIR/ca.pem or --state-dir DIR (the emulator's -state-dir): %w", err)
	}
	return err
}
