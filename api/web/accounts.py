"""People's accounts in a SQL database (SQLAlchemy): e-mail, password hash, the recommender's
user id, and the ratings they gave through the web app.

SQLite under the data directory by default (``web.database_url`` empty), PostgreSQL in
production (``postgresql+psycopg://…``). Passwords are hashed with scrypt (Werkzeug's
``generate_password_hash``, a memory-hard standard KDF). Each account gets its own user id,
``web.first_user_id`` + account number − 1: above every MovieLens and simulator id.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import BigInteger, Float, ForeignKey, Integer, String, create_engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from core.events import MAX_ID
from core.settings import Settings

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{2,}$")
PASSWORD_MIN, PASSWORD_MAX = 8, 200


class AccountError(ValueError):
    """A sign-up or sign-in that cannot go through; the message is for the person."""


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    ratings: Mapped[list[WebRating]] = relationship(back_populates="account", order_by="WebRating.ts",
                                                    cascade="all, delete-orphan")


class WebRating(Base):
    """A rating given through the web app (also published to Kafka as an event)."""
    __tablename__ = "web_ratings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    movie_id: Mapped[int] = mapped_column(Integer)
    rating: Mapped[float] = mapped_column(Float)
    ts: Mapped[int] = mapped_column(BigInteger)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    account: Mapped[Account] = relationship(back_populates="ratings")


@dataclass(frozen=True)
class Person:
    """What a page needs of the signed-in account."""
    account_id: int
    email: str
    user_id: int
    ratings: tuple[tuple[int, float, int], ...]      # (movie id, rating, ts), oldest first

    @property
    def last_rating_ts(self) -> int | None:
        return self.ratings[-1][2] if self.ratings else None


class Accounts:
    def __init__(self, settings: Settings):
        url = settings.web.database_url or f"sqlite:///{Path(settings.services.data_dir).resolve() / 'accounts.db'}"
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine = create_engine(url, pool_pre_ping=True)
        self.first_user_id = settings.web.first_user_id
        Base.metadata.create_all(self.engine)

    def sign_up(self, email: str, password: str) -> Person:
        email = email.strip().lower()
        if not EMAIL.match(email) or len(email) > 254:
            raise AccountError("enter a valid e-mail address")
        if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
            raise AccountError(f"choose a password of {PASSWORD_MIN} to {PASSWORD_MAX} characters")
        with Session(self.engine) as session:
            account = Account(email=email, password_hash=generate_password_hash(password),
                              created_ms=int(time.time() * 1000))
            session.add(account)
            try:
                session.flush()                                  # the account number, for the user id
            except IntegrityError:
                raise AccountError("an account with this e-mail exists: sign in instead") from None
            account.user_id = self.first_user_id + account.id - 1
            if account.user_id > MAX_ID:
                raise AccountError("no more accounts can be created")
            session.commit()
            return _person(account)

    def sign_in(self, email: str, password: str) -> Person:
        with Session(self.engine) as session:
            account = session.scalar(select(Account).where(Account.email == email.strip().lower()))
            if account is None or not check_password_hash(account.password_hash, password):
                raise AccountError("wrong e-mail or password")
            return _person(account)

    def get(self, account_id: int) -> Person | None:
        with Session(self.engine) as session:
            account = session.get(Account, account_id)
            return _person(account) if account else None

    def add_ratings(self, account_id: int, ratings: list[tuple[int, float, int, str]]) -> None:
        """Records (movie id, rating, ts, event id) the person gave (already published)."""
        with Session(self.engine) as session:
            session.add_all(WebRating(account_id=account_id, movie_id=m, rating=r, ts=ts, event_id=e)
                            for m, r, ts, e in ratings)
            session.commit()


def _person(account: Account) -> Person:
    return Person(account.id, account.email, account.user_id,
                  tuple((r.movie_id, r.rating, r.ts) for r in account.ratings))
