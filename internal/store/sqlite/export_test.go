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

// UncachedInTx counts the statements run in a transaction without a
// prepared statement (a query missing from txStatements).
func (s *Store) UncachedInTx() int64 { return s.stmts.uncachedInTx.Load() }

// CachedStatements counts the store's prepared statements.
func (s *Store) CachedStatements() int {
	s.stmts.mu.Lock()
	defer s.stmts.mu.Unlock()
	return len(s.stmts.stmts)
}

// MaxCachedStatements is the bound of a store's prepared statements.
const MaxCachedStatements = maxCachedStatements

// SetStatementBound sets the bound of the store's prepared statements.
func (s *Store) SetStatementBound(n int) {
	s.stmts.mu.Lock()
	defer s.stmts.mu.Unlock()
	s.stmts.max = n
}

// ForgetStatements closes the store's prepared statements, so that every
// statement is prepared anew (with the bound at 0).
func (s *Store) ForgetStatements() { s.closeStatements() }

// SetDeliveredDelay sets how long a delivered event's delete waits for a
// task write (deliveredFlushDelay).
func (s *Store) SetDeliveredDelay(d time.Duration) {
	s.delivered.mu.Lock()
	defer s.delivered.mu.Unlock()
	s.delivered.delay = d
}

// MaxDeliveredNotes is the bound of the delivered events noted.
const MaxDeliveredNotes = maxDeliveredNotes
