#!/usr/bin/env bash
# python -m benchmarks.train_step at two commits, alternating, on the same machine: what a change did to
# step time and memory, with the machine's drift between rounds in view.
#
#   benchmarks/train_step_commits.sh BEFORE AFTER [ROUNDS] -- [benchmarks.train_step options]
#   benchmarks/train_step_commits.sh c2ee7fa HEAD 2 -- --methods fft dpt spt4asr
#
# Each commit is checked out as a git worktree under a temporary directory and run with this
# checkout's tools/venv (espnet_cs imported from the worktree); the rows of every round are printed
# under a line naming the commit and the round.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ $# -ge 2 ] || { sed -n '5,6p' "$0" >&2; exit 1; }
before=$1 after=$2 rounds=2
shift 2
if [ $# -gt 0 ] && [ "$1" != "--" ]; then rounds=$1; shift; fi
[ $# -gt 0 ] && [ "$1" = "--" ] && shift
tmp="$(mktemp -d)"
trap 'git -C "${root}" worktree remove --force "${tmp}/before" 2>/dev/null; git -C "${root}" worktree remove --force "${tmp}/after" 2>/dev/null; rm -rf "${tmp}"' EXIT
git -C "${root}" worktree add -q --detach "${tmp}/before" "${before}"
git -C "${root}" worktree add -q --detach "${tmp}/after" "${after}"
for round in $(seq "${rounds}"); do
  for side in before after; do
    commit="$(git -C "${tmp}/${side}" rev-parse --short HEAD)"
    echo "== ${side} (${commit}), round ${round}"
    script=(-m benchmarks.train_step)
    [ -f "${tmp}/${side}/benchmarks/harness.py" ] || script=(benchmarks/train_step.py)  # a commit before the harness
    (cd "${tmp}/${side}" && PYTHONPATH="${tmp}/${side}" "${root}/tools/venv/bin/python" "${script[@]}" "$@" | grep '^|')
  done
done
