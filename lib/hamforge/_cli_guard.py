"""The guard every ``hamforge`` command passes before it runs (what no command may do to a user's files).

No output may be an input or a folder holding one (through symbolic and hard links); a folder output must not be a
file; a CUDA device must exist. Arguments named in ``OUTPUT_ARGS`` are outputs, every other argument naming an
existing path is an input.
"""

from __future__ import annotations

import os

from hamforge._errors import UsageError
from hamforge.io import check_apart

__all__ = ["FOLDER_OUTPUT", "OUTPUT_ARGS", "guard_paths"]

# Arguments that name what a command writes; every other argument naming an existing path is an input.
OUTPUT_ARGS = ("output", "out_dir")
# Commands whose -o is a folder (like every --out-dir).
FOLDER_OUTPUT = {"train", "release"}


def guard_paths(args) -> None:
    """One guard for every command: no output may be an input or a folder holding one (through links)."""
    inputs = []
    for key, value in vars(args).items():
        if key in OUTPUT_ARGS or key in ("func", "command"):
            continue
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(v, (str, os.PathLike)) and str(v) and os.path.lexists(v):
                inputs.append(v)
    out_dir = getattr(args, "out_dir", None)
    # folders a command adds files to (never replaces wholesale, as release does): only "is an input" applies
    written_into = [out_dir] + ([args.output] if args.command == "train" else [])
    check_apart([getattr(args, k, None) for k in OUTPUT_ARGS], inputs, folders_written_into=written_into)
    folders = [("--out-dir", out_dir)] + ([("-o", args.output)] if args.command in FOLDER_OUTPUT else [])
    for flag, folder in folders:
        if folder is not None and os.path.lexists(folder) and not os.path.isdir(folder):
            raise UsageError(f"{flag} {folder}: exists and is not a folder")
    device = getattr(args, "device", None)
    if isinstance(device, str) and device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UsageError(f"--device {device}: this machine has no CUDA device visible to torch (use cpu)")
