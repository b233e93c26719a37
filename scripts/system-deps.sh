#!/usr/bin/env bash
# Debian packages the project drives for real. Installs only what is missing, and only where it can (root with
# apt-get); otherwise says what to install.
#
#   bash scripts/system-deps.sh           everything the tests need: Chromium (web chat browser test), SIPp
#                                         (sip-tester), baresip, espeak-ng and sox (tests/test_callbot.py), haproxy
#                                         (the scale check in front of two instances, tests/test_scale_check.py)
#   bash scripts/system-deps.sh runtime   what the running assistant needs: espeak-ng and sox, the phone line's
#                                         voice (scripts/run.sh; without them the phone line stays off, nothing else)
set -euo pipefail

need=()
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
command -v sox >/dev/null 2>&1 || need+=(sox)
if [ "${1:-}" != runtime ]; then
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
  command -v baresip >/dev/null 2>&1 || need+=(baresip)
  command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
fi
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: missing ${need[*]}; install them with your package manager (Debian: apt-get install ${need[*]})." \
       "Without them the phone line stays off and the tests that need them are skipped (outside CI)." >&2
  exit 0
fi
echo "system-deps: installing ${need[*]} from Debian's packages" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
  || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
