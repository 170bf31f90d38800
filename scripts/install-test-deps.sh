#!/usr/bin/env bash
# Installs the Debian packages the tests need. Safe to run repeatedly: it
# only calls apt-get when something is missing.
set -euo pipefail

# command -> Debian package
declare -A need=(
  [dig]=dnsutils
  [kdig]=knot-dnsutils
  [/usr/sbin/sshd]=openssh-server
  [chromium]=chromium
  [redis-server]=redis-server
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
# PostgreSQL's server binaries (initdb, postgres, pg_basebackup, pg_rewind)
# live in /usr/lib/postgresql/<version>/bin, not on PATH.
compgen -G '/usr/lib/postgresql/*/bin/pg_rewind' >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-test-deps: all present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
echo "install-test-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
