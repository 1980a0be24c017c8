# Sourced by .ci/run and .ci/test: time each phase of a run and print the times at the end.
# The times go to the file named by CI_TIMES (created by whichever script runs first), so
# the phases of .ci/run (apt, venv, install) and of .ci/test (ruff, mypy, ...) add up.

if [[ -z ${CI_TIMES:-} ]]; then
  CI_TIMES=$(mktemp)
  export CI_TIMES
fi

# phase NAME COMMAND...: run COMMAND and record its wall time under NAME (also on failure).
phase() {
  local name=$1 start status=0
  shift
  start=$(date +%s.%N)
  "$@" || status=$?
  awk -v n="$name" -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%s %.1f\n", n, b - a }' \
    >>"$CI_TIMES"
  return "$status"
}

# print_phase_times: the table of recorded phases and their total.
print_phase_times() {
  [[ -s $CI_TIMES ]] || return 0
  echo "== wall time per phase"
  awk '{ printf "   %-13s %8.1f s\n", $1, $2; total += $2 }
       END { printf "   %-13s %8.1f s\n", "total", total }' "$CI_TIMES"
}
