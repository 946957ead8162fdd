"""RFM scores by quintiles and the named groups of the recency × frequency grid."""

from app.domain.insight.rfm import GROUPS, RfmGroup, score


def test_scores_by_the_share_of_customers_at_or_below() -> None:
    # Ten customers with distinct values: the two lowest score 1, the two highest 5.
    assert [score(rank / 10) for rank in range(1, 11)] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    # Six of ten customers sharing the lowest value all get the score of the sixth: 3.
    assert score(6 / 10) == 3
    assert score(1.0) == 5


def test_every_cell_of_the_grid_has_a_group() -> None:
    assert len(GROUPS) == 25
    assert GROUPS[5, 5] is RfmGroup.CHAMPIONS
    assert GROUPS[5, 1] is RfmGroup.NEW_CUSTOMERS
    assert GROUPS[4, 1] is RfmGroup.PROMISING
    assert GROUPS[3, 3] is RfmGroup.NEED_ATTENTION
    assert GROUPS[3, 5] is RfmGroup.LOYAL
    assert GROUPS[1, 5] is RfmGroup.CANNOT_LOSE_THEM
    assert GROUPS[2, 3] is RfmGroup.AT_RISK
    assert GROUPS[1, 1] is RfmGroup.HIBERNATING
    assert set(GROUPS.values()) == set(RfmGroup)
