"""A worker marks an image used in the store at most once per interval, and again once it has passed."""

from __future__ import annotations

import pytest

from chalicelib.runner.image_use import ImageUse


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_runs_within_a_minute_write_last_used_once_per_image():
    clock, touched = Clock(), []
    use = ImageUse(lambda: 7 * 86400, clock=clock)
    for _ in range(5):
        use.note("img-a", touched.append)
        use.note("img-b", touched.append)
        clock.now += 5
    assert touched == ["img-a", "img-b"]
    clock.now += 60
    use.note("img-a", touched.append)
    assert touched == ["img-a", "img-b", "img-a"]


def test_a_short_ttl_shortens_the_interval():
    clock, touched = Clock(), []
    use = ImageUse(lambda: 100.0, clock=clock)  # a hundredth of the TTL: 1 s
    use.note("img", touched.append)
    clock.now += 0.5
    use.note("img", touched.append)
    clock.now += 0.6
    use.note("img", touched.append)
    assert touched == ["img", "img"]


def test_a_failed_write_is_tried_again_by_the_next_run():
    clock, touched = Clock(), []
    use = ImageUse(lambda: 7 * 86400, clock=clock)

    def failing(tag: str) -> None:
        raise OSError("store unreachable")

    with pytest.raises(OSError):
        use.note("img", failing)
    assert use.note("img", touched.append) is True
    assert touched == ["img"]
