"""Loading a served model: run layouts, vocabulary search and checks, fallback, bad files."""

from __future__ import annotations

import shutil

import numpy as np
import polars as pl
import pytest
import torch

from sessionrec.errors import DataError, SessionRecError
from sessionrec.modeldir import model_directory
from sessionrec.serving.bundle import load_bundle
from sessionrec.serving.metrics import Metrics
from sessionrec.serving.middleware import Middleware
from sessionrec.serving.store import MemoryStore
from sessionrec.serving.vocab import Vocabulary

from .helpers import N_ITEMS, PRODUCTS, USERS, run, settings


def test_quickstart_layout_finds_vocab_and_sibling_cooc(runs_root):
    bundle = load_bundle(runs_root / "runs" / "gru4rec")
    assert bundle.vocab.path == str(runs_root / "data" / "items.parquet")
    assert bundle.fallback.name == "cooc"
    assert bundle.step.state_size == 8 and len(bundle.vocab) == N_ITEMS
    assert bundle.similar is not None
    assert bundle.tag.startswith("gru4rec@") and len(bundle.model_key) == 8
    # the model/ folder itself works as well, and gives the same key
    assert load_bundle(runs_root / "runs" / "gru4rec" / "model").model_key == bundle.model_key


def test_run_with_its_own_data_and_explicit_vocab(runs_root, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(runs_root / "runs" / "gru4rec", run)
    shutil.copytree(runs_root / "data", run / "data")
    assert load_bundle(run).vocab.path == str(run / "data" / "items.parquet")
    assert load_bundle(run).fallback.name == "pop"  # no sibling cooc run here
    explicit = load_bundle(run / "model", vocab=runs_root / "data")
    assert explicit.vocab.fingerprint == load_bundle(run).vocab.fingerprint


def test_config_toml_names_the_prepared_directory(runs_root, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(runs_root / "runs" / "gru4rec", run)
    (run / "config.toml").write_text(f'[data]\nprepared = "{runs_root / "data"}"\n')
    assert load_bundle(run).vocab.path == str(runs_root / "data" / "items.parquet")


def test_another_vocabulary_is_refused(runs_root, tmp_path):
    other = tmp_path / "other.parquet"
    pl.DataFrame({"item_idx": pl.Series(range(N_ITEMS), dtype=pl.Int32),
                  "item_id": PRODUCTS[::-1]}).write_parquet(other)
    with pytest.raises(SessionRecError, match=r"is not the vocabulary the model .* trained on"):
        load_bundle(runs_root / "runs" / "gru4rec", vocab=other)
    run = tmp_path / "run"
    shutil.copytree(runs_root / "runs" / "gru4rec", run)
    (run / "data").mkdir()
    shutil.copy(other, run / "data" / "items.parquet")
    with pytest.raises(SessionRecError, match=r"cannot find the item vocabulary.*another "
                                              r"vocabulary.*Pass --vocab"):
        load_bundle(run)


def test_missing_model_is_explained(tmp_path):
    with pytest.raises(SessionRecError, match=r"no saved model in .* give a run directory"):
        model_directory(tmp_path)


@pytest.mark.parametrize("run,window", [("cooc", 50), ("vsknn", 50), ("narm", 5)])
def test_models_without_a_recurrent_state_are_served_by_their_last_items(runs_root, run,
                                                                         window):
    bundle = load_bundle(runs_root / "runs" / run)
    assert bundle.step.kind == "prefix" and bundle.step.state_size == window
    states = bundle.step.start_states(None, 1)
    for item in (3, 4, 5):
        states, _, scores = bundle.step.step(states, np.array([item]), k=3)
    expected = bundle.model.score([[3, 4, 5]])
    assert np.allclose(scores[0], torch.topk(expected, 3).values[0].numpy())
    assert bundle.step.kind == "prefix"


def test_recurrent_models_keep_their_own_state(runs_root):
    assert load_bundle(runs_root / "runs" / "gru4rec").step.kind == "recurrent"


def test_fallback_must_be_item_to_item(runs_root):
    with pytest.raises(SessionRecError, match="not an item-to-item model"):
        load_bundle(runs_root / "runs" / "gru4rec", fallback=runs_root / "runs" / "gru4rec-b")


def test_blocked_products_are_mapped_and_unknown_ones_ignored(runs_root):
    bundle = load_bundle(runs_root / "runs" / "gru4rec", blocked=["101", 105, "nope"])
    assert bundle.blocked_ids == [101, 105]
    assert bundle.step.blocked.tolist() == [1, 5]


def test_vocabulary_maps_text_and_numbers(runs_root):
    vocab = Vocabulary.read(runs_root / "data")
    assert vocab.index_of(103) == vocab.index_of("103") == 3
    assert vocab.index_of("0103") == -1 and vocab.index_of(99) == -1
    assert vocab.products([2, 0]) == [102, 100]


@pytest.mark.parametrize(("frame", "message"), [
    ({"item_id": [1, 2]}, "no 'item_idx' column"),
    ({"item_idx": [0, 1]}, "no 'item_id' column"),
    ({"item_idx": [0, 2], "item_id": [1, 2]}, r"item_idx must be 0, 1, 2.*row 1"),
    ({"item_idx": [0, 1], "item_id": [1, None]}, r"missing ProductId.*row 1"),
    ({"item_idx": [0, 1], "item_id": ["a", "a"]}, "lists a ProductId twice"),
])
def test_bad_vocabulary_files(tmp_path, frame, message):
    path = tmp_path / "items.parquet"
    pl.DataFrame(frame).write_parquet(path)
    with pytest.raises(DataError, match=message):
        Vocabulary.read(path)


def test_missing_vocabulary_file(tmp_path):
    with pytest.raises(DataError, match="vocabulary file not found"):
        Vocabulary.read(tmp_path / "nothing.parquet")


def test_hgru4rec_serves_user_states_through_its_hooks(runs_root):
    """A real HGRU4Rec: sessions of a training user start from its learned user state, and an
    ended session advances the user state exactly as the model's own ``advance_user``."""
    bundle = load_bundle(runs_root / "runs" / "hgru4rec")
    model = bundle.model
    assert bundle.step.has_user_state and bundle.step.user_state_size == 6
    assert bundle.users == {str(u): i for i, u in enumerate(USERS)}
    mw = Middleware(bundle, MemoryStore(), settings(), Metrics())

    async def go():
        await mw.event("s", 103, user_id="1003")
        await mw.event("s", 104, user_id="1003")
        record = (await mw.store.get_session("s")).record
        await mw.end_session("s")
        return record, (await mw.store.get_user("1003")).record

    record, user = run(go())
    with torch.no_grad():
        learned = model.user_state_of(np.array([3]))
        state = model.session_start_state(learned)
        for item in (3, 4):
            state = model.advance(state, torch.tensor([item]))
        np.testing.assert_allclose(record.state, state[0].numpy(), rtol=1e-5, atol=1e-6)
        after = model.advance_user(learned, state)
    np.testing.assert_allclose(user.state, after[0].numpy(), rtol=1e-5, atol=1e-6)
    assert user.n_sessions == 1 and user.open_session is None


def test_a_prefix_served_model_with_nan_weights_is_refused(runs_root, tmp_path):
    run = tmp_path / "narm"
    shutil.copytree(runs_root / "runs" / "narm", run)
    weights = torch.load(run / "model" / "weights.pt", weights_only=True)
    key = "net.encoder.bilinear.weight"
    weights[key] = torch.full_like(weights[key], float("nan"))
    torch.save(weights, run / "model" / "weights.pt")
    with pytest.raises(SessionRecError, match="NaN or infinite"):
        load_bundle(run, vocab=runs_root / "data" / "items.parquet")


def test_saved_prepared_reads_the_runs_own_config(tmp_path):
    from sessionrec.modeldir import saved_prepared

    assert saved_prepared(tmp_path) == ""  # no config.toml
    (tmp_path / "config.toml").write_text('[data]\nprepared = "data/x"\n', encoding="utf-8")
    assert saved_prepared(tmp_path) == "data/x"
    (tmp_path / "config.toml").write_text("[data\n", encoding="utf-8")
    assert saved_prepared(tmp_path) == ""  # unreadable: the other candidates are tried
