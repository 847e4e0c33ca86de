"""A small synthetic exposure log in KuaiRand's file layout (tests, README, demos).

Each user likes 3 of 10 authors; a shown video is clicked with probability 0.8 when its author is
one of them and 0.1 otherwise, liked with probability 0.3 after a click on a liked author and
followed rarely. So a model that reads the click history can beat one that does not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

T0_MS = 1_650_844_800_000  # 2022-04-25 00:00 UTC


def sample_log(users: int = 200, videos: int = 120, authors: int = 10, per_user: int = 30,
               seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(log, videos) frames with KuaiRand's column names."""
    rng = np.random.default_rng(seed)
    author = rng.integers(0, authors, videos)
    rows = []
    for u in range(users):
        liked = set(rng.choice(authors, 3, replace=False).tolist())
        t = T0_MS + int(rng.integers(0, 3_600_000))
        for _ in range(per_user):
            v = int(rng.integers(0, videos))
            good = int(author[v]) in liked
            click = int(rng.random() < (0.8 if good else 0.1))
            like = int(click and good and rng.random() < 0.3)
            follow = int(click and good and rng.random() < 0.05)
            t += int(rng.integers(1_000, 600_000))
            rows.append((u, v, t, click, like, follow, 0))
    log = pl.DataFrame(rows, schema=["user_id", "video_id", "time_ms", "is_click", "is_like",
                                     "is_follow", "is_comment"], orient="row")
    vids = pl.DataFrame({
        "video_id": np.arange(videos), "author_id": author + 1000,
        "video_type": ["NORMAL"] * videos, "music_id": rng.integers(0, 30, videos),
        "tag": [str(a % 7) for a in author], "video_duration": rng.integers(5_000, 200_000, videos),
    })
    return log, vids


def write_sample(folder: Path, **kwargs) -> Path:
    """Write ``log_sample.parquet`` and ``video_features_basic_pure.csv`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    log, videos = sample_log(**kwargs)
    log.write_parquet(folder / "log_sample.parquet")
    videos.write_csv(folder / "video_features_basic_pure.csv")
    return folder
