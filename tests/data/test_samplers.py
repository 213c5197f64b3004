import random

import pytest

from mer.data.records import ClipRecord
from mer.data.samplers import build_sampler, list_samplers, to_frames


def rec(onset=100, apex=130, offset=180, n_frames=300, fps=200.0, **kw) -> ClipRecord:
    return ClipRecord("s1", "c1", "x.mp4", onset, apex, offset, "happiness", 0, fps=fps, n_frames=n_frames, **kw)


def test_registry_and_errors():
    assert list_samplers() == ["apex_window", "keyframe", "random", "uniform"]
    with pytest.raises(ValueError, match="unknown clip sampler 'middle'; valid choices: apex_window, keyframe, random, uniform"):
        build_sampler("middle")
    with pytest.raises(ValueError, match="clip sampler 'uniform'.*unexpected keyword argument 'rise_share'"):
        build_sampler("uniform", rise_share=0.3)
    with pytest.raises(ValueError, match="rise_share must be in"):
        build_sampler("keyframe", rise_share=1.5)


def test_durations_in_frames_or_time():
    assert to_frames(4, 200) == 4 and to_frames("4", 500) == 4
    assert to_frames("20ms", 200) == 4 and to_frames("20ms", 500) == 10 and to_frames("0.1s", 300) == 30
    with pytest.raises(ValueError, match="is not a duration"):
        to_frames("soon", 200)


def test_uniform_over_clip_or_event():
    assert build_sampler("uniform", num_frames=4)(rec()) == [0, 100, 199, 299]
    assert build_sampler("uniform", num_frames=3, span="event")(rec()) == [100, 140, 180]


def test_random_segments_cover_the_clip_and_vary_in_training():
    sampler = build_sampler("random", num_frames=8)
    record = rec()
    assert sampler(record, train=False) == sampler(record, train=False)
    draws = [tuple(sampler(record, train=True, rng=random.Random(s))) for s in range(20)]
    assert len(set(draws)) > 15
    for draw in draws:  # one frame in each eighth of the clip
        assert [i * 8 // 300 for i in draw] == list(range(8))


def test_keyframe_always_takes_onset_apex_offset_and_splits_rise_and_fall():
    record = rec()
    sampler = build_sampler("keyframe", num_frames=9, rise_share=0.25)
    idx = sampler(record, train=False)
    assert idx[0] == 100 and idx[-1] == 180 and 130 in idx
    assert sum(i < 130 for i in idx) == 2 and sum(i > 130 for i in idx) == 6
    for seed in range(30):  # training jitter never loses the apex nor leaves the event
        drawn = sampler(record, train=True, rng=random.Random(seed))
        assert 130 in drawn and min(drawn) >= 100 and max(drawn) <= 180 and drawn == sorted(drawn)
    assert len({tuple(sampler(record, train=True, rng=random.Random(s))) for s in range(10)}) > 1


def test_keyframe_context_frames_reach_before_onset_by_time():
    for fps in (200.0, 500.0):
        record = rec(onset=250, apex=300, offset=350, n_frames=600, fps=fps)
        idx = build_sampler("keyframe", num_frames=8, context_frames=2, context="40ms")(record)
        before = [i for i in idx if i < 250]
        assert len(before) == 2 and min(before) == 250 - round(0.040 * fps)


def test_apex_window_spans_the_same_time_at_any_fps():
    a = build_sampler("apex_window", num_frames=5, stride="5ms")
    idx200 = a(rec(fps=200.0))
    idx500 = a(rec(onset=250, apex=325, offset=450, n_frames=750, fps=500.0))
    assert idx200 == [128, 129, 130, 131, 132]
    assert (idx500[-1] - idx500[0]) / 500 == pytest.approx((idx200[-1] - idx200[0]) / 200, abs=2 / 500)
    assert 325 in idx500


@pytest.mark.parametrize("name", ["uniform", "random", "keyframe", "apex_window"])
def test_short_clips_repeat_frames_within_bounds(name):
    short = rec(onset=1, apex=3, offset=4, n_frames=6)
    for train in (False, True):
        idx = build_sampler(name, num_frames=16)(short, train=train)
        assert len(idx) == 16 and idx == sorted(idx) and 0 <= min(idx) and max(idx) <= 5


def test_estimated_apex_is_used_like_a_real_one():
    record = rec(apex=140, apex_estimated=True)
    assert 140 in build_sampler("keyframe", num_frames=8)(record)
    assert build_sampler("apex_window", num_frames=3)(record) == [139, 140, 141]
