#!/bin/sh
# Checks for Node.js and npm (Azurite and the SPA's build and browser tests
# run on them). With either missing, as root on Debian or Ubuntu
# (apt-get), it installs Debian's nodejs and npm; otherwise it stops with
# one line naming what to install.
set -u

have() { command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; }

have && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "Node.js or npm is missing: installing Debian's nodejs and npm with apt-get" >&2
	if DEBIAN_FRONTEND=noninteractive apt-get update >&2 &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm >&2; then
		have && exit 0
	fi
	echo "apt-get could not install nodejs and npm: install Node.js 20 or later with npm (https://nodejs.org)" >&2
	exit 1
fi

if command -v node >/dev/null 2>&1; then
	echo "Node.js is installed but npm is not: install npm (Debian/Ubuntu: apt-get install npm)" >&2
else
	echo "make test needs Node.js 20 or later with npm (Azurite, the SPA's build and browser test): install them (https://nodejs.org; Debian/Ubuntu: apt-get install nodejs npm)" >&2
fi
exit 1
