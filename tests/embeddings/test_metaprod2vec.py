"""Meta-Prod2Vec: pair generation, negatives and what training learns, on tiny data."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from sessionrec.data.sessions import Sessions
from sessionrec.embeddings.metadata import MetadataTokens, item_metadata_tokens
from sessionrec.embeddings.metaprod2vec import (
    META_TERMS,
    TERMS,
    MetaProd2VecConfig,
    NegativeSampler,
    build_pairs,
    negative_groups,
    train,
    window_pairs,
)
from sessionrec.errors import ConfigError

I_I, M_I, J_M, M_M, I_M = range(5)


def as_set(centre: np.ndarray, context: np.ndarray) -> set[tuple[int, int]]:
    return set(zip(centre.tolist(), context.tolist(), strict=True))


def test_window_pairs_stay_inside_sessions() -> None:
    # sessions [0 1 2] [3 4] (event positions); window 1: neighbours both ways
    centre, context = window_pairs(np.array([0, 3, 5]), 1)
    assert sorted(zip(centre.tolist(), context.tolist(), strict=True)) == [
        (0, 1), (1, 0), (1, 2), (2, 1), (3, 4), (4, 3)]
    # window 2 adds 0 <-> 2 only
    centre, context = window_pairs(np.array([0, 3, 5]), 2)
    assert len(centre) == 8 and as_set(centre, context) >= {(0, 2), (2, 0)}


def test_window_pairs_of_a_chunk_are_relative_to_its_first_event() -> None:
    centre, context = window_pairs(np.array([10, 12]), 3)
    assert as_set(centre, context) == {(0, 1), (1, 0)}


def test_build_pairs_terms_by_hand() -> None:
    # two items, one session [0, 1]; one field: item 0 -> token 0, item 1 -> token 1;
    # ids in the joint space: items 0, 1, tokens 2, 3
    items = np.array([0, 1])
    tokens = np.array([[0], [1]])
    centre, context, term = build_pairs(items, np.array([0, 2]), tokens, 2, 1, META_TERMS)
    got = {TERMS[t]: as_set(centre[term == t], context[term == t]) for t in range(5)}
    assert got["I|I"] == {(0, 1), (1, 0)}
    assert got["M|I"] == {(0, 3), (1, 2)}  # centre item -> token of the context item
    assert got["J|M"] == {(2, 1), (3, 0)}  # token of the centre item -> context item
    assert got["M|M"] == {(2, 3), (3, 2)}
    assert got["I|M"] == {(2, 0), (3, 1)}  # own token -> item, once per event


def test_repeated_item_makes_no_self_pair_and_prod2vec_makes_no_tokens() -> None:
    centre, context, term = build_pairs(np.array([4, 4, 5]), np.array([0, 3]),
                                        np.zeros((6, 0), np.int64), 6, 1, ())
    assert as_set(centre, context) == {(4, 5), (5, 4)}
    assert set(term.tolist()) == {I_I}


def test_pairs_per_field() -> None:
    # two fields: every item pair makes 2 M|I, 2 J|M, 2 M|M (same field only) pairs
    tokens = np.array([[0, 2], [1, 3]])
    _, _, term = build_pairs(np.array([0, 1]), np.array([0, 2]), tokens, 2, 1, META_TERMS)
    assert np.bincount(term, minlength=5).tolist() == [2, 4, 4, 4, 4]


def test_negatives_are_drawn_from_the_context_kind() -> None:
    # ids 0-2 items (kind 0), 3-4 brands (kind 1), 5 a type (kind 2); id 1 never occurs
    sampler = NegativeSampler(np.array([5, 0, 5, 1, 1, 3]), np.array([0, 0, 0, 1, 1, 2]))
    gen = torch.Generator().manual_seed(0)
    neg = sampler.sample(torch.tensor([0, 1, 2, 0]), 500, gen)
    assert set(neg[0].tolist()) == {0, 2} and set(neg[3].tolist()) == {0, 2}
    assert set(neg[1].tolist()) == {3, 4}
    assert set(neg[2].tolist()) == {5}


def test_negative_groups_hold_one_kind() -> None:
    kinds = torch.tensor([1, 0, 1, 0, 0, 1, 1])
    slots, group_kind = negative_groups(kinds, 2, 2)
    # kind 0: pairs 1, 3, 4 -> groups [1, 3], [4, -]; kind 1: 0, 2, 5, 6 -> [0, 2], [5, 6]
    assert slots.tolist() == [[1, 3], [4, -1], [0, 2], [5, 6]]
    assert group_kind.tolist() == [0, 0, 1, 1]


def brand_world(brand_share: float = 1.0, n_sessions: int = 600, seed: int = 0
                ) -> tuple[Sessions, pl.DataFrame]:
    """24 items of 4 brands (item i has brand i % 4) and sessions of 6 items: a share
    ``brand_share`` of the sessions holds items of one brand, the others random items."""
    rng = np.random.default_rng(seed)
    n_items, n_brands = 24, 4
    sessions = []
    for _ in range(n_sessions):
        if rng.random() < brand_share:
            b = rng.integers(n_brands)
            sessions.append((b + n_brands * rng.integers(0, n_items // n_brands, 6)).tolist())
        else:
            sessions.append(rng.integers(0, n_items, 6).tolist())
    items = pl.DataFrame({"item_idx": np.arange(n_items), "item_id": 100 + np.arange(n_items),
                          "brand": [f"b{i % n_brands}" for i in range(n_items)]})
    return Sessions.from_lists(sessions, n_items), items


def same_vs_other(vectors: torch.Tensor, brand: np.ndarray) -> tuple[float, float]:
    unit = torch.nn.functional.normalize(vectors, dim=1)
    cos = (unit @ unit.T).numpy()
    same = brand[:, None] == brand[None, :]
    np.fill_diagonal(same, False)
    other = brand[:, None] != brand[None, :]
    return float(cos[same].mean()), float(cos[other].mean())


SMALL = {"dim": 16, "window": 2, "epochs": 3, "batch_size": 512, "group_size": 64}


@pytest.mark.parametrize("lambda_meta", [0.0, 1.0])
def test_items_of_a_brand_that_co_occur_are_nearer(lambda_meta: float) -> None:
    sessions, items = brand_world()
    tokens = item_metadata_tokens(items)
    model = train(sessions, tokens, MetaProd2VecConfig(lambda_meta=lambda_meta, **SMALL))
    same, other = same_vs_other(model.item_vectors(), np.arange(24) % 4)
    assert same > other + 0.3


def test_metadata_strengthens_a_weak_brand_signal() -> None:
    # only 20% of the sessions stay within a brand: prod2vec barely separates the brands, the
    # brand tokens of the neighbours (M|I) do
    sessions, items = brand_world(brand_share=0.2)
    tokens = item_metadata_tokens(items)
    meta = train(sessions, tokens, MetaProd2VecConfig(lambda_meta=1.0, **SMALL))
    plain = train(sessions, tokens, MetaProd2VecConfig(lambda_meta=0.0, **SMALL))
    brand = np.arange(24) % 4
    meta_same, meta_other = same_vs_other(meta.item_vectors(), brand)
    plain_same, plain_other = same_vs_other(plain.item_vectors(), brand)
    assert plain_same - plain_other < 0.1
    assert meta_same - meta_other > plain_same - plain_other + 0.15
    assert plain.tokens.n_tokens == 0 and plain.history[0]["pairs[M|I]"] == 0


def test_training_is_deterministic_given_the_seed() -> None:
    sessions, items = brand_world(n_sessions=100)
    tokens = item_metadata_tokens(items)
    cfg = MetaProd2VecConfig(epochs=1, **{k: v for k, v in SMALL.items() if k != "epochs"})
    a = train(sessions, tokens, cfg).vectors
    b = train(sessions, tokens, cfg).vectors
    c = train(sessions, tokens, MetaProd2VecConfig(**{**vars(cfg), "seed": 1})).vectors
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (24 + tokens.n_tokens, 16)


def test_history_counts_pairs_by_term() -> None:
    # one session [0, 1, 2], window 1: 4 item pairs; one field: 4 M|I, 4 J|M, 4 M|M, 3 I|M
    sessions = Sessions.from_lists([[0, 1, 2]], 3)
    tokens = MetadataTokens(("brand",), ("brand:a",), np.zeros((3, 1), np.int64),
                            np.zeros(1, np.int64))
    model = train(sessions, tokens, MetaProd2VecConfig(dim=4, window=1, epochs=1))
    h = model.history[0]
    assert [h[f"pairs[{t}]"] for t in TERMS] == [4, 4, 4, 4, 3]
    assert h["pairs"] == 19 and h["item_pairs"] == 4


def test_bad_config_names_the_field() -> None:
    with pytest.raises(ConfigError, match="window"):
        MetaProd2VecConfig(window=0)
    with pytest.raises(ConfigError, match="lambda_meta"):
        MetaProd2VecConfig(lambda_meta=-1)
    with pytest.raises(ConfigError, match="terms"):
        MetaProd2VecConfig(terms=("X|Y",))
