"""The cost-quality hull of replayed policies (mmos_core/services/replay.py::upper_hull)."""

from __future__ import annotations

import pytest

from mmos_core.services.replay import upper_hull


@pytest.mark.parametrize(
    ("points", "hull"),
    [
        # cheap-bad, expensive-good, and a cascade in between above the chord: all three on the hull
        ([(0.0, 4.0), (10.0, 9.0), (4.0, 8.0)], [0, 2, 1]),
        # a cascade below the chord between the two single models is not on the hull
        ([(0.0, 4.0), (10.0, 9.0), (5.0, 5.0)], [0, 1]),
        # dominated: costs more and is worse than the expensive model
        ([(0.0, 4.0), (10.0, 9.0), (12.0, 8.5)], [0, 1]),
        # equal cost: only the better one counts
        ([(1.0, 3.0), (1.0, 6.0)], [1]),
    ],
)
def test_hull_keeps_only_points_nothing_beats(points, hull):
    assert upper_hull(points) == hull
