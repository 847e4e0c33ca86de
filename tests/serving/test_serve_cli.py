"""``sessionrec serve``: settings from flags and environment, refusals, a real server."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from sessionrec.cli import main
from sessionrec.errors import ConfigError
from sessionrec.serving.settings import ServeSettings

from .helpers import free_port


def test_settings_from_environment_then_overrides():
    env = {"SESSIONREC_MODEL": "runs/a", "SESSIONREC_SESSION_TTL_S": "900",
           "SESSIONREC_EXCLUDE_SEEN": "false", "SESSIONREC_MAX_K": "50", "OTHER": "x"}
    s = ServeSettings.from_env(env, store="redis://r:6379/0", vocab=None)
    assert (s.model, s.session_ttl_s, s.exclude_seen, s.max_k, s.store, s.vocab) == (
        "runs/a", 900.0, False, 50, "redis://r:6379/0", "")
    assert ServeSettings.from_env(s.to_env()) == s


@pytest.mark.parametrize(("env", "message"), [
    ({}, "model is missing"),
    ({"SESSIONREC_MODEL": "m", "SESSIONREC_MAX_K": "lots"}, "SESSIONREC_MAX_K='lots' is not"),
    ({"SESSIONREC_MODEL": "m", "SESSIONREC_EXCLUDE_SEEN": "perhaps"}, "expected true/false"),
    ({"SESSIONREC_MODEL": "m", "SESSIONREC_DEFAULT_K": "500"}, "default_k = 500 is out of"),
    ({"SESSIONREC_MODEL": "m", "SESSIONREC_SESSION_TTL_S": "-1"}, "SESSIONREC_SESSION_TTL_S"),
])
def test_bad_settings_name_the_variable(env, message):
    with pytest.raises(ConfigError, match=message):
        ServeSettings.from_env(env)


def test_blocked_file(tmp_path):
    path = tmp_path / "blocked.txt"
    path.write_text("# out of stock\n101\n\n 105 \n")
    assert ServeSettings(model="m", blocked_file=str(path)).blocked() == ["101", "105"]
    with pytest.raises(ConfigError, match=r"blocked_file: .* does not exist"):
        ServeSettings(model="m", blocked_file=str(tmp_path / "nope")).blocked()


def test_several_workers_need_redis(runs_root, capsys):
    code = main(["serve", "--model", str(runs_root / "runs" / "gru4rec"), "--workers", "2"])
    assert code == 2
    assert "--workers > 1 needs a shared state store" in capsys.readouterr().err


def test_unloadable_model_fails_before_serving(tmp_path, capsys):
    assert main(["serve", "--model", str(tmp_path)]) == 2
    assert "no saved model in" in capsys.readouterr().err


def test_serve_answers_over_http(runs_root):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONREC_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sessionrec.cli", "serve", "--model",
         str(runs_root / "runs" / "gru4rec"), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "the server did not come up within 60 s"
            time.sleep(0.1)
        r = httpx.post(f"{url}/v1/events", json={"session_id": "s", "product_id": 100, "k": 3})
        assert r.status_code == 200 and len(r.json()["Predictions"]) == 3
        assert not r.json()["fallback"]
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_admin_token_comes_from_a_file_or_the_environment(tmp_path, runs_root, capsys):
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    s = ServeSettings.from_env({"SESSIONREC_MODEL": "m",
                                "SESSIONREC_ADMIN_TOKEN_FILE": str(token)})
    assert s.admin_token == "s3cret" and "s3cret" not in repr(s)
    env = s.to_env()  # what workers get: the file's path, never the token
    assert "SESSIONREC_ADMIN_TOKEN" not in env and "s3cret" not in str(env)
    assert ServeSettings.from_env(env) == s
    assert ServeSettings.from_env({"SESSIONREC_MODEL": "m", "SESSIONREC_ADMIN_TOKEN": "t"}
                                  ).admin_token == "t"
    token.write_text("\n")
    with pytest.raises(ConfigError, match=r"admin_token_file: .* is empty"):
        ServeSettings(model="m", admin_token_file=str(token))
    with pytest.raises(ConfigError, match="both"):
        ServeSettings(model="m", admin_token="a", admin_token_file=str(token))
    code = main(["serve", "--model", str(runs_root / "runs" / "gru4rec"), "--admin-token", "t"])
    assert code == 2 and "process list" in capsys.readouterr().err
