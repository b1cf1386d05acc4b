#!/usr/bin/env bash
# A tiny end-to-end run for CI: prepare a slice of the sample corpus, train a few steps,
# resume, decode with beam search, average checkpoints, score. Takes a couple of minutes.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
work="${ZERO_SMOKE_DIR:-$(mktemp -d)}"
bash scripts/prepare_sample.sh "$work/data" --max-pairs 3000 --merges 500
tiny=(hidden_size=32 embed_size=32 num_encoder_layers=2 num_decoder_layers=2 batch_tokens=1000
      log_every=5 eval_every=10 eval_sentences=50 max_time=0 lr_progress=steps warmup_steps=5 prep_dir="$work/data"
      src_vocab="$work/data/vocab.en" tgt_vocab="$work/data/vocab.de"
      train_src="$work/data/train.bpe.en" train_tgt="$work/data/train.bpe.de"
      dev_src="$work/data/dev.bpe.en" dev_tgt="$work/data/dev.bpe.de" dev_ref="$work/data/dev.de"
      output_dir="$work/model")
bash scripts/train.sh configs/sample_lrn.yaml "${tiny[@]}" max_steps=20
bash scripts/train.sh configs/sample_lrn.yaml "${tiny[@]}" max_steps=30   # resumes at 20
bash scripts/average_checkpoints.sh "$work/model" 2
head -n 100 "$work/data/test.bpe.en" > "$work/test.bpe.en"
head -n 100 "$work/data/test.de" > "$work/test.de"
bash scripts/decode.sh "$work/model" "$work/test.bpe.en" "$work/test.out" beam_size=4
[ "$(wc -l < "$work/test.out")" -eq 100 ] || { echo "smoke: decode output is misaligned" >&2; exit 1; }
bash scripts/score.sh "$work/test.out" "$work/test.de"
echo "smoke test passed ($work)"
