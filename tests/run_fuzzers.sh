#!/bin/sh
# Builds the libFuzzer targets with clang (ASan+UBSan) and runs each for a
# bounded time on a copy of its checked-in seed corpus (src/NAME/fuzz_corpus).
# Every input there runs first, so a crash once found stays a regression
# test: when a target fails, its crashing input is copied into the checked-in
# corpus, to be committed with the fix.
set -eu
cd "$(dirname "$0")/.."
seconds="${1:-20}"
[ -f build-fuzz/build.ninja ] || CC=clang meson setup build-fuzz -Dfuzz=true >/dev/null
ninja -C build-fuzz >build-fuzz/ninja.log 2>&1 || { cat build-fuzz/ninja.log >&2; exit 1; }
for target in build-fuzz/fuzz_*; do
    [ -f "$target" ] && [ -x "$target" ] || continue
    name="${target#build-fuzz/fuzz_}"
    corpus_src="src/$name/fuzz_corpus"
    # A target named after no module keeps its corpus in its module's folder.
    for d in src/*/fuzz_corpus_"$name"; do if [ -d "$d" ]; then corpus_src="$d"; fi; done
    work="$(mktemp -d)"
    mkdir "$work/corpus" "$work/artifacts"
    [ -d "$corpus_src" ] && cp -r "$corpus_src/." "$work/corpus/"
    echo "fuzz $name: ${seconds}s"
    "$target" -max_total_time="$seconds" -print_final_stats=0 \
        -artifact_prefix="$work/artifacts/" "$work/corpus" >"$work/log" 2>&1 || {
        tail -60 "$work/log" >&2
        mkdir -p "$corpus_src"
        for a in "$work/artifacts"/*; do
            [ -f "$a" ] || continue
            kept="$corpus_src/$(basename "$a")"
            cp "$a" "$kept"
            echo "fuzzer $name: its failing input is now $kept (commit it with the fix)" >&2
            # A CI run's clone goes away: the log carries small inputs too.
            [ "$(wc -c <"$a")" -le 8192 ] && { echo "base64 of $(basename "$a"):" >&2; base64 "$a" >&2; }
        done
        echo "fuzzer $name failed" >&2
        rm -rf "$work"
        exit 1
    }
    rm -rf "$work"
done
