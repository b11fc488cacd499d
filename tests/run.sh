#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine (as root): system packages, the project, lint, tests.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v postconf >/dev/null || need+=(postfix)
command -v promtool >/dev/null || need+=(prometheus)
command -v chromium >/dev/null || need+=(chromium)
command -v patchelf >/dev/null || need+=(patchelf)
command -v m4 >/dev/null || need+=(m4)
[ -x /lib/systemd/systemd-journal-remote ] || need+=(systemd-journal-remote)
if [ ${#need[@]} -gt 0 ]; then
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

python3 -m pip install -q -e '.[test]'
python3 -m ruff check exporter tests bench dashboards helm fuzz
python3 -m mypy
SMTP_E2E_REQUIRED=1 python3 -m pytest "$@"
