#!/usr/bin/env bash
# run.sh — runs every benchmark and prints its results. Benches are separate from tests.
set -e
BUILD=${BUILD:-build}; SHARED=${SHARED:-../shared}
export SHARED
echo "== methods: every few-shot method x K on the shipped feature sets (test/val accuracy, fit seconds)"
"$BUILD/bench/methods"
