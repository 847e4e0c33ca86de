"""Everything one served model needs, loaded together and swapped as one (hot reload).

``load_bundle(path)`` accepts a run directory (``RUN_DIR/model/`` holds the model) or a model
directory itself, and finds the item vocabulary the model was trained on, trying in order:

1. ``vocab`` as given (an ``items.parquet`` or a prepared data directory);
2. ``RUN_DIR/data/items.parquet`` (a run that prepared its own data);
3. the prepared directory named by ``data.prepared`` in ``RUN_DIR/config.toml``;
4. ``RUN_DIR/../../data/items.parquet`` (the ``sessionrec quickstart`` / ``evaluate`` layout).

A candidate is only taken when its fingerprint matches the one saved with the model, so a
wrong vocabulary is refused, never silently used. The fallback is an item-to-item model given
as ``fallback``, else a sibling run ``RUN_DIR/../cooc`` on the same vocabulary, else the
served model's own popularity. A model that learned user states (HGRU4Rec) also gets the
training users' indices from ``users.parquet`` beside the vocabulary: a user the state store
does not know yet starts from the state the model learned for them.

With ``embeddings`` (``serve --embeddings STORE``) a p2v model also serves the store's
cold-start products (products with metadata but no views, placed in the run's space by
``sessionrec embed --from-run RUN --catalog CATALOG``; see
:mod:`sessionrec.models.p2v_coldstart`): the vocabulary gains them after the trained items
(indices ``n_items ..``), the model scores them, and answers flag them (:meth:`Bundle.cold_flags`).

Every load ends with the health check of :mod:`sessionrec.serving.health` (finite weights, a
scoring smoke test); any failure, whatever its cause (a truncated or pickled weights file, a
parameter ``model.json`` does not know, a vocabulary path that is no vocabulary), is raised as
a :class:`SessionRecError` naming the directory and the cause.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from sessionrec.errors import DataError, SessionRecError
from sessionrec.modeldir import find_vocab, model_directory
from sessionrec.models.base import WEIGHTS_FILE, SessionRecommender
from sessionrec.models.capabilities import ApproximateTopK, LearnedUserStates
from sessionrec.serving.fallback import Fallback
from sessionrec.serving.health import ModelLoadError, cause, check_model
from sessionrec.serving.step import ModelStep, SimilarItems, item_embeddings
from sessionrec.vocab import USERS_FILE, Vocabulary, read_users


@dataclass
class Bundle:
    """A loaded model with its vocabulary, fallback and derived lookups."""

    model: SessionRecommender
    step: ModelStep
    vocab: Vocabulary
    fallback: Fallback
    similar: SimilarItems | None
    model_dir: Path
    model_key: bytes  # 8 bytes identifying weights + vocabulary (stored with every state)
    blocked_ids: list = field(default_factory=list)
    users: dict[str, int] = field(default_factory=dict)  # training users' indices
    loaded_at: float = field(default_factory=time.time)
    degraded: str | None = None  # why the model stopped answering (set live; never cleared)
    n_cold: int = 0  # cold-start products served after the trained items (p2v + a store)

    def is_cold(self, item: int) -> bool:
        """Whether an item index is a cold-start product (no views; placed from metadata)."""
        return self.n_cold > 0 and item >= self.step.n_items

    def cold_flags(self, items) -> list[bool] | None:
        """Per item: a cold-start product? ``None`` when the bundle serves none."""
        return [self.is_cold(int(i)) for i in items] if self.n_cold else None

    def user_index(self, user_id: str) -> int:
        """The training index of a user (for models that learned user states), else -1."""
        return self.users.get(user_id, -1)

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def tag(self) -> str:
        """``name@key``: which model produced an answer."""
        return f"{self.model.name}@{self.model_key.hex()}"

    def info(self, paths: bool = True) -> dict:
        """What is served; ``paths=False`` leaves out the file-system paths (public view)."""
        out = {"model": self.model.name, "tag": self.tag, "vocab_fingerprint":
               self.vocab.fingerprint, "n_items": len(self.vocab),
               "state_size": self.step.state_size,
               "user_state_size": self.step.user_state_size, "fallback": self.fallback.name,
               "blocked_items": len(self.blocked_ids), "known_users": len(self.users),
               "loaded_at": self.loaded_at, "degraded": self.degraded}
        if paths:
            out.update(model_dir=str(self.model_dir), vocab=self.vocab.path)
        return out


def file_key(model_dir: Path, vocab: Vocabulary) -> bytes:
    """8 bytes that change with the weights or the vocabulary."""
    digest = hashlib.sha256(vocab.fingerprint.encode())
    with open(model_dir / WEIGHTS_FILE, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.digest()[:8]


def load_fallback(path: Path | None, run_dir: Path | None, vocab: Vocabulary,
                  model: SessionRecommender, blocked: np.ndarray) -> Fallback:
    popularity = model.popularity_.numpy()
    candidates = [path] if path is not None else (
        [run_dir.parent / "cooc"] if run_dir is not None else [])
    for candidate in candidates:
        if path is None and not candidate.is_dir():
            continue
        fb, matrix = load_item_to_item(model_directory(candidate)[0], vocab, "fallback")
        return Fallback(popularity, matrix, blocked, name=fb.name)
    return Fallback(popularity, None, blocked)


def load_item_to_item(model_dir: Path, vocab: Vocabulary, role: str,
                      ) -> tuple[SessionRecommender, sp.csr_matrix]:
    """An item-to-item model (e.g. ``cooc``) on ``vocab`` and its item x item CSR matrix.

    ``role`` names what it is loaded for in errors (a model without ``matrix_`` or with
    another item count is refused).
    """
    model = SessionRecommender.load(model_dir, vocab=vocab.fingerprint)
    matrix = getattr(model, "matrix_", None)
    if matrix is None:
        raise SessionRecError(f"{role}: the {model.name!r} model in {model_dir} is not an "
                              "item-to-item model (no matrix_); use a cooc run")
    if model.n_items_ != len(vocab):
        raise SessionRecError(f"{role}: {model_dir} has {model.n_items_} items, the vocabulary "
                              f"{len(vocab)}")
    return model, matrix.tocsr()


def load_bundle(model: str | Path, vocab: str | Path | None = None,
                fallback: str | Path | None = None, blocked: list | None = None,
                embeddings: str | Path | None = None) -> Bundle:
    """Load a served model (see the module docstring); ``blocked``: ProductIds never shown;
    ``embeddings``: a store with cold-start products for a p2v model.

    Raises :class:`SessionRecError` for every failure (:class:`ModelLoadError` wrapping an
    unexpected one, :class:`~sessionrec.serving.health.ModelUnhealthy` from the health check).
    """
    try:
        return _load_bundle(model, vocab, fallback, blocked, embeddings)
    except SessionRecError:
        raise
    except Exception as err:
        raise ModelLoadError(f"cannot load the model {model} (vocab {vocab or 'from the run'}, "
                             f"fallback {fallback or 'default'}): {cause(err)}") from err


def _load_bundle(model: str | Path, vocab: str | Path | None, fallback: str | Path | None,
                 blocked: list | None, embeddings: str | Path | None = None) -> Bundle:
    model_dir, run_dir = model_directory(model)
    found = find_vocab(model_dir, run_dir, vocab)
    recommender = SessionRecommender.load(model_dir, vocab=found.fingerprint)
    if recommender.n_items_ != len(found):
        raise DataError(f"the model has {recommender.n_items_:,} items, the vocabulary "
                        f"{len(found):,}", path=found.path)
    if isinstance(recommender, ApproximateTopK):  # an ANN index beside the weights
        recommender.use_index(model_dir / WEIGHTS_FILE)
    warm = found
    if embeddings is not None:
        found = with_cold_start(recommender, found, Path(embeddings))
    # Blocked products the model does not know can never be recommended anyway.
    blocked_idx = np.asarray([i for i in (found.index_of(b) for b in blocked or []) if i >= 0],
                             dtype=np.int64)
    step = ModelStep(recommender, blocked_idx)
    check_model(step, recommender.popularity_.numpy(), str(model_dir))
    emb = item_embeddings(recommender)
    similar = (SimilarItems(emb, step.blocked, getattr(recommender, "ann", None))
               if emb is not None else None)
    fb = load_fallback(None if fallback is None else Path(fallback), run_dir, warm,
                       recommender, blocked_idx[blocked_idx < len(warm)])
    users_file = Path(found.path).parent / USERS_FILE
    users = (read_users(users_file) if step.has_user_state and users_file.is_file()
             and isinstance(recommender, LearnedUserStates) else {})
    key = file_key(model_dir, found)
    if len(found) > len(warm):  # states may hold cold-start items: another key
        key = hashlib.sha256(key + "\n".join(map(str, found.ids[len(warm):])).encode()
                             ).digest()[:8]
    return Bundle(recommender, step, found, fb, similar, model_dir, key,
                  found.products(blocked_idx), users,
                  n_cold=len(found) - len(warm))


def with_cold_start(model: SessionRecommender, vocab: Vocabulary, store_path: Path
                    ) -> Vocabulary:
    """``vocab`` plus the store's cold-start products, now scored by ``model`` (p2v)."""
    from sessionrec.embeddings.store import read_store
    from sessionrec.models.p2v_coldstart import cold_products

    known = {str(pid) for pid in vocab.ids}
    ids, vectors = cold_products(read_store(store_path), model, known, str(store_path))
    model.add_cold(vectors)
    return Vocabulary(vocab.ids + ids, vocab.fingerprint, vocab.path)
