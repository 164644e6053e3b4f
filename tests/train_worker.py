"""Test helper (not a test): train a tiny float64 model on targets files for a few epochs.

python tests/train_worker.py OUT_DIR EPOCHS TARGETS.h5 ...      (or under torchrun)
"""

import sys

import torch
from hamforge.io import read_targets_file
from hamforge.model import HamiltonianModel, ModelConfig
from hamforge.train import Item, TrainSettings, distributed, make_samples, prepare_model, train


def main(out_dir, epochs, *paths):
    torch.use_deterministic_algorithms(True)
    ts = [read_targets_file(p) for p in paths]
    items = [Item(t, s) for p, t in zip(paths, ts) for s in make_samples(t, p, None, torch.float64)]
    cfg = ModelConfig.from_targets(
        ts[0], l_max=2, embed_dim=4, n_heads=1, ffn_dim=8, n_layers=1, n_radial=6, radial_hidden=8
    )
    model = HamiltonianModel(cfg, seed=0).to(torch.float64)
    # every training feature that shapes the trajectory: fitted baselines, per-slot scaling, L1 + squared loss,
    # warm-up + cosine schedule, EMA of the weights
    settings = TrainSettings(
        lr=1e-2,
        min_lr=1e-5,
        schedule="cosine",
        warmup_epochs=1,
        ema_decay=0.9,
        l1_weight=1.0,
        max_epochs=int(epochs),
        batch_size=2,
        dtype="float64",
    )
    spec, _ = prepare_model(model, items, settings)
    with distributed(device="cpu") as ctx:
        train(model, items[:2] + items[2:], [], settings, out_dir, ctx, loss_spec=spec)


if __name__ == "__main__":
    main(*sys.argv[1:])
