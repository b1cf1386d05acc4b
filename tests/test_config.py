"""zero/config.py and run.py's handling of configuration errors."""

import os
import re
import subprocess
import sys

import pytest
from helpers import ROOT

import run
from zero import config as config_lib
from zero.config import SCHEMA, load
from zero.errors import UserError


def _yaml(tmp_path, text, name="c.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_defaults():
    config = load()
    assert config == {key: spec.default for key, spec in SCHEMA.items()}
    assert config.hidden_size == 1024
    with pytest.raises(AttributeError):
        config.no_such_key  # noqa: B018


def test_unknown_key_in_yaml_suggests_closest(tmp_path):
    path = _yaml(tmp_path, "cell: gru\nhiden_size: 8\n")
    with pytest.raises(UserError) as e:
        load(path)
    message = str(e.value)
    assert path in message
    assert "'hiden_size'" in message
    assert "did you mean 'hidden_size'" in message


def test_unknown_key_in_set_suggests_closest():
    with pytest.raises(UserError, match=r"'hiden_size'.*did you mean 'hidden_size'"):
        load(None, ["hiden_size=8"])
    with pytest.raises(UserError, match="--set"):
        load(None, ["lerning_rate=0.1"])


def test_unknown_key_without_close_match():
    with pytest.raises(UserError) as e:
        load(None, ["zzzzzzzz=1"])
    assert "'zzzzzzzz'" in str(e.value)
    assert "did you mean" not in str(e.value)


@pytest.mark.parametrize(
    "text, key",
    [
        ("hidden_size: abc", "hidden_size"),
        ("hidden_size: 1.5", "hidden_size"),
        ("hidden_size: true", "hidden_size"),
        ("layer_norm: 3", "layer_norm"),
        ("dropout: fast", "dropout"),
        ("hidden_size: null", "hidden_size"),
        ("cell: [gru]", "cell"),
    ],
)
def test_wrong_type_names_the_key(tmp_path, text, key):
    with pytest.raises(UserError, match=f"'{key}'"):
        load(_yaml(tmp_path, text + "\n"))
    name, value = text.split(": ")
    with pytest.raises(UserError, match=f"'{key}'"):
        load(None, [f"{name}={value}"])


def test_set_overrides_yaml_overrides_defaults(tmp_path):
    path = _yaml(tmp_path, "hidden_size: 16\nembed_size: 32\ncell: gru\n")
    config = load(path, ["embed_size=64", "seed=5"])
    assert config.hidden_size == 16  # YAML over default
    assert config.embed_size == 64  # --set over YAML
    assert config.seed == 5  # --set over default
    assert config.cell == "gru"
    assert config.num_encoder_layers == SCHEMA["num_encoder_layers"].default
    # Later --set wins over an earlier one.
    assert load(path, ["seed=5", "seed=6"]).seed == 6


def test_int_to_float_coercion(tmp_path):
    config = load(_yaml(tmp_path, "lr: 1\nclip_norm: 0\n"), ["dropout=0"])
    for key, value in (("lr", 1.0), ("clip_norm", 0.0), ("dropout", 0.0)):
        assert type(config[key]) is float and config[key] == value
    assert type(load(None, ["lr=1e-3"]).lr) is float  # YAML 1.1 reads 1e-3 as a string
    assert load(None, ["lr=1e-3"]).lr == 0.001


def test_set_values_are_yaml_scalars_and_strings_stay_verbatim():
    config = load(None, ["layer_norm=false", "num_heads=2", "output_dir=007", "src_lang=no"])
    assert config.layer_norm is False
    assert config.num_heads == 2
    assert config.output_dir == "007"
    assert config.src_lang == "no"  # not the YAML 1.1 boolean
    assert load(None, ["ensemble=runs/a"]).ensemble == ["runs/a"]
    assert load(None, ["ensemble=[runs/a, runs/b]"]).ensemble == ["runs/a", "runs/b"]
    assert load(None, ["src_vocab=null"]).src_vocab is None


def test_set_without_equals_sign():
    with pytest.raises(UserError, match="key=value"):
        load(None, ["hidden_size"])


def test_yaml_file_problems(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load(str(tmp_path / "missing.yaml"))
    with pytest.raises(UserError, match="mapping"):
        load(_yaml(tmp_path, "- a\n- b\n"))
    with pytest.raises(UserError, match="YAML"):
        load(_yaml(tmp_path, "a: [1\n"))
    assert load(_yaml(tmp_path, "")) == load()


@pytest.mark.parametrize("where", ["yaml", "set"])
def test_unknown_cell_suggests_closest(tmp_path, where):
    if where == "yaml":
        args = (_yaml(tmp_path, "cell: lnr\n"), [])
    else:
        args = (None, ["cell=lnr"])
    with pytest.raises(UserError) as e:
        load(*args)
    message = str(e.value)
    assert "'cell'" in message and "'lnr'" in message and "'lrn'" in message
    for name in ("lrn", "olrn", "gru", "lstm", "atr", "sru"):
        assert name in message


def test_cell_names_are_case_insensitive():
    assert load(None, ["cell=oLRN"]).cell == "oLRN"
    assert load(None, ["cell=LSTM"]).cell == "LSTM"


@pytest.mark.parametrize(
    "setting, key", [("lrn_activation=relu", "lrn_activation"), ("lr_schedule=noom", "lr_schedule")]
)
def test_other_named_choices(setting, key):
    with pytest.raises(UserError, match=f"'{key}'"):
        load(None, [setting])


def test_saved_config_round_trip(tmp_path):
    config = load(None, ["hidden_size=16", "cell=sru", "ensemble=[a, b]", "lr=0.5"])
    path = config_lib.saved_path(str(tmp_path))
    config.save(path)
    assert load(path) == config


def test_check_same_architecture_names_every_difference():
    saved = load(None, ["hidden_size=16", "cell=gru"])
    config_lib.check_same_architecture(saved, dict(saved), "dir")
    config = load(None, ["hidden_size=32", "cell=lstm", "lr=0.1"])
    with pytest.raises(UserError) as e:
        config_lib.check_same_architecture(config, dict(saved), "runs/x")
    message = str(e.value)
    assert "runs/x" in message and "hidden_size" in message and "cell" in message
    assert "lr" not in message.replace("layer_norm", "")


def _main(capsys, *argv):
    code = run.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    "sets, expected",
    [
        (["hiden_size=8"], "did you mean 'hidden_size'"),
        (["cell=lnr"], "did you mean 'lrn'"),
        (["cell=gru", "src_vocab_size=0", "tgt_vocab_size=0"], "src_vocab"),
        (["lr_schedule=noom"], "lr_schedule"),
    ],
)
def test_run_main_reports_one_line_errors(capsys, sets, expected):
    argv = ["--mode", "params"]
    for item in sets:
        argv += ["--set", item]
    code, out, err = _main(capsys, *argv)
    assert code == 1
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert expected in err
    assert "Traceback" not in err


def test_run_main_params(capsys):
    code, out, err = _main(
        capsys, "--mode", "params", "--set", "hidden_size=8", "--set", "embed_size=8",
        "--set", "src_vocab_size=30", "--set", "tgt_vocab_size=30",
    )  # fmt: skip
    assert code == 0, err
    total = int(out.strip().splitlines()[-1].removeprefix("total parameters: "))
    assert 1000 < total < 100000
    rows = out.strip().splitlines()[1:-1]
    assert sum(int(r.split()[-1].replace(",", "")) for r in rows) == total


@pytest.mark.parametrize("setting", ["hiden_size=8", "cell=lnr"])
def test_run_py_exits_1_without_traceback(setting):
    """The real command line: exit status 1, one 'error: ...' line on stderr."""
    result = subprocess.run(
        [sys.executable, "run.py", "--mode", "params", "--set", setting],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    assert "did you mean" in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_run_py_keeps_tensorflow_start_up_lines_off_the_console():
    """No "I0000 ... port.cc ..." lines from TensorFlow's C++ side unless --verbose (on CPUs
    where TensorFlow turns oneDNN on by itself it announces that while loading, whatever
    TF_CPP_MIN_LOG_LEVEL says; run.py must not pass that on to the user)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "run.py", "--mode", "params", "--set", "hidden_size=8",
         "--set", "embed_size=8", "--set", "src_vocab_size=50", "--set", "tgt_vocab_size=60"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    noise = [
        line
        for line in result.stderr.splitlines()
        if re.match(r"[IWEF]\d{4} ", line) or "absl::InitializeLog" in line
    ]
    assert noise == [], result.stderr
    assert "total parameters" in result.stdout


def test_readme_lists_every_key_with_its_default():
    """README's key table is config.describe(), so docs and defaults cannot drift apart."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        assert config_lib.describe() in f.read()


def test_readme_lists_every_mode():
    """README's mode table is zero.modes.describe(): a registered mode is documented."""
    from zero.modes import describe

    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        assert describe() in f.read()


@pytest.mark.parametrize("factor", ["0.5", "0", "0.99"])
def test_maximum_output_length_must_allow_a_token(factor):
    with pytest.raises(UserError, match="'max_decode_factor', 'max_decode_extra'"):
        load(None, [f"max_decode_factor={factor}", "max_decode_extra=0"])
    assert load(None, ["max_decode_factor=1", "max_decode_extra=0"]).max_decode_extra == 0
    assert load(None, ["max_decode_factor=1.5", "max_decode_extra=10"]).max_decode_factor == 1.5


@pytest.mark.parametrize(
    "setting, message",
    [
        ("beam_size=0", "'beam_size': must be at least 1, got 0"),
        ("beam_size=-3", "'beam_size': must be at least 1, got -3"),
        ("dropout=1", r"'dropout': must be in \[0, 1\), got 1.0"),
        ("dropout=-0.1", r"'dropout': must be in \[0, 1\), got -0.1"),
        ("adam_beta2=1.0", r"'adam_beta2': must be in \[0, 1\)"),
        ("lr=0", "'lr': must be above 0, got 0.0"),
        ("adam_epsilon=-1e-8", "'adam_epsilon': must be above 0"),
        ("port=65536", r"'port': must be in \[0, 65535\], got 65536"),
        ("hidden_size=0", "'hidden_size': must be at least 1"),
        ("batch_tokens=-1", "'batch_tokens': must be at least 1"),
        ("threads=-1", "'threads': must be at least 0"),
        ("max_decode_factor=-1", "'max_decode_factor': must be at least 0"),
        ("max_decode_extra=-2", "'max_decode_extra': must be at least 0"),
    ],
)
def test_a_number_outside_its_interval_names_the_key(setting, message):
    with pytest.raises(UserError, match=message):
        load(None, [setting])


@pytest.mark.parametrize(
    "setting", ["beam_size=1", "dropout=0", "dropout=0.999", "lr=1e-9", "port=0", "port=65535"]
)
def test_the_ends_of_an_interval_that_belong_to_it(setting):
    key, value = setting.split("=")
    assert load(None, [setting])[key] == float(value)


def test_every_default_and_config_file_is_within_bounds():
    load()
    for name in sorted(os.listdir(os.path.join(ROOT, "configs"))):
        load(os.path.join(ROOT, "configs", name))


def test_run_py_reports_a_number_out_of_bounds_in_a_yaml_file(capsys, tmp_path):
    path = _yaml(tmp_path, "beam_size: 0\n")
    code, out, err = _main(capsys, "--mode", "params", "--config", path)
    assert code == 1
    assert err == "error: config key 'beam_size': must be at least 1, got 0\n"
