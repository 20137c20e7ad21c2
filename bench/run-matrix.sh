#!/usr/bin/env bash
# Runs the whole benchmark matrix three times unpinned and three times with
# both processes on one CPU, then prints the markdown table of medians.
#   bash bench/run-matrix.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/bench-results}"
mkdir -p "$out"
cargo build --release -p rpc-bench
bin=target/release/rpc-bench
rm -f "$out"/*.jsonl
for i in 1 2 3; do
    "$bin" run --tag unpinned >> "$out/unpinned.jsonl"
    taskset -c 0 "$bin" run --tag one-cpu >> "$out/one-cpu.jsonl"
done
{
    echo "Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -sr)"
    echo
    "$bin" table "$out"/unpinned.jsonl "$out"/one-cpu.jsonl
} | tee "$out/table.md"
