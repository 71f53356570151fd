#!/usr/bin/env bash
# Installs the Chromium that the browser tests drive (Debian's `chromium` package).
#
# Playwright's own browser download (`playwright install`) cannot work on our machines,
# so the tests use /usr/bin/chromium instead. Needs root or password-less sudo; otherwise it
# only explains what to do and exits 0 (browser tests are then skipped, and CI fails on skips).
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [[ -x "$CHROMIUM" ]]; then
    echo "install-browser: $CHROMIUM is already installed"
    exit 0
fi

if [[ "$(id -u)" -eq 0 ]]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
else
    cat >&2 <<MSG
install-browser: $CHROMIUM is missing and this user can neither install packages as root
nor use sudo without a password. Install it yourself, then re-run make test:

    sudo apt-get update && sudo apt-get install -y chromium

Until then the browser tests are skipped (and a CI run fails because of those skips).
MSG
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: apt-get not found; install Chromium as $CHROMIUM by hand" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-browser: installing Debian's chromium package (about 30 s)"
"${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=300 update -q
"${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=300 install -y -q chromium

if [[ ! -x "$CHROMIUM" ]]; then
    echo "install-browser: apt-get finished but $CHROMIUM is still missing" >&2
    exit 1
fi
echo "install-browser: installed $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
