"""A person's data rights, shared by the web app and ``cinerec privacy``: consent, export and
erasure across every store (``core.privacy`` has the rules).

    consent   the account database records the choice (with the privacy text's version); a privacy
              event tells the streaming job, which applies it within a micro-batch
    export    the account database's rows + what Elasticsearch holds (user document, rating events)
    erase     a privacy event (acknowledged first: the streaming job then removes the person from
              its state and the film statistics, and drops their later events), the Elasticsearch
              documents and the cached training features that hold them at once, then the account
"""

from __future__ import annotations

from pathlib import Path

from cinerec.core.privacy import PRIVACY_TEXT_VERSION, consent, effective, erasure, forget_in_features
from cinerec.core.settings import Settings
from cinerec.platform.accounts import Accounts, Person
from cinerec.platform.kafka import publish_privacy
from cinerec.search.privacy import erase_documents, held_about


def record_consent(settings: Settings, accounts: Accounts, account_id: int, choices: dict[str, bool],
                   producer=None):
    """Records the choices and publishes them; returns the account as it now is."""
    person = accounts.set_consents(account_id, choices)
    publish_choices(settings, person, producer)
    return person


def publish_choices(settings: Settings, person: Person, producer=None) -> None:
    """Tells every component the person's choices in force (a privacy event, acknowledged)."""
    publish_privacy(settings.kafka, consent(person.user_id, personalisation=person.consents_to("personalisation"),
                                            analytics=person.consents_to("analytics")), producer)


def export(settings: Settings, es, accounts: Accounts, user_id: int) -> dict:
    """Everything held about the user, as JSON-ready data."""
    person = accounts.by_user_id(user_id)
    held = held_about(es, user_id)
    choices = (effective(user_id, {**{p: person.consents_to(p) for p in ("personalisation", "analytics")},
                                   "erased": False}, settings.web.first_user_id) if person
               else effective(user_id, None, settings.web.first_user_id))
    return {"user_id": user_id, "privacy_text_version": PRIVACY_TEXT_VERSION, "in_force": choices,
            **(accounts.export(person.account_id) if person else {"account": None}), **held}


def erase(settings: Settings, es, accounts: Accounts, user_id: int, producer=None) -> dict:
    """Erases the user everywhere we can reach now; the streaming job finishes the rest."""
    publish_privacy(settings.kafka, erasure(user_id), producer)
    erase_documents(es, user_id)
    features = forget_in_features(Path(settings.services.data_dir) / "features", user_id)
    person = accounts.by_user_id(user_id)
    if person:
        accounts.erase(person.account_id)
    return {"user_id": user_id, "erased": True, "account_deleted": person is not None,
            "training_features_deleted": features,
            "streaming": f"an erasure event is on {settings.kafka.privacy_topic}: the job removes the user from its "
                         f"state and the film statistics and drops their later events"}
