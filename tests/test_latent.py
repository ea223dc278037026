"""Latent maths: seeds, truncation, interpolation, edit directions, saved directions."""
import pytest
import torch

from core.explore import latent
from core.networks import build_generator, model_spec


@pytest.fixture(params=["resnet", "dcgan"])
def G(request):
    torch.manual_seed(0)
    z_dim = 32
    spec = model_spec(request.param, 32, z_dim, 8 if request.param == "resnet" else 16)
    return build_generator(spec).eval()


def test_seeds_are_reproducible_and_distinct():
    assert torch.equal(latent.seed_latent(7, 64), latent.seed_latent(7, 64))
    assert not torch.equal(latent.seed_latent(7, 64), latent.seed_latent(8, 64))
    assert latent.seed_latents([1, 2, 3], 16).shape == (3, 16)


def test_psi_zero_gives_the_same_image_for_every_seed(G):
    z = latent.seed_latents(range(5), G.z_dim)
    images = latent.render(G, latent.truncate(z, 0.0))
    assert all((images[i] == images[0]).all() for i in range(5))
    assert not (latent.render(G, latent.truncate(z, 1.0))[1] == images[0]).all()


def test_slerp_keeps_norms_and_endpoints():
    a, b = latent.seed_latent(1, 128), latent.seed_latent(2, 128)
    b = b / b.norm() * a.norm()  # equal norms: every frame keeps that norm
    for t in torch.linspace(0, 1, 11).tolist():
        assert torch.isclose(latent.slerp(a, b, t).norm(), a.norm(), rtol=1e-5)
    assert torch.equal(latent.slerp(a, b, 0.0), a) and torch.equal(latent.slerp(a, b, 1.0), b)
    c = 3 * latent.seed_latent(3, 128)  # unequal norms: the norm moves linearly
    assert torch.isclose(latent.slerp(a, c, 0.5).norm(), (a.norm() + c.norm()) / 2, rtol=1e-5)
    # lerp, by contrast, dips through the low-norm middle
    assert latent.lerp(a, b, 0.5).norm() < 0.9 * a.norm()


def test_interpolation_passes_through_every_keyframe_in_order():
    keys = latent.seed_latents([10, 20, 30], 16)
    frames = latent.interpolate(keys, 9, "slerp")
    assert frames.shape == (9, 16)
    assert torch.allclose(frames[0], keys[0]) and torch.allclose(frames[4], keys[1], atol=1e-6)
    assert torch.allclose(frames[8], keys[2])
    with pytest.raises(ValueError):
        latent.interpolate(keys[:1], 5)


@pytest.mark.parametrize("method", [latent.sefa_directions, latent.ganspace_directions])
def test_directions_are_orthonormal_and_ordered_by_variance(G, method):
    directions, variance = method(G, k=8)
    assert directions.shape == (8, G.z_dim)
    assert torch.allclose(directions @ directions.T, torch.eye(8), atol=1e-4)
    assert (variance[:-1] >= variance[1:]).all() and (variance > 0).all()


def test_sefa_top_direction_changes_the_first_layer_most(G):
    directions, _ = latent.sefa_directions(G, k=G.z_dim)
    W = latent.first_layer_weight(G)
    effect = (directions @ W.T).norm(dim=1)  # first-layer response to a unit step
    assert effect[0] == pytest.approx(effect.max().item()) and effect[-1] == pytest.approx(effect.min().item())


def test_edits_move_along_directions_in_standard_deviations(G):
    directions, _ = latent.sefa_directions(G, k=3)
    z = latent.seed_latents([0, 1], G.z_dim)
    moved = latent.apply_edits(z, directions, [2.0, 0.0, -1.5])
    steps = (moved - z) @ directions.T
    assert torch.allclose(steps, torch.tensor([[2.0, 0.0, -1.5]] * 2), atol=1e-5)


def test_user_direction_saves_and_reloads(tmp_path):
    more, less = latent.seed_latents([1, 2], 16) + 1.0, latent.seed_latents([3, 4], 16)
    d = latent.direction_from_examples(more, less)
    assert torch.isclose(d.norm(), torch.tensor(1.0))
    assert torch.allclose(d, (more.mean(0) - less.mean(0)) / (more.mean(0) - less.mean(0)).norm())
    latent.save_direction(tmp_path, "smiling", d)
    latent.save_direction(tmp_path, "other", -d)
    loaded = latent.load_directions(tmp_path)
    assert set(loaded) == {"smiling", "other"} and torch.allclose(loaded["smiling"], d, atol=1e-6)
    with pytest.raises(ValueError):
        latent.direction_from_examples(more, more)
    with pytest.raises(ValueError):
        latent.save_direction(tmp_path, " ", d)


def test_the_lab_renders_are_the_latent_maths_composed(G):
    seeds = latent.render_seeds(G, [3, 4], psi=0.5)
    assert (seeds == latent.render(G, latent.truncate(latent.seed_latents([3, 4], G.z_dim), 0.5))).all()
    frames = latent.render_interpolation(G, [3, 4, 9], 5, "lerp", psi=0.7)
    z = latent.interpolate(latent.seed_latents([3, 4, 9], G.z_dim), 5, "lerp")
    assert frames.shape[0] == 5 and (frames == latent.render(G, latent.truncate(z, 0.7))).all()
    directions, _ = latent.sefa_directions(G, k=3)
    image = latent.render_edit(G, 3, directions.numpy(), [1.0, 0.0, -2.0], raw={0: 0.5}, psi=0.8)
    z = latent.edited_latent(3, G.z_dim, directions, [1.0, 0.0, -2.0], raw={0: 0.5})
    assert image.shape == seeds.shape[1:] and (image == latent.render(G, latent.truncate(z, 0.8))[0]).all()
