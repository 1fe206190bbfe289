//go:build unix

package devstack_test

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/handoff-dev/handoff/handler/funcapp"
	"github.com/handoff-dev/handoff/internal/auditapi"
	"github.com/handoff-dev/handoff/internal/devstack"
	"github.com/handoff-dev/handoff/internal/funchost"
	"github.com/handoff-dev/handoff/internal/notifyapi"
	"github.com/handoff-dev/handoff/internal/taskapi"
)

// TestLoadRoutesMatchesTheApps: the routes the host reads from each app's
// function.json files are the routes the app serves.
func TestLoadRoutesMatchesTheApps(t *testing.T) {
	prefix, err := funchost.RoutePrefix(filepath.Join(repoRoot(), "host.json"))
	if err != nil || prefix != "api" {
		t.Fatalf("route prefix %q, %v; want api", prefix, err)
	}
	for app, want := range map[string][]funcapp.Route{
		devstack.AppTask: taskapi.Routes(), devstack.AppNotification: notifyapi.Routes(), devstack.AppAudit: auditapi.Routes(),
	} {
		routes, err := funchost.LoadRoutes(filepath.Join(repoRoot(), "functions", app), prefix)
		if err != nil {
			t.Fatal(err)
		}
		var got []funcapp.Route
		for _, rt := range routes {
			for _, m := range rt.Methods {
				got = append(got, funcapp.Route{Method: m, Pattern: rt.Template})
			}
		}
		key := func(r funcapp.Route) string { return r.Method + " " + r.Pattern }
		var gotKeys, wantKeys []string
		for _, r := range got {
			gotKeys = append(gotKeys, key(r))
		}
		for _, r := range want {
			wantKeys = append(wantKeys, key(r))
		}
		slices.Sort(gotKeys)
		slices.Sort(wantKeys)
		if !slices.Equal(gotKeys, wantKeys) {
			t.Errorf("%s: function.json declares %v, the app serves %v", app, gotKeys, wantKeys)
		}
	}
}
