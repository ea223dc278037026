"""Checkpoints round-trip through torch.load(weights_only=True) and refuse pickled objects."""
import pickle

import pytest
import torch

from core import checkpoint
from core.networks import build_discriminator, build_generator, model_spec


def test_round_trip_with_weights_only(tmp_path):
    spec = model_spec("resnet", 32, 16, 8, n_classes=3)
    G, D = build_generator(spec), build_discriminator(spec)
    opt = torch.optim.Adam(G.parameters())
    G(torch.randn(2, 16), torch.tensor([0, 1])).mean().backward()
    opt.step()
    path = tmp_path / "ck.pt"
    checkpoint.save(path, {"model": spec, "G": G.state_dict(), "G_ema": G.state_dict(),
                           "D": D.state_dict(), "opt_G": opt.state_dict(), "opt_D": opt.state_dict(),
                           "counters": {"step": 3}, "rng": {"torch": torch.get_rng_state()}})
    raw = torch.load(path, weights_only=True)  # what any reader may do
    assert raw["counters"] == {"step": 3} and checkpoint.is_resumable(raw)
    assert all(torch.equal(v, raw["G"][k]) for k, v in G.state_dict().items())
    assert torch.equal(raw["opt_G"]["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])

    loaded, _ = checkpoint.load_generator(path)
    z, c = torch.randn(4, 16), torch.tensor([0, 1, 2, 0])
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in G.state_dict().items())
    with torch.no_grad():  # loaded in channels_last: the same maths in another memory order
        torch.testing.assert_close(loaded(z, c), G.eval()(z, c), rtol=1e-5, atol=1e-5)

    exported = tmp_path / "g.pt"
    checkpoint.export_generator(path, exported)
    slim = checkpoint.load(exported)
    assert not checkpoint.is_resumable(slim) and "D" not in slim
    assert exported.stat().st_size < path.stat().st_size

    halved = tmp_path / "g16.pt"
    checkpoint.export_generator(path, halved, half=True)
    assert halved.stat().st_size < 0.6 * exported.stat().st_size
    from_half, _ = checkpoint.load_generator(halved)
    assert next(from_half.parameters()).dtype == torch.float32
    with torch.no_grad():  # fp16 weights: the same images to within a fraction of a grey level
        torch.testing.assert_close(from_half(z, c), loaded(z, c), rtol=0, atol=2e-3)


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_arbitrary_pickles_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": checkpoint.FORMAT, "G": Payload()}, path)
    with pytest.raises(pickle.UnpicklingError):
        checkpoint.load(path)


def test_foreign_file_is_refused(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(ValueError, match="not a GANscope checkpoint"):
        checkpoint.load(path)
