# Functions .ci/run uses (tests/api/ci_script.rs tries them): sourced, it
# defines them and runs nothing.

# A tool's version for the log: the first line it prints on stdout, or on
# stderr when stdout is empty (some print --version there). Not stderr
# first: Debian's chromium launcher writes a shell error there before the
# version. A failing command fails the run, its stderr shown. Never
# `cmd | head -n 1` here: under pipefail, head exits after one line, the
# writer can die of SIGPIPE, and a run whose checks all passed fails with
# status 141.
version_line() {
  local out err
  err=$(mktemp)
  out=$("$@" 2>"$err") || { cat "$err" >&2; rm -f "$err"; return 1; }
  [ -n "$out" ] || out=$(cat "$err")
  rm -f "$err"
  printf '%s\n' "${out%%$'\n'*}"
}
