"""The new-run form's rules, without streamlit: turn what the user entered into trainer
settings, or say clearly what is wrong. The settings themselves are checked by the
trainer's own rulebook (core.training.config.problems), with the form's labels."""
import hashlib
import io
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from core.atomic import write_bytes
from core.data.imageset import IMAGE_EXTENSIONS, DataError, class_names_of, read_manifest
from core.data.sources import is_unsafe_name
from core.paths import BUILTIN_EMOJI, uploads_dir
from core.runs.registry import Registry, RunError, validate_name
from core.training.config import DEFAULT_KIMG, DEFAULTS, problems, resolve_unchecked

SCAN_LIMIT = 20000  # files looked at when checking that a folder holds images
# Form labels of the settings the form sets (the rulebook names options by their CLI names).
LABELS = {"batch": "Batch size", "kimg": "Length", "minutes": "Length", "seed": "Seed", "aug_p": "Augmentation p",
          "tensorboard": "TensorBoard", "holdout": "Kept back"}
LENGTH_DEFAULTS = {"kimg": DEFAULT_KIMG, "minutes": 30.0}
# Home's one click: the default recipe on the built-in set; on a CPU, 20 minutes
# (bench/quality.py's budget), on a GPU 200 kimg.
ONE_CLICK = {"gpu": {"kimg": 200.0}, "cpu": {"minutes": 20.0}}


@dataclass
class NewRun:
    name: str
    source: str = "builtin"          # builtin | dataset | folder | zip
    version_path: str = ""           # a registered data set's version (source "dataset")
    folder: str = ""
    zip_name: str = ""
    zip_bytes: bytes | None = None
    res: int = DEFAULTS["res"]
    recipe: str | None = None        # None: the default for the resolution
    arch: str | None = None          # None: the recipe's networks
    disc: str | None = None          # None: the recipe's discriminator
    loss: str | None = None          # None: the recipe's loss
    batch: int | float | None = None  # None: the recipe's batch size
    length_unit: str = "kimg"        # kimg | minutes
    length: float = DEFAULT_KIMG
    aug: str | None = None           # None: the recipe's
    aug_p: float = 0.0
    seed: int | str = DEFAULTS["seed"]  # as typed: checked here, so a bad one is refused with a reason
    cond: bool = DEFAULTS["cond"]
    device: str = DEFAULTS["device"]  # or "all": every GPU, data-parallel
    compile: bool = DEFAULTS["compile"]
    tensorboard: bool = DEFAULTS["tensorboard"]
    holdout: float = DEFAULTS["holdout"]


def validate(form: NewRun, registry: Registry) -> tuple[dict | None, list[str]]:
    """(trainer options, []) when the form is good, else (None, [one message per problem])."""
    errors = []
    try:
        name = validate_name(form.name)
        if registry.exists(name):
            errors.append(f"A run named {name!r} already exists: pick another name.")
    except RunError as e:
        errors.append(str(e)[0].upper() + str(e)[1:] + ".")
    data, labelled = _check_source(form, errors)
    batch, seed = _whole_number(form.batch), _whole_number(form.seed)
    if form.batch is not None and batch is None:
        errors.append(f"Batch size must be a whole number (not {form.batch}).")
    if seed is None:
        errors.append(f"Seed must be a whole number (not {str(form.seed).strip()[:30]!r}).")
    if form.cond and labelled is False:
        errors.append("Class-conditional training needs labels: put the images in one subfolder per class.")
    if form.device == "cuda" and not _cuda_available():
        errors.append("No CUDA GPU is available on this machine; choose auto or cpu.")
    if form.device == "all" and gpu_count() < 2:
        errors.append("Training on all GPUs needs at least 2 GPUs; this machine has "
                      f"{gpu_count()}. Choose auto.")
    elif form.device == "all" and batch is not None and batch % gpu_count():
        errors.append(f"With {gpu_count()} GPUs the batch size must be a multiple of {gpu_count()}.")
    options = {"data": data, "res": form.res, "recipe": form.recipe, "arch": form.arch, "disc": form.disc,
               "loss": form.loss, "batch": batch, "seed": seed, "cond": form.cond or None,
               "compile": form.compile or None, "tensorboard": form.tensorboard or None, "aug": form.aug,
               "holdout": form.holdout,
               "device": "cuda" if form.device == "all" else form.device, form.length_unit: form.length}
    if form.aug == "fixed":
        options["aug_p"] = form.aug_p
    if form.device == "cpu" or (form.device == "auto" and not _cuda_available()):
        options.update(cpu_run())
    options = {k: v for k, v in options.items() if v is not None}
    # The trainer's own rulebook, on the settings as the trainer will resolve them.
    cfg = resolve_unchecked({**options, "data": data or BUILTIN_EMOJI})
    errors += [p.for_form(LABELS.get(p.option, "--" + p.option.replace("_", "-")), getattr(cfg, p.option, None))
               for p in problems(cfg)]
    return (None, errors) if errors else (options, [])


def cpu_run() -> dict:
    """CPU runs launched from the app leave a core to it, so the dashboard stays responsive, and
    train one at a time (the others wait as queued): two runs on the same cores only halve each."""
    return {"threads": max(1, (os.cpu_count() or 2) - 1), "device_lock": "on"}


def one_click(has_gpu: bool, stamp: str) -> tuple[str, dict]:
    """Home's button: a run name and its options (the default recipe at its default size)."""
    options = {"data": BUILTIN_EMOJI, "res": DEFAULTS["res"], **ONE_CLICK["gpu" if has_gpu else "cpu"]}
    if not has_gpu:
        options.update(cpu_run())
    return suggested_name("builtin", options["res"], stamp), options


def _whole_number(value) -> int | None:
    if value is None:
        return None
    try:
        number = float(str(value).strip().replace(",", "").replace("_", ""))
    except ValueError:
        return None
    return int(number) if number.is_integer() else None


def _check_source(form: NewRun, errors: list[str]) -> tuple[str | None, bool | None]:
    """The --data value and whether the source has class labels (None: unknown)."""
    if form.source == "builtin":
        return BUILTIN_EMOJI, True
    if form.source == "dataset":
        if not form.version_path:
            errors.append("Pick a data set version, or import a data set on the Data page first.")
            return None, None
        try:
            manifest = read_manifest(form.version_path)
        except DataError as e:
            errors.append(str(e))
            return None, None
        return form.version_path, bool(class_names_of(manifest["files"]))
    if form.source == "folder":
        folder = Path(form.folder.strip()).expanduser() if form.folder.strip() else None
        if folder is None:
            errors.append("Enter the path of a folder of images.")
        elif not folder.exists():
            errors.append(f"Folder not found: {folder}")
        elif not folder.is_dir():
            errors.append(f"{folder} is not a folder.")
        else:
            images = _image_files(folder)
            if not images:
                errors.append(f"No images (.jpg .png .webp .bmp .gif) found in {folder}.")
                return None, None
            return str(folder), bool(class_names_of([p.relative_to(folder).as_posix() for p in images]))
        return None, None
    if form.source == "zip":
        if not form.zip_bytes:
            errors.append("Upload a .zip of images.")
            return None, None
        return _save_upload(form, errors)
    errors.append(f"Unknown data source {form.source!r}.")
    return None, None


def _image_files(folder: Path) -> list[Path]:
    found = []
    for i, path in enumerate(folder.rglob("*")):
        if i >= SCAN_LIMIT:
            break
        if path.suffix.lower() in IMAGE_EXTENSIONS and not any(p.startswith(".") for p in path.parts):
            found.append(path)
    return found


def _save_upload(form: NewRun, errors: list[str]) -> tuple[str | None, bool | None]:
    """Check the zip and keep it under checkpoints/.uploads/, named by its content."""
    try:
        with zipfile.ZipFile(io.BytesIO(form.zip_bytes)) as z:
            names = [n.replace("\\", "/") for n in z.namelist()]
    except zipfile.BadZipFile:
        errors.append(f"{form.zip_name or 'The upload'} is not a valid zip file.")
        return None, None
    unsafe = [n for n in names if is_unsafe_name(n)]
    if unsafe:
        errors.append(f"Refusing {form.zip_name}: unsafe entry '{unsafe[0]}'.")
        return None, None
    images = [n for n in names if Path(n).suffix.lower() in IMAGE_EXTENSIONS and "__MACOSX" not in n]
    if not images:
        errors.append(f"No images (.jpg .png .webp .bmp .gif) found in {form.zip_name}.")
        return None, None
    digest = hashlib.sha256(form.zip_bytes).hexdigest()[:12]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(form.zip_name or "upload.zip").stem)[:40]
    target = uploads_dir() / f"{stem}-{digest}.zip"
    if not target.exists():
        write_bytes(target, form.zip_bytes)
    return str(target), bool(class_names_of(images))


def _cuda_available() -> bool:
    import torch
    return torch.cuda.is_available()


def gpu_count() -> int:
    import torch
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def processes_for(form: NewRun) -> int:
    """How many training processes the form asks for (one per GPU with "all")."""
    return gpu_count() if form.device == "all" else 1


def suggested_name(form_source: str, res: int, stamp: str) -> str:
    base = {"builtin": "emoji"}.get(form_source, form_source)
    return f"{base}-{res}px-{stamp}"
