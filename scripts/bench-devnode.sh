#!/usr/bin/env sh
# Reference-node benchmark: idle RSS, RSS in a 10-node testnet, accepted
# transactions per second, block propagation across a 10-node line.
# Same as: cargo bench -p nomos-devnode --bench devnode
set -eu
cd "$(dirname "$0")/.."
exec cargo bench -p nomos-devnode --bench devnode "$@"
