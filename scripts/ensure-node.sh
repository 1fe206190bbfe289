#!/bin/sh
# Checks for Node.js and npm (Azurite and the SPA's build and browser tests
# run on them). With either missing, as root on Debian or Ubuntu
# (apt-get), it installs Debian's nodejs and npm; otherwise it stops with
# one line naming what to install.
set -u

have() { command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; }

# The SPA's tools (Vite, TypeScript) need Node.js 20 or later.
MIN_NODE_MAJOR=20
recent() {
	if ! major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null); then
		echo "$(command -v node) does not run: reinstall Node.js $MIN_NODE_MAJOR or later (https://nodejs.org)" >&2
		return 1
	fi
	if [ "$major" -lt "$MIN_NODE_MAJOR" ]; then
		echo "Node.js $(node --version) is too old: install Node.js $MIN_NODE_MAJOR or later (https://nodejs.org)" >&2
		return 1
	fi
}

if have; then
	recent
	exit
fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "Node.js or npm is missing: installing Debian's nodejs and npm with apt-get" >&2
	if DEBIAN_FRONTEND=noninteractive apt-get update >&2 &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm >&2; then
		if have; then
			recent
			exit
		fi
	fi
	echo "apt-get could not install nodejs and npm: install Node.js 20 or later with npm (https://nodejs.org)" >&2
	exit 1
fi

if command -v node >/dev/null 2>&1; then
	echo "Node.js is installed but npm is not: install npm (Debian/Ubuntu: apt-get install npm)" >&2
else
	echo "Node.js 20 or later with npm is needed (Azurite for the Table Storage tests, the SPA's build and browser test): install them (https://nodejs.org; Debian/Ubuntu: apt-get install nodejs npm)" >&2
fi
exit 1
