"""What a new user sees when a command is missing something: what, where, and what to pass."""

from __future__ import annotations

import pytest

from sessionrec.cli import main


def run(capsys, monkeypatch, tmp_path, *argv: str) -> tuple[int, str, str]:
    monkeypatch.chdir(tmp_path)  # no ../shared above a pytest temporary folder
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_missing_shared_data_names_where_it_looked(capsys, monkeypatch, tmp_path) -> None:
    code, _, err = run(capsys, monkeypatch, tmp_path, "prepare", "--source", "yoochoose",
                       "--out", "d")
    assert code == 2
    assert err.startswith("error: no --input given and no yoochoose-100k/ folder for source "
                          "'yoochoose'; looked in ")
    assert str(tmp_path / "shared" / "data" / "yoochoose-100k") in err
    assert "Pass --input PATH/yoochoose-100k" in err


def test_train_without_config_asks_for_a_model(capsys, monkeypatch, tmp_path) -> None:
    code, _, err = run(capsys, monkeypatch, tmp_path, "train", "--data", "d", "--out", "r")
    assert code == 2
    assert "train needs a model: pass --config FILE" in err
    assert "configs/quickstart/gru4rec.toml" in err
    listed = err.rsplit("models: ", 1)[1].rstrip(")\n").split(", ")
    assert {"gru4rec", "hgru4rec", "vsknn", "narm"} <= set(listed) and listed == sorted(listed)
    code, _, err = run(capsys, monkeypatch, tmp_path, "train", "--data", "d", "--out", "r",
                       "--set", "model.name=pop")
    assert code == 2
    assert "--data d is not a prepared data directory (no manifest.json)" in err


def test_unknown_model_parameter_from_the_command_line(capsys, monkeypatch, tmp_path) -> None:
    code, _, err = run(capsys, monkeypatch, tmp_path, "train", "--out", "r", "--set",
                       "model.name=gru4rec", "--set", "model.params.n_epoch=1", "--data", "d")
    assert code == 2
    assert "has no parameter 'n_epoch'" in err and "did you mean 'n_epochs'?" in err


def test_serve_reports_a_bad_model_before_announcing(capsys, monkeypatch, tmp_path) -> None:
    pytest.importorskip("fastapi")
    code, out, err = run(capsys, monkeypatch, tmp_path, "serve", "--model", "nope/")
    assert code == 2
    assert out == ""  # no "serving nope/ on ..." line
    assert err.startswith("error: model: no saved model in nope")


def test_help_is_plain_text_with_defaults(capsys) -> None:
    from sessionrec.cli import build_parser

    text = build_parser()._subparsers._group_actions[0].choices["serve"].format_help()
    assert "``" not in text
    assert "(default: 127.0.0.1)" in text and "(default: 8000)" in text
    assert "``" not in build_parser().format_help()


def test_python_dash_m_sessionrec_is_the_same_command_line() -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "sessionrec", "quickstart", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith("usage: sessionrec quickstart")
    assert "--jobs N" in out
