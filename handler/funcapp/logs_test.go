package funcapp_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/handoff-dev/handoff/handler/funcapp"
)

func TestLogHandlerSplitsByLevel(t *testing.T) {
	var stdout, stderr bytes.Buffer
	log := slog.New(funcapp.NewLogHandler(&stdout, &stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("app", "task").WithGroup("g")
	log.Debug("d")
	log.Info("i", "k", 1)
	log.Warn("w")
	log.Error("e", "error", "boom")
	lines := func(b *bytes.Buffer) (msgs []string) {
		for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("not JSON: %q", line)
			}
			if rec["app"] != "task" {
				t.Errorf("the logger's attributes were lost: %s", line)
			}
			msgs = append(msgs, rec["msg"].(string)+" "+rec["level"].(string))
		}
		return msgs
	}
	if got := strings.Join(lines(&stdout), ", "); got != "d DEBUG, i INFO" {
		t.Errorf("stdout has %s", got)
	}
	if got := strings.Join(lines(&stderr), ", "); got != "w WARN, e ERROR" {
		t.Errorf("stderr has %s", got)
	}
	// The host logs a stderr line at Warning when it contains "warn", else
	// at Error: the Warn record says WARN, the Error record does not.
	w, e, _ := strings.Cut(stderr.String(), "\n")
	if !strings.Contains(strings.ToLower(w), "warn") || strings.Contains(strings.ToLower(e), "warn") {
		t.Errorf("the host would misread the levels: %q, %q", w, e)
	}
	quiet := slog.New(funcapp.NewLogHandler(&stdout, &stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	if quiet.Enabled(t.Context(), slog.LevelWarn) || !quiet.Enabled(t.Context(), slog.LevelError) {
		t.Error("the level option is not applied")
	}
}
