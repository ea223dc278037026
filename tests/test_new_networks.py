"""The FastGAN-lite generator, the projected discriminator and the losses: shapes, training,
checkpoints, exact resume, a frozen backbone that still passes gradients, and the maths."""
import json

import pytest
import torch
import torch.nn.functional as F
from conftest import read_json, read_jsonl, run_trainer

from core import checkpoint
from core.explore import latent
from core.networks import build_discriminator, build_generator, model_spec
from core.networks.projected import LOGIT_GRID, ProjectedDiscriminator
from core.training.loss import R3GAN, Hinge, Logistic, gradient_penalty

# Small and fast: the projected D's backbone is fixed, so only G's width can shrink.
PROJECTED = ["--recipe", "projected", "--res", "32", "--batch", "8", "--channels", "8", "--log-every", "5",
             "--sample-kimg", "0.2", "--snapshot-kimg", "0.2"]


@pytest.mark.parametrize("res", [32, 64, 128])
def test_networks_build_at_every_resolution(res):
    spec = model_spec("fastgan", res, z_dim=32, channels=8, n_classes=3)
    G, D = build_generator(spec), build_discriminator(spec)
    assert spec["disc"] == "projected" and isinstance(D, ProjectedDiscriminator)
    z, c = torch.randn(4, 32), torch.tensor([0, 1, 2, 0])
    x = G(z, c)
    assert x.shape == (4, 3, res, res)
    logits = D(x, c)
    assert logits.shape[0] == 4 and logits.ndim == 2 and torch.isfinite(logits).all()
    assert latent.first_layer_weight(G).shape[1] == 32  # SeFa works on it
    assert G.early_features(z, c).shape[-1] == 8        # and GANSpace


def test_checkpoints_leave_out_the_frozen_backbone_and_load_safely(tmp_path):
    D = ProjectedDiscriminator(32)
    state = D.state_dict()
    assert not any(k.startswith(("pyramid.stem", "pyramid.blocks")) for k in state)
    assert any(k.startswith("pyramid.ccm") for k in state)  # the random projections are kept
    checkpoint.save(tmp_path / "d.pt", {"D": state})
    other = ProjectedDiscriminator(32)
    other.load_state_dict(checkpoint.load(tmp_path / "d.pt")["D"])  # weights_only=True inside
    x = torch.randn(2, 3, 32, 32)
    D.eval(), other.eval()
    assert torch.equal(D(x), other(x))


@pytest.mark.parametrize("res, feature_res, scales", [(32, 64, 4), (64, 64, 4), (128, 128, 4), (32, 32, 3)])
def test_every_scale_and_the_pixel_head_have_an_equal_say(res, feature_res, scales):
    D = ProjectedDiscriminator(res, feature_res=feature_res)
    assert len(D.heads) == scales  # 32 px images as they are leave the coarsest tap under 4 px
    assert D(torch.randn(2, 3, res, res)).shape == (2, (scales + 1) * LOGIT_GRID ** 2)


def test_the_pixel_head_sees_a_batch_that_is_all_one_colour():
    """No BatchNorm in the pixel head: each image is judged alone, so a batch of fakes that all
    share one hue cannot be normalised into looking like a varied batch of reals."""
    torch.manual_seed(0)
    D = ProjectedDiscriminator(32).eval()  # spectral norm's power iteration stands still between calls,
    for m in D.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.train()  # and BatchNorm works on batch statistics, as in training
    x = torch.rand(8, 3, 32, 32) * 2 - 1
    tinted = x.clone()
    tinted[1:, 0] = 1.0  # every other image turns red
    assert torch.allclose(D.pixel(x, None)[0], D.pixel(tinted, None)[0])   # image 0 alone decides
    assert not torch.allclose(D.heads[0](D.pyramid(x)[0], None)[0],        # a BatchNorm head's verdict
                              D.heads[0](D.pyramid(tinted)[0], None)[0])  # moves with the rest


def test_a_checkpoint_from_before_the_pixel_head_still_loads():
    old = {k: v for k, v in ProjectedDiscriminator(32).state_dict().items() if not k.startswith("pixel.")}
    D = ProjectedDiscriminator(32)
    D.load_state_dict(old)
    assert all(torch.equal(D.state_dict()[k], v) for k, v in old.items())


def test_the_backbone_stays_frozen_while_gradients_reach_the_generator():
    spec = model_spec("dcgan", 32, z_dim=16, channels=8, disc="projected")
    G, D = build_generator(spec), build_discriminator(spec)
    before = {k: v.clone() for k, v in D.pyramid.state_dict().items()}
    D.requires_grad_(True)  # what the trainer does before a D step
    assert not any(p.requires_grad for p in D.pyramid.parameters())
    opt = torch.optim.Adam([p for p in D.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        loss, _ = Hinge().discriminator(lambda x, c: D(x, c), torch.randn(4, 3, 32, 32), None,
                                        G(torch.randn(4, 16)), None, False)
        opt.zero_grad()
        loss.backward()
        opt.step()
    D.train()
    assert not D.pyramid.training  # BatchNorm of the backbone never leaves eval mode
    for k, v in D.pyramid.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} changed"
    D.requires_grad_(False)
    G.zero_grad()
    Hinge().generator(lambda x, c: D(x, c), None, None, G(torch.randn(4, 16)), None).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in G.parameters() if p.ndim > 1)


def test_r3gan_loss_matches_the_formula_by_hand():
    """softplus(D(fake) - D(real)) per pair for D, the other way round for G, R1 and R2 on raw inputs."""
    w = torch.tensor([0.5, -1.0, 2.0])

    def D(x, c):  # a linear D: its input gradient is w everywhere, so R1 = R2 = |w|^2 * pixels
        return (x * w.view(1, 3, 1, 1)).sum(dim=(1, 2, 3))

    real, fake = torch.randn(2, 3, 2, 2), torch.randn(2, 3, 2, 2)
    loss = R3GAN(gamma=2.0, every=4)
    total, stats = loss.discriminator(D, real, None, fake, None, regularise=True)
    dr, df = D(real, None), D(fake, None)
    expected = torch.log1p(torch.exp(df - dr)).mean()
    penalty = float(w.square().sum() * 4)  # per image: sum over 3 x 2 x 2 of w_c^2
    assert torch.allclose(stats["loss_d"], expected)
    assert stats["r1"].item() == pytest.approx(penalty) and stats["r2"].item() == pytest.approx(penalty)
    assert total.item() == pytest.approx(expected.item() + 2.0 / 2 * 4 * 2 * penalty)  # gamma/2 * every * (R1+R2)
    assert stats["rt"].item() == torch.sign(dr - df).mean().item()  # ADA's signal: reals beating their fakes
    g = loss.generator(D, real, None, fake, None)
    assert torch.allclose(g, torch.log1p(torch.exp(dr - df)).mean())
    assert not loss.regularises(step=1) and loss.regularises(step=8)


def test_penalties_do_not_grow_with_a_patch_discriminators_logits():
    """A D that gives 76 patch logits per image (the projected D at 64 px) gets the same R1 and
    R2 as one that gives their mean: the losses average the patches, so the penalties do too."""
    w = torch.tensor([0.5, -1.0, 2.0])

    def one(x, c):
        return (x * w.view(1, 3, 1, 1)).sum(dim=(1, 2, 3))

    def patches(x, c):
        return one(x, c)[:, None].expand(-1, 76)

    real, fake = torch.randn(2, 3, 2, 2), torch.randn(2, 3, 2, 2)
    for loss in (Logistic(gamma=1.0), R3GAN(gamma=1.0)):
        _, single = loss.discriminator(one, real, None, fake, None, regularise=True)
        _, patched = loss.discriminator(patches, real, None, fake, None, regularise=True)
        for key in ("loss_d", "r1", "r2", "rt"):
            assert patched[key].item() == pytest.approx(single[key].item()), (type(loss).__name__, key)


def test_hinge_and_logistic_losses_by_hand():
    real_logits, fake_logits = torch.tensor([2.0, 0.5]), torch.tensor([-0.5, 1.5])
    real, fake = real_logits.view(2, 1, 1, 1), fake_logits.view(2, 1, 1, 1)  # D(x) = x
    D = lambda x, c: x.flatten()  # noqa: E731
    hinge, _ = Hinge().discriminator(D, real, None, fake, None, False)
    assert hinge.item() == pytest.approx((0 + 0.5) / 2 + (0.5 + 2.5) / 2)
    assert Hinge().generator(D, None, None, fake, None).item() == pytest.approx(-0.5)
    logistic, stats = Logistic(gamma=1.0).discriminator(D, real, None, fake, None, True)
    expected = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
    assert stats["loss_d"].item() == pytest.approx(expected.item())
    assert stats["r1"].item() == pytest.approx(1.0)  # d x / d x = 1 per (1-pixel) image
    assert gradient_penalty(real.requires_grad_(True).sum() * 3, real).item() == pytest.approx(9.0)


def test_the_projected_recipe_trains_and_resumes_exactly(image_folder, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert run_trainer("--data", image_folder, "--out", straight, *PROJECTED, "--kimg", "0.16").returncode == 0
    first = run_trainer("--data", image_folder, "--out", resumed, *PROJECTED, "--kimg", "0.08")
    assert first.returncode == 0, first.stderr
    second = run_trainer("--out", resumed, "--resume", "--kimg", "0.16")
    assert second.returncode == 0, second.stderr
    a = checkpoint.load(straight / "checkpoints" / "latest.pt")
    b = checkpoint.load(resumed / "checkpoints" / "latest.pt")
    assert a["model"]["arch"] == "fastgan" and a["model"]["disc"] == "projected"
    assert a["counters"]["step"] == b["counters"]["step"] == 20
    for part in ("G", "G_ema", "D"):
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), f"{part}.{key} differs after resume"
    rows_a, rows_b = read_jsonl(straight / "metrics.jsonl"), read_jsonl(resumed / "metrics.jsonl")
    assert [r["loss_d"] for r in rows_a] == [r["loss_d"] for r in rows_b]
    config = read_json(straight / "config.json")
    assert (config["loss"], config["aug"], config["aug_p"], config["r1_gamma"]) == ("hinge", "fixed", 1.0, 0.0)
    assert config["feature_res"] == a["model"]["feature_res"] == 64  # 32 px images, brought up for D
    assert not any(k.startswith("pyramid.blocks") for k in a["D"])  # the frozen backbone is not saved


def test_a_32_px_run_from_before_feature_res_resumes_as_it_was(image_folder, tmp_path):
    run = tmp_path / "old"
    assert run_trainer("--data", image_folder, "--out", run, *PROJECTED, "--feature-res", "32",
                       "--kimg", "0.04").returncode == 0
    # What such a run saved: no feature_res in its settings nor in its checkpoints' model spec.
    config = read_json(run / "config.json")
    del config["feature_res"]
    (run / "config.json").write_text(json.dumps(config))
    for saved in (run / "checkpoints").glob("*.pt"):
        state = checkpoint.load(saved)
        del state["model"]["feature_res"]
        checkpoint.save(saved, state)
    result = run_trainer("--out", run, "--resume", "--kimg", "0.08")
    assert result.returncode == 0, result.stderr
    after = checkpoint.load(run / "checkpoints" / "latest.pt")
    assert after["counters"]["step"] == 10 and after["model"]["feature_res"] == 32
    assert len(build_discriminator(after["model"]).heads) == 3  # the D it was trained with


def test_the_r3gan_recipe_logs_both_penalties(image_folder, tmp_path):
    run = tmp_path / "run"
    result = run_trainer("--data", image_folder, "--out", run, "--recipe", "r3gan", "--res", "32", "--batch", "8",
                         "--channels", "8", "--kimg", "0.16", "--log-every", "5", "--r1-every", "2")
    assert result.returncode == 0, result.stderr
    rows = read_jsonl(run / "metrics.jsonl")
    assert all(r["r1"] > 0 and r["r2"] > 0 for r in rows)


@pytest.mark.parametrize("arch", ["dcgan", "fastgan"])
def test_truncation_moves_every_generator_toward_its_average_image(arch):
    """psi = 0 gives every seed the same image, psi < 1 a different one than psi = 1 (a generator
    that normalised z, as FastGAN-lite first did, ignored psi altogether)."""
    torch.manual_seed(0)
    G = build_generator(model_spec(arch, 32, z_dim=16, channels=8)).eval()
    z = latent.seed_latents([0, 1], 16)
    # The raw outputs, not uint8 renders: an untrained DCGAN (weights of std 0.02) draws a grey
    # that varies by less than one level of 255 between latents.
    with torch.no_grad():
        full, half, none = (G(latent.truncate(z, psi), None) for psi in (1.0, 0.5, 0.0))
    assert (full != half).any() and torch.equal(none[0], none[1]) and (full[0] != full[1]).any()
