#!/usr/bin/env bash
# run.sh — runs every benchmark and prints its results. BUILD and SHARED come from the Makefile.
set -e
BUILD=${BUILD:-build}
export SHARED=${SHARED:-../shared}
"$BUILD/bench/tokenizer"
