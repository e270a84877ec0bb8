#!/usr/bin/env bash
# The 90-epoch residual `best` trial took 3.95 hours on a 2-core AVX2 CPU, longer than one working session,
# so it was carried between sessions as an epoch checkpoint kept in git (bench/results/best-trial/). It ended
# at 94.43 % and was not shipped; that folder now holds its final metadata and curve (BENCHMARKS.md).
# A later trial is carried the same way:
#   scripts/best_trial.sh start              start it afresh in runs/best-trial (in the background)
#   scripts/best_trial.sh snapshot           copy its last checkpoint and curves into bench/results/best-trial/
#   scripts/best_trial.sh resume             go on from bench/results/best-trial/ (or runs/best-trial) in the background
#   scripts/best_trial.sh status             epochs done, last training accuracy, whether it is running
# The model it ends with lands in the registry (FMNIST_MODELS_DIR, default models/) and is not activated.
set -euo pipefail
cd "$(dirname "$0")/.."

RUN_DIR=${BEST_TRIAL_RUN_DIR:-runs/best-trial}
SNAPSHOT=${BEST_TRIAL_SNAPSHOT:-bench/results/best-trial}
LOG=$RUN_DIR.log
PYTHON=${PYTHON:-.venv/bin/python}
export TF_CPP_MIN_LOG_LEVEL=2

train_in_background() {
  mkdir -p "$(dirname "$RUN_DIR")"
  nohup "$PYTHON" -m fmnist_core train "$@" --run-dir "$RUN_DIR" --json >> "$LOG" 2>&1 &
  echo "best_trial: training in the background (pid $!), log in $LOG"
}

case "${1:-}" in
  start)
    [ ! -e "$RUN_DIR" ] || { echo "best_trial: $RUN_DIR exists; resume it or move it away" >&2; exit 1; }
    train_in_background --preset best --architecture fmnist-resnet --epochs 90 --optimizer sgd \
      --learning-rate 0.1 --weight-decay 0.005 --finetune-learning-rate 0.01 --seed 42 ;;
  snapshot)
    [ -f "$RUN_DIR/checkpoint.json" ] || { echo "best_trial: $RUN_DIR has no checkpoint" >&2; exit 1; }
    rm -rf "$SNAPSHOT.tmp" && mkdir -p "$SNAPSHOT.tmp"
    # checkpoint.json names the weights file it belongs to: copy that one, then the json, so both agree.
    weights=$("$PYTHON" -c "import json,sys; print(json.load(open(sys.argv[1]))['weights_file'])" "$RUN_DIR/checkpoint.json")
    cp "$RUN_DIR/$weights" "$RUN_DIR/checkpoint.json" "$RUN_DIR/history.csv" "$SNAPSHOT.tmp/"
    cp "$RUN_DIR/batches.csv" "$SNAPSHOT.tmp/" 2>/dev/null || true
    rm -rf "$SNAPSHOT" && mv "$SNAPSHOT.tmp" "$SNAPSHOT"
    echo "best_trial: $SNAPSHOT holds the checkpoint after epoch $(tail -n 1 "$SNAPSHOT/history.csv" | cut -d, -f1)" ;;
  resume)
    if [ ! -f "$RUN_DIR/checkpoint.json" ]; then
      [ -f "$SNAPSHOT/checkpoint.json" ] || { echo "best_trial: no checkpoint in $RUN_DIR or $SNAPSHOT" >&2; exit 1; }
      mkdir -p "$RUN_DIR" && cp "$SNAPSHOT"/* "$RUN_DIR/"
    fi
    train_in_background --resume "$(basename "$RUN_DIR")" ;;
  status)
    [ -f "$RUN_DIR/history.csv" ] || { echo "best_trial: not started here (snapshot: $(tail -n 1 "$SNAPSHOT/history.csv" 2>/dev/null | cut -d, -f1) epochs)"; exit 0; }
    tail -n 1 "$RUN_DIR/history.csv" | awk -F, '{printf "best_trial: %d epochs done, training accuracy %.2f %%, %.0f s\n", $1, 100*$3, $7}'
    pgrep -f "fmnist_core train.*--run-dir $RUN_DIR" >/dev/null && echo "best_trial: running" || echo "best_trial: not running" ;;
  *)
    echo "usage: scripts/best_trial.sh start|snapshot|resume|status" >&2; exit 2 ;;
esac
