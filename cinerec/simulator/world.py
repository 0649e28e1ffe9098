"""A seeded synthetic world: a Faker-made catalog, users with hidden tastes, and their ratings.

Generative model (a plain matrix-factorisation world, so that recommenders have something
real to learn and evaluation has a ground truth):

    item factor   y_i = mean of its genres' vectors + noise
    user taste    x_u ~ N(0, s^2 I)
    choice        P(u watches i) ∝ popularity_i * exp(s · x_u · y_i)    (Zipf popularity: long tail)
    rating        r_ui = round_half(mu + b_u + b_i + x_u · y_i + noise), clipped to [0.5, 5.0]

The hidden tastes (x, y, b, popularity) are saved with the catalog so later stages can score
recommendations against the truth and simulate clicks. Names, e-mails, countries and ages live
only in ``users.csv``; events carry ids.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd
from faker import Faker

from cinerec.core.settings import Settings

# Share of MovieLens films carrying each genre (ml-latest-small), used as sampling weights.
GENRE_FREQUENCY = {
    "Drama": 0.45, "Comedy": 0.39, "Thriller": 0.19, "Action": 0.19, "Romance": 0.17,
    "Adventure": 0.14, "Crime": 0.12, "Sci-Fi": 0.10, "Horror": 0.10, "Fantasy": 0.08,
    "Children": 0.07, "Animation": 0.06, "Mystery": 0.06, "Documentary": 0.05, "War": 0.04,
    "Musical": 0.03, "Western": 0.02, "IMAX": 0.02, "Film-Noir": 0.01,
}
GENRE_TAGS = {"Comedy": "funny", "Drama": "moving", "Horror": "scary", "Sci-Fi": "mind-bending",
              "Action": "explosive", "Romance": "romantic", "Thriller": "suspenseful",
              "Animation": "beautifully animated", "Documentary": "informative",
              "Crime": "gritty", "Fantasy": "magical", "Children": "family friendly"}
EPOCH_MS = 1_577_836_800_000  # 2020-01-01: synthetic event times count from here
YEAR_SPAN_MS = 365 * 86_400_000
HISTORY_SPAN_MS = YEAR_SPAN_MS * 3 // 2   # a user starts within a year and rates for up to six months
MEAN_RATING = 2.6
CHOICE_SHARPNESS = 2.0  # how strongly hidden tastes, not popularity alone, decide what is watched
TASTES_FILE = "tastes.npz"


@dataclass
class Tastes:
    """The hidden model behind the world: what a user likes, and how they rate."""

    user_id: np.ndarray           # (U,) ids, row order of the arrays below
    movie_id: np.ndarray          # (M,)
    user_factors: np.ndarray      # (U, d)
    item_factors: np.ndarray      # (M, d)
    user_bias: np.ndarray         # (U,)
    item_bias: np.ndarray         # (M,)
    log_popularity: np.ndarray    # (M,)
    half_stars: np.ndarray        # (U,) bool: the user rates in half stars

    def choice_logits(self, user_index: np.ndarray) -> np.ndarray:
        """log P(u watches i) up to a constant, shape (len(user_index), M)."""
        return (self.log_popularity
                + CHOICE_SHARPNESS * self.user_factors[user_index] @ self.item_factors.T)

    def rate(self, user_index: np.ndarray, movie_index: np.ndarray,
             rng: np.random.Generator) -> np.ndarray:
        """Ratings on the half-star scale drawn from the hidden tastes."""
        affinity = np.einsum("nd,nd->n", self.user_factors[user_index],
                             self.item_factors[movie_index])
        raw = (MEAN_RATING + self.user_bias[user_index] + self.item_bias[movie_index] + affinity
               + rng.normal(0.0, 0.5, len(user_index)))
        halves = np.where(self.half_stars[user_index], np.round(raw * 2) / 2, np.round(raw))
        return np.clip(halves, 0.5, 5.0)

    def drifted(self, fraction: float, seed: int) -> Tastes:
        """These tastes with a ``fraction`` of the users' factors negated: what they liked they now
        dislike. A change of taste, not of audience: the factors' distribution, hence what is
        watched and how it is rated overall, stays the same (input drift metrics cannot see it;
        the recommendations' click-through does)."""
        if not fraction:
            return self
        flip = np.random.default_rng(seed).random(len(self.user_id)) < fraction
        return Tastes(**{**self.__dict__, "user_factors": np.where(flip[:, None], -self.user_factors,
                                                                   self.user_factors)})

    def save(self, path: Path) -> None:
        np.savez(path, **{f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def load(cls, path: Path) -> Tastes:
        with np.load(path) as arrays:
            return cls(**{f.name: arrays[f.name] for f in fields(cls)})


@dataclass
class World:
    seed: int
    movies: pd.DataFrame          # movie_id, title, year, genres
    users: pd.DataFrame           # user_id, name, email, country, age
    tastes: Tastes
    ratings: pd.DataFrame = None  # user_id, movie_id, rating, ts
    tags: pd.DataFrame = None     # user_id, movie_id, tag, ts

    def save(self, directory: Path) -> Path:
        """Writes catalog and ratings in the MovieLens CSV layout, plus users and hidden tastes."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        movielens_title = [f"{t} ({y})" for t, y in zip(self.movies["title"], self.movies["year"])]
        pd.DataFrame({"movieId": self.movies["movie_id"], "title": movielens_title,
                      "genres": ["|".join(g) or "(no genres listed)" for g in self.movies["genres"]]}
                     ).to_csv(directory / "movies.csv", index=False)
        for name, frame, value in (("ratings", self.ratings, "rating"), ("tags", self.tags, "tag")):
            pd.DataFrame({"userId": frame["user_id"], "movieId": frame["movie_id"],
                          value: frame[value], "timestamp": frame["ts"] // 1000}  # MovieLens: seconds
                         ).to_csv(directory / f"{name}.csv", index=False)
        self.users.to_csv(directory / "users.csv", index=False)
        self.tastes.save(directory / TASTES_FILE)
        (directory / "world.json").write_text(json.dumps(
            {"seed": self.seed, "users": len(self.users), "movies": len(self.movies),
             "ratings": len(self.ratings), "latent_dim": self.tastes.user_factors.shape[1]},
            indent=2))
        return directory


def generate(*, seed: int, users: int, movies: int, mean_ratings_per_user: int,
             min_ratings_per_user: int, latent_dim: int, history_end_ms: int | None = None,
             history_span_ms: int = HISTORY_SPAN_MS) -> World:
    """A reproducible world: the same arguments always give the same world. Its history is dated
    over ``history_span_ms`` ending at ``history_end_ms`` (default: from ``EPOCH_MS``, 18 months)."""
    rng = np.random.default_rng(seed)
    fake = Faker()
    fake.seed_instance(seed)
    catalog = _catalog(fake, rng, movies, latent_dim)
    people = _users(fake, rng, users)
    tastes = Tastes(user_id=people["user_id"].to_numpy(), movie_id=catalog.movies["movie_id"].to_numpy(),
                    user_factors=rng.normal(0.0, 0.55, (users, latent_dim)),
                    item_factors=catalog.item_factors, user_bias=rng.normal(0.0, 0.35, users),
                    item_bias=catalog.item_bias, log_popularity=catalog.log_popularity,
                    half_stars=rng.random(users) < 0.6)
    world = World(seed=seed, movies=catalog.movies, users=people, tastes=tastes)
    world.ratings = _ratings(world, rng, mean_ratings_per_user, min_ratings_per_user,
                             (history_end_ms or EPOCH_MS + history_span_ms) - history_span_ms, history_span_ms)
    world.tags = _tags(world, rng)
    return world


def world_dir(settings: Settings) -> Path:
    """Where the synthetic world of these settings lives: ``<data_dir>/world``."""
    return Path(settings.services.data_dir) / "world"


def world_of(settings: Settings, *, seed: int | None = None, users: int | None = None,
             movies: int | None = None, history_s: float | None = None) -> World:
    """The synthetic world of the simulator settings (``seed``, ``users``, ``movies`` override them);
    ``history_s``: its history dated in the last that many seconds instead of 2020-21."""
    sim = settings.simulator
    dated = ({"history_end_ms": int(time.time() * 1000), "history_span_ms": int(history_s * 1000)}
             if history_s else {})
    return generate(seed=sim.seed if seed is None else seed, users=sim.users if users is None else users,
                    movies=sim.movies if movies is None else movies, mean_ratings_per_user=sim.mean_ratings_per_user,
                    min_ratings_per_user=sim.min_ratings_per_user, latent_dim=sim.latent_dim, **dated)


def load_or_generate_tastes(settings: Settings) -> Tastes:
    """The synthetic world's hidden tastes, generating the world from settings the first time."""
    path = world_dir(settings) / TASTES_FILE
    if not path.is_file():
        world_of(settings).save(world_dir(settings))
    return Tastes.load(path)


@dataclass
class _Catalog:
    movies: pd.DataFrame
    item_factors: np.ndarray
    item_bias: np.ndarray
    log_popularity: np.ndarray


def _catalog(fake: Faker, rng: np.random.Generator, n: int, dim: int) -> _Catalog:
    names = list(GENRE_FREQUENCY)
    weights = np.array(list(GENRE_FREQUENCY.values()))
    genre_vectors = rng.normal(0.0, 0.6, (len(names), dim))
    genres, factors = [], np.empty((n, dim))
    for i in range(n):
        count = rng.choice([1, 2, 3], p=[0.4, 0.4, 0.2])
        picked = rng.choice(len(names), size=count, replace=False, p=weights / weights.sum())
        genres.append([names[g] for g in sorted(picked)])
        factors[i] = genre_vectors[picked].mean(axis=0) + rng.normal(0.0, 0.35, dim)
    # Zipf popularity over a random order of films: a few blockbusters, a long tail.
    rank = rng.permutation(n) + 1
    log_popularity = -1.0 * np.log(rank)
    item_bias = 0.15 * (log_popularity - log_popularity.mean()) + rng.normal(0.0, 0.3, n)
    years = np.clip(np.round(2025 - rng.gamma(2.0, 9.0, n)), 1920, 2025).astype(int)
    movies = pd.DataFrame({"movie_id": np.arange(1, n + 1), "title": [_title(fake) for _ in range(n)],
                           "year": pd.array(years, dtype="Int64"), "genres": genres})
    return _Catalog(movies, factors, item_bias, log_popularity)


def _title(fake: Faker) -> str:
    style = fake.random_int(0, 3)
    if style == 0:
        return f"The {fake.word().title()} {fake.word().title()}"
    if style == 1:
        return fake.catch_phrase().title()
    if style == 2:
        return f"{fake.first_name()}'s {fake.word().title()}"
    return f"{fake.city()} {fake.random_element(['Nights', 'Story', 'Affair', 'Blues', 'Express'])}"


def _users(fake: Faker, rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame({
        "user_id": np.arange(1, n + 1),
        "name": [fake.name() for _ in range(n)],
        "email": [fake.unique.email() for _ in range(n)],
        "country": [fake.country_code() for _ in range(n)],
        "age": np.clip(np.round(rng.gamma(6.0, 6.0, n)), 16, 90).astype(int),
    })


def activity(rng: np.random.Generator, n: int, *, mean: int, minimum: int, movies: int) -> np.ndarray:
    """How many films each of ``n`` users (or viewing sessions) rates: long-tailed, a lognormal on
    top of the minimum with the requested mean, at most half the catalog."""
    extra = max(mean - minimum, 1)
    counts = minimum + np.round(rng.lognormal(np.log(extra) - 0.5, 1.0, n)).astype(int)
    return np.minimum(counts, movies // 2)


def pick_films(tastes: Tastes, user_index: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """The indices of ``count`` different films one user watches: draws without replacement from
    softmax(choice logits) (Gumbel top-k). The history and the simulator's stream both pick so."""
    keys = tastes.choice_logits(np.array([user_index]))[0] + rng.gumbel(size=len(tastes.movie_id))
    if count >= len(keys):
        return np.argsort(-keys)
    return np.argpartition(-keys, count)[:count]


def _ratings(world: World, rng: np.random.Generator, mean: int, minimum: int, begin_ms: int,
             span_ms: int) -> pd.DataFrame:
    tastes = world.tastes
    users, movies = len(world.users), len(world.movies)
    counts = activity(rng, users, mean=mean, minimum=minimum, movies=movies)
    user_index, movie_index = [], []
    for u in range(users):
        user_index.append(np.full(counts[u], u))
        movie_index.append(pick_films(tastes, u, counts[u], rng))
    u_idx, m_idx = np.concatenate(user_index), np.concatenate(movie_index)
    start = rng.integers(0, YEAR_SPAN_MS, users)
    offset = start[u_idx] + rng.integers(0, YEAR_SPAN_MS // 2, len(u_idx))        # within HISTORY_SPAN_MS
    ts = begin_ms + (offset * (span_ms / HISTORY_SPAN_MS)).astype(np.int64)
    frame = pd.DataFrame({"user_id": tastes.user_id[u_idx], "movie_id": tastes.movie_id[m_idx],
                          "rating": tastes.rate(u_idx, m_idx, rng), "ts": ts // 1000 * 1000})
    return frame.sort_values(["user_id", "ts"], ignore_index=True)


def _tags(world: World, rng: np.random.Generator) -> pd.DataFrame:
    liked = world.ratings[world.ratings["rating"] >= 4.5]
    liked = liked[rng.random(len(liked)) < 0.05]
    genres = world.movies.set_index("movie_id")["genres"]
    tags = [next((GENRE_TAGS[g] for g in genres[m] if g in GENRE_TAGS), "must see")
            for m in liked["movie_id"]]
    return pd.DataFrame({"user_id": liked["user_id"].to_numpy(), "movie_id": liked["movie_id"].to_numpy(),
                         "tag": tags, "ts": liked["ts"].to_numpy()})
