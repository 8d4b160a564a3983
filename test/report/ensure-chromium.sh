#!/usr/bin/env bash
# The HTML report test (test/report/browser.test.ts) drives a real headless Chromium: Debian's
# package at /usr/bin/chromium, with a font for the page's text. Installed here where missing;
# .ci/run calls this before `npm test`, and the test itself never installs anything.
set -euo pipefail
PACKAGES=(chromium fonts-dejavu-core)
if [ -x /usr/bin/chromium ] && dpkg -s "${PACKAGES[@]}" >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "test/report/ensure-chromium.sh: install Debian's ${PACKAGES[*]} as root (apt-get install ${PACKAGES[*]})" >&2
  exit 1
fi
echo "installing ${PACKAGES[*]} for the HTML report test"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
/usr/bin/chromium --version 2>/dev/null
