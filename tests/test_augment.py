"""Differentiable augmentation and the adaptive probability p."""
import torch

from core.training.augment import OPS, AdaptiveP, augment, cutout, translation


def test_augment_is_differentiable_and_changes_images():
    x = (torch.rand(6, 3, 16, 16) * 2 - 1).requires_grad_(True)
    y = augment(x, torch.tensor(1.0))
    assert y.shape == x.shape and not torch.allclose(x, y)
    (y * torch.randn_like(y)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_gradient_matches_finite_differences():
    torch.manual_seed(0)
    x = (torch.rand(2, 3, 8, 8, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    seed = 123

    def f(inp):
        torch.manual_seed(seed)  # same random augmentation on every call
        return augment(inp, torch.tensor(1.0, dtype=torch.float64))

    assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-5)


def test_p_zero_leaves_images_alone():
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    assert torch.allclose(augment(x, torch.tensor(0.0), OPS), x, atol=1e-6)


def test_translation_and_cutout_blank_to_grey():
    ones = torch.ones(8, 3, 16, 16)
    moved = translation(ones, torch.tensor(1.0))
    assert set(moved.unique().tolist()) <= {0.0, 1.0}
    cut = cutout(ones, torch.tensor(1.0))
    blanked = (cut == 0).float().mean(dim=(1, 2, 3))
    assert (blanked > 0).all() and (blanked <= 0.25 + 1e-6).all()  # at most a half-size square


def test_adaptive_p_rises_when_d_overfits_and_falls_otherwise():
    ada = AdaptiveP("cpu", p=0.5, target=0.6, speed_kimg=1)
    confident = torch.full((100,), 5.0)  # D calls every real image real: overfitting
    for _ in range(3):
        ada.step(torch.sign(confident).mean(), len(confident))
    assert float(ada.p) > 0.5
    high = float(ada.p)
    unsure = torch.tensor([1.0, -1.0] * 50)  # r_t = 0 < target
    for _ in range(3):
        ada.step(torch.sign(unsure).mean(), len(unsure))
    assert float(ada.p) < high


def test_adaptive_p_stays_in_unit_interval():
    ada = AdaptiveP("cpu", p=0.0, speed_kimg=0.01)
    for _ in range(10):
        ada.step(torch.tensor(-1.0), 50)
    assert float(ada.p) == 0.0
    for _ in range(10):
        ada.step(torch.tensor(1.0), 50)
    assert float(ada.p) == 1.0
