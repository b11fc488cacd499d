#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine (as root): system packages, the project, lint, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

apt_updated=0
apt_update() { [ "$apt_updated" = 1 ] || { apt-get update -qq; apt_updated=1; }; }

need=()
command -v postconf >/dev/null || need+=(postfix)
command -v promtool >/dev/null || need+=(prometheus)
command -v chromium >/dev/null || need+=(chromium)
command -v m4 >/dev/null || need+=(m4)
command -v podman >/dev/null || need+=(podman runc)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
[ -x /lib/systemd/systemd-journal-remote ] || need+=(systemd-journal-remote)

# The e2e tests run Exim, OpenSMTPD and Sendmail unpacked with `dpkg -x`, which brings none of their
# Depends: install the shared libraries among those (the lib* Depends of tests/e2e/unpacked.py's list).
unpacked=$(python3 -c 'import sys; sys.path.insert(0, "tests"); from e2e.unpacked import UNPACKED
print(" ".join(p for ps in UNPACKED.values() for p in ps))')
apt-cache show $unpacked >/dev/null 2>&1 || apt_update
for lib in $(apt-cache depends --important $unpacked | awk '$1 ~ /Depends:$/ && $2 ~ /^lib/ {print $2}' | sort -u); do
  dpkg-query -W -f='${Status}\n' "$lib" 2>/dev/null | grep -q '^install ok installed' || need+=("$lib")
done

if [ ${#need[@]} -gt 0 ]; then
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt_update
  echo "tests/run.sh: installing ${need[*]}"
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# podman in this sandbox: no setrlimit for containers, cgroups in hybrid mode (../shared/containers.md)
if [ ! -e /etc/containers/containers.conf ]; then
  mkdir -p /etc/containers
  printf '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\n' \
    > /etc/containers/containers.conf
fi

# The package twice: editable and pure Python (the suite runs against the source tree), and as the
# wheel `pip install .` builds, its hot path compiled by mypyc (setup.py), in a virtual environment
# that sees the same test tools: the tests of the compiled modules (parsers, ingest, delays, sessions,
# providers, drift) and the end-to-end tests run again against that one.
SMTP_REPLY_EXPORTER_PURE=1 python3 -m pip install -q -e '.[test]'
python3 -m ruff check exporter tests bench dashboards helm fuzz
python3 -m mypy
SMTP_E2E_REQUIRED=1 SMTP_EXPECT_VARIANT=pure python3 -m pytest "$@"

compiled=$(mktemp -d /var/tmp/smtp-reply-exporter-compiled.XXXXXX)
trap 'rm -rf "$compiled"' EXIT
python3 -m venv --system-site-packages "$compiled/venv"
python3 -m pip wheel -q --no-deps --wheel-dir "$compiled/dist" .
"$compiled/venv/bin/python" -m pip install -q --no-deps "$compiled"/dist/*.whl
SMTP_E2E_REQUIRED=1 SMTP_EXPECT_VARIANT=compiled "$compiled/venv/bin/python" -m pytest -q -p no:cacheprovider \
  tests/test_build_variant.py tests/test_parse_samples.py tests/test_bad_input.py tests/test_hostile_lines.py \
  tests/test_unparsed.py tests/test_delays.py tests/test_sessions.py tests/test_providers.py \
  tests/test_message_only.py tests/test_label_bounds.py tests/test_exposition.py tests/test_postfix_memory.py \
  tests/test_metrics.py tests/test_fast_paths.py tests/test_variants_agree.py tests/e2e \
  --ignore=tests/e2e/test_container_image.py \
  --ignore=tests/e2e/test_landing_page_browser.py
