#!/usr/bin/env bash
# The HTML report test drives a real headless Chromium: Debian's package, installed here where
# missing (CI runs this before `npm test`; the test itself never installs anything).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "test/report/ensure-chromium.sh: /usr/bin/chromium is missing; install Debian's chromium package (apt-get install chromium) as root" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
/usr/bin/chromium --version
