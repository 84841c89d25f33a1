#!/bin/sh
# Builds the libFuzzer targets with clang (ASan+UBSan) and runs each for a
# bounded time on a copy of its checked-in seed corpus.
set -eu
cd "$(dirname "$0")/.."
seconds="${1:-20}"
[ -f build-fuzz/build.ninja ] || CC=clang meson setup build-fuzz -Dfuzz=true >/dev/null
ninja -C build-fuzz >/dev/null
for target in build-fuzz/fuzz_*; do
    [ -f "$target" ] && [ -x "$target" ] || continue
    name="${target#build-fuzz/fuzz_}"
    corpus_src="src/$name/fuzz_corpus"
    work="$(mktemp -d)"
    [ -d "$corpus_src" ] && cp -r "$corpus_src/." "$work/"
    echo "fuzz $name: ${seconds}s"
    "$target" -max_total_time="$seconds" -print_final_stats=0 "$work" >"$work.log" 2>&1 || {
        tail -60 "$work.log" >&2
        echo "fuzzer $name failed" >&2
        exit 1
    }
    rm -rf "$work" "$work.log"
done
