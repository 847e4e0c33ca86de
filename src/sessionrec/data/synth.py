"""Deterministic synthetic raw logs in the Galaxus format (seed 000, section 3.2).

:func:`generate` writes what :mod:`sessionrec.data.sources.galaxus` reads::

    OUT_DIR/
      events/part-00000.parquet   one shard per simulated UTC day (or .csv)
      items.parquet               ProductId, Brand, ProductType, Price
      orders.parquet              optional (``orders=True``): purchases of viewed products
      README.md                   parameters, counts, and a note that the data is generated

The generative model has structure at three levels, so that item-to-item models (co-occurrence,
Markov), session models (GRU4Rec) and user models (HGRU4Rec) each have something to learn that
popularity alone does not give:

* **catalogue** — items belong to product types of power-law sizes, grouped into departments;
  brands belong to one department or one type; prices are lognormal around a per-type median;
  item popularity is Zipf-like (with cheaper items of a type slightly preferred). Within a type
  the items sit on a ring, an order that only the sessions reveal.
* **session** — the first item is drawn from a focus type; each next view is usually a short,
  mostly forward step along the ring from the previous item (choosing among a few nearby
  candidates by popularity), sometimes a switch to another type, a revisit of an earlier item
  of the session, or a globally popular item.
* **user** — users have lognormal activity (heavy-tailed sessions per user), two to three
  preferred product types, a preferred brand and two devices; their sessions focus on their
  preferred types, so past sessions predict the next ones.

Human sessions last under an hour, a user's sessions of one day sit in distinct 90-minute slots
(so they are always more than 30 minutes apart), and no session crosses midnight. Bots (user
agents from the ``crawler-user-agents`` package) view items uniformly in long, fast sessions;
half of their sessions carry a per-crawler account id in ``LastLoggedInUserId`` so that bot
removal matters even after anonymous events are dropped.

Every shard draws from its own generator (``SeedSequence(seed).spawn``), so a shard depends only
on the seed, the shard index and the catalogue/user parameters, and shards could be written in
parallel; bot user agents come from the installed ``crawler-user-agents`` version, so the
same output also needs the same version of that package. Memory grows with the catalogue, the
user base and ``events_per_shard``, not with ``n_events``.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from sessionrec.data.io import atomic_directory, atomic_write_text
from sessionrec.errors import ConfigError

START = datetime(2024, 1, 1, tzinfo=UTC)  # day 0 of the simulation
DAY_MS = 86_400_000
SLOT_MS = 90 * 60_000          # a user's sessions of one day sit in distinct 90-minute slots ...
MAX_SESSION_MS = 60 * 60_000   # ... and last under an hour: gaps between them exceed 30 minutes
SLOTS_PER_DAY = DAY_MS // SLOT_MS

ITEMS_PER_TYPE = 40
TYPES_PER_DEPARTMENT = 8
POPULARITY_EXPONENT = 0.9     # Zipf exponent of item popularity
USER_ACTIVITY_SIGMA = 1.2      # lognormal sigma of users' session rates
N_PREFERRED_TYPES = 3
SESSION_LEN_MU, SESSION_LEN_SIGMA, MAX_SESSION_LEN = 1.2, 0.9, 200   # mean length ~5.5
P_FOCUS_PREFERRED = 0.8        # a user's session starts in one of the user's preferred types
P_GLOBAL, P_SWITCH, P_REVISIT = 0.05, 0.10, 0.07   # per step; the rest are ring steps
N_CANDIDATES = 3               # nearby (or in-type) candidates, chosen among by popularity
P_FORWARD, STEP_P = 0.7, 0.45  # ring steps go forward 70% of the time, |step| ~ Geometric(0.45)
BRAND_BOOST = 4.0              # weight of a candidate of the user's preferred brand
P_MOBILE = 0.55
BOT_LEN_MU, BOT_LEN_SIGMA, MAX_BOT_LEN = math.log(80), 0.8, 2000
P_BOT_ACCOUNT = 0.5

USER_ID_BASE = 1_000_000
BOT_ACCOUNT_BASE = 500_000
PRODUCT_ID_BASE = 1_000_000
SESSION_ID_BASE = 1_000_000_000
SESSION_ID_MULTIPLIER = 7_919  # coprime with powers of ten: scrambles ids within a shard

# Orders (optional): a known user buys some of the products they viewed, often days later.
P_BUY = 0.03                 # per distinct product a user views in a session
P_BUY_LATER = 0.6            # ... bought in a later session of theirs (if one follows in time)
ORDER_WINDOW_DAYS = 14.0     # ... that starts at most this long after the view
CHECKOUT_MS = (60_000, 15 * 60_000)  # checkout this long after the session's last view
ORDER_ID_BASE = 70_000_000

# Browser user agents of human visitors: (string, is_mobile, weight).
BROWSER_USER_AGENTS: tuple[tuple[str, bool, float], ...] = (
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36", False, 0.40),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36", False, 0.12),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80", False, 0.15),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
     False, 0.10),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", False, 0.03),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.4.1 Safari/605.1.15", False, 0.20),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1", True, 0.35),
    ("Mozilla/5.0 (iPad; CPU OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.4.1 Mobile/15E148 Safari/604.1", True, 0.08),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1", True, 0.05),
    ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Mobile Safari/537.36", True, 0.37),
    ("Mozilla/5.0 (Linux; Android 14; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
     "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36", True, 0.10),
    ("Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0", True, 0.05),
)
DEPARTMENTS = ("Audio", "Computing", "Phones", "Photo", "Gaming", "TV", "Household", "Kitchen",
               "Garden", "DIY", "Sports", "Toys", "Baby", "Beauty", "Office", "Pets", "Fashion",
               "Health")
_SYLLABLES = ("ka", "lo", "vi", "ne", "tor", "mi", "sa", "ron", "de", "lux", "po", "zen", "ta",
              "ri", "bo", "ex", "mar", "qu", "fin", "go")


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`generate` wrote: counts over all shards."""

    path: Path
    fmt: str
    seed: int
    events: int
    shards: int
    sessions: int
    users: int                  # distinct human users with at least one event
    items: int                  # catalogue size (items.parquet rows)
    bot_events: int
    bot_sessions: int
    anonymous_events: int
    last_logged_in_only_events: int
    orders: int = 0              # orders.parquet: orders (0 when not asked for) ...
    order_lines: int = 0         # ... their product lines ...
    order_lines_later_session: int = 0  # ... of which bought after the viewing session


@dataclass(frozen=True)
class _World:
    """The catalogue and the user base; items are stored type by type, in ring order."""

    product_id: np.ndarray      # (n_items,) shop ids
    item_type: np.ndarray       # (n_items,)
    item_brand: np.ndarray      # (n_items,)
    type_start: np.ndarray      # (n_types + 1,) items of type t are type_start[t]:type_start[t+1]
    pop: np.ndarray             # (n_items,) popularity weights
    pop_cdf: np.ndarray         # (n_items,) cumulative popularity
    type_cdf: np.ndarray        # (n_types,) cumulative type popularity
    user_cdf: np.ndarray        # (n_users,) cumulative session rates
    pref_types: np.ndarray      # (n_users, N_PREFERRED_TYPES)
    pref_cdf: np.ndarray        # (n_users, N_PREFERRED_TYPES) cumulative preference weights
    pref_brand: np.ndarray      # (n_users,)
    devices: np.ndarray         # (n_users, 2) index into user_agents: desktop, mobile
    user_agents: list[str]      # browsers first, then crawler instances
    bot_entry_cdf: np.ndarray   # (n_crawlers,) Zipf over crawler entries in package order
    bot_instance_start: np.ndarray  # (n_crawlers + 1,) their instances in user_agents


def _sample_cdf(rng: np.random.Generator, cdf: np.ndarray, n: int) -> np.ndarray:
    """n indices drawn with probability proportional to the increments of ``cdf``."""
    idx = np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right")
    return np.minimum(idx, len(cdf) - 1)


def _pick(rng: np.random.Generator, cand: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """One candidate per row of ``cand`` (n, k), with probability proportional to weights."""
    cum = np.cumsum(weights, axis=1)
    u = rng.random(len(cand)) * cum[:, -1]
    k = np.minimum((u[:, None] >= cum).sum(axis=1), cand.shape[1] - 1)
    return cand[np.arange(len(cand)), k]


def _brand_weights(w: _World, cand: np.ndarray, brand_pref: np.ndarray) -> np.ndarray:
    return np.where(w.item_brand[cand] == brand_pref[:, None], BRAND_BOOST, 1.0)


def _items_in_types(rng: np.random.Generator, w: _World, types: np.ndarray,
                    brand_pref: np.ndarray) -> np.ndarray:
    """A popular item of each type, favouring the preferred brand (-1: none)."""
    lo = np.where(w.type_start[types] > 0, w.pop_cdf[w.type_start[types] - 1], 0.0)
    hi = w.pop_cdf[w.type_start[types + 1] - 1]
    u = lo[:, None] + rng.random((len(types), N_CANDIDATES)) * (hi - lo)[:, None]
    cand = np.searchsorted(w.pop_cdf, u, side="right")
    cand = np.clip(cand, w.type_start[types][:, None], w.type_start[types + 1][:, None] - 1)
    return _pick(rng, cand, _brand_weights(w, cand, brand_pref))


def _ring_steps(rng: np.random.Generator, w: _World, prev: np.ndarray,
                brand_pref: np.ndarray) -> np.ndarray:
    """A nearby item of the same type: short, mostly forward steps, weighted by popularity."""
    shape = (len(prev), N_CANDIDATES)
    step = rng.geometric(STEP_P, shape) * np.where(rng.random(shape) < P_FORWARD, 1, -1)
    types = w.item_type[prev]
    start, size = w.type_start[types], w.type_start[types + 1] - w.type_start[types]
    cand = start[:, None] + (prev - start)[:, None] + step
    cand = start[:, None] + (cand - start[:, None]) % size[:, None]
    return _pick(rng, cand, w.pop[cand] * _brand_weights(w, cand, brand_pref))


def _focus_types(rng: np.random.Generator, w: _World, users: np.ndarray,
                 p_preferred: float) -> np.ndarray:
    """A product type per session: a preferred one of the user, else by type popularity."""
    types = _sample_cdf(rng, w.type_cdf, len(users))
    known = np.flatnonzero((users >= 0) & (rng.random(len(users)) < p_preferred))
    if len(known):
        u = users[known]
        k = (rng.random(len(u))[:, None] >= w.pref_cdf[u]).sum(axis=1)
        types[known] = w.pref_types[u, np.minimum(k, N_PREFERRED_TYPES - 1)]
    return types


def _syllable_name(i: int) -> str:
    parts = [_SYLLABLES[i % 20], _SYLLABLES[(i // 20) % 20], _SYLLABLES[(i // 400) % 20]]
    if i >= 8000:
        parts.append(str(i // 8000))
    return "".join(parts).capitalize()


def _build_world(rng: np.random.Generator, n_users: int, n_items: int
                 ) -> tuple[_World, pl.DataFrame]:
    import crawleruseragents  # imported here: only the generator needs the crawler list

    n_types = max(2, n_items // ITEMS_PER_TYPE)
    shares = rng.permutation(np.arange(1, n_types + 1) ** -0.8)
    sizes = 1 + rng.multinomial(n_items - n_types, shares / shares.sum())
    type_start = np.concatenate([[0], np.cumsum(sizes)])
    item_type = np.repeat(np.arange(n_types), sizes)
    dept = np.arange(n_types) // TYPES_PER_DEPARTMENT
    dept_items = np.bincount(dept, weights=sizes).astype(np.int64)

    # Brands: most belong to a department (a few of its types), the rest to a single type.
    n_dept_brands = 3 + dept_items // 150
    n_type_brands = 1 + sizes // 30
    dept_off = np.concatenate([[0], np.cumsum(n_dept_brands)])
    type_off = dept_off[-1] + np.concatenate([[0], np.cumsum(n_type_brands)])
    u = rng.random(n_items) ** 2  # skewed: a department's first brands are its big ones
    d = dept[item_type]
    item_brand = np.where(
        rng.random(n_items) < 0.6,
        dept_off[d] + (u * n_dept_brands[d]).astype(np.int64),
        type_off[item_type] + (u * n_type_brands[item_type]).astype(np.int64))

    type_median = rng.lognormal(math.log(50.0), 1.1, n_types)
    brand_premium = rng.lognormal(0.0, 0.3, type_off[-1])
    relative = rng.lognormal(0.0, 0.4, n_items)
    price = type_median[item_type] * brand_premium[item_brand] * relative
    price = np.maximum(np.round(price * 20) / 20, 1.0)

    # Zipf popularity over a random ranking; cheaper items of a type are a little more popular.
    pop = (rng.permutation(n_items) + 1.0) ** -POPULARITY_EXPONENT * relative ** -0.5
    pop_cdf = np.cumsum(pop)
    type_cdf = np.cumsum(np.bincount(item_type, weights=pop, minlength=n_types))
    product_id = PRODUCT_ID_BASE + rng.choice(10 * n_items, n_items, replace=False)

    activity = rng.lognormal(0.0, USER_ACTIVITY_SIGMA, n_users)
    pref_types = _sample_cdf(rng, type_cdf, n_users * N_PREFERRED_TYPES).reshape(n_users, -1)
    pref_cdf = np.cumsum(rng.dirichlet(np.ones(N_PREFERRED_TYPES), n_users), axis=1)

    uas = [ua for ua, _, _ in BROWSER_USER_AGENTS]
    mobile = np.array([m for _, m, _ in BROWSER_USER_AGENTS])
    weight = np.array([x for _, _, x in BROWSER_USER_AGENTS])
    desktop_idx, mobile_idx = np.flatnonzero(~mobile), np.flatnonzero(mobile)
    devices = np.stack([
        desktop_idx[_sample_cdf(rng, np.cumsum(weight[desktop_idx]), n_users)],
        mobile_idx[_sample_cdf(rng, np.cumsum(weight[mobile_idx]), n_users)]], axis=1)
    crawlers = [e["instances"] for e in crawleruseragents.CRAWLER_USER_AGENTS_DATA
                if e.get("instances")]
    instance_start = len(uas) + np.concatenate([[0], np.cumsum([len(c) for c in crawlers])])
    uas += [ua for c in crawlers for ua in c]

    world = _World(
        product_id=product_id, item_type=item_type, item_brand=item_brand,
        type_start=type_start, pop=pop, pop_cdf=pop_cdf, type_cdf=type_cdf,
        user_cdf=np.cumsum(activity), pref_types=pref_types, pref_cdf=pref_cdf,
        pref_brand=np.zeros(n_users, np.int64), devices=devices, user_agents=uas,
        bot_entry_cdf=np.cumsum(1.0 / np.arange(1, len(crawlers) + 1)),
        bot_instance_start=instance_start)
    # A user's favourite brand is the brand of a popular item of their first preferred type.
    world = replace(world, pref_brand=item_brand[_items_in_types(
        rng, world, pref_types[:, 0], np.full(n_users, -1))])

    used = np.unique(item_brand)
    brand_names = np.empty(type_off[-1], dtype=object)
    brand_names[used] = [_syllable_name(int(b)) for b in rng.permutation(len(used))]
    type_names = [f"{DEPARTMENTS[d % len(DEPARTMENTS)]} {t:05d}" for t, d in enumerate(dept)]
    items = pl.DataFrame({
        "ProductId": pl.Series(product_id, dtype=pl.Int64),
        "Brand": pl.Series(brand_names[item_brand].tolist(), dtype=pl.String),
        "ProductType": pl.Series(type_names, dtype=pl.String).gather(item_type),
        "Price": pl.Series(price, dtype=pl.Float64),
    }).sort("ProductId")
    return world, items


def _lengths_for(rng: np.random.Generator, budget: int, draw: Callable[[int], np.ndarray],
                 mean: float) -> np.ndarray:
    """Session lengths summing exactly to ``budget`` events (the last one is cut short)."""
    parts: list[np.ndarray] = []
    total = 0
    while total < budget:
        part = draw(int((budget - total) / mean * 1.1) + 16)
        parts.append(part)
        total += int(part.sum())
    if not parts:
        return np.zeros(0, np.int64)
    lengths = np.concatenate(parts).astype(np.int64)
    cum = np.cumsum(lengths)
    k = int(np.searchsorted(cum, budget, side="left"))
    lengths = lengths[: k + 1]
    lengths[-1] -= cum[k] - budget
    return lengths


def _times_in_session(rng: np.random.Generator, lengths: np.ndarray, median_s: float,
                      sigma: float, lo_s: float, hi_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Milliseconds since the session's first event, per event; and each session's duration."""
    if not len(lengths):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    starts = np.cumsum(lengths) - lengths
    gaps = np.clip(rng.lognormal(math.log(median_s), sigma, int(lengths.sum())), lo_s, hi_s)
    gaps = gaps * 1000.0
    gaps[starts] = 0.0
    # Long sessions are squeezed (faster clicks) so every session ends within MAX_SESSION_MS.
    budget = MAX_SESSION_MS - 5_000.0 - lengths
    duration = np.add.reduceat(gaps, starts)
    gaps *= np.repeat(np.minimum(1.0, budget / np.maximum(duration, 1.0)), lengths)
    gaps = np.maximum(np.floor(gaps), 1).astype(np.int64)  # strictly increasing within sessions
    gaps[starts] = 0
    cum = np.cumsum(gaps)
    within = cum - np.repeat(cum[starts], lengths)
    return within, within[starts + lengths - 1]


def _slots(rng: np.random.Generator, users: np.ndarray) -> np.ndarray:
    """Distinct slots of the day for each user's sessions (users have <= SLOTS_PER_DAY)."""
    order = np.lexsort((rng.random(len(users)), users))
    sorted_users = users[order]
    first = np.searchsorted(sorted_users, sorted_users, side="left")
    count = np.searchsorted(sorted_users, sorted_users, side="right") - first
    rank = np.arange(len(users)) - first
    lo = SLOTS_PER_DAY * rank // count
    hi = SLOTS_PER_DAY * (rank + 1) // count
    slots = np.empty(len(users), np.int64)
    slots[order] = lo + (rng.random(len(users)) * (hi - lo)).astype(np.int64)
    return slots


def _session_users(rng: np.random.Generator, w: _World, n: int) -> np.ndarray:
    """Users of n sessions by activity, capped at SLOTS_PER_DAY sessions per user and day."""
    users = _sample_cdf(rng, w.user_cdf, n)
    n_users = len(w.user_cdf)
    for _ in range(100):
        order = np.argsort(users, kind="stable")
        sorted_users = users[order]
        rank = np.arange(n) - np.searchsorted(sorted_users, sorted_users, side="left")
        over = order[rank >= SLOTS_PER_DAY]
        if not len(over):
            return users
        users[over] = rng.integers(0, n_users, len(over))
    raise ConfigError("could not give every user at most "
                      f"{SLOTS_PER_DAY} sessions a day; raise n_users")


def _browse(rng: np.random.Generator, w: _World, lengths: np.ndarray,
            users: np.ndarray) -> np.ndarray:
    """Item indices of human sessions, flat; ``lengths`` sorted descending, users -1 if anonymous.

    One step per position: at position p every session longer than p (a prefix, since lengths
    are sorted) moves on from its previous item.
    """
    starts = np.cumsum(lengths) - lengths
    items = np.empty(int(lengths.sum()), np.int64)
    brand_pref = np.where(users >= 0, w.pref_brand[np.maximum(users, 0)], -1)
    items[starts] = _items_in_types(rng, w, _focus_types(rng, w, users, P_FOCUS_PREFERRED),
                                    brand_pref)
    neg_lengths = -lengths
    for p in range(1, int(lengths[0]) if len(lengths) else 0):
        m = int(np.searchsorted(neg_lengths, -p, side="left"))  # sessions longer than p
        at = starts[:m] + p
        r = rng.random(m)
        nxt = _ring_steps(rng, w, items[at - 1], brand_pref[:m])
        glob = np.flatnonzero(r < P_GLOBAL)
        nxt[glob] = _sample_cdf(rng, w.pop_cdf, len(glob))
        switch = np.flatnonzero((r >= P_GLOBAL) & (r < P_GLOBAL + P_SWITCH))
        types = _focus_types(rng, w, users[switch], P_FOCUS_PREFERRED)
        nxt[switch] = _items_in_types(rng, w, types, brand_pref[switch])
        revisit = np.flatnonzero((r >= P_GLOBAL + P_SWITCH)
                                 & (r < P_GLOBAL + P_SWITCH + P_REVISIT))
        back = (rng.random(len(revisit)) * p).astype(np.int64)
        nxt[revisit] = items[starts[revisit] + back]
        items[at] = nxt
    return items


@dataclass(frozen=True)
class _Shares:
    bot: float
    anonymous: float
    last_logged_in_only: float


def _shard(rng: np.random.Generator, w: _World, day: int, n_events: int, shares: _Shares,
           session_id_stride: int) -> tuple[pl.DataFrame, dict[str, int], np.ndarray]:
    """One day's events (sorted by time), its counts, and the human users seen."""
    n_bot = round(shares.bot * n_events)
    n_anon = round(shares.anonymous * n_events)
    n_user = n_events - n_bot - n_anon

    def human_len(n: int) -> np.ndarray:
        x = 1 + np.floor(rng.lognormal(SESSION_LEN_MU, SESSION_LEN_SIGMA, n))
        return np.minimum(x, MAX_SESSION_LEN).astype(np.int64)

    def bot_len(n: int) -> np.ndarray:
        x = 10 + np.floor(rng.lognormal(BOT_LEN_MU, BOT_LEN_SIGMA, n))
        return np.minimum(x, MAX_BOT_LEN).astype(np.int64)

    user_len = _lengths_for(rng, n_user, human_len, 5.5)
    anon_len = _lengths_for(rng, n_anon, human_len, 5.5)
    bot_lens = _lengths_for(rng, n_bot, bot_len, 120.0)
    users = np.concatenate([_session_users(rng, w, len(user_len)),
                            np.full(len(anon_len), -1)])
    lengths = np.concatenate([user_len, anon_len])
    order = np.argsort(-lengths, kind="stable")
    lengths, users = lengths[order], users[order]
    n_human, n_bots = len(lengths), len(bot_lens)

    # Human sessions: items, times, ids, devices.
    items = _browse(rng, w, lengths, users)
    within, duration = _times_in_session(rng, lengths, 25.0, 1.1, 1.0, 20 * 60.0)
    known = users >= 0
    slot = rng.integers(0, SLOTS_PER_DAY, n_human)  # anonymous visitors: any slot
    slot[known] = _slots(rng, users[known])
    start = slot * SLOT_MS + (rng.random(n_human) * (MAX_SESSION_MS - duration)).astype(np.int64)
    p_llo = shares.last_logged_in_only / max(1.0 - shares.bot - shares.anonymous, 1e-12)
    logged_in = known & (rng.random(n_human) >= p_llo)
    device = (rng.random(n_human) < P_MOBILE).astype(np.int64)
    human_ua = np.where(known, w.devices[np.maximum(users, 0), device],
                        w.devices[rng.integers(0, len(w.user_cdf), n_human), device])
    last_user = np.where(known, USER_ID_BASE + users, -1)

    # Bot sessions: uniform items, fast clicks, crawler user agents, sometimes an account.
    bot_items = rng.integers(0, len(w.pop), int(bot_lens.sum()))
    bot_within, bot_duration = _times_in_session(rng, bot_lens, 1.0, 0.5, 0.1, 10.0)
    bot_start = (rng.random(n_bots) * (DAY_MS - bot_duration)).astype(np.int64)
    entry = _sample_cdf(rng, w.bot_entry_cdf, n_bots)
    first, n_inst = w.bot_instance_start[entry], np.diff(w.bot_instance_start)[entry]
    bot_ua = first + (rng.random(n_bots) * n_inst).astype(np.int64)
    bot_user = np.where(rng.random(n_bots) < P_BOT_ACCOUNT, BOT_ACCOUNT_BASE + entry, -1)

    all_len = np.concatenate([lengths, bot_lens])
    local = np.arange(n_human + n_bots, dtype=np.int64)
    session_id = (SESSION_ID_BASE + day * session_id_stride
                  + local * SESSION_ID_MULTIPLIER % session_id_stride)
    day_ms = int(START.timestamp() * 1000) + day * DAY_MS
    ts = day_ms + np.concatenate([np.repeat(start, lengths) + within,
                                  np.repeat(bot_start, bot_lens) + bot_within])
    last = np.repeat(np.concatenate([last_user, bot_user]), all_len)
    logged = np.repeat(np.concatenate([logged_in, np.zeros(n_bots, bool)]), all_len)
    df = pl.DataFrame({
        "ProductId": w.product_id[np.concatenate([items, bot_items])],
        "LastLoggedInUserId": last,
        "UserId": np.where(logged, last, -1),
        "SessionId": np.repeat(session_id, all_len),
        "UserAgent": pl.Series(w.user_agents, dtype=pl.String).gather(
            np.repeat(np.concatenate([human_ua, bot_ua]), all_len)),
        "Timestamp": pl.Series(ts, dtype=pl.Int64).cast(pl.Datetime("ms", "UTC")),
    }).with_columns(
        pl.when(pl.col(c) >= 0).then(pl.col(c)).alias(c)
        for c in ("LastLoggedInUserId", "UserId")
    ).sort("Timestamp", "SessionId")
    counts = {
        "sessions": n_human + n_bots,
        "bot_events": n_bot,
        "bot_sessions": n_bots,
        "anonymous_events": int(lengths[~known].sum()),
        "last_logged_in_only_events": int(lengths[known & ~logged_in].sum()),
    }
    return df, counts, np.unique(users[known])


def synth_orders(views: pl.DataFrame, items: pl.DataFrame, rng: np.random.Generator, *,
                 p_buy: float = P_BUY, p_later: float = P_BUY_LATER,
                 window_days: float = ORDER_WINDOW_DAYS) -> pl.DataFrame:
    """Orders of known users: each buys some products they viewed, often in a later session.

    ``views`` holds the known users' views: ``UserId, SessionId, ProductId`` and ``Timestamp``
    (Unix milliseconds, Int64); ``items`` has ``ProductId, Price``. Every distinct product a user
    views in a session is bought with probability ``p_buy``; a bought product goes into an order
    at the end of a later session of that user with probability ``p_later`` (one drawn
    uniformly among the user's sessions that start within ``window_days`` after the view), else
    at the end of the viewing session, and so it does when no later session follows. Checkout is
    1 to 15 minutes after the purchase session's last view, so an order never reaches the
    user's next session. A user buys a product at most once (the first purchase is kept).

    Returns one row per order line: ``OrderId, UserId, SessionId`` (the session of the checkout),
    ``ProductId, Price, Timestamp`` (datetime ms UTC) and ``ViewSessionId`` (the session the
    product was viewed in), ordered by time, order and product.
    """
    columns = {"OrderId": pl.Int64, "UserId": pl.Int64, "SessionId": pl.Int64,
               "ProductId": pl.Int64, "Price": pl.Float64, "Timestamp": pl.Datetime("ms", "UTC"),
               "ViewSessionId": pl.Int64}
    if views.height == 0:
        return pl.DataFrame(schema=columns)
    sessions = (views.group_by("UserId", "SessionId")
                .agg(start=pl.col("Timestamp").min(), end=pl.col("Timestamp").max())
                .sort("UserId", "start", "SessionId").with_row_index("s"))
    start = sessions["start"].to_numpy()
    end = sessions["end"].to_numpy()
    user_rank = (sessions["UserId"].rank("dense").to_numpy() - 1).astype(np.int64)
    window_ms = int(window_days * DAY_MS)
    t0 = int(start.min())
    span = int(end.max()) - t0 + window_ms + 1
    key = user_rank * span + (start - t0)  # sessions in (user, start) order, one key space

    cand = (views.group_by("UserId", "SessionId", "ProductId").agg(pl.col("Timestamp").min())
            .join(sessions.select("UserId", "SessionId", "s"), on=["UserId", "SessionId"])
            .sort("s", "ProductId"))
    checkout = end + rng.integers(CHECKOUT_MS[0], CHECKOUT_MS[1] + 1, len(end))
    cand = cand.filter(pl.Series(rng.random(cand.height) < p_buy))
    s = cand["s"].to_numpy().astype(np.int64)
    seen_at = cand["Timestamp"].to_numpy()
    # Later sessions of the same user starting within the window: indices s+1 .. last-1.
    last = np.searchsorted(key, user_rank[s] * span + (seen_at - t0) + window_ms, side="right")
    n_later = np.maximum(last - (s + 1), 0)
    later = (rng.random(len(s)) < p_later) & (n_later > 0)
    pick = s + 1 + (rng.random(len(s)) * n_later).astype(np.int64)
    bought_in = np.where(later, pick, s)
    session_ids = sessions["SessionId"].to_numpy()
    lines = pl.DataFrame({
        "UserId": cand["UserId"], "SessionId": session_ids[bought_in],
        "ProductId": cand["ProductId"], "ts": checkout[bought_in],
        "ViewSessionId": cand["SessionId"],
    }).sort("ts", "UserId", "ProductId").unique(["UserId", "ProductId"], keep="first",
                                                 maintain_order=True)
    order_keys = lines.select("ts", "UserId", "SessionId").unique(maintain_order=True)
    order_keys = order_keys.with_columns(
        OrderId=ORDER_ID_BASE + pl.int_range(pl.len(), dtype=pl.Int64))
    prices = items.select(pl.col("ProductId").cast(pl.Int64), pl.col("Price").cast(pl.Float64))
    return (lines.join(order_keys, on=["ts", "UserId", "SessionId"])
            .join(prices, on="ProductId", how="left")
            .with_columns(Timestamp=pl.col("ts").cast(pl.Datetime("ms", "UTC")))
            .select(list(columns)).sort("Timestamp", "OrderId", "ProductId")
            .cast(columns))  # type: ignore[arg-type]


def _known_user_views(shard: pl.DataFrame) -> pl.DataFrame:
    """The views of known human users in a shard (bot accounts lie below USER_ID_BASE)."""
    return shard.filter(pl.col("LastLoggedInUserId") >= USER_ID_BASE).select(
        UserId=pl.col("LastLoggedInUserId"), SessionId="SessionId", ProductId="ProductId",
        Timestamp=pl.col("Timestamp").dt.epoch("ms"))


def _write(df: pl.DataFrame, path: Path, fmt: str) -> None:
    """Write ``df`` to a temporary file beside ``path`` and rename it into place."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        if fmt == "csv":
            df.write_csv(tmp, datetime_format="%Y-%m-%dT%H:%M:%S%.3fZ")
        else:
            df.write_parquet(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _validate(n_events: int, events_per_shard: int, fmt: str, n_users: int, n_items: int,
              shares: _Shares) -> None:
    if n_events < 1 or events_per_shard < 1:
        raise ConfigError(f"n_events ({n_events}) and events_per_shard ({events_per_shard}) "
                          "must be at least 1")
    if fmt not in ("parquet", "csv"):
        raise ConfigError(f"fmt must be 'parquet' or 'csv', not {fmt!r}")
    values = (shares.bot, shares.anonymous, shares.last_logged_in_only)
    if not all(0.0 <= v <= 1.0 for v in values) or sum(values) > 1.0:
        raise ConfigError(f"bot_share, anonymous_share and last_logged_in_only_share {values} "
                          "must lie in [0, 1] and sum to at most 1")
    if n_users < 1 or n_items < 2:
        raise ConfigError(f"need n_users >= 1 and n_items >= 2, got {n_users} and {n_items}")
    user_events = (1.0 - shares.bot - shares.anonymous) * min(n_events, events_per_shard)
    if user_events / 5.5 > 0.75 * n_users * SLOTS_PER_DAY:
        raise ConfigError(
            f"{n_users} users cannot hold ~{user_events / 5.5:,.0f} sessions a day (at most "
            f"{SLOTS_PER_DAY} each); raise n_users or lower events_per_shard")


def _readme(summary: SynthSummary, params: dict[str, object], orders: bool = False) -> str:
    rows = "\n".join(f"| `{k}` | `{v}` |" for k, v in params.items())
    counts = "\n".join(f"| {k} | {getattr(summary, k):,} |" for k in (
        "events", "shards", "sessions", "users", "items", "bot_events", "bot_sessions",
        "anonymous_events", "last_logged_in_only_events")
        + (("orders", "order_lines", "order_lines_later_session") if orders else ()))
    return f"""# Synthetic Galaxus-format click logs

**This data is synthetic.** It was generated by `sessionrec.data.synth.generate`; it contains
no real users, products or third-party data and may be used and shared freely. The only
external input is the list of crawler user agents from the `crawler-user-agents` package
(MIT licence), used for the bot sessions. The same parameters (and the same version of that
package) always give the same files.

Layout: `events/part-NNNNN.{summary.fmt}` (one shard per simulated UTC day, from
{START.date().isoformat()}: {summary.shards} day(s) of up to `events_per_shard` events each),
`items.parquet` (ProductId, Brand, ProductType, Price). Read it with
`sessionrec.data.sources.galaxus.read_events` / `read_items`.

## Parameters

| parameter | value |
|---|---|
{rows}

## Counts

| what | count |
|---|---|
{counts}

## Generative model

Items: power-law product-type sizes, brands tied to a department or a type, lognormal prices per
type, Zipf popularity. Sessions: a focus type (the user's preferred types 80% of the time), then
mostly short forward steps along a hidden per-type item ring chosen by popularity, with type
switches (10%), revisits (7%) and jumps to globally popular items (5%). Users: lognormal
activity, three weighted preferred types, a preferred brand, two devices. Human sessions last
under an hour; a user's sessions are more than 30 minutes apart. Bots view items uniformly in
long sessions with sub-second to few-second gaps.
""" + (ORDERS_README if orders else "")


ORDERS_README = f"""
## Orders

`orders.parquet` (OrderId, UserId, SessionId, ProductId, Price, Timestamp, ViewSessionId), one
row per order line. Known users buy {P_BUY:.0%} of the distinct products they view in a session;
{P_BUY_LATER:.0%} of those go into an order at the end of a later session of theirs (drawn among
the sessions that start within {ORDER_WINDOW_DAYS:g} days of the view), the rest, and those with
no later session, at the end of the viewing session (checkout 1-15 minutes after its last
view). `SessionId` is the checkout session, `ViewSessionId` the session of the view. A user buys
a product at most once.
"""


def generate(
    out_dir: Path,
    n_events: int,
    seed: int = 0,
    *,
    n_users: int | None = None,
    n_items: int | None = None,
    events_per_shard: int = 1_000_000,
    fmt: Literal["parquet", "csv"] = "parquet",
    bot_share: float = 0.02,
    anonymous_share: float = 0.05,
    last_logged_in_only_share: float = 0.25,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    orders: bool = False,
) -> SynthSummary:
    """Write ``n_events`` synthetic Galaxus-format events to ``out_dir`` (atomically).

    ``n_users`` defaults to ``n_events // 40`` and ``n_items`` to ``n_events // 50`` (roughly the
    proportions of the thesis' MAXI dataset, Table 3.1). The events are split evenly over
    ``ceil(n_events / events_per_shard)`` daily shards. The shares are fractions of all events:
    bot events, anonymous events (both user ids null) and events of known users who are not
    logged in (``UserId`` null, ``LastLoggedInUserId`` set); the rest are logged in. The same
    arguments always produce the same data. ``progress(events_done, n_events)`` is called after
    each shard. ``orders`` also writes ``orders.parquet`` (see :func:`synth_orders`; it keeps
    the known users' views of all shards in memory, ~32 bytes per view) from a random stream of
    its own, so the other files are the same with and without it. Raises :class:`ConfigError`
    for invalid arguments and ``DataError`` if ``out_dir`` exists and ``overwrite`` is false.
    """
    n_users = max(50, n_events // 40) if n_users is None else n_users
    n_items = max(100, n_events // 50) if n_items is None else n_items
    shares = _Shares(bot_share, anonymous_share, last_logged_in_only_share)
    _validate(n_events, events_per_shard, fmt, n_users, n_items, shares)
    n_shards = -(-n_events // events_per_shard)
    stride = 10 ** len(str(events_per_shard))  # > sessions per shard: ids unique across shards
    # The last child seeds the orders: spawning one more leaves the others unchanged.
    children = np.random.SeedSequence(seed).spawn(n_shards + 2)
    world, items = _build_world(np.random.default_rng(children[0]), n_users, n_items)

    out_dir = Path(out_dir)
    totals = dict.fromkeys(("sessions", "bot_events", "bot_sessions", "anonymous_events",
                            "last_logged_in_only_events"), 0)
    seen = np.zeros(n_users, bool)
    done = 0
    known_views: list[pl.DataFrame] = []
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        (tmp / "events").mkdir()
        _write(items, tmp / "items.parquet", "parquet")
        for day in range(n_shards):
            target = n_events // n_shards + (day < n_events % n_shards)
            rng = np.random.default_rng(children[day + 1])
            df, counts, users = _shard(rng, world, day, target, shares, stride)
            _write(df, tmp / "events" / f"part-{day:05d}.{fmt}", fmt)
            if orders:
                known_views.append(_known_user_views(df))
            for k, v in counts.items():
                totals[k] += v
            seen[users] = True
            done += target
            del df
            if progress is not None:
                progress(done, n_events)
        order_counts = {}
        if orders:
            table = synth_orders(pl.concat(known_views), items,
                                 np.random.default_rng(children[-1]))
            _write(table, tmp / "orders.parquet", "parquet")
            order_counts = {"orders": table["OrderId"].n_unique(), "order_lines": table.height,
                            "order_lines_later_session": int(
                                (table["SessionId"] != table["ViewSessionId"]).sum())}
        summary = SynthSummary(path=out_dir, fmt=fmt, seed=seed, events=n_events,
                               shards=n_shards, users=int(seen.sum()), items=n_items, **totals,
                               **order_counts)
        params = {"n_events": n_events, "seed": seed, "n_users": n_users, "n_items": n_items,
                  "events_per_shard": events_per_shard, "fmt": fmt, "bot_share": bot_share,
                  "anonymous_share": anonymous_share,
                  "last_logged_in_only_share": last_logged_in_only_share}
        if orders:
            params["orders"] = True
        atomic_write_text(tmp / "README.md", _readme(summary, params, orders))
    return summary
