#!/usr/bin/env bash
# Run the whole backend for local development.
#   scripts/dev-fullstack.sh           one uvicorn process with every module on 127.0.0.1:8000
#   scripts/dev-fullstack.sh --multi   nginx on :8000 in front of broker, datafeed and core (devenv)
# Extra arguments after --multi go to `devenv start --foreground`, e.g. a config path.
set -euo pipefail
cd "$(dirname "$0")/.."

multi=false
if [[ "${1:-}" == "--multi" ]]; then
    multi=true
    shift
elif [[ $# -gt 0 ]]; then
    echo "dev-fullstack.sh: unknown argument '$1'; usage: scripts/dev-fullstack.sh [--multi [CONFIG]]" >&2
    exit 2
fi

make --no-print-directory install
if $multi; then
    exec .venv/bin/devenv start --foreground "$@"
fi
exec make --no-print-directory dev
