// Package backend opens the store the settings choose: SQLite or Azure
// Table Storage. It is a package of its own because it imports both
// backends, which import store.
package backend

import (
	"context"
	"fmt"
	"github.com/handoff-dev/handoff/internal/store"
	"github.com/handoff-dev/handoff/internal/store/sqlite"
	"github.com/handoff-dev/handoff/internal/store/table"
	"os"
	"path/filepath"
	"strings"
)

// Settings Open reads.
const (
	EnvBackend = "STORAGE_BACKEND" // sqlite (default) | table
	// envAzureSite is set on every App Service and Functions instance: in
	// Azure, instances scale out and are recycled, so only the Table
	// backend keeps state.
	envAzureSite = "WEBSITE_SITE_NAME"
)

// Open opens the backend STORAGE_BACKEND names: SQLite at dataDir/name.db
// (the default, for local and single-instance runs), or Azure Table
// Storage configured the Functions way (see table.ConfigFromEnv). In Azure
// (WEBSITE_SITE_NAME set) SQLite is refused. The store is traced
// (store.Traced) with the global OpenTelemetry provider.
func Open(ctx context.Context, getenv func(string) string, dataDir, name string) (store.Store, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	backend := strings.ToLower(strings.TrimSpace(getenv(EnvBackend)))
	switch backend {
	case "", "sqlite":
		if getenv(envAzureSite) != "" {
			return nil, fmt.Errorf("store: %s=sqlite in Azure: instance disks are not shared or kept; set %s=table", EnvBackend, EnvBackend)
		}
		s, err := sqlite.Open(filepath.Join(dataDir, name+".db"))
		if err != nil {
			return nil, err
		}
		return store.Traced(s, store.SystemSQLite, nil), nil
	case "table":
		cfg, err := table.ConfigFromEnv(getenv)
		if err != nil {
			return nil, err
		}
		s, err := table.Open(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return store.Traced(s, store.SystemAzureTables, nil), nil
	}
	return nil, fmt.Errorf("store: %s=%q is not sqlite or table", EnvBackend, backend)
}
