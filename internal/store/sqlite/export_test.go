package sqlite

import (
	"database/sql"
	"time"
)

// Test access to the SQLite store's internals, for sqlite_test.go (package
// sqlite_test, which imports storetest, which imports store).

// OpenBusyTimeout is Open with another busy timeout.
func OpenBusyTimeout(path string, busyTimeout time.Duration) (*Store, error) {
	return openWith(path, busyTimeout)
}

// DB returns the store's database handle.
func (s *Store) DB() *sql.DB { return s.db }

// SchemaVersion is the schema version Open migrates to.
var SchemaVersion = len(sqliteMigrations)

// Migrations are the schema's steps, for tests that build an older database.
var Migrations = sqliteMigrations
