"""Both architectures at every resolution, with and without classes."""
import copy

import pytest
import torch

from core.networks import ARCHS, RESOLUTIONS, build_discriminator, build_generator, model_spec


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("res", RESOLUTIONS)
@pytest.mark.parametrize("n_classes", [0, 3])
def test_shapes_and_range(arch, res, n_classes):
    spec = model_spec(arch, res, 16, 8, n_classes)
    G, D = build_generator(spec).eval(), build_discriminator(spec)
    z = torch.randn(3, 16)
    c = torch.tensor([0, 1, 2]) if n_classes else None
    x = G(z, c)
    assert x.shape == (3, 3, res, res) and torch.isfinite(x).all()
    if arch != "fastgan":  # FastGAN's G has no tanh (as published); rendering clamps
        assert x.min() >= -1 and x.max() <= 1
    logits = D(x, c)  # one logit, or one row of patch logits, per image
    assert logits.shape[0] == 3 and logits.dim() <= 2 and torch.isfinite(logits).all()


def test_class_changes_the_image():
    spec = model_spec("resnet", 32, 16, 8, 2)
    G = build_generator(spec).eval()
    z = torch.randn(1, 16)
    assert not torch.allclose(G(z, torch.tensor([0])), G(z, torch.tensor([1])))


def test_bad_spec():
    with pytest.raises(ValueError, match="resolution"):
        model_spec("resnet", 48, 16, 8)
    with pytest.raises(ValueError, match="architecture"):
        model_spec("stylegan9", 32, 16, 8)


@pytest.mark.parametrize("n_classes", [0, 3])
def test_standing_statistics_are_the_generators_own(n_classes):
    """Stale running statistics (as an EMA generator has) spoil eval-mode images; standing
    statistics match what the generator's own batches give, and touch nothing else."""
    torch.manual_seed(0)
    G = build_generator(model_spec("dcgan", 32, 16, 8, n_classes))
    for m in G.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.fill_(0.5)
            m.running_var.fill_(4.0)
    z = torch.randn(512, 16)
    c = torch.randint(n_classes, (512,)) if n_classes else None
    with torch.no_grad():
        batch_stats = copy.deepcopy(G).train()(z, c)  # BatchNorm on these 512 images' own statistics
        stale = G.eval()(z, c)
        rng = torch.get_rng_state()
        standing = build_standing(G, c)
        assert torch.equal(torch.get_rng_state(), rng), "must not draw from the training RNG"
        fresh = standing(z, c)
    off = (stale - batch_stats).abs().mean()
    assert off > 0.5 * batch_stats.abs().mean()  # the stale statistics matter
    assert (fresh - batch_stats).abs().mean() < 0.05 * off
    assert all(m.running_mean.eq(0.5).all() for m in G.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert not standing.training and not any(p.requires_grad for p in standing.parameters())


def build_standing(G, labels):
    from core.training.ema import with_standing_statistics
    return with_standing_statistics(G, n=1024, labels=labels)


def test_standing_statistics_leave_a_generator_without_batchnorm_alone():
    from core.training.ema import with_standing_statistics
    G = build_generator(model_spec("resnet", 32, 16, 8))
    assert with_standing_statistics(G) is G
