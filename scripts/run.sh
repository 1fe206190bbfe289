#!/bin/sh
# make run (and make demo): builds bin/devstack and execs it with the
# arguments given (default: run), so SIGINT and SIGTERM reach devstack itself (which stops everything and exits 0) rather than a `go run`
# in between. devstack then checks its ports before building anything else.
# A cold build prints a line every 10 s: the first one downloads and
# compiles the Go modules, which takes a minute or two.
set -eu
cd "$(dirname "$0")/.."
GO=${GO:-go}
if ! command -v "$GO" >/dev/null 2>&1; then
	echo "devstack: make run needs Go (https://go.dev/dl; the version go.mod names, or later)" >&2
	exit 1
fi

if [ ! -x bin/devstack ]; then
	echo "devstack: building bin/devstack (the first build downloads and compiles the Go modules: a minute or two)" >&2
fi
(
	n=0
	while sleep 10; do
		n=$((n + 10))
		echo "devstack: still building bin/devstack (${n} s)" >&2
	done
) &
ticker=$!
status=0
"$GO" build -o bin/devstack ./cmd/devstack || status=$?
kill "$ticker" 2>/dev/null || true
[ "$status" = 0 ] || exit "$status"
[ $# -gt 0 ] || set -- run
exec bin/devstack "$@"
