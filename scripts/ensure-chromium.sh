#!/bin/sh
# Prints the path of a Chromium for the browser tests (make browser-test):
# $CHROMIUM when set, else the first of chromium, chromium-browser and
# google-chrome on PATH. With none, as root on Debian or Ubuntu (apt-get),
# it installs Debian's chromium; otherwise it stops with one line naming
# the package. Everything but the path goes to stderr.
set -u

if [ -n "${CHROMIUM:-}" ]; then
	if [ -x "$CHROMIUM" ] || command -v "$CHROMIUM" >/dev/null 2>&1; then
		command -v "$CHROMIUM"
		exit 0
	fi
	echo "CHROMIUM=$CHROMIUM is not an executable: unset it or point it at Chromium or Google Chrome" >&2
	exit 1
fi

find_browser() {
	for b in chromium chromium-browser google-chrome; do
		if command -v "$b" >/dev/null 2>&1; then
			command -v "$b"
			return 0
		fi
	done
	return 1
}

find_browser && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "no Chromium found: installing Debian's chromium with apt-get" >&2
	if DEBIAN_FRONTEND=noninteractive apt-get update >&2 &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >&2; then
		find_browser && exit 0
	fi
	echo "apt-get could not install chromium: install Chromium (Debian/Ubuntu: apt-get install chromium) or set CHROMIUM=/path/to/chrome" >&2
	exit 1
fi

echo "the browser tests need Chromium: install it (Debian/Ubuntu: apt-get install chromium; macOS: brew install --cask chromium) or set CHROMIUM=/path/to/chrome" >&2
exit 1
