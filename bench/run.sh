#!/usr/bin/env bash
# run.sh — runs every benchmark and prints its results. Timings are noisy on a shared machine:
# each bench reports best and median of several runs.
set -e
BUILD=${BUILD:-build}
export SHARED=${SHARED:-../shared}
"$BUILD/bench/image"
