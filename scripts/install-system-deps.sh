#!/bin/sh
# Install the Debian packages the test suite needs beyond Python's, listed in
# scripts/system-deps*.txt (one per line; '#' starts a comment).
# Idempotent: when every package is installed it only checks and exits, touching no
# network; otherwise it runs apt-get update once and installs what is missing. A
# package that cannot be installed fails the command (and so `make test`): the tests
# that need it would fail anyway, and a skipped check must never pass for a run one.
set -eu

here=$(dirname "$0")
PACKAGES=$(sed -e 's/#.*//' "$here"/system-deps*.txt | tr -s ' \t\n' ' ')

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "install-system-deps: not a Debian-like system (no dpkg-query); install these by hand: $PACKAGES" >&2
    exit 1
fi

missing=""
for p in $PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
        *" installed") ;;
        *) missing="$missing $p" ;;
    esac
done
[ -z "$missing" ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "install-system-deps: missing$missing and not root (no sudo): install them first" >&2
        exit 1
    fi
fi
echo "install-system-deps: installing$missing"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=300 $missing
