from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onionfleet.publish.selection import NodeIntroPoints, select_intro_points


def node(node_id: str, count: int) -> NodeIntroPoints[str]:
    return NodeIntroPoints(node_id, tuple(f"{node_id}-ip{i}" for i in range(count)))


def owner(ip: str) -> str:
    return ip.split("-ip", maxsplit=1)[0]


def test_three_nodes_of_three_all_fit_and_are_interleaved() -> None:
    sel = select_intro_points([node("c", 3), node("a", 3), node("b", 3)])
    assert len(sel.chosen) == 9
    assert [owner(ip) for ip in sel.chosen[:3]] == ["a", "b", "c"]
    assert sel.per_node == {"a": 3, "b": 3, "c": 3}
    assert sel.left_out == 0


def test_ten_nodes_of_three_share_twenty_fairly() -> None:
    sel = select_intro_points([node(f"n{i:02}", 3) for i in range(10)])
    assert len(sel.chosen) == 20
    counts = Counter(owner(ip) for ip in sel.chosen)
    assert set(counts.values()) == {2}
    assert sel.left_out == 10


def test_uneven_nodes_water_fill() -> None:
    sel = select_intro_points([node("big", 20), node("small", 1), node("mid", 4)], limit=12)
    assert sel.per_node == {"big": 7, "mid": 4, "small": 1}


def test_node_without_intro_points_is_reported() -> None:
    sel = select_intro_points([node("a", 3), node("empty", 0)])
    assert sel.nodes_without_intro_points == ("empty",)
    assert sel.per_node["empty"] == 0


def test_stable_when_nothing_changes() -> None:
    nodes = [node(f"n{i}", 3) for i in range(8)]
    first = select_intro_points(nodes)
    again = select_intro_points(list(reversed(nodes)), previous=first.chosen)
    assert again.chosen_set() == first.chosen_set()


def test_previous_intro_points_are_kept_within_a_node() -> None:
    # Node a reports its intro points reordered, a new one first: the published two stay.
    previous = ("a-ip1", "a-ip2")
    sel = select_intro_points(
        [NodeIntroPoints("a", ("a-new", "a-ip2", "a-ip1"))], limit=2, previous=previous
    )
    assert set(sel.chosen) == set(previous)


def test_extra_slot_stays_with_the_node_that_had_it() -> None:
    # 7 nodes x 3 = 21 > 20: one node gets 2. Whichever had 2 before keeps 2, whatever its name.
    nodes = [node(f"n{i}", 3) for i in range(7)]
    previous = tuple(f"n{i}-ip{j}" for i in range(7) for j in range(3) if not (i == 0 and j == 2))
    sel = select_intro_points(nodes, previous=previous)
    assert sel.per_node["n0"] == 2
    assert sel.chosen_set() == set(previous)


def test_a_new_node_takes_slots_but_churns_minimally() -> None:
    nodes = [node(f"n{i}", 4) for i in range(5)]  # 20 exactly
    first = select_intro_points(nodes)
    second = select_intro_points([*nodes, node("n9", 4)], previous=first.chosen)
    kept = first.chosen_set() & second.chosen_set()
    assert len(second.chosen) == 20
    assert second.per_node["n9"] >= 3
    assert len(kept) == 20 - second.per_node["n9"]


def test_duplicate_reports_are_collapsed() -> None:
    sel = select_intro_points([NodeIntroPoints("a", ("x", "x", "y"))])
    assert sel.chosen == ("x", "y")


@pytest.mark.parametrize("limit", [0, 21, -1])
def test_limit_outside_spec_is_refused(limit: int) -> None:
    with pytest.raises(ValueError, match="limit"):
        select_intro_points([node("a", 3)], limit=limit)


def test_duplicate_node_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        select_intro_points([node("a", 1), node("a", 2)])


@settings(max_examples=300, deadline=None)
@given(
    counts=st.lists(st.integers(min_value=0, max_value=25), min_size=1, max_size=30),
    limit=st.integers(min_value=1, max_value=20),
    keep_fraction=st.floats(min_value=0, max_value=1),
)
def test_properties(counts: list[int], limit: int, keep_fraction: float) -> None:
    nodes = [node(f"n{i:02}", c) for i, c in enumerate(counts)]
    everything = [ip for n in nodes for ip in n.intro_points]
    previous = tuple(everything[: int(len(everything) * keep_fraction)])
    sel = select_intro_points(nodes, limit=limit, previous=previous)
    # never more than the limit, never an intro point a node does not have, no duplicates
    assert len(sel.chosen) == min(limit, len(everything))
    assert len(set(sel.chosen)) == len(sel.chosen)
    assert set(sel.chosen) <= set(everything)
    # fairness: a node below the maximum share has handed in everything it has
    share = Counter(owner(ip) for ip in sel.chosen)
    top = max(share.values(), default=0)
    for n in nodes:
        got = share.get(n.node_id, 0)
        assert got >= min(len(n.intro_points), top - 1)
    # stability: with nothing changed, reselecting from the result returns the same set
    again = select_intro_points(nodes, limit=limit, previous=sel.chosen)
    assert again.chosen_set() == sel.chosen_set()
