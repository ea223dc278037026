"""The new-run form's rules, on real folders and zips."""
import io
import zipfile

from conftest import make_images

from core.paths import BUILTIN_EMOJI
from core.runs.newrun import NewRun, validate
from core.runs.registry import Registry


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_builtin_defaults_become_trainer_options(tmp_path):
    options, errors = validate(NewRun(name="emoji-run", res=32, length_unit="minutes", length=5), Registry(tmp_path))
    assert errors == []
    assert options["data"] == BUILTIN_EMOJI and options["res"] == 32 and options["minutes"] == 5
    assert "kimg" not in options and options["threads"] >= 1


def test_wrapped_class_folders_count_as_labels(tmp_path):
    data = make_images(tmp_path / "export" / "faces", 4)  # export/faces/{a,b}/...
    form = NewRun(name="c", source="folder", folder=str(tmp_path / "export"), cond=True)
    options, errors = validate(form, Registry(tmp_path / "runs"))
    assert errors == [] and options["cond"] is True and options["data"] == str(tmp_path / "export")
    assert data.exists()


def test_a_registered_data_set_version_is_offered_and_checked(tmp_path):
    from core.data import importer
    from core.data.datasets import DataRegistry
    ds = DataRegistry(tmp_path / "sets").create("blobs", "folder")
    version = importer.import_folder(ds, make_images(tmp_path / "src", 4)).version
    form = NewRun(name="d", source="dataset", version_path=str(version.path), cond=True)
    options, errors = validate(form, Registry(tmp_path / "runs"))
    assert errors == [] and options["data"] == str(version.path) and options["cond"] is True

    (tmp_path / "bogus.json").write_text("{}")
    for path, message in (("", "Pick a data set version"), (str(tmp_path / "bogus.json"), "not a GANscope data set"),
                          (str(tmp_path / "gone.json"), "cannot read")):
        options, errors = validate(NewRun(name="d", source="dataset", version_path=path), Registry(tmp_path / "runs"))
        assert options is None and message in errors[0]


def test_zip_upload_is_checked_and_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("GANSCOPE_CHECKPOINTS", str(tmp_path / "runs"))
    png = (make_images(tmp_path / "one", 1, classes=()) / "img000.png").read_bytes()
    good = _zip({"set/a/1.png": png, "set/b/2.png": png})
    options, errors = validate(NewRun(name="z", source="zip", zip_name="my set.zip", zip_bytes=good, cond=True),
                               Registry(tmp_path / "runs"))
    assert errors == [] and options["data"].endswith(".zip")
    assert open(options["data"], "rb").read() == good
    _, errors = validate(NewRun(name="z", source="zip", zip_name="evil.zip", zip_bytes=_zip({"../x.png": png})),
                         Registry(tmp_path / "runs"))
    assert errors == ["Refusing evil.zip: unsafe entry '../x.png'."]
    _, errors = validate(NewRun(name="z", source="zip", zip_name="t.zip", zip_bytes=b"not a zip"),
                         Registry(tmp_path / "runs"))
    assert errors == ["t.zip is not a valid zip file."]


def test_every_problem_is_reported_at_once(tmp_path):
    form = NewRun(name="bad name", source="folder", folder="", batch=1, length=0, aug="fixed", aug_p=2)
    _, errors = validate(form, Registry(tmp_path))
    assert len(errors) == 5


def test_all_gpus_needs_at_least_two(tmp_path):
    import torch
    if torch.cuda.device_count() >= 2:
        import pytest
        pytest.skip("this machine has several GPUs")
    options, errors = validate(NewRun(name="g", device="all"), Registry(tmp_path))
    assert options is None and "needs at least 2 GPUs" in errors[0]
