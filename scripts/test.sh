#!/usr/bin/env bash
# One command for the tests: set up, then every unit and end-to-end test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The static-site tests' server, built before the tests rather than while
# they run (two cores, two minutes); the tests find it made.
# If it cannot be built here, the tests that need it say so (and fail
# under CI).
scripts/static-web-server.sh >/dev/null || echo "static-web-server could not be built: its tests will say so" >&2
cargo test --workspace
