package main

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// runTrust is `entra-emulator trust`: the commands that make each kind of
// client trust the emulator's CA. It changes nothing itself.
func runTrust(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("entra-emulator trust", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ca := fs.String("ca", os.Getenv(envCA), "the emulator's CA certificate, PEM (env "+envCA+")")
	stateDir := fs.String("state-dir", "", "the emulator's -state-dir, whose ca.pem to trust")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("trust: unexpected arguments: %v", fs.Args())
	}
	file := *ca
	if file == "" && *stateDir != "" {
		file = filepath.Join(*stateDir, "ca.pem")
	}
	if file == "" {
		return errors.New("trust: pass --state-dir DIR (the emulator's -state-dir) or --ca FILE; an emulator without -state-dir keeps its CA in memory")
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return fmt.Errorf("trust: %w", err)
	}
	spki, err := spkiHash(data)
	if err != nil {
		return fmt.Errorf("trust: %s: %w", abs, err)
	}
	_, err = io.WriteString(stdout, trustCommands(shellQuote(abs), spki))
	return err
}

func trustCommands(ca, spki string) string {
	return `# The Entra emulator's CA is ` + ca + `. It is for development only:
# trust it on a development machine, never in production.

# Debian/Ubuntu system store (curl, wget, most tools); undo: remove the file
# and run sudo update-ca-certificates --fresh
sudo cp ` + ca + ` /usr/local/share/ca-certificates/entra-emulator.crt && sudo update-ca-certificates

# Node.js (adds to Node's own roots)
export NODE_EXTRA_CA_CERTS=` + ca + `

# Python (ssl, urllib, httpx; requests): replaces the default roots in that shell
export SSL_CERT_FILE=` + ca + ` REQUESTS_CA_BUNDLE=` + ca + `

# Go (crypto/x509 on Linux): replaces the system roots in that shell
export SSL_CERT_FILE=` + ca + `

# Chromium, without installing the CA (a throwaway profile)
chromium --user-data-dir="$(mktemp -d)" --ignore-certificate-errors-spki-list=` + spki + `
`
}

// spkiHash is the base64 SHA-256 of the certificate's SubjectPublicKeyInfo,
// what Chromium's --ignore-certificate-errors-spki-list takes.
func spkiHash(pemData []byte) (string, error) {
	block, _ := pem.Decode(pemData)
	if block == nil || block.Type != "CERTIFICATE" {
		return "", errors.New("no PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}

// shellQuote makes s one word for a POSIX shell.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
