"""The trainer process: `python -m core.train --data PATH --out DIR ...`.

It owns one run folder (see core/runfolder.py) and nothing else: the dashboard
starts it, watches the folder and stops it with SIGTERM.

Exit codes: 0 finished or stopped, 1 failed while training, 2 bad input.
"""
import copy
import logging
import math
import os
import signal
import sys
import time

import torch
import torch.nn.functional as F

from . import atomic, checkpoint
from .augment import AdaptiveP, augment
from .config import TrainConfig, build_parser, given_options, merge_for_resume, parse_inject_nan, resolve
from .data import DataError, load_image_set, summarize_skipped
from .device import autocast, describe, pick_device, resolve_precision
from .devicelock import DeviceLock
from .distributed import Ranks
from .grid import make_grid, save_png, to_uint8
from .models import build_discriminator, build_generator, model_spec, with_standing_statistics
from .registry import process_alive
from .runfolder import RunFolder, StatusWriter

MAX_NAN_RECOVERIES = 3
GRID_SIZE = 64  # images per sample grid (8 x 8)
HEARTBEAT_STALE_S = 60


class TrainingDiverged(RuntimeError):
    pass


class StopFlag:
    """Set by the SIGTERM/SIGINT handler; the loop checks it after every step."""

    def __init__(self):
        self.signal = None

    def request(self, signum, _frame=None):
        if self.signal is None:
            self.signal = signal.Signals(signum).name


class NullStatus:
    """The status of ranks other than 0: only rank 0 writes the run folder."""

    def __init__(self):
        self.fields = {}

    def start(self):
        pass

    def update(self, **fields):
        self.fields.update(fields)

    write = close = update


class Trainer:
    def __init__(self, cfg: TrainConfig, run: RunFolder, log: logging.Logger, status: StatusWriter,
                 stop: StopFlag, ranks: Ranks | None = None):
        self.cfg, self.run, self.log, self.status, self.stop = cfg, run, log, status, stop
        self.ranks = ranks or Ranks()
        if cfg.batch % self.ranks.world:
            raise ValueError(f"--batch {cfg.batch} must be divisible by the {self.ranks.world} processes")
        self.local_batch = cfg.batch // self.ranks.world  # each process samples its share
        self.device = self.ranks.device(pick_device(cfg.device))
        self.precision = resolve_precision(self.device, cfg.precision)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        # Counters (the ones saved in checkpoints).
        self.step = 0
        self.nimg = 0
        self.train_seconds = 0.0
        self.nan_recoveries = 0
        self.lr_scale = 1.0
        self.nan_injections_left = 0
        self.kid_real = None     # Inception features of the training images, loaded on first use
        self.pending_kid = None  # the last KID, written with the next metrics line
        self.sampling_cache = None  # (step, G_ema with standing statistics)
        self.nan_inject_step = -1
        if cfg.inject_nan:
            self.nan_inject_step, self.nan_injections_left = parse_inject_nan(cfg.inject_nan)

    # -- setup -------------------------------------------------------------
    def load_data(self):
        cfg = self.cfg
        self.log.info("loading data from %s at %d px (%s)", cfg.data, cfg.res, cfg.fit)
        data = load_image_set(cfg.data, cfg.res, cfg.fit,
                              progress=lambda done, total: self.status.update(
                                  message=f"decoding images {done}/{total}"))
        if data.skipped:
            self.log.warning("data: %s", summarize_skipped(data.skipped))
            for item in data.skipped[:50]:
                self.log.warning("  skipped %s: %s", item.name, item.reason)
            if len(data.skipped) > 50:
                self.log.warning("  ... and %d more", len(data.skipped) - 50)
        if cfg.cond and data.labels is None:
            raise DataError(f"--cond needs class labels, but {cfg.data} has no subfolders or categories")
        self.log.info("data: %d images, %d classes%s", len(data.names), len(data.class_names),
                      f" ({', '.join(data.class_names)})" if data.class_names else "")
        self.data = data
        self.class_names = data.class_names if cfg.cond else []
        images = torch.from_numpy(data.images).permute(0, 3, 1, 2).contiguous()
        # Keep the whole set on the training device when it fits comfortably:
        # batches are then gathered there, with no per-step host work.
        self.data_device = self.device if self._fits_on_device(images) else torch.device("cpu")
        self.images = images.to(self.data_device)
        self.labels = None
        if cfg.cond:
            self.labels = torch.from_numpy(data.labels).to(self.data_device)
        self.status.update(n_images=len(data.names), n_classes=len(self.class_names),
                           skipped=len(data.skipped),
                           skipped_files=[f"{s.name}: {s.reason}" for s in data.skipped[:100]])

    def _fits_on_device(self, images: torch.Tensor) -> bool:
        if self.device.type != "cuda":
            return True
        free, _ = torch.cuda.mem_get_info(self.device)
        return images.numel() < 0.25 * free

    def build(self):
        cfg = self.cfg
        self.spec = model_spec(cfg.arch, cfg.res, cfg.z_dim, cfg.channels, len(self.class_names))
        torch.manual_seed(cfg.seed)
        self.G = build_generator(self.spec).to(self.device)
        self.D = build_discriminator(self.spec).to(self.device)
        if self.device.type == "cuda":
            self.G = self.G.to(memory_format=torch.channels_last)
            self.D = self.D.to(memory_format=torch.channels_last)
        self.ranks.broadcast_(self.G, self.D)  # same start everywhere
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        # The step calls these. Compiled wrappers share the modules' parameters, so
        # checkpoints still save the plain modules. Compiled graphs cannot take a
        # double backward, so R1 steps run D's passes on the plain D.
        self.G_step, self.D_step = self.G, self.D
        if cfg.compile:
            self.G_step, self.D_step = torch.compile(self.G), torch.compile(self.D)
        self.seed_ranks(0)
        betas = (cfg.beta1, cfg.beta2)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=betas)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=betas)
        self.ada = AdaptiveP(self.device, p=cfg.aug_p if cfg.aug != "none" else 0.0,
                             target=cfg.ada_target, speed_kimg=cfg.ada_kimg)
        self.aug_ops = tuple(o for o in cfg.aug_ops.split(",") if o)
        # Loss sums over the current logging interval, kept on the device so
        # that logging costs one sync per interval, not one per step:
        # loss_d, loss_g, d_real, d_fake, r1, r_t
        self.acc = torch.zeros(6, device=self.device)
        self.acc_steps = 0
        self.acc_r1 = 0
        n_params = sum(p.numel() for p in self.G.parameters()), sum(p.numel() for p in self.D.parameters())
        self.log.info("models: %s at %d px, G %.2fM params, D %.2fM params, device %s, %s%s",
                      cfg.arch, cfg.res, n_params[0] / 1e6, n_params[1] / 1e6, describe(self.device),
                      self.precision, ", torch.compile" if cfg.compile else "")

    def seed_ranks(self, step: int):
        """Several processes: each draws its own batches (one process keeps its single stream)."""
        if self.ranks.active:
            torch.manual_seed(self.cfg.seed + 1_000_003 * (step + 1) + self.ranks.rank)

    def fixed_latents(self, fresh: bool):
        """The latents behind every sample grid: made once, saved in the run."""
        if fresh and self.ranks.main:
            gen = torch.Generator().manual_seed(self.cfg.seed)
            z = torch.randn(GRID_SIZE, self.cfg.z_dim, generator=gen)
            n = max(len(self.class_names), 1)
            c = (torch.arange(GRID_SIZE) // 8) % n  # one class per grid row
            checkpoint.save(self.run.latents, {"z": z, "c": c})
        self.ranks.barrier()  # rank 0 wrote them
        saved = checkpoint.load(self.run.latents)
        self.grid_z = saved["z"].to(self.device)
        self.grid_c = saved["c"].to(self.device) if self.class_names else None

    def save_reals(self):
        if not self.ranks.main:
            return
        gen = torch.Generator().manual_seed(self.cfg.seed)
        n = self.images.shape[0]
        idx = torch.randperm(n, generator=gen).repeat(math.ceil(GRID_SIZE / n))[:GRID_SIZE]
        reals = self.images.index_select(0, idx.to(self.data_device)).permute(0, 2, 3, 1).cpu().numpy()
        save_png(make_grid(reals, columns=8), self.run.reals)

    # -- checkpoints -------------------------------------------------------
    def checkpoint_payload(self) -> dict:
        self.sync_ema_if_off()
        rng = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "model": self.spec, "class_names": self.class_names, "config": self.cfg.to_dict(),
            "G": self.G.state_dict(), "G_ema": self.sampling_generator().state_dict(), "D": self.D.state_dict(),
            "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(),
            "aug_p": self.ada.p.detach().cpu(),
            "counters": {"step": self.step, "nimg": self.nimg, "train_seconds": self.train_seconds,
                         "nan_recoveries": self.nan_recoveries, "lr_scale": self.lr_scale},
            "rng": rng,
            "acc": self.acc.detach().cpu(), "acc_steps": self.acc_steps, "acc_r1": self.acc_r1,
        }

    def save_latest(self):
        if self.ranks.main:
            checkpoint.save(self.run.latest, self.checkpoint_payload())
        self.ranks.barrier()  # a NaN recovery on any rank may read it next
        self.last_save = time.monotonic()

    def save_snapshot(self):
        if self.ranks.main:
            payload = self.checkpoint_payload()
            checkpoint.save(self.run.snapshot_path(self.step), payload)
            checkpoint.save(self.run.latest, payload)
        self.ranks.barrier()
        self.last_save = time.monotonic()
        self.log.info("snapshot saved at step %d (%.1f kimg)", self.step, self.nimg / 1000)

    def restore(self, path):
        """Load a full checkpoint: weights, optimisers, aug p, counters, RNG."""
        ck = checkpoint.load(path, map_location=self.device)
        self.sampling_cache = None
        if not checkpoint.is_resumable(ck):
            raise DataError(f"{path} holds only an exported generator; it can be explored but not resumed")
        self.G.load_state_dict(ck["G"])
        self.G_ema.load_state_dict(ck["G_ema"])
        self.D.load_state_dict(ck["D"])
        self.opt_G.load_state_dict(ck["opt_G"])
        self.opt_D.load_state_dict(ck["opt_D"])
        self.ada.p = ck["aug_p"].to(self.device)
        counters = ck["counters"]
        self.step, self.nimg = counters["step"], counters["nimg"]
        self.train_seconds = counters["train_seconds"]
        self.nan_recoveries, self.lr_scale = counters["nan_recoveries"], counters["lr_scale"]
        self.acc = ck["acc"].to(self.device)
        self.acc_steps, self.acc_r1 = ck["acc_steps"], ck["acc_r1"]
        torch.set_rng_state(ck["rng"]["torch"].cpu())
        if "cuda" in ck["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(ck["rng"]["cuda"].cpu(), self.device)
        self.apply_lr_scale()
        self.seed_ranks(self.step)
        if not self.ranks.main:
            return
        # Lines after the checkpoint are redone; so is a partial line at its step.
        dropped = self.run.truncate_metrics(self.step - 1 if self.acc_steps else self.step)
        if dropped:
            self.log.info("dropped %d metric lines written after the checkpoint", dropped)

    def apply_lr_scale(self):
        for opt, lr in ((self.opt_G, self.cfg.lr_g), (self.opt_D, self.cfg.lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr * self.lr_scale

    # -- one training step ---------------------------------------------------
    def sample_batch(self, n):
        idx = torch.randint(self.images.shape[0], (n,), device=self.data_device)
        real = self.images.index_select(0, idx).to(self.device, non_blocking=True)
        if self.device.type == "cuda":
            real = real.contiguous(memory_format=torch.channels_last)
        real = real.float() / 127.5 - 1
        c_real = self.labels[idx].to(self.device) if self.labels is not None else None
        c_fake = None
        if self.labels is not None:
            pick = torch.randint(self.images.shape[0], (n,), device=self.data_device)
            c_fake = self.labels[pick].to(self.device)
        return real, c_real, c_fake

    def aug(self, x):
        if self.cfg.aug == "none":
            return x
        return augment(x, self.ada.p, self.aug_ops)

    def train_step(self):
        cfg = self.cfg
        real, c_real, c_fake = self.sample_batch(self.local_batch)
        z = torch.randn(self.local_batch, cfg.z_dim, device=self.device)
        do_r1 = cfg.r1_gamma > 0 and self.step % cfg.r1_every == 0

        # D step: non-saturating logistic loss (= the tutorial's BCE), plus a
        # lazy R1 penalty on real images every r1_every steps.
        self.D.requires_grad_(True)
        with autocast(self.device, self.precision):
            fake = self.G_step(z, c_fake)
        if do_r1:
            real.requires_grad_(True)
        D = self.D if do_r1 else self.D_step  # both passes alike: BatchNorm buffers are shared
        with autocast(self.device, self.precision):
            real_logits = D(self.aug(real), c_real).float()
            fake_logits = D(self.aug(fake.detach()), c_fake).float()
        loss_d = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
        total_d = loss_d
        r1 = torch.zeros((), device=self.device)
        if do_r1:
            (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
            r1 = grad.float().square().sum(dim=(1, 2, 3)).mean()
            total_d = loss_d + r1 * (cfg.r1_gamma / 2 * cfg.r1_every)
        if self.step == self.nan_inject_step and self.nan_injections_left > 0:
            self.nan_injections_left -= 1
            total_d = total_d * float("nan")
        self.opt_D.zero_grad(set_to_none=True)
        total_d.backward()
        self.ranks.average_gradients(self.D)
        self.opt_D.step()

        # G step on the same fakes, through the updated D (as in the tutorial).
        self.D.requires_grad_(False)
        with autocast(self.device, self.precision):
            gen_logits = self.D_step(self.aug(fake), c_fake).float()
        loss_g = F.softplus(-gen_logits).mean()
        self.opt_G.zero_grad(set_to_none=True)
        loss_g.backward()
        self.ranks.average_gradients(self.G)
        self.opt_G.step()
        self.ranks.broadcast_(self.G, self.D, buffers_only=True)  # BatchNorm statistics (dcgan)

        self.step += 1
        self.nimg += cfg.batch
        self.update_ema()
        rt = self.ranks.mean_(torch.sign(real_logits.detach().float()).mean())
        if cfg.aug == "ada":
            self.ada.step(rt, cfg.batch)
        self.acc += torch.stack([loss_d.detach(), loss_g.detach(), torch.sigmoid(real_logits.detach()).mean(),
                                 torch.sigmoid(fake_logits.detach()).mean(), r1.detach(), rt])
        self.acc_steps += 1
        self.acc_r1 += int(do_r1)

    def update_ema(self):
        cfg = self.cfg
        if cfg.ema_kimg <= 0:
            return
        # Half-life in images, ramped up early so G_ema is not stuck at init.
        half_life = cfg.ema_kimg * 1000
        if cfg.ema_rampup:
            half_life = min(half_life, self.nimg * cfg.ema_rampup)
        beta = 0.5 ** (cfg.batch / max(half_life, 1e-8))
        ema_params = list(self.G_ema.parameters())
        torch._foreach_lerp_(ema_params, [p.detach() for p in self.G.parameters()], 1.0 - beta)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    def sync_ema_if_off(self):
        if self.cfg.ema_kimg <= 0:
            self.G_ema.load_state_dict(self.G.state_dict())

    def sampling_generator(self) -> torch.nn.Module:
        """G_ema as grids, KID, checkpoints and exploring use it: with its own BatchNorm
        statistics. G_ema itself keeps copying the trained G's running ones, so training
        (and an exact resume) never depends on them. Computed once per step: grids,
        snapshot and latest checkpoint often fall on the same one."""
        self.sync_ema_if_off()
        if self.sampling_cache is None or self.sampling_cache[0] != self.step:
            self.sampling_cache = (self.step, with_standing_statistics(self.G_ema, labels=self.labels))
        return self.sampling_cache[1]

    # -- periodic work ---------------------------------------------------------
    def healthy(self) -> bool:
        checks = [torch.isfinite(self.acc).all()]
        checks += [torch.isfinite(p).all() for p in self.G.parameters()]
        checks += [torch.isfinite(p).all() for p in self.D.parameters()]
        return bool(torch.stack(checks).all())

    def write_metrics(self, interval_seconds, interval_nimg):
        sums = self.acc.tolist()
        n = max(self.acc_steps, 1)
        img_per_sec = interval_nimg / interval_seconds if interval_seconds > 0 else 0.0
        row = {
            "step": self.step, "kimg": round(self.nimg / 1000, 4), "time": round(time.time(), 3),
            "train_seconds": round(self.train_seconds, 2),
            "loss_d": sums[0] / n, "loss_g": sums[1] / n, "d_real": sums[2] / n, "d_fake": sums[3] / n,
            "r1": sums[4] / self.acc_r1 if self.acc_r1 else None, "rt": sums[5] / n,
            "aug_p": float(self.ada.p), "img_per_sec": round(img_per_sec, 2),
            "lr": self.cfg.lr_g * self.lr_scale, "lr_d": self.cfg.lr_d * self.lr_scale,
        }
        if self.pending_kid:
            row.update(self.pending_kid)
            self.pending_kid = None
        if self.ranks.main:
            self.run.append_metrics(row)
        self.acc.zero_()
        self.acc_steps = self.acc_r1 = 0
        self.status.update(img_per_sec=row["img_per_sec"], aug_p=row["aug_p"])
        self.log.info("step %d  %.2f kimg  loss_d %.3f  loss_g %.3f  D(real) %.2f  D(fake) %.2f  "
                      "p %.3f  %.1f img/s", self.step, self.nimg / 1000, row["loss_d"], row["loss_g"],
                      row["d_real"], row["d_fake"], row["aug_p"], row["img_per_sec"])

    @torch.no_grad()
    def save_samples(self):
        self.sync_ema_if_off()  # on every rank, so the replicas stay alike
        if not self.ranks.main:
            return
        G = self.sampling_generator()
        images = []
        for i in range(0, GRID_SIZE, 32):
            c = self.grid_c[i:i + 32] if self.grid_c is not None else None
            images.append(G(self.grid_z[i:i + 32], c))
        save_png(make_grid(to_uint8(torch.cat(images)), columns=8), self.run.sample_path(self.step))

    def recover_from_nan(self):
        """Go back to the last good checkpoint with half the learning rates."""
        recoveries, scale = self.nan_recoveries + 1, self.lr_scale * 0.5
        if recoveries > MAX_NAN_RECOVERIES:
            raise TrainingDiverged(f"loss became NaN/inf again after {MAX_NAN_RECOVERIES} recoveries "
                                   f"(learning rates already x{self.lr_scale:g}); giving up")
        bad_step = self.step
        self.restore(self.run.latest)
        self.nan_recoveries, self.lr_scale = recoveries, scale
        self.apply_lr_scale()
        self.log.warning("non-finite loss or weights by step %d: reloaded step %d, learning rates now "
                         "x%g (recovery %d of %d)", bad_step, self.step, scale, recoveries, MAX_NAN_RECOVERIES)
        self.status.update(nan_recoveries=recoveries, lr_scale=scale)

    # -- KID during training --------------------------------------------------
    def kid_every(self) -> float:
        if self.cfg.kid_kimg is None:  # auto: affordable on a GPU, too slow on CPU
            return 50.0 if self.device.type == "cuda" else 0.0
        return self.cfg.kid_kimg

    @torch.no_grad()
    def measure_kid(self):
        """KID of G_ema against the training images (fixed seeds: no training RNG is used)."""
        from . import evaluate, features, metrics
        if self.kid_real is None:
            self.kid_real = features.cached_features(self.data.key, lambda: self.data.images, "inception")
        labels = self.data.labels if self.class_names else None
        fakes, _ = evaluate.fake_images(self.sampling_generator(), self.cfg.kid_images, seed=0, labels=labels)
        fake = features.extract(fakes, "inception", device=self.device)
        kid, se = metrics.kid(self.kid_real, fake)
        self.pending_kid = {"kid": kid, "kid_se": se}
        self.log.info("KID %.5f ± %.5f at step %d (%d generated images)", kid, se, self.step, len(fakes))

    def finished(self) -> bool:
        if self.cfg.minutes is not None:
            return self.train_seconds >= self.cfg.minutes * 60
        return self.nimg >= round(self.cfg.kimg * 1000)

    def progress(self) -> float:
        if self.cfg.minutes is not None:
            return min(1.0, self.train_seconds / (self.cfg.minutes * 60))
        return min(1.0, self.nimg / (self.cfg.kimg * 1000))

    def crossed(self, every_kimg: float) -> bool:
        """Did the last step cross a multiple of every_kimg?"""
        every = max(1, round(every_kimg * 1000))
        return self.nimg // every > (self.nimg - self.cfg.batch) // every

    # -- the loop --------------------------------------------------------------
    def train(self) -> str:
        cfg = self.cfg
        self.last_save = time.monotonic()
        interval_start, interval_nimg0 = time.perf_counter(), self.nimg
        self.status.write(state="running", message="", step=self.step, kimg=self.nimg / 1000,
                          progress=self.progress())
        self.log.info("training from step %d (%.2f kimg) to %s", self.step, self.nimg / 1000,
                      f"{cfg.minutes:g} minutes" if cfg.minutes is not None else f"{cfg.kimg:g} kimg")
        done, stopping = self.ranks.any(self.finished(), self.stop.signal is not None)
        while not (done or stopping):
            t0 = time.perf_counter()
            self.train_step()
            self.train_seconds += time.perf_counter() - t0
            # Every process ends at the same step, whichever one got the signal or ran out of time.
            done, stopping = self.ranks.any(self.finished(), self.stop.signal is not None)
            log_due = self.step % cfg.log_every == 0
            sample_due = self.crossed(cfg.sample_kimg)
            snapshot_due = self.crossed(cfg.snapshot_kimg)
            kid_due = self.kid_every() > 0 and self.crossed(self.kid_every())
            self.status.update(step=self.step, kimg=self.nimg / 1000, progress=self.progress(),
                               train_seconds=self.train_seconds)
            if not (log_due or sample_due or snapshot_due or kid_due or done or stopping):
                continue
            if stopping:
                self.status.write(state="stopping", message=f"stopping on {self.stop.signal or 'another rank'}")
            self.ranks.mean_(self.acc)  # loss sums over all processes (linear: safe to repeat)
            if not self.healthy():
                self.recover_from_nan()
                interval_start, interval_nimg0 = time.perf_counter(), self.nimg
                continue
            if kid_due and self.ranks.main:
                self.measure_kid()
            if log_due:
                now = time.perf_counter()
                self.write_metrics(now - interval_start, self.nimg - interval_nimg0)
                interval_start, interval_nimg0 = now, self.nimg
                self.update_eta()
            if sample_due or done or stopping:
                self.save_samples()
            if snapshot_due:
                self.save_snapshot()
            elif done or stopping or (log_due and time.monotonic() - self.last_save >= cfg.latest_minutes * 60):
                self.save_latest()
            if done and self.acc_steps:
                # The last, partial interval. The checkpoint above still holds its
                # sums, so a resumed run drops this line and rewrites it in full.
                self.write_metrics(time.perf_counter() - interval_start, self.nimg - interval_nimg0)
        if stopping:
            self.log.info("stopped by %s at step %d (%.2f kimg); resume with --resume",
                          self.stop.signal or "another rank", self.step, self.nimg / 1000)
            return "stopped"
        self.log.info("finished at step %d (%.2f kimg)", self.step, self.nimg / 1000)
        return "finished"

    def update_eta(self):
        status = self.status.fields
        rate = status.get("img_per_sec") or 0
        if self.cfg.minutes is not None:
            eta = max(0.0, self.cfg.minutes * 60 - self.train_seconds)
        elif rate > 0:
            eta = max(0.0, self.cfg.kimg * 1000 - self.nimg) / rate
        else:
            eta = None
        self.status.update(eta_s=None if eta is None else round(eta, 1))


# -- process plumbing -----------------------------------------------------------

def setup_logging(run: RunFolder) -> logging.Logger:
    log = logging.getLogger("ganscope.train")
    log.setLevel(logging.INFO)
    log.handlers.clear()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(fmt)
    log.addHandler(console)
    # When the dashboard already sends our stderr into train.log, a second
    # handler on the same file would write every line twice.
    if not _stderr_is(run.log):
        file_handler = logging.FileHandler(run.log, encoding="utf-8")
        file_handler.setFormatter(fmt)
        log.addHandler(file_handler)
    log.propagate = False
    return log


def rank_logging(rank: int) -> logging.Logger:
    """Ranks other than 0 only report problems, on stderr (torchrun collects it)."""
    log = logging.getLogger(f"ganscope.train.rank{rank}")
    log.setLevel(logging.WARNING)
    log.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"%(asctime)s rank {rank} %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.propagate = False
    return log


def _stderr_is(path) -> bool:
    try:
        a, b = os.fstat(sys.stderr.fileno()), os.stat(path)
    except (OSError, ValueError, AttributeError):
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def check_not_running(run: RunFolder) -> None:
    """Two trainers must never write one run folder."""
    try:
        status = run.read_status()
    except (OSError, ValueError):
        return
    fresh = time.time() - status.get("heartbeat", 0) < HEARTBEAT_STALE_S
    if status.get("state") in ("starting", "running", "stopping") and fresh and \
            not launched_us(status.get("pid")) and process_alive(status.get("pid")):
        raise ValueError(f"run {run.path} is already being trained by pid {status['pid']}")


def launched_us(pid) -> bool:
    """The pid the dashboard recorded: this process, or torchrun's launcher above it."""
    return pid in (os.getpid(), os.getppid())


def prepare_new_run(run: RunFolder) -> None:
    """A new run needs an empty --out, or a run folder with no checkpoint yet.

    The second case covers a run that failed or was stopped before saving
    anything, and a folder the dashboard made to hold train.log for us.
    """
    if run.path.exists() and not run.path.is_dir():
        raise ValueError(f"--out {run.path} exists and is not a folder")
    if run.is_empty():
        run.create()
        return
    is_run = any(p.exists() for p in (run.config, run.status, run.log))
    has_checkpoint = run.checkpoints.exists() and any(run.checkpoints.glob("*.pt"))
    if not is_run or has_checkpoint:
        raise ValueError(f"--out {run.path} already holds a run or other files; "
                         f"use --resume to continue it, or choose a new --out")
    check_not_running(run)
    # train.log stays: it may be our own stderr, opened by the dashboard.
    for stale in [run.metrics, run.latents, *run.samples.glob("*.png")]:
        stale.unlink(missing_ok=True)
    run.create()


def wait_for_device(trainer: "Trainer", status: StatusWriter, log: logging.Logger):
    """Take the device's lock (one run per GPU), waiting as `queued` meanwhile."""
    mode = trainer.cfg.device_lock
    if mode == "off" or (mode == "auto" and trainer.device.type != "cuda"):
        return None
    index = trainer.device.index if trainer.device.index is not None else 0
    lock = DeviceLock(f"{trainer.device.type}-{index}" if trainer.device.type == "cuda" else trainer.device.type)
    while not lock.try_acquire():
        if trainer.stop.signal is not None:
            return None
        message = f"queued: waiting for {lock.key} (in use by pid {lock.holder()})"
        if status.fields.get("state") != "queued":
            log.info(message)
            status.write(state="queued", message=message)
        time.sleep(1.0)
    return lock


def fail_early(run: RunFolder, message: str) -> None:
    """Bad input before training: if the dashboard launched us (its status names
    our pid), record the reason there instead of leaving 'starting' behind."""
    try:
        status = run.read_status()
    except (OSError, ValueError):
        return
    if launched_us(status.get("pid")):
        atomic.write_json(run.status, {**status, "state": "failed", "message": message,
                                       "updated_at": time.time(), "heartbeat": time.time()})


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        argv = sys.argv[1:] if argv is None else argv
        if exit_.code and "--out" in argv[:-1]:
            fail_early(RunFolder(argv[argv.index("--out") + 1]), "invalid trainer options (see train.log)")
        raise
    ranks = Ranks()  # several processes under torchrun; rank 0 alone writes the run folder
    run = RunFolder(args.out)
    given = given_options(args)
    try:
        if args.resume:
            if not run.config.exists():
                raise ValueError(f"nothing to resume in {run.path}: no config.json")
            if not run.latest.exists():
                raise ValueError(f"nothing to resume in {run.path}: no checkpoints/latest.pt")
            if ranks.main:
                check_not_running(run)
            cfg = merge_for_resume(run.read_config(), given)
        else:
            cfg = resolve(given)
            if ranks.main:
                prepare_new_run(run)
    except (ValueError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        if ranks.main:
            fail_early(run, str(e))
        return 2

    cfg.out = str(run.path)
    if not args.resume and ranks.main:
        run.write_config(cfg.to_dict())  # visible to the dashboard while data loads or the run queues
    if ranks.main:
        log = setup_logging(run)
        status = StatusWriter(run, state="starting", step=0, kimg=0.0, img_per_sec=0.0,
                              target_kimg=cfg.kimg, target_minutes=cfg.minutes)
    else:
        log, status = rank_logging(ranks.rank), NullStatus()
    status.start()
    stop = StopFlag()
    signal.signal(signal.SIGTERM, stop.request)
    signal.signal(signal.SIGINT, stop.request)
    try:
        trainer = Trainer(cfg, run, log, status, stop, ranks)
        ranks.start(trainer.device)
        status.update(device=describe(trainer.device), precision=trainer.precision)
        device_lock = wait_for_device(trainer, status, log)
        if stop.signal is not None:  # stopped while queued: nothing has changed
            status.close(state="stopped", message=f"stopped on {stop.signal} before training started")
            return 0
        status.write(state="starting", message="loading data")
        trainer.load_data()
        trainer.build()
        if ranks.main:
            run.write_config({**cfg.to_dict(), "runtime": runtime_info(trainer)})
        trainer.fixed_latents(fresh=not args.resume)
        if args.resume:
            trainer.restore(run.latest)
            log.info("resumed at step %d (%.2f kimg)", trainer.step, trainer.nimg / 1000)
        else:
            trainer.save_reals()
            trainer.save_samples()
            trainer.save_latest()  # step 0: a good checkpoint to fall back to from the start
        state = trainer.train()
        if ranks.active:
            in_sync = ranks.in_sync(trainer.G, trainer.G_ema, trainer.D)
            log.info("%d processes; replicas %s", ranks.world, "in sync" if in_sync else "OUT OF SYNC")
            status.update(world_size=ranks.world, replicas_in_sync=in_sync)
        status.close(state=state, step=trainer.step, kimg=trainer.nimg / 1000, progress=trainer.progress(),
                     message="stopped; resume to continue" if state == "stopped" else "finished")
        if device_lock:
            device_lock.release()
        return 0
    except (DataError, ValueError) as e:
        log.error("%s", e)
        status.close(state="failed", message=str(e))
        return 2
    except Exception as e:  # noqa: BLE001 - any crash must end as a readable `failed` status
        log.exception("training failed")
        status.close(state="failed", message=f"{type(e).__name__}: {e}")
        return 1
    finally:
        ranks.close()


def runtime_info(trainer: Trainer) -> dict:
    data = trainer.data
    return {
        "device": str(trainer.device), "device_name": describe(trainer.device),
        "precision": trainer.precision, "torch": torch.__version__, "model": trainer.spec,
        "n_images": len(data.names), "class_names": trainer.class_names, "world_size": trainer.ranks.world,
        "data_classes": data.class_names, "data_key": data.key, "skipped": len(data.skipped),
    }


if __name__ == "__main__":
    sys.exit(main())
