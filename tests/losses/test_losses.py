"""Each loss against hand-computed values on tiny tensors; CRI at the limits of its coupling weights."""

import math

import numpy as np
import pytest
import torch

from mer.losses import build_emotion_loss, class_balanced_weights, list_losses
from mer.losses.au import FrameAULoss, smooth_pos_weights
from mer.losses.classification import ldam_margins

COUNTS = [100, 10, 1]
LOGITS = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
TARGET = torch.tensor([0, 2])


def log_softmax_rows(logits):
    return [[v - math.log(sum(math.exp(u) for u in row)) for v in row] for row in logits.tolist()]


def test_registry():
    assert list_losses() == ["cb", "ce", "cri", "focal", "ldam"]
    with pytest.raises(ValueError, match="unknown loss 'dice'; valid choices: cb, ce, cri, focal, ldam"):
        build_emotion_loss("dice", class_counts=COUNTS)


def test_cross_entropy_by_hand():
    ls = log_softmax_rows(LOGITS)
    expected = -(ls[0][0] + ls[1][2]) / 2
    assert build_emotion_loss("ce", class_counts=COUNTS)(LOGITS, TARGET).item() == pytest.approx(expected, rel=1e-6)


def test_focal_by_hand():
    ls = log_softmax_rows(LOGITS)
    terms = [-((1 - math.exp(ls[0][0])) ** 2) * ls[0][0], -((1 - math.exp(ls[1][2])) ** 2) * ls[1][2]]
    assert build_emotion_loss("focal", class_counts=COUNTS, gamma=2.0)(LOGITS, TARGET).item() == pytest.approx(
        sum(terms) / 2, rel=1e-6
    )


def test_class_balanced_weights_by_hand():
    beta = 0.9
    raw = [(1 - beta) / (1 - beta**n) for n in COUNTS]
    expected = [w / sum(raw) * 3 for w in raw]
    assert class_balanced_weights(COUNTS, beta).tolist() == pytest.approx(expected, rel=1e-6)
    # cb loss = weighted CE: sum_i w_yi l_i / sum_i w_yi
    ls = log_softmax_rows(LOGITS)
    w = expected
    value = (w[0] * -ls[0][0] + w[2] * -ls[1][2]) / (w[0] + w[2])
    assert build_emotion_loss("cb", class_counts=COUNTS, beta=beta)(LOGITS, TARGET).item() == pytest.approx(value, rel=1e-5)


def test_ldam_margins_and_loss_by_hand():
    margins = ldam_margins(COUNTS, max_m=0.5)
    raw = [n**-0.25 for n in COUNTS]
    assert margins.tolist() == pytest.approx([m * 0.5 / max(raw) for m in raw], rel=1e-6)
    assert margins.max().item() == pytest.approx(0.5) and margins.argmax().item() == 2  # the rarest class
    cosines = torch.tensor([[0.9, 0.1, -0.2], [0.0, 0.3, 0.2]])
    s = 30.0
    loss = build_emotion_loss("ldam", class_counts=COUNTS, max_m=0.5, s=s)
    adjusted = (s * cosines).tolist()
    adjusted[0][0] -= s * margins[0].item()  # only the true class's logit loses its margin
    adjusted[1][2] -= s * margins[2].item()
    ls = log_softmax_rows(torch.tensor(adjusted))
    assert loss(s * cosines, TARGET).item() == pytest.approx(-(ls[0][0] + ls[1][2]) / 2, rel=1e-5)
    assert loss.needs_cosine_classifier and loss.scale == s


def test_cri_by_hand():
    cosines = torch.tensor([[0.9, 0.1, -0.2], [0.0, 0.3, 0.2]])
    s, gamma, eps = 30.0, 1.5, 0.7
    loss = build_emotion_loss("cri", class_counts=COUNTS, gamma=gamma, epsilon=eps, max_m=0.5, s=s)
    margins = ldam_margins(COUNTS, 0.5).tolist()
    adjusted = (s * cosines).tolist()
    adjusted[0][0] -= s * margins[0]
    adjusted[1][2] -= s * margins[2]
    ls = log_softmax_rows(torch.tensor(adjusted))
    terms = []
    for log_p in (ls[0][0], ls[1][2]):
        q = 1 - math.exp(log_p)
        terms.append(q**gamma * -log_p + eps * q ** (gamma + 1))
    assert loss(s * cosines, TARGET).item() == pytest.approx(sum(terms) / 2, rel=1e-5)


@pytest.mark.parametrize("seed", range(3))
def test_cri_reduces_to_its_parts(seed):
    torch.manual_seed(seed)
    logits, target = torch.randn(8, 3) * 5, torch.randint(0, 3, (8,))
    cri = lambda **kw: build_emotion_loss("cri", class_counts=COUNTS, **kw)(logits, target)  # noqa: E731
    ldam = build_emotion_loss("ldam", class_counts=COUNTS, max_m=0.4)(logits, target)
    focal = build_emotion_loss("focal", class_counts=COUNTS, gamma=2.0)(logits, target)
    ce = build_emotion_loss("ce", class_counts=COUNTS)(logits, target)
    assert cri(gamma=0.0, epsilon=0.0, max_m=0.4).item() == pytest.approx(ldam.item(), rel=1e-5)
    assert cri(gamma=2.0, epsilon=0.0, max_m=0.0).item() == pytest.approx(focal.item(), rel=1e-5)
    assert cri(gamma=0.0, epsilon=0.0, max_m=0.0).item() == pytest.approx(ce.item(), rel=1e-5)
    # the correction adds eps * (1 - p_t)^(gamma + 1): positive eps raises the loss
    assert cri(gamma=1.0, epsilon=1.0).item() > cri(gamma=1.0, epsilon=0.0).item()


@pytest.mark.parametrize("name", ["ce", "focal", "cb", "ldam", "cri"])
def test_gradients_stay_finite_for_extreme_logits(name):
    loss = build_emotion_loss(name, class_counts=COUNTS)
    logits = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [0.0, 0.0, 0.0]], requires_grad=True)
    value = loss(logits, torch.tensor([0, 0, 2]))  # one confident right, one confident wrong
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()


def test_schedule_weights_replace_instance_balance():
    loss = build_emotion_loss("ce", class_counts=COUNTS)
    plain = loss(LOGITS, TARGET).item()
    loss.set_class_weight(torch.tensor([1.0, 1.0, 1.0]))
    assert loss(LOGITS, TARGET).item() == pytest.approx(plain, rel=1e-6)
    loss.set_class_weight(torch.tensor([0.0, 1.0, 1.0]))  # only the second sample counts
    assert loss(LOGITS, TARGET).item() == pytest.approx(-log_softmax_rows(LOGITS)[1][2], rel=1e-6)


def test_smooth_au_weights():
    clip_aus = np.zeros((100, 3))
    clip_aus[:50, 0] = 1  # common AU
    clip_aus[:1, 1] = 1  # seen once
    weights = smooth_pos_weights(clip_aus)  # AU 3 never seen
    assert weights[0].item() == pytest.approx(1.0)  # (50 + 1) / (50 + 1) = 1
    assert weights[1].item() == pytest.approx(math.sqrt(100 / 2))  # smoothed and damped: ~7.1, not 99
    assert weights[2].item() == pytest.approx(10.0)  # unseen: clipped, not infinite
    assert smooth_pos_weights(clip_aus, power=1.0, max_weight=1e9)[1].item() == pytest.approx(50.0)


def test_au_loss_up_weights_positives():
    logits, target = torch.zeros(1, 2, 2), torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    plain = FrameAULoss()(logits, target).item()
    weighted = FrameAULoss(torch.tensor([3.0, 3.0]))(logits, target).item()
    assert plain == pytest.approx(math.log(2)) and weighted == pytest.approx(math.log(2) * (3 + 3) / 4)


@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.0])
def test_cri_is_non_negative_down_to_epsilon_minus_one(gamma):
    # q^gamma * (-log p) - q^(gamma+1) >= 0 because -log p >= 1 - p = q for every p in (0, 1].
    loss = build_emotion_loss("cri", class_counts=[10, 10], gamma=gamma, epsilon=-1.0, max_m=0.0, s=1.0)
    margin = torch.linspace(-20, 20, 401)
    logits = torch.stack([margin, torch.zeros_like(margin)], dim=1)  # p_t from ~0 to ~1
    per_sample = loss.per_sample(logits, torch.zeros(401, dtype=torch.long))
    assert (per_sample >= -1e-6).all() and per_sample[0] > per_sample[-1]
