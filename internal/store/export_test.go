package store

import (
	"database/sql"
	"time"
)

// Test access to the SQLite store's internals, for sqlite_test.go (package
// store_test, which imports storetest, which imports store).

// OpenSQLiteBusyTimeout is OpenSQLite with another busy timeout.
func OpenSQLiteBusyTimeout(path string, busyTimeout time.Duration) (*SQLite, error) {
	return openSQLite(path, busyTimeout)
}

// DB returns the store's database handle.
func (s *SQLite) DB() *sql.DB { return s.db }

// SchemaVersion is the schema version OpenSQLite migrates to.
var SchemaVersion = len(sqliteMigrations)
