#!/usr/bin/env bash
# From a fresh clone to a trained LRN model and a BLEU score on the bundled sample corpus:
# installs into .venv, prepares the data, trains configs/sample_lrn.yaml (at most 30 minutes on
# 2 cores; it keeps the best checkpoint), decodes the test set with beam search and scores it.
# Run again, it reuses what is done. Extra key=value arguments go to training (e.g. cell=gru).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
config="${ZERO_CONFIG:-configs/sample_lrn.yaml}"
bash scripts/prepare_sample.sh prepared/sample
sets=(); for kv in "$@"; do sets+=(--set "$kv"); done
"$PY" run.py --mode train --config "$config" "${sets[@]}"
model=$("$PY" -c "import sys; from zero import config, log; log.setup(); print(config.load(sys.argv[1], sys.argv[2:]).output_dir)" "$config" "$@")
bash scripts/decode.sh "$model" prepared/sample/test.bpe.en "$model/test.out"
echo "test set (prepared/sample/test.de), $model:"
bash scripts/score.sh "$model/test.out" prepared/sample/test.de | tee "$model/test.score"
