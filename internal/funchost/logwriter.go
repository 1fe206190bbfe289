package funchost

import (
	"bytes"
	"fmt"
	"io"
	"sync"
)

// SyncWriter serializes writes to w, so lines of several processes never
// interleave on one output. Once closed it drops what it is given, so a
// straggling background goroutine never writes to an output its owner has
// given back (a test's log, say).
type SyncWriter struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

func (s *SyncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return len(p), nil
	}
	return s.w.Write(p)
}

// NewSyncWriter serializes writes to w.
func NewSyncWriter(w io.Writer) *SyncWriter { return &SyncWriter{w: w} }

// Close makes later writes drop what they are given.
func (s *SyncWriter) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

// maxLine bounds a buffered partial line; a longer line is cut into pieces.
const maxLine = 64 << 10

// PrefixLines returns a writer that writes each complete line to out in
// one Write, prefixed.
func PrefixLines(out io.Writer, prefix string) io.Writer { return newLineWriter(out, prefix) }

// lineWriter writes each complete line to out in one Write, prefixed: by
// warnPrefix, when set, if the line contains "warn" (any case), as the host
// logs a worker's stderr line containing it at Warning rather than Error
// (WorkerProcess.cs:120-125).
type lineWriter struct {
	out        io.Writer
	prefix     string
	warnPrefix string

	mu  sync.Mutex
	buf []byte
}

func newLineWriter(out io.Writer, prefix string) *lineWriter {
	return &lineWriter{out: out, prefix: prefix}
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			if len(l.buf) >= maxLine {
				l.emit(l.buf)
				l.buf = l.buf[:0]
			}
			break
		}
		l.emit(l.buf[:i])
		l.buf = l.buf[i+1:]
	}
	// Output errors are not the writer's problem: a child must never block
	// or fail because the log reader went away.
	return len(p), nil
}

func (l *lineWriter) emit(line []byte) {
	line = bytes.TrimSuffix(line, []byte("\r"))
	prefix := l.prefix
	if l.warnPrefix != "" && bytes.Contains(bytes.ToLower(line), []byte("warn")) {
		prefix = l.warnPrefix
	}
	msg := make([]byte, 0, len(prefix)+len(line)+1)
	msg = append(msg, prefix...)
	msg = append(msg, line...)
	msg = append(msg, '\n')
	_, _ = l.out.Write(msg)
}

// flush writes a last line without a newline, if any.
func (l *lineWriter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.emit(l.buf)
		l.buf = nil
	}
}

func (l *lineWriter) printf(format string, args ...any) {
	l.emit(fmt.Appendf(nil, format, args...))
}
