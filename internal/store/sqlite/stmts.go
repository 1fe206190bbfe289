package sqlite

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
)

// Statements run through prepared statements kept for the life of the
// store: SQLite parses and plans a statement when it is prepared, and
// parsing was about a tenth of each service's CPU per create when every
// call prepared its statement anew (make bench-load, docs/performance.md).

// maxCachedStatements bounds the prepared statements a store keeps. This
// package runs a few dozen distinct queries (constants, and a listing's
// few shapes); past the bound a query runs unprepared, as before.
const maxCachedStatements = 128

// stmtCache holds the store's prepared statements by query text.
type stmtCache struct {
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
	max   int // maxCachedStatements; tests lower it
	// uncachedInTx counts statements run in a transaction without a
	// prepared statement (see txStatements); tests expect none.
	uncachedInTx atomic.Int64
}

// txStatements are the queries run inside transactions, prepared when the
// store opens: a transaction holds the store's one connection, so a
// statement cannot be prepared on the database (which would wait for that
// connection) while one runs.
var txStatements = []string{
	insertTaskSQL, insertEventSQL, updateTaskSQL, deleteTaskSQL,
	selectIdempotencySQL, deleteIdempotencySQL, insertIdempotencySQL,
	deleteDeliveredSQL, replayDeadSQL,
}

// prepareAll prepares queries and keeps them.
func (s *Store) prepareAll(ctx context.Context, queries []string) error {
	for _, q := range queries {
		if _, err := s.prepared(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// prepared returns query's prepared statement, preparing it on first use;
// nil, without error, once the cache is full.
func (s *Store) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if st := s.cached(query); st != nil {
		return st, nil
	}
	c := &s.stmts
	c.mu.Lock()
	full := len(c.stmts) >= c.max
	c.mu.Unlock()
	if full {
		return nil, nil
	}
	// Prepared without the lock held: preparing waits for the connection.
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prior, ok := c.stmts[query]; ok { // prepared meanwhile by another call
		_ = st.Close()
		return prior, nil
	}
	if c.stmts == nil {
		c.stmts = map[string]*sql.Stmt{}
	}
	c.stmts[query] = st
	return st, nil
}

// cached returns query's prepared statement, or nil.
func (s *Store) cached(query string) *sql.Stmt {
	s.stmts.mu.Lock()
	defer s.stmts.mu.Unlock()
	return s.stmts.stmts[query]
}

// closeStatements closes the prepared statements.
func (s *Store) closeStatements() {
	s.stmts.mu.Lock()
	defer s.stmts.mu.Unlock()
	for _, st := range s.stmts.stmts {
		_ = st.Close()
	}
	s.stmts.stmts = nil
}

// runner runs statements on the store's database, or in tx when tx is not
// nil, through the store's prepared statements.
type runner struct {
	s  *Store
	tx *sql.Tx
}

func (s *Store) run() runner { return runner{s: s} }

// stmt is query's prepared statement for this runner, or nil to run it
// unprepared.
func (r runner) stmt(ctx context.Context, query string) *sql.Stmt {
	if r.tx != nil {
		st := r.s.cached(query)
		if st == nil {
			r.s.stmts.uncachedInTx.Add(1)
			return nil
		}
		return r.tx.StmtContext(ctx, st)
	}
	st, err := r.s.prepared(ctx, query)
	if err != nil {
		return nil // the unprepared run reports the error
	}
	return st
}

func (r runner) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := r.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	if r.tx != nil {
		return r.tx.ExecContext(ctx, query, args...)
	}
	return r.s.db.ExecContext(ctx, query, args...)
}

func (r runner) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := r.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	if r.tx != nil {
		return r.tx.QueryContext(ctx, query, args...)
	}
	return r.s.db.QueryContext(ctx, query, args...)
}

func (r runner) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := r.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	if r.tx != nil {
		return r.tx.QueryRowContext(ctx, query, args...)
	}
	return r.s.db.QueryRowContext(ctx, query, args...)
}
