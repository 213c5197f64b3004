import pytest

from mer.losses.schedule import blend, build_schedule


def test_none_is_constant():
    schedule = build_schedule("none", au_weight=0.5)
    assert {schedule(e, 10).class_balance for e in range(10)} == {0.0}
    assert {schedule(e, 10).au_weight for e in range(10)} == {0.5}


def test_phased_weights_at_chosen_epochs():
    schedule = build_schedule(
        "phased", transition_start=0.2, transition_end=0.8, curve="linear", sampling=0.5, au_weight=1.0, au_weight_end=0.2
    )
    epochs = 11  # positions 0.0, 0.1, ..., 1.0
    alpha = [schedule(e, epochs).class_balance for e in range(epochs)]
    assert alpha[:3] == [0.0, 0.0, 0.0]  # representation learning, instance-balanced
    assert alpha[5] == pytest.approx(0.5) and alpha[8:] == [1.0, 1.0, 1.0]  # classifier phase
    steps = [b - a for a, b in zip(alpha, alpha[1:])]
    assert max(steps) <= 1 / 6 + 1e-9  # smooth: no jump larger than one epoch's share of the transition
    mid = schedule(5, epochs)
    assert mid.balanced_sampling == pytest.approx(0.25) and mid.au_weight == pytest.approx(0.6)


def test_cosine_curve_is_smooth_at_both_ends():
    assert blend(0.0) == 0.0 and blend(1.0) == 1.0 and blend(0.5) == pytest.approx(0.5)
    assert blend(0.05) < 0.05 and blend(0.95) > 0.95  # slow start and finish
    with pytest.raises(ValueError, match="valid choices: cosine, linear, smoothstep"):
        build_schedule("phased", curve="step")


def test_drw_is_one_step():
    schedule = build_schedule("drw", start=0.5)
    assert [schedule(e, 10).class_balance for e in range(10)] == [0.0] * 5 + [1.0] * 5


def test_bad_boundaries():
    with pytest.raises(ValueError, match="transition_start <= transition_end"):
        build_schedule("phased", transition_start=0.8, transition_end=0.2)
