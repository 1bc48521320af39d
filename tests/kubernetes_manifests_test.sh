#!/usr/bin/env bash
# Runs tests/kubernetes_manifests_test.py with joule_server's own flag list.
set -euo pipefail
R="${TEST_SRCDIR}/joule"
"$R/server/joule_server" --helpfull > "$TEST_TMPDIR/helpfull.txt" 2>&1 || true
exec /usr/bin/python3 "$R/tests/kubernetes_manifests_test.py" "$R/deploy" "$TEST_TMPDIR/helpfull.txt"
