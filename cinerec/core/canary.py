"""Canary releases: which users the challenger serves, and when the numbers decide.

Assignment is hash-stable: a user is in the canary when the first 8 bytes of SHA-256 of
"<salt>:<user id>" fall below ``fraction`` of the range; the salt is the canary's start time, so
each canary draws its own users and a user keeps their variant for the canary's life.

Decision (``decide``): click-through (clicks per impression) of challenger vs champion by a
two-proportion z-test, looked at repeatedly while the canary runs. Each look uses
alpha / ``MAX_LOOKS`` (Bonferroni over at most ``MAX_LOOKS`` looks), so the chance of a wrong
promotion over the whole canary is at most ``ALPHA`` (one-sided, 5 %); the same bound holds for a
wrong abort. Promote when the challenger is better at that level, abort at once when it is worse
at that level or its error rate exceeds the champion's by ``MAX_ERROR_RISE``; otherwise wait
(at least ``MIN_IMPRESSIONS`` per variant before any decision). After ``MAX_LOOKS`` looks
without a decision the canary is aborted (not better: keep the champion).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass

ALPHA = 0.05
MAX_LOOKS = 20
MIN_IMPRESSIONS = 200
MAX_ERROR_RISE = 0.02


def in_canary(user_id: int, fraction: float, salt: str) -> bool:
    digest = hashlib.sha256(f"{salt}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < fraction * 2**64


@dataclass(frozen=True)
class Arm:
    impressions: int      # films shown (one per position of each list shown)
    clicks: int
    requests: int = 0
    errors: int = 0

    @property
    def ctr(self) -> float:
        return self.clicks / self.impressions if self.impressions else 0.0

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Decision:
    action: str           # promote | abort | wait
    reason: str
    z: float
    p_value: float        # one-sided, for "challenger better"
    alpha_per_look: float
    look: int
    champion_ctr: float
    challenger_ctr: float
    champion_impressions: int
    challenger_impressions: int

    def as_dict(self) -> dict:
        return asdict(self)


def two_proportion_z(a: Arm, b: Arm) -> float:
    """z of b's click-through minus a's, with the pooled standard error."""
    if not a.impressions or not b.impressions:
        return 0.0
    pooled = (a.clicks + b.clicks) / (a.impressions + b.impressions)
    se = math.sqrt(pooled * (1 - pooled) * (1 / a.impressions + 1 / b.impressions))
    return (b.ctr - a.ctr) / se if se else 0.0


def decide(champion: Arm, challenger: Arm, look: int) -> Decision:
    """The decision at look number ``look`` (1-based)."""
    alpha = ALPHA / MAX_LOOKS
    z = two_proportion_z(champion, challenger)
    p = 0.5 * math.erfc(z / math.sqrt(2))
    critical = _normal_quantile(1 - alpha)

    def made(action: str, reason: str) -> Decision:
        return Decision(action, reason, round(z, 4), p, alpha, look, round(champion.ctr, 5), round(challenger.ctr, 5),
                        champion.impressions, challenger.impressions)

    if challenger.requests and challenger.error_rate > champion.error_rate + MAX_ERROR_RISE:
        return made("abort", f"challenger error rate {challenger.error_rate:.3f} vs {champion.error_rate:.3f}")
    if min(champion.impressions, challenger.impressions) < MIN_IMPRESSIONS:
        return made("wait", f"fewer than {MIN_IMPRESSIONS} impressions per variant")
    if z >= critical:
        return made("promote", f"challenger CTR higher, z={z:.2f} ≥ {critical:.2f}")
    if z <= -critical:
        return made("abort", f"challenger CTR lower, z={z:.2f} ≤ -{critical:.2f}")
    if look >= MAX_LOOKS:
        return made("abort", f"no significant difference after {MAX_LOOKS} looks: keep the champion")
    return made("wait", f"|z|={abs(z):.2f} < {critical:.2f}")


def _normal_quantile(p: float) -> float:
    """Inverse of the standard normal CDF (bisection on erfc; plenty for a decision threshold)."""
    low, high = -10.0, 10.0
    for _ in range(100):
        mid = (low + high) / 2
        if 0.5 * math.erfc(-mid / math.sqrt(2)) < p:
            low = mid
        else:
            high = mid
    return (low + high) / 2
