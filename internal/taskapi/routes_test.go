package taskapi

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestRoutesAreTheFunctionJSON: the routes New serves (the routes table)
// are exactly the HTTP triggers of functions/task/*/function.json, with
// the host's route prefix api.
func TestRoutesAreTheFunctionJSON(t *testing.T) {
	files, err := filepath.Glob("../../functions/task/*/function.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no function.json files: %v", err)
	}
	var declared []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var fn struct {
			Bindings []struct {
				Type    string   `json:"type"`
				Route   string   `json:"route"`
				Methods []string `json:"methods"`
			} `json:"bindings"`
		}
		if err := json.Unmarshal(b, &fn); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, b := range fn.Bindings {
			if b.Type != "httpTrigger" {
				continue
			}
			for _, m := range b.Methods {
				declared = append(declared, strings.ToUpper(m)+" /api/"+b.Route)
			}
		}
	}
	var served []string
	for _, rt := range Routes() {
		served = append(served, rt.Method+" "+rt.Pattern)
	}
	slices.Sort(declared)
	slices.Sort(served)
	if !slices.Equal(declared, served) {
		t.Errorf("function.json declares\n  %s\nthe Task API serves\n  %s", strings.Join(declared, "\n  "), strings.Join(served, "\n  "))
	}
	// The router serves what Routes lists: a route it did not have answers 404.
	h := newHarness(t, nil)
	for _, rt := range Routes() {
		path := strings.ReplaceAll(rt.Pattern, "{id}", "0123456789abcdef0123456789abcdef")
		if r := h.do(t, rt.Method, path, h.alice, ""); r.status == 404 && !strings.Contains(rt.Pattern, "{id}") || r.status == 405 {
			t.Errorf("%s %s: %d, a route the router does not serve", rt.Method, rt.Pattern, r.status)
		}
	}
}
