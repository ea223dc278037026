"""Both architectures at every resolution, with and without classes."""
import pytest
import torch

from core.models import ARCHS, RESOLUTIONS, build_discriminator, build_generator, model_spec


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("res", RESOLUTIONS)
@pytest.mark.parametrize("n_classes", [0, 3])
def test_shapes_and_range(arch, res, n_classes):
    spec = model_spec(arch, res, 16, 8, n_classes)
    G, D = build_generator(spec).eval(), build_discriminator(spec)
    z = torch.randn(3, 16)
    c = torch.tensor([0, 1, 2]) if n_classes else None
    x = G(z, c)
    assert x.shape == (3, 3, res, res) and x.min() >= -1 and x.max() <= 1
    assert D(x, c).shape == (3,)


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
