#!/usr/bin/env bash
# The test suite: every crate's unit and integration tests (real processes on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo nextest run --workspace --no-fail-fast "$@"
