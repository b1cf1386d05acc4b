"""`python -m bench table` reads what benchmark and training runs left behind: every figure
in the table comes from those files (the paper's from bench/paper.py), and a missing result
shows as "-" with the command that produces it."""

import json
import subprocess
import sys

import yaml
from helpers import ROOT

from bench import paper
from bench.common import SHOWN, TABLE_ORDER

CELLS = list(TABLE_ORDER)

SCORE = """BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0 = {bleu} 53.3/28.5/18.0/11.8 (BP = 0.941 ratio = 0.942 hyp_len = 25421 ref_len = 26980)
chrF2|nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0 = {chrf}
tokenized BLEU (case-insensitive) = {tok} 55.3/29.4/18.5/12.2 (BP = 0.924 ratio = 0.927 hyp_len = 25168 ref_len = 27162)
"""  # noqa: E501 (scripts/score.sh output, verbatim)


def _table(tmp_path, cells_trained, gpu=None):
    bench, compare = tmp_path / "bench", tmp_path / "compare"
    bench.mkdir()
    if gpu is not None:
        (bench / "gpu.json").write_text(json.dumps(gpu))
    paper = {
        c: {"params": 1e8 + i, "train_s": 2.0 + i, "decode_ms": 100.0 + 10 * i, "src_tokens": 1990,
            "decode_sentences": 200}
        for i, c in enumerate(CELLS)
    }  # fmt: skip
    model = {"date": "2026-01-02", "machine": "test cpu, 2 cores", "tensorflow": "9.9",
             "steps": 5, "rounds": 3, "results": {"paper": paper}}  # fmt: skip
    (bench / "model.json").write_text(json.dumps(model))
    for i, cell in enumerate(cells_trained):
        run = compare / cell
        run.mkdir(parents=True)
        (run / "test.score").write_text(SCORE.format(bleu=20 + i, chrf=50.5, tok=21.25))
        records = [{"step": 500, "elapsed": 300.0, "dev_bleu": 5.5},
                   {"step": 1000, "elapsed": 600.0, "dev_bleu": 12.25}]  # fmt: skip
        (run / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        config = {"max_time": 600.0, "time_clock": "cpu", "lr_progress": "time"}
        (run / "config.yaml").write_text(yaml.safe_dump(config))
    out = subprocess.run(
        [sys.executable, "-m", "bench", "table", "--bench", bench, "--compare", compare],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = {line.split("|")[1].strip(): line.split("|")[2:-1] for line in out.splitlines()
            if line.startswith("| ") and not line.startswith("| cell")}  # fmt: skip
    return out, {k: [c.strip() for c in v] for k, v in rows.items()}


def test_table_reads_every_result(tmp_path):
    out, rows = _table(tmp_path, ["gru", "lrn"])
    assert "Measured 2026-01-02 on test cpu, 2 cores, TensorFlow 9.9" in out
    assert list(rows) == ["GRU", "LSTM", "ATR", "SRU", "LRN", "oLRN"]
    # params paper, ours, s/batch paper, ours, decode paper, ours (paper size), BLEU paper,
    # sacreBLEU, tokenized BLEU, chrF2, steps, decode of the trained sample models
    assert rows["GRU"] == ["206M", "100.0M", "2.67 (1.00x)", "2.00 (1.00x)", "45.35 (1.00x)",
                           "100.00 (1.00x)", "26.28", "20.00", "21.25", "50.50", "1000",
                           "-"]  # fmt: skip
    assert rows["LRN"][3] == "6.00 (0.33x)"  # GRU 2.0 s / LRN 6.0 s
    assert rows["LRN"][5] == "140.00 (0.71x)"  # GRU 100 ms / LRN 140 ms
    assert "best of 3 round(s)" in out and "200 sample test sentences" in out
    assert rows["LRN"][2] == "0.99 (2.70x)" and rows["LRN"][7] == "21.00"
    assert rows["LSTM"][0] == "-" and rows["LSTM"][7] == "-"
    assert "GRU: 500: 5.5, 1000: 12.2 (0.60 cpu s/step)" in out
    assert "600 cpu-clock seconds per cell, learning-rate schedule stretched" in out
    assert "bench_decode.sh --model-root runs/compare` first" in out
    assert "ours (GPU)" not in out and "run `bash scripts/gpu_check.sh` on a machine" in out


def test_gpu_columns_when_gpu_results_exist(tmp_path):
    """bench gpu-speed's results (scripts/gpu_check.sh) add four columns after the others."""
    results = {
        "gru": {p: {"train_s": 1.0, "decode_ms": 20.0} for p in ("float32", "float16")},
        "lrn": {"float32": {"train_s": 0.5, "decode_ms": 16.0}, "float16": {"error": "OOM"},
                "bfloat16": {"train_s": 0.25}},
    }  # fmt: skip
    gpu = {"date": "2026-02-03", "tensorflow": "9.9", "gpus": ["GPU 0: Test GPU (UUID: x)"],
           "steps": 20, "tokens": 3000, "decode_sentences": 200, "results": results}  # fmt: skip
    out, rows = _table(tmp_path, ["gru"], gpu)
    assert "| s/batch ours (GPU) float32 | s/batch ours (GPU) float16 |" in out
    assert rows["GRU"][-4:] == ["1.00 (1.00x)", "1.00 (1.00x)", "-", "20.00 (1.00x)"]
    assert rows["LRN"][-4:] == ["0.50 (2.00x)", "-", "0.25", "16.00 (1.25x)"]
    assert rows["LSTM"][-4:] == ["-"] * 4
    assert rows["GRU"][:3] == ["206M", "100.0M", "2.67 (1.00x)"]  # the other columns stay
    assert "GPU columns: GPU 0: Test GPU (UUID: x), TensorFlow 9.9, 2026-02-03" in out
    assert "median of 20 training steps of a batch of about 3000 source tokens" in out


def test_paper_columns_come_from_bench_paper(tmp_path):
    _, rows = _table(tmp_path, [])
    gru = paper.PAPER["gru"]
    for cell in CELLS:
        row, theirs = rows[SHOWN[cell]], paper.row(cell)
        if theirs is None:  # no LSTM row in the paper
            assert row[0] == row[2] == row[4] == row[6] == "-"
            continue
        assert row[0] == f"{theirs.params_m}M"
        assert row[2] == f"{theirs.train_s:.2f} ({gru.train_s / theirs.train_s:.2f}x)"
        assert row[4] == f"{theirs.decode_ms:.2f} ({gru.decode_ms / theirs.decode_ms:.2f}x)"
        assert row[6] == f"{theirs.bleu:.2f}"
