"""Placements in an experiment: every answer logged with its placement, and a variant that
covers only some placements answered by control on the others (logged under its variant)."""

from __future__ import annotations

import pytest

from sessionrec.errors import ConfigError
from sessionrec.experiments.config import load_experiment
from sessionrec.serving.app import create_app
from sessionrec.serving.store import MemoryStore

from .helpers import TestClient, settings
from .test_experiment_api import frame, router, users_of


def write(folder, runs_root, gru_placements: str = '["product_page"]',
          control_placements: str = ""):
    path = folder / "exp.toml"
    path.write_text(f"""[experiment]
name = "t"
salt = "pepper"
[variants.control]
model = "often-bought-together"
weight = 0.5
{control_placements}
[variants.gru]
model = "{(runs_root / 'runs' / 'gru4rec').as_posix()}"
weight = 0.5
placements = {gru_placements}
""")
    return path


def test_a_variant_answers_only_on_its_placements_and_every_answer_names_one(tmp_path,
                                                                              runs_root):
    path = write(tmp_path, runs_root)
    url = f"sqlite:///{(tmp_path / 'events.db').as_posix()}"
    app = create_app(settings(experiment=str(path), event_log=url), store=MemoryStore())
    config = load_experiment(path)
    with TestClient(app) as client:
        tags = {name: mw.bundle.tag for name, mw in router(client).variants.items()}
        user = users_of(config, "gru")[0]
        view = client.post("/v1/events", json={"session_id": "s1", "user_id": user,
                                               "product_id": 100, "k": 3}).json()
        add = client.post("/v1/events", json={"session_id": "s1", "user_id": user,
                                              "product_id": 101, "k": 3,
                                              "placement": "basket"}).json()
        home = client.get(f"/v1/users/{user}/recommendations", params={"k": 3}).json()
        assert (view["variant"], view["model"]) == ("gru", tags["gru"])
        assert (add["variant"], add["model"]) == ("gru", tags["control"])  # not gru's placement
        assert home["variant"] == "gru" and home["model"] == "fallback:cooc"
        # control's home: the products after the user's last session there (the basket add)
        assert home["reason"] == "last_items"
        summary = client.get("/v1/experiment").json()["variants"]
        assert [v["placements"] for v in summary] == [["product_page", "basket", "home"],
                                                      ["product_page"]]
    recs = frame(url).filter(kind="recommendation")
    assert recs["placement"].to_list() == ["product_page", "basket", "home"]
    assert recs["variant"].to_list() == ["gru", "gru", "gru"]


def test_placements_must_be_known_and_control_covers_them_all(tmp_path, runs_root):
    with pytest.raises(ConfigError, match=r"variants\.gru\.placements"):
        load_experiment(write(tmp_path, runs_root, '["sidebar"]'))
    with pytest.raises(ConfigError, match=r"variants\.gru\.placements.*twice"):
        load_experiment(write(tmp_path, runs_root, '["home", "home"]'))
    with pytest.raises(ConfigError, match=r"variants\.control\.placements"):
        load_experiment(write(tmp_path, runs_root, '["home"]', 'placements = ["home"]'))
