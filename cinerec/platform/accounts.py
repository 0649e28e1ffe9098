"""People's accounts in a SQL database (SQLAlchemy): e-mail, password hash, the recommender's
user id, their consents (each given or withdrawn, with the privacy text's version), the ratings
they gave through the web app and the recommendations they were shown (newest ``SERVED_KEPT``).

SQLite under the data directory by default (``web.database_url`` empty), PostgreSQL in
production (``postgresql+psycopg://…``). Passwords are hashed with scrypt (Werkzeug's
``generate_password_hash``, a memory-hard standard KDF). Each account gets its own user id,
``web.first_user_id`` + account number − 1: above every MovieLens and simulator id.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Integer, String, create_engine, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from cinerec.core.events import MAX_ID
from cinerec.core.privacy import PRIVACY_TEXT_VERSION, PURPOSES
from cinerec.core.settings import Settings

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{2,}$")
PASSWORD_MIN, PASSWORD_MAX = 8, 200
SERVED_KEPT = 50


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
    consents: Mapped[list[Consent]] = relationship(order_by="Consent.id", cascade="all, delete-orphan")
    served: Mapped[list[ServedList]] = relationship(order_by="ServedList.id", cascade="all, delete-orphan")


class Consent(Base):
    """One consent given or withdrawn: the latest row per purpose is in force."""
    __tablename__ = "consents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    granted: Mapped[bool] = mapped_column(Boolean)
    version: Mapped[str] = mapped_column(String(32))
    ts: Mapped[int] = mapped_column(BigInteger)


class ServedList(Base):
    """Recommendations the person was shown (for their data export)."""
    __tablename__ = "served_lists"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    ts: Mapped[int] = mapped_column(BigInteger)
    movie_ids: Mapped[str] = mapped_column(String(400))
    status: Mapped[str] = mapped_column(String(16))


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
    choices: tuple[tuple[str, bool], ...] = ()       # (purpose, granted) in force

    @property
    def last_rating_ts(self) -> int | None:
        return self.ratings[-1][2] if self.ratings else None

    def consents_to(self, purpose: str) -> bool:
        return dict(self.choices).get(purpose, False)


def _engine(settings: Settings):
    url = settings.web.database_url or f"sqlite:///{Path(settings.services.data_dir).resolve() / 'accounts.db'}"
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return create_engine(url, pool_pre_ping=True)


def create_schema(settings: Settings) -> None:
    """Creates the missing tables. `cinerec serve` calls it once before forking its workers, which
    would otherwise race to create the same tables (`table ... already exists`)."""
    engine = _engine(settings)
    Base.metadata.create_all(engine)
    engine.dispose()


class Accounts:
    def __init__(self, settings: Settings):
        self.engine = _engine(settings)
        self.first_user_id = settings.web.first_user_id
        Base.metadata.create_all(self.engine)                    # a no-op once `create_schema` ran

    def sign_up(self, email: str, password: str, consents: dict[str, bool] | None = None) -> Person:
        email = email.strip().lower()
        if not EMAIL.match(email) or len(email) > 254:
            raise AccountError("enter a valid e-mail address")
        if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
            raise AccountError(f"choose a password of {PASSWORD_MIN} to {PASSWORD_MAX} characters")
        with Session(self.engine) as session:
            account = Account(email=email, password_hash=generate_password_hash(password), created_ms=_now())
            session.add(account)
            try:
                session.flush()                                  # the account number, for the user id
            except IntegrityError:
                raise AccountError("an account with this e-mail exists: sign in instead") from None
            account.user_id = self.first_user_id + account.id - 1
            if account.user_id > MAX_ID:
                raise AccountError("no more accounts can be created")
            _consent(account, consents or {})
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


    def set_consents(self, account_id: int, consents: dict[str, bool]) -> Person:
        """Records each purpose whose choice changed; returns the account as it now is."""
        with Session(self.engine) as session:
            account = session.get_one(Account, account_id)          # NoResultFound: no such account
            _consent(account, consents)
            session.commit()
            return _person(account)

    def record_served(self, account_id: int, movie_ids: list[int], status: str) -> None:
        """Keeps the list shown (when it differs from the last one), newest ``SERVED_KEPT``."""
        with Session(self.engine) as session:
            account = session.get(Account, account_id)
            shown = json.dumps(movie_ids)
            if account is None or (account.served and account.served[-1].movie_ids == shown):
                return
            account.served.append(ServedList(ts=_now(), movie_ids=shown, status=status))
            del account.served[:-SERVED_KEPT]
            session.commit()

    def export(self, account_id: int) -> dict:
        """Everything the database holds about the account (not the password hash itself)."""
        with Session(self.engine) as session:
            a = session.get_one(Account, account_id)                # NoResultFound: no such account
            return {"account": {"email": a.email, "user_id": a.user_id, "created_ms": a.created_ms,
                                "password": "stored as a scrypt hash"},
                    "consents": [{"purpose": c.purpose, "granted": c.granted, "version": c.version, "ts": c.ts}
                                 for c in a.consents],
                    "web_ratings": [{"movie_id": r.movie_id, "rating": r.rating, "ts": r.ts, "event_id": r.event_id}
                                    for r in a.ratings],
                    "recommendations_served": [{"ts": s.ts, "movie_ids": json.loads(s.movie_ids), "status": s.status}
                                               for s in a.served]}

    def by_user_id(self, user_id: int) -> Person | None:
        with Session(self.engine) as session:
            account = session.scalar(select(Account).where(Account.user_id == user_id))
            return _person(account) if account else None

    def find(self, user_id: int, email: str | None = None) -> dict[str, int]:
        """Rows per table that name the user id (or the e-mail): what an audit reports."""
        with Session(self.engine) as session:
            ids = select(Account.id).where((Account.user_id == user_id) | (Account.email == (email or "").lower()))
            accounts = session.scalars(ids).all()
            return {"accounts": len(accounts),
                    **{table.__tablename__: len(session.scalars(select(table.id).where(
                        table.account_id.in_(accounts))).all()) for table in (Consent, WebRating, ServedList)}}

    def erase(self, account_id: int) -> None:
        """Deletes the account and every row of it."""
        with Session(self.engine) as session:
            for table in (Consent, WebRating, ServedList):
                session.execute(delete(table).where(table.account_id == account_id))
            session.execute(delete(Account).where(Account.id == account_id))
            session.commit()


def table_types() -> dict[str, dict[str, str]]:
    """{table: {column: SQL type}} of the account database, for the data catalog."""
    return {name: {c.name: str(c.type).lower() for c in table.columns} for name, table in Base.metadata.tables.items()}


def _consent(account: Account, consents: dict[str, bool]) -> None:
    now = _now()
    current = {c.purpose: c.granted for c in account.consents}
    for purpose in PURPOSES:
        granted = bool(consents.get(purpose, False))
        if current.get(purpose) != granted:
            account.consents.append(Consent(purpose=purpose, granted=granted, version=PRIVACY_TEXT_VERSION, ts=now))


def _now() -> int:
    return int(time.time() * 1000)


def _person(account: Account) -> Person:
    assert account.user_id is not None, "sign_up gives every account its user id before it commits"
    return Person(account.id, account.email, account.user_id,
                  tuple((r.movie_id, r.rating, r.ts) for r in account.ratings),
                  tuple({c.purpose: c.granted for c in account.consents}.items()))
