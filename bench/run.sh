#!/usr/bin/env bash
# run.sh — runs every benchmark and prints its results (make bench).
set -e
BUILD=${BUILD:-build}
echo "== model encode (bench/encode.c)"; "$BUILD"/bench/encode
