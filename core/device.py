"""Device choice (cuda > mps > cpu) and the precision that goes with it."""
import contextlib
import os

import torch


def pick_device(preference: str = "auto") -> torch.device:
    """Resolve --device; asking for a device that is not there is a user error."""
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if preference == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but no CUDA GPU is available")
    if preference == "mps" and not torch.backends.mps.is_available():
        raise ValueError("--device mps was asked for but MPS is not available")
    if preference not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unknown device {preference!r} (auto, cpu, cuda or mps)")
    return torch.device(preference)


def describe(device: torch.device) -> str:
    """One human line: 'NVIDIA H100 (79.6 GiB)' or 'CPU (2 threads of 2 cores)'."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"{props.name} ({props.total_memory / 2**30:.1f} GiB)"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return f"CPU ({torch.get_num_threads()} threads of {os.cpu_count()} cores)"


def autocast(device: torch.device, precision: str):
    """bf16 autocast for precision "bf16"; a no-op context for "fp32"."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def resolve_precision(device: torch.device, precision: str) -> str:
    """auto: bf16 autocast wherever bf16 is native. On the 2-core AVX512-BF16 CPU it trained
    1.6-1.7x more images per second than fp32 for every recipe, and the projected recipe
    reached a lower KID in the same minutes (bench/precision.py, bench/quality.py);
    where bf16 is emulated it is many times slower."""
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 math is fast here (not emulated): decides bulk inference precision."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:  # AVX512-BF16 / AMX; on other CPUs bf16 is emulated and slower than fp32
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False
