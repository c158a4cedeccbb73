#!/usr/bin/env bash
# The browser the web app's tests drive: Debian's chromium package at /usr/bin/chromium.
# Playwright's own browser download is never used (nothing but package registries is reachable).
# Installs only when the browser is missing and this is root on a system with apt-get; otherwise
# says why it did nothing and exits 0 (the browser tests then skip, naming /usr/bin/chromium).
set -euo pipefail

BROWSER=/usr/bin/chromium

if [[ -x "$BROWSER" ]]; then
    echo "install-browser: $BROWSER is already installed: $("$BROWSER" --version 2>/dev/null | tail -n 1)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: $BROWSER is missing and apt-get is not available: install Chromium by hand" >&2
    exit 0
fi
if [[ "$(id -u)" != "0" ]]; then
    echo "install-browser: $BROWSER is missing; run as root (or: sudo apt-get install -y chromium)" >&2
    exit 0
fi
echo "install-browser: installing Debian's chromium package"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends chromium
"$BROWSER" --version 2>/dev/null | tail -n 1
