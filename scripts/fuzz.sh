#!/bin/sh
# fuzz.sh DIR SECONDS: run every libFuzzer target built in DIR for SECONDS each.
#
# Each target fuzz_<name> starts from its seed corpus fuzz/corpus/<name>/ (kept in the
# repository) and its dictionary fuzz/dict/<name>.dict when there is one; what it discovers
# goes to build/fuzz/corpus/<name>/ (not committed). A crash stops the target and leaves its
# input as build/fuzz/crash-<name>-*: fix the bug, then add the input to fuzz/corpus/<name>/
# so that `make test` replays it forever.
set -u
dir=${1:-build/fuzz/fuzz}
secs=${2:-180}
status=0
for bin in "$dir"/fuzz_*; do
	case "$bin" in *.d) continue ;; esac
	[ -x "$bin" ] || continue
	name=$(basename "$bin")
	target=${name#fuzz_}
	work=build/fuzz/corpus/$target
	mkdir -p "$work"
	dict=""
	[ -f "fuzz/dict/$target.dict" ] && dict="-dict=fuzz/dict/$target.dict"
	echo "== $target: ${secs}s"
	# shellcheck disable=SC2086
	if ! "$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="build/fuzz/crash-$target-" $dict "$work" "fuzz/corpus/$target" \
		2>"build/fuzz/$target.log"; then
		echo "!! $target found a problem: see build/fuzz/$target.log and build/fuzz/crash-$target-*"
		status=1
	fi
	grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb)" "build/fuzz/$target.log" \
		| sed 's/^/   /'
done
exit $status
