"""Bad input to `python -m core.train`: one clear line and exit 2; bad files skipped, not fatal."""
import zipfile

import pytest
from conftest import TINY, make_images, read_json, run_trainer


def _fails_with(result, text):
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert text in last, result.stderr
    return last


def test_missing_path(tmp_path):
    _fails_with(run_trainer("--data", tmp_path / "nope", "--out", tmp_path / "run", *TINY),
                "data path not found")
    assert read_json(tmp_path / "run" / "status.json")["state"] == "failed"


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    _fails_with(run_trainer("--data", tmp_path / "empty", "--out", tmp_path / "run", *TINY),
                "no images found")


def test_only_non_images(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    (folder / "table.csv").write_text("a,b\n1,2\n")
    line = _fails_with(run_trainer("--data", folder, "--out", tmp_path / "run", *TINY), "no usable images")
    assert "2 not an image" in line


def test_zip_with_parent_entries_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    good = make_images(tmp_path / "good", 3, classes=())
    with zipfile.ZipFile(archive, "w") as z:
        z.write(good / "img000.png", "img000.png")
        z.write(good / "img001.png", "../evil.png")
    _fails_with(run_trainer("--data", archive, "--out", tmp_path / "run", *TINY), "unsafe entry '../evil.png'")
    assert not (tmp_path / "evil.png").exists()


def test_one_corrupt_file_among_good_ones_is_skipped_and_reported(tmp_path):
    folder = make_images(tmp_path / "imgs", 6, classes=())
    (folder / "broken.png").write_bytes(bytes(range(256)) * 4)  # not image data at all
    run = tmp_path / "run"
    result = run_trainer("--data", folder, "--out", run, *TINY, "--kimg", "0.04")
    assert result.returncode == 0, result.stderr
    status = read_json(run / "status.json")
    assert status["state"] == "finished" and status["n_images"] == 6 and status["skipped"] == 1
    assert status["skipped_files"][0].startswith("broken.png: cannot decode")
    log = (run / "train.log").read_text()
    assert "1 skipped (1 cannot decode)" in log and "skipped broken.png" in log


def test_zip_source_trains(tmp_path):
    good = make_images(tmp_path / "good", 6)
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in good.rglob("*.png"):
            z.write(p, p.relative_to(good).as_posix())
    result = run_trainer("--data", archive, "--out", tmp_path / "run", *TINY, "--kimg", "0.04", "--cond")
    assert result.returncode == 0, result.stderr
    assert read_json(tmp_path / "run" / "config.json")["runtime"]["class_names"] == ["a", "b"]


@pytest.mark.parametrize("args, text", [
    (["--res", "48"], "invalid choice"),
    (["--recipe", "stylegan"], "invalid choice"),
    (["--batch", "1"], "--batch must be from 2 to 4096"),
    (["--kimg", "-1"], "--kimg must be more than 0"),
    (["--kimg", "1e12"], "at most 100,000"),
    (["--seed", "100000000000000000000"], "--seed must be from 0 to 4294967295"),
    (["--aug-ops", "color,blur"], "--aug-ops takes"),
    (["--kimg", "1", "--minutes", "2"], "not allowed with argument"),
])
def test_bad_options(tmp_path, args, text):
    _fails_with(run_trainer("--out", tmp_path / "run", *args), text)
    assert not (tmp_path / "run").exists(), "a rejected command must not create a run folder"


def test_cond_without_labels(tmp_path):
    folder = make_images(tmp_path / "flat", 4, classes=())
    _fails_with(run_trainer("--data", folder, "--out", tmp_path / "run", *TINY, "--cond"), "--cond needs class labels")


def test_resume_without_a_run(tmp_path):
    _fails_with(run_trainer("--out", tmp_path / "none", "--resume"), "nothing to resume")


def test_help_lists_every_option():
    result = run_trainer("--help")
    assert result.returncode == 0
    for option in ["--data", "--out", "--res", "--recipe", "--arch", "--batch", "--kimg", "--minutes", "--seed",
                   "--device", "--resume", "--cond", "--r1-gamma", "--aug", "--ema-kimg"]:
        assert option in result.stdout
