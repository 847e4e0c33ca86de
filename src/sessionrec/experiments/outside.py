"""A stand-in for seed 000's black-box recommendation service: any trained run behind an HTTP
API of its own shape, for simulated A/B tests of our model against an outside one.

    sessionrec experiment outside --model runs/sknn --port 8765 [--key-env OUTSIDE_KEY]

    POST /recommend   {"session": "s-1", "history": [101, 205], "n": 10}
                   -> {"items": [{"id": 17}, {"id": 4}, ...]}

The field names differ from ours on purpose: an experiment's ``external`` variant maps them
(``request = {session_id = "session", product_ids = "history", k = "n"}``, ``response =
"items"``, ``response_item = "id"``). With ``--key-env`` every call must carry the variable's
value in ``X-Api-Key`` (401 otherwise). Products the run does not know are ignored; a session
with none known gets the run's most popular products.

FastAPI reads the handlers' annotations at run time: no ``from __future__ import annotations``.
"""

import hmac
import os
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel, Field

from sessionrec.modeldir import find_vocab, model_directory
from sessionrec.models.base import SessionRecommender


class OutsideRequest(BaseModel):
    session: str | int | None = None
    user: str | int | None = None
    history: list[str | int] = Field(default_factory=list, max_length=1000)
    n: int = Field(10, ge=1, le=200)


def outside_app(model: str | Path, key_env: str = "") -> FastAPI:
    """The stand-in service of the run (or model directory) ``model``."""
    model_dir, run_dir = model_directory(model)
    vocab = find_vocab(model_dir, run_dir, None)
    recommender = SessionRecommender.load(model_dir, vocab=vocab.fingerprint)
    expected = os.environ.get(key_env, "") if key_env else ""
    app = FastAPI(title=f"outside recommender ({recommender.name})")

    @app.get("/readyz")
    def readyz() -> dict:
        return {"ready": True, "model": recommender.name}

    @app.post("/recommend")
    def recommend(body: OutsideRequest,
                  x_api_key: Annotated[str | None, Header()] = None) -> dict:
        if expected and not hmac.compare_digest((x_api_key or "").encode(), expected.encode()):
            raise HTTPException(401, "X-Api-Key missing or wrong")
        known = [i for i in (vocab.index_of(p) for p in body.history) if i >= 0]
        items, _ = recommender.recommend([known], k=body.n, exclude_seen=True)
        return {"items": [{"id": p} for p in vocab.products(items[0].tolist())]}

    return app
