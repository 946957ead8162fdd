"""RFM scoring rules: scores 1–5 by quintiles, and the named groups of the recency × frequency grid.

A customer's score on a measure is 5 × the share of the workspace's customers (with orders)
whose value is at most theirs, rounded up: a customer at the top gets 5, one in the lowest fifth
gets 1, and customers with equal values always get equal scores. Recency ranks the last order
time (most recent is best), frequency the order count, monetary the net amount spent (ranked
among customers who spend in the same currency).
"""

from collections.abc import Mapping
from enum import StrEnum

QUINTILE_BOUNDS = (0.2, 0.4, 0.6, 0.8)


class RfmGroup(StrEnum):
    CHAMPIONS = "champions"
    LOYAL = "loyal"
    POTENTIAL_LOYALISTS = "potential_loyalists"
    NEW_CUSTOMERS = "new_customers"
    PROMISING = "promising"
    NEED_ATTENTION = "need_attention"
    ABOUT_TO_SLEEP = "about_to_sleep"
    CANNOT_LOSE_THEM = "cannot_lose_them"
    AT_RISK = "at_risk"
    HIBERNATING = "hibernating"


def _group_of(recency: int, frequency: int) -> RfmGroup:
    if recency >= 3 and frequency >= 4:
        return RfmGroup.CHAMPIONS if recency == 5 else RfmGroup.LOYAL
    if recency >= 4:
        if frequency >= 2:
            return RfmGroup.POTENTIAL_LOYALISTS
        return RfmGroup.NEW_CUSTOMERS if recency == 5 else RfmGroup.PROMISING
    if recency == 3:
        return RfmGroup.NEED_ATTENTION if frequency == 3 else RfmGroup.ABOUT_TO_SLEEP
    if frequency == 5:
        return RfmGroup.CANNOT_LOSE_THEM
    return RfmGroup.AT_RISK if frequency >= 3 else RfmGroup.HIBERNATING


# (recency, frequency) -> group, for all 25 cells of the grid.
GROUPS: Mapping[tuple[int, int], RfmGroup] = {
    (recency, frequency): _group_of(recency, frequency)
    for recency in range(1, 6)
    for frequency in range(1, 6)
}


def score(share_at_or_below: float) -> int:
    """The 1–5 score of a customer whose value is at least that of this share of customers."""
    return 1 + sum(share_at_or_below > bound for bound in QUINTILE_BOUNDS)
