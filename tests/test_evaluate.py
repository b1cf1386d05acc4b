import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT
from sacremoses import MosesTokenizer

from zero import evaluate as ev
from zero.errors import UserError

SACREBLEU = Path(sys.executable).parent / "sacrebleu"

# newstest-like German references and a system's imperfect translations of them.
REFS = [
    "Gutach: Noch mehr Sicherheit für Fußgänger",
    "Sie stehen keine 100 Meter voneinander entfernt: Am Dienstag ist in Gutach die neue "
    "B 33-Fußgängerampel am Dorfparkplatz in Betrieb genommen worden.",
    "Die Software-Entwicklung kostet das Unternehmen jedes Jahr 3,5 Millionen Euro, "
    'sagte "Müller".',
    "Zwei Anlagen so nah beieinander: Absicht oder Schildbürgerstreich?",
    "Diese Frage hat Gutachs Bürgermeister gestern klar beantwortet.",
    "Die Zahl der Unfälle ist im vergangenen Jahr um zwölf Prozent gesunken.",
    "Ob die E-Mail-Adressen noch gültig sind, weiß niemand (außer dem Anbieter).",
    "Ich habe es nicht gewusst - und ehrlich gesagt, es ist mir egal.",
]
HYPS = [
    "Gutach: Mehr Sicherheit für Fußgänger",
    "Sie sind nicht 100 Meter voneinander entfernt: Am Dienstag wurde in Gutach die neue "
    "B 33-Fußgängerampel am Parkplatz des Dorfes in Betrieb genommen.",
    'Die Software-Entwicklung kostet die Firma jedes Jahr 3,5 Millionen Euro, sagte "Müller".',
    "Zwei Anlagen so nahe beieinander: Absicht oder Dummheit?",
    "Der Bürgermeister von Gutach hat diese Frage gestern eindeutig beantwortet.",
    "Die Zahl der Unfälle ist im letzten Jahr um zwölf Prozent gesunken.",
    "Ob die E-Mail-Adressen noch gültig sind, weiß keiner (außer dem Anbieter).",
    "Ich wusste es nicht - und ehrlich gesagt, es ist mir egal.",
]


def _bpe(line, size=4):
    """A toy subword-nmt style segmentation: every word cut into pieces of `size` characters."""
    out = []
    for word in line.split():
        pieces = [word[i : i + size] for i in range(0, len(word), size)]
        out.extend([p + "@@" for p in pieces[:-1]] + [pieces[-1]])
    return " ".join(out)


def _as_decoded(lines):
    """What the model emits: Moses-tokenized (aggressive dashes, escaped) and BPE-segmented."""
    tok = MosesTokenizer(lang="de")
    return [_bpe(tok.tokenize(x, aggressive_dash_splits=True, return_str=True)) for x in lines]


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


def test_remove_bpe_round_trip():
    for line in HYPS + REFS:
        assert ev.remove_bpe(_bpe(line)) == line
        assert ev.remove_bpe(_bpe(line, size=1)) == line
    assert ev.remove_bpe("Ent@@ wick@@ lung ist Haus@@") == "Entwicklung ist Haus"
    assert ev.remove_bpe("Haus@@ \n") == "Haus"
    assert ev.remove_bpe("keine Subwörter") == "keine Subwörter"


def test_detokenize_rejoins_aggressive_dashes():
    assert ev.detokenize(["Software @-@ Entwicklung"]) == ["Software-Entwicklung"]
    assert ev.detokenize(["die E @-@ Mail @-@ Adressen , die &quot; gut &quot; sind ."]) == [
        'die E-Mail-Adressen, die "gut" sind.'
    ]
    assert ev.detokenize(["@-@ Anfang und Ende @-@"]) == ["-Anfang und Ende-"]


def test_postprocess_recovers_the_sample():
    assert ev.postprocess(_as_decoded(REFS), "de") == REFS


def test_sacrebleu_equals_command_line(tmp_path):
    if not SACREBLEU.exists():
        pytest.skip(f"no sacrebleu command next to {sys.executable}")
    hyp = _write(tmp_path / "hyp.de", HYPS)
    ref = _write(tmp_path / "ref.de", REFS)
    hyps, refs = ev.read_aligned(hyp, ref)
    score, signature, line = ev.sacrebleu_score(hyps, refs)
    assert 20 < score < 95
    assert signature.startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")

    # The plain `sacrebleu REF < HYP` (JSON, one decimal).
    with open(hyp, encoding="utf-8") as stdin:
        out = subprocess.run(
            [str(SACREBLEU), ref], stdin=stdin, capture_output=True, text=True, check=True
        ).stdout
    cli = json.loads(out)
    assert cli["score"] == float(f"{score:.1f}")
    assert cli["signature"] == signature

    # The full text line at our width, and chrF the same way.
    for metric, (_, _, ours) in (("bleu", (score, signature, line)), ("chrf", ev.chrf(hyps, refs))):
        out = subprocess.run(
            [str(SACREBLEU), ref, "-i", hyp, "-m", metric, "-f", "text", "-w", "2"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert out.strip() == ours


def test_length_mismatch_names_files_and_counts(tmp_path):
    hyp = _write(tmp_path / "hyp.de", HYPS[:5])
    ref = _write(tmp_path / "ref.de", REFS)
    with pytest.raises(UserError) as err:
        ev.read_aligned(hyp, ref)
    msg = str(err.value)
    assert hyp in msg and ref in msg and "5" in msg and str(len(REFS)) in msg
    with pytest.raises(UserError, match=r"5 hypotheses but 8 references"):
        ev.sacrebleu_score(HYPS[:5], REFS)
    assert ev.main([hyp, ref]) == 1


def test_tokenized_bleu_hand_computed():
    ref = ["das Haus ist klein."]
    assert ev.tokenized_bleu(ref, ref) == pytest.approx(100.0)
    assert ev.tokenized_bleu(["Das Haus ist klein."], ref) == pytest.approx(100.0)
    # Case-sensitive: "Das" != "das" -> 4/5, 3/4, 2/3, 1/2 n-gram precisions, no brevity penalty.
    expected = 100 * (4 / 5 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25
    assert ev.tokenized_bleu(["Das Haus ist klein."], ref, lowercase=False) == pytest.approx(
        expected
    )


def test_tokenized_bleu_split_hyphens():
    hyp = ["Die Software-Firma ist heute sehr groß."]
    ref = ["Die Software-Entwicklung ist heute sehr groß."]
    assert ev.moses_tokenize(ref, split_hyphens=True) == [
        "Die Software ##AT##-##AT## Entwicklung ist heute sehr groß ."
    ]
    # 7 tokens, the compound is one token: 6/7, 4/6, 3/5, 2/4.
    plain = 100 * (6 / 7 * 4 / 6 * 3 / 5 * 2 / 4) ** 0.25
    # 9 tokens, the compound is three: 8/9, 6/8, 4/7, 2/6.
    split = 100 * (8 / 9 * 6 / 8 * 4 / 7 * 2 / 6) ** 0.25
    assert ev.tokenized_bleu(hyp, ref) == pytest.approx(plain)
    assert ev.tokenized_bleu(hyp, ref, split_hyphens=True) == pytest.approx(split)
    # Brevity penalty: a 5-token prefix of the 7-token reference, all n-grams correct.
    short = ["Die Software-Entwicklung ist heute sehr"]
    assert ev.tokenized_bleu(short, ref) == pytest.approx(100 * math.exp(1 - 7 / 5))
    # No 4-gram in common: 0, as multi-bleu.perl reports (no smoothing).
    assert ev.tokenized_bleu(["Die Software-Entwicklung ist groß."], ref) == 0.0


def test_evaluate_dict():
    result = ev.evaluate(HYPS, REFS, "de")
    assert result["bleu"] == ev.sacrebleu_score(HYPS, REFS)[0]
    assert result["chrf"] == ev.chrf(HYPS, REFS)[0]
    assert result["tok_bleu"] == pytest.approx(ev.tokenized_bleu(HYPS, REFS))
    assert result["lines"][2].startswith("tokenized BLEU (case-insensitive) = ")


def test_score_sh_end_to_end(tmp_path):
    hyp = _write(tmp_path / "hyp.bpe.de", _as_decoded(HYPS))
    ref = _write(tmp_path / "ref.de", REFS)
    env = dict(os.environ, PYTHONPATH="")
    run = subprocess.run(
        ["bash", os.path.join(ROOT, "scripts", "score.sh"), hyp, ref, "--split-hyphens"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 3, run.stdout
    expected = ev.evaluate(HYPS, REFS, "de", split_hyphens=True)["lines"]
    assert lines == expected
    assert lines[0].startswith("BLEU|nrefs:1|case:mixed|eff:no|tok:13a|")
    assert lines[1].startswith("chrF2|")
    assert lines[2].startswith("tokenized BLEU (case-insensitive, hyphens split) = ")

    bad = subprocess.run(
        ["bash", os.path.join(ROOT, "scripts", "score.sh"), _write(tmp_path / "h", HYPS[:3]), ref],
        capture_output=True,
        text=True,
        env=env,
    )
    assert bad.returncode != 0
    assert "3 lines" in bad.stderr and f"{len(REFS)} lines" in bad.stderr
