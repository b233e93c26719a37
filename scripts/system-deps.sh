#!/usr/bin/env bash
# Debian packages the tests drive for real: Chromium for the web chat's browser test; SIPp (sip-tester), baresip,
# espeak-ng and sox for the phone line's tests (tests/test_callbot.py). The callbot itself needs espeak-ng and sox to speak.
# Installs only what is missing, and only where it can (root with apt-get); otherwise says what to install.
# Apart from espeak-ng and sox for the phone line, nothing here is needed to run the assistant itself.
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
command -v sox >/dev/null 2>&1 || need+=(sox)
command -v baresip >/dev/null 2>&1 || need+=(baresip)
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: missing ${need[*]}; install them with your package manager (Debian: apt-get install ${need[*]})." \
       "The tests that need them are skipped outside CI." >&2
  exit 0
fi
echo "system-deps: installing ${need[*]} from Debian's packages" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
  || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
