"""Recipes and networks resolve into the settings the README promises; typed options win."""
import pytest

from core.training.config import TrainConfig, resolve


def test_the_default_is_the_projected_recipe():
    cfg = resolve({})
    assert (cfg.recipe, cfg.arch, cfg.disc, cfg.loss, cfg.channels, cfg.z_dim, cfg.batch) == \
        ("projected", "fastgan", "projected", "hinge", 16, 256, 16)
    assert (cfg.aug, cfg.aug_p, cfg.r1_gamma, cfg.ema_kimg, cfg.beta1, cfg.beta2) == ("fixed", 1.0, 0.0, 5.0, 0.0, 0.99)


def test_the_default_recipe_at_every_size_and_an_asked_for_one_kept():
    assert [(resolve({"res": res}).recipe, resolve({"res": res}).arch) for res in (32, 64, 128)] == \
        [("projected", "fastgan")] * 3  # photos at 32 px too (README bench)
    assert (resolve({"res": 32, "recipe": "small-data"}).recipe, resolve({"res": 32, "recipe": "small-data"}).arch) \
        == ("small-data", "dcgan")
    assert resolve({"res": 128, "recipe": "tutorial"}).recipe == "tutorial"


def test_the_projected_d_sees_at_least_64_px_and_runs_from_before_keep_what_they_saw():
    assert [resolve({"res": res}).feature_res for res in (32, 64, 128)] == [64, 64, 128]
    assert resolve({"res": 32, "feature_res": 32}).feature_res == 32  # asked for: kept
    with pytest.raises(ValueError, match="--feature-res must be one of 32, 64, 128"):
        resolve({"res": 32, "feature_res": 48})
    saved = resolve({"res": 32}).to_dict()
    del saved["feature_res"]  # a 32 px run from before --feature-res fed D its images as they were
    assert TrainConfig.from_dict(saved).feature_res == 32


def test_the_small_data_recipe_on_the_tutorials_networks():
    cfg = resolve({"recipe": "small-data"})
    assert (cfg.arch, cfg.disc, cfg.channels, cfg.z_dim, cfg.batch) == ("dcgan", "dcgan", 64, 100, 64)
    assert (cfg.aug, cfg.aug_p, cfg.r1_gamma, cfg.ema_kimg, cfg.beta1, cfg.beta2) == ("ada", 0.0, 1.0, 10.0, 0.0, 0.99)


def test_another_augmentation_starts_from_its_own_p():
    assert resolve({"recipe": "projected", "aug": "ada"}).aug_p == 0.0  # ADA starts from none
    assert resolve({"recipe": "small-data", "aug": "fixed"}).aug_p == 1.0  # not fixed at 0 = no augmentation
    assert resolve({"recipe": "small-data", "aug": "fixed", "aug_p": 0.3}).aug_p == 0.3


def test_fastgans_discriminator_needs_the_hinge_loss():
    with pytest.raises(ValueError, match="--loss hinge"):
        resolve({"recipe": "small-data", "disc": "fastgan"})
    assert resolve({"recipe": "projected", "disc": "fastgan"}).loss == "hinge"


def test_the_tutorial_recipe_is_the_pytorch_tutorial():
    cfg = resolve({"recipe": "tutorial"})
    assert (cfg.arch, cfg.channels, cfg.z_dim, cfg.batch) == ("dcgan", 64, 100, 128)
    assert (cfg.aug, cfg.r1_gamma, cfg.ema_kimg, cfg.lr_g, cfg.lr_d, cfg.beta1, cfg.beta2) == \
        ("none", 0.0, 0.0, 2e-4, 2e-4, 0.5, 0.999)


def test_other_networks_take_their_own_sizes_and_keep_the_recipe():
    cfg = resolve({"recipe": "small-data", "arch": "resnet"})
    assert (cfg.arch, cfg.channels, cfg.z_dim, cfg.aug, cfg.r1_gamma) == ("resnet", 16, 128, "ada", 1.0)


def test_typed_options_win_over_the_recipe():
    cfg = resolve({"recipe": "tutorial", "batch": 32, "aug": "ada", "channels": 8})
    assert (cfg.batch, cfg.aug, cfg.channels, cfg.r1_gamma) == (32, "ada", 8, 0.0)


@pytest.mark.parametrize("given, text", [({"recipe": "stylegan"}, "unknown recipe"),
                                         ({"arch": "vit"}, "unknown architecture")])
def test_unknown_names_are_refused(given, text):
    with pytest.raises(ValueError, match=text):
        resolve(given)
