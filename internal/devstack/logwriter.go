package devstack

import (
	"bytes"
	"fmt"
	"io"
	"sync"
)

// syncWriter serializes writes to w, so lines of several processes never
// interleave on one output. Once closed it drops what it is given, so a
// straggling background goroutine never writes to an output its owner has
// given back (a test's log, say).
type syncWriter struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return len(p), nil
	}
	return s.w.Write(p)
}

func (s *syncWriter) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

// maxLine bounds a buffered partial line; a longer line is cut into pieces.
const maxLine = 64 << 10

// lineWriter writes each complete line to out in one Write, prefixed.
type lineWriter struct {
	out    io.Writer
	prefix string

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
	msg := make([]byte, 0, len(l.prefix)+len(line)+1)
	msg = append(msg, l.prefix...)
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
