package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/handoff-dev/handoff/internal/devstack"
)

// runInfoFile is where a running devstack describes itself, in its state
// directory: `devstack token` and tests read it.
const runInfoFile = "devstack.json"

// runInfo is a running devstack: its URLs, CA file and process ids.
type runInfo struct {
	PID          int            `json:"pid"`
	Entra        string         `json:"entra"`
	KeyVault     string         `json:"keyvault"`
	Task         string         `json:"task"`
	Notification string         `json:"notification"`
	Audit        string         `json:"audit"`
	CAFile       string         `json:"ca_file"`
	Handlers     map[string]int `json:"handlers"` // app → pid at start
	// Traces is devstack's trace receiver ("" when it runs none);
	// OTLPEndpoint is where the apps send their spans ("" when nowhere).
	Traces       string `json:"traces,omitempty"`
	OTLPEndpoint string `json:"otlp_endpoint,omitempty"`
}

// writeRunInfo writes s's runInfo into stateDir, atomically, and returns
// the file's path.
func writeRunInfo(stateDir string, s *devstack.Stack) (string, error) {
	info := runInfo{
		PID: os.Getpid(), Entra: s.Entra.BaseURL(), KeyVault: s.Vault.BaseURL(),
		Task: s.URL(devstack.AppTask), Notification: s.URL(devstack.AppNotification), Audit: s.URL(devstack.AppAudit),
		CAFile: s.CAFile(), Handlers: map[string]int{}, Traces: s.TracesURL(), OTLPEndpoint: s.OTLPEndpoint(),
	}
	for _, app := range devstack.Apps() {
		info.Handlers[app] = s.PID(app)
	}
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(stateDir, runInfoFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return "", err
	}
	return path, os.Rename(tmp, path)
}

// readRunInfo reads the runInfo of the devstack running with stateDir.
func readRunInfo(stateDir string) (runInfo, error) {
	path := filepath.Join(stateDir, runInfoFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return runInfo{}, fmt.Errorf("no devstack is running with state in %s (no %s): start one with `make run`", relative(stateDir), runInfoFile)
	}
	if err != nil {
		return runInfo{}, err
	}
	var info runInfo
	if err := json.Unmarshal(b, &info); err != nil || info.Entra == "" || info.CAFile == "" {
		return runInfo{}, fmt.Errorf("%s is not a devstack's description (restart `make run`)", relative(path))
	}
	return info, nil
}
