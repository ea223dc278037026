"""The training loop. It reaches the outside only through its run folder.

A Trainer is built ready to train (data loaded, networks and optimisers made, fixed
latents in place), then `train()` runs steps until the length is reached or a stop is
asked for. Each step is one D phase and one G phase of the loss (core/training/loss.py);
between steps the loop writes metrics, sample grids and checkpoints when they are due.
"""
import logging
import time

import numpy as np
import torch

from core import checkpoint
from core.data import holdout
from core.data.imageset import DataError, load_image_set, summarize_skipped
from core.device import autocast, describe, pick_device, resolve_precision
from core.grid import make_grid, save_png, to_uint8
from core.health import GridRecorder, snapshots_to_spare
from core.networks import build_discriminator, build_generator, model_spec, trainable
from core.runs.runfolder import RunFolder
from core.training import state, tbevents
from core.training.augment import AdaptiveP, augment
from core.training.config import TrainConfig
from core.training.distributed import Ranks
from core.training.ema import GeneratorEMA
from core.training.feed import ImageFeed
from core.training.loss import build_loss
from core.training.stats import IntervalStats

MAX_NAN_RECOVERIES = 3
GRID_SIZE = 64  # images per sample grid (8 x 8)
SKIPPED_LOGGED = 50  # skipped files named in train.log (status.json keeps 100)
# latest.pt refreshes take at most this share of the time: on a CPU one costs ~10 s
# (G_ema's standing statistics over 1,024 samples), which every minute took 15 % of it.
SAVE_SHARE = 0.05


class TrainingDiverged(RuntimeError):
    pass


class Trainer:
    def __init__(self, cfg: TrainConfig, run: RunFolder, log: logging.Logger, status, stop, ranks: Ranks,
                 fresh: bool, rewind: int | None = None, lr_scale: float | None = None):
        """fresh: a new run (write the fixed latents and the first grid); else restore run.latest, or
        with `rewind` the snapshot of that step; `lr_scale` then multiplies the learning rates."""
        self.cfg, self.run, self.log, self.status, self.stop, self.ranks = cfg, run, log, status, stop, ranks
        if cfg.batch % ranks.world:
            raise ValueError(f"--batch {cfg.batch} must be divisible by the {ranks.world} processes")
        self.local_batch = cfg.batch // ranks.world  # each process samples its share
        self.device = ranks.device(pick_device(cfg.device))
        self.precision = resolve_precision(self.device, cfg.precision)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.counters = state.Counters()
        self.kid_real = None     # Inception features of the training images, loaded on first use
        self.pending_kid = None  # the last KID, written with the next metrics line
        self.health = None       # measures each grid for health.json (main process only)
        self.events = None       # TensorBoard event files, with --tensorboard (main process only)
        self.fresh, self.rewind, self.lr_scale = fresh, rewind, lr_scale

    # -- setup -------------------------------------------------------------------------
    def load_data(self):
        cfg = self.cfg
        self.log.info("loading data from %s at %d px (%s)", cfg.data, cfg.res, cfg.fit)
        data = load_image_set(cfg.data, cfg.res, cfg.fit, progress=lambda done, total: self.status.update(
            message=f"decoding images {done}/{total}"))
        if data.skipped:
            self.log.warning("data: %s", summarize_skipped(data.skipped))
            for item in data.skipped[:SKIPPED_LOGGED]:
                self.log.warning("  skipped %s: %s", item.name, item.reason)
            if len(data.skipped) > SKIPPED_LOGGED:
                self.log.warning("  ... and %d more", len(data.skipped) - SKIPPED_LOGGED)
        if cfg.cond and data.labels is None:
            raise DataError(f"--cond needs class labels, but {cfg.data} has no subfolders or categories")
        held = self.run.read_holdout()
        if held is None:  # chosen once, when the run starts; a resume keeps the same images back
            held = holdout.pick_held_out(data.names, cfg.holdout, cfg.seed, data.labels)
            if self.ranks.main:
                self.run.write_holdout(cfg.holdout, held)
        data, kept_back = holdout.split(data, held)
        self.log.info("data: %d images, %d classes%s%s", len(data.names), len(data.class_names),
                      f" ({', '.join(data.class_names)})" if data.class_names else "",
                      f"; {len(kept_back.names)} more kept back for evaluation (holdout.json)" if held else "")
        self.data = data
        self.class_names = data.class_names if cfg.cond else []
        self.feed = ImageFeed(data, self.device, conditional=cfg.cond)
        self.status.update(n_images=len(data.names), n_held_out=len(kept_back.names) if held else 0,
                           n_classes=len(self.class_names), skipped=len(data.skipped),
                           skipped_files=[f"{s.name}: {s.reason}" for s in data.skipped[:100]])

    def build(self):
        cfg = self.cfg
        self.spec = model_spec(cfg.arch, cfg.res, cfg.z_dim, cfg.channels, len(self.class_names), cfg.disc,
                               cfg.feature_res)
        torch.manual_seed(cfg.seed)
        self.G = build_generator(self.spec).to(self.device)
        self.D = build_discriminator(self.spec).to(self.device)
        if self.device.type == "cuda":
            self.G = self.G.to(memory_format=torch.channels_last)
            self.D = self.D.to(memory_format=torch.channels_last)
        self.ranks.broadcast_(self.G, self.D)  # same start everywhere
        self.ema = GeneratorEMA(self.G, cfg.ema_kimg, cfg.ema_rampup, self.feed.labels)
        # The step calls these. Compiled wrappers share the modules' parameters, so
        # checkpoints still save the plain modules. Compiled graphs cannot take a
        # double backward, so R1 steps run D's passes on the plain D.
        self.G_step, self.D_step = self.G, self.D
        if cfg.compile:
            self.G_step, self.D_step = torch.compile(self.G), torch.compile(self.D)
        self.seed_ranks(0)
        betas = (cfg.beta1, cfg.beta2)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=betas)
        self.opt_D = torch.optim.Adam(trainable(self.D), lr=cfg.lr_d, betas=betas)
        self.loss = build_loss(cfg.loss, cfg.r1_gamma, cfg.r1_every)
        self.ada = AdaptiveP(self.device, p=cfg.aug_p if cfg.aug != "none" else 0.0,
                             target=cfg.ada_target, speed_kimg=cfg.ada_kimg)
        self.aug_ops = tuple(o for o in cfg.aug_ops.split(",") if o)
        self.interval = IntervalStats(self.device)
        n_params = sum(p.numel() for p in self.G.parameters()), sum(p.numel() for p in trainable(self.D))
        self.log.info("models: %s G, %s D at %d px, G %.2fM params, D %.2fM trained params, %s loss, device %s, "
                      "%s%s", cfg.arch, self.spec["disc"], cfg.res, n_params[0] / 1e6, n_params[1] / 1e6, cfg.loss,
                      describe(self.device), self.precision, ", torch.compile" if cfg.compile else "")

    def start(self):
        """The fixed latents behind every grid, then step 0's files (new run) or the saved state."""
        if self.fresh and self.ranks.main:
            gen = torch.Generator().manual_seed(self.cfg.seed)
            z = torch.randn(GRID_SIZE, self.cfg.z_dim, generator=gen)
            c = (torch.arange(GRID_SIZE) // 8) % max(len(self.class_names), 1)  # one class per grid row
            checkpoint.save(self.run.latents_file, {"z": z, "c": c})
        self.ranks.barrier()  # rank 0 wrote them
        saved = checkpoint.load(self.run.latents_file)
        self.grid_z = saved["z"].to(self.device)
        self.grid_c = saved["c"].to(self.device) if self.class_names else None
        reals = self.feed.preview(GRID_SIZE, self.cfg.seed)  # the same images on every resume
        if self.ranks.main and self.cfg.health:
            try:
                self.health = GridRecorder(self.run, reals, self.device)
            except Exception as e:  # the health check only advises: it never stops a run
                self.log.warning("no health check for this run: %s", e)
        if self.fresh:
            self.open_events()
            if self.ranks.main:
                save_png(make_grid(reals, columns=8), self.run.reals)
            self.save_samples()
            self.save_checkpoint()  # step 0: a good checkpoint to fall back to from the start
        else:
            self.restore(None if self.rewind is None else self.run.snapshot_path(self.rewind))
            if self.rewind is not None or self.lr_scale is not None:
                self.change_course()
            self.open_events(resumed_at=self.counters.step)
            self.log.info("resumed at step %d (%.2f kimg)", self.counters.step, self.counters.nimg / 1000)

    def open_events(self, resumed_at: int | None = None):
        if self.ranks.main and self.cfg.tensorboard:
            # Events past the checkpoint are dropped, as are the metric lines (restore).
            self.events = tbevents.EventWriter(self.run.tensorboard, None if resumed_at is None else resumed_at + 1)

    def seed_ranks(self, step: int):
        """Several processes: each draws its own batches (one process keeps its single stream)."""
        if self.ranks.active:
            torch.manual_seed(self.cfg.seed + 1_000_003 * (step + 1) + self.ranks.rank)

    # -- one step: the D phase, then the G phase on the same fakes ------------------------
    def train_step(self):
        cfg, c = self.cfg, self.counters
        real, c_real, c_fake = self.feed.batch(self.local_batch)
        z = torch.randn(self.local_batch, cfg.z_dim, device=self.device)
        regularise = self.loss.regularises(c.step)

        self.D.requires_grad_(True)
        with autocast(self.device, self.precision):
            fake = self.G_step(z, c_fake)
        D = self.D if regularise else self.D_step  # no double backward through compiled graphs
        with autocast(self.device, self.precision):
            loss_d, stats = self.loss.discriminator(self.run_D(D), real, c_real, fake, c_fake, regularise)
        self.opt_D.zero_grad(set_to_none=True)
        loss_d.backward()
        self.ranks.average_gradients(self.D)
        self.opt_D.step()

        self.D.requires_grad_(False)  # G's phase goes through the updated D, as in the tutorial
        with autocast(self.device, self.precision):
            loss_g = self.loss.generator(self.run_D(self.D_step), real, c_real, fake, c_fake)
        self.opt_G.zero_grad(set_to_none=True)
        loss_g.backward()
        self.ranks.average_gradients(self.G)
        self.opt_G.step()
        self.ranks.broadcast_(self.G, self.D, buffers_only=True)  # BatchNorm statistics (dcgan)

        c.step += 1
        c.nimg += cfg.batch
        self.ema.update(self.G, c.nimg, cfg.batch)
        stats["loss_g"] = loss_g.detach()
        stats["rt"] = self.ranks.mean_(stats["rt"])
        if cfg.aug == "ada":
            self.ada.step(stats["rt"], cfg.batch)
        self.interval.add(stats, regularise)

    def run_D(self, D):
        """D on augmented images: the augmentation is inside, so penalties see the raw input."""
        def run(x, c, **options):
            return D(augment(x, self.ada.p, self.aug_ops) if self.cfg.aug != "none" else x, c, **options)
        run.reconstructs = hasattr(self.D, "reconstruction_error")  # FastGAN's D (see core/training/loss.py)
        return run

    def sampling_generator(self) -> torch.nn.Module:
        return self.ema.sampling(self.G, self.counters.step)

    # -- the loop ----------------------------------------------------------------------
    def train(self) -> str:
        cfg, c = self.cfg, self.counters
        self.last_save, self.save_cost = time.monotonic(), 0.0
        interval_start, interval_nimg0 = time.perf_counter(), c.nimg
        self.status.write(state="running", message="", step=c.step, kimg=c.nimg / 1000, progress=self.progress())
        self.log.info("training from step %d (%.2f kimg) to %s", c.step, c.nimg / 1000,
                      f"{cfg.minutes:g} minutes" if cfg.minutes is not None else f"{cfg.kimg:g} kimg")
        done, stopping = self.ranks.any(self.finished(), self.stop.signal is not None)
        while not (done or stopping):
            t0 = time.perf_counter()
            self.train_step()
            c.train_seconds += time.perf_counter() - t0
            self.after_step()
            # Every process ends at the same step, whichever one got the signal or ran out of time.
            done, stopping = self.ranks.any(self.finished(), self.stop.signal is not None)
            log_due = c.step % cfg.log_every == 0
            sample_due, snapshot_due = self.crossed(cfg.sample_kimg), self.crossed(cfg.snapshot_kimg)
            kid_due = self.kid_every() > 0 and self.crossed(self.kid_every())
            self.status.update(step=c.step, kimg=c.nimg / 1000, progress=self.progress(),
                               train_seconds=c.train_seconds)
            if not (log_due or sample_due or snapshot_due or kid_due or done or stopping):
                continue
            if stopping:
                self.status.write(state="stopping", message=f"stopping on {self.stop.signal or 'another rank'}")
            self.ranks.mean_(self.interval.sums)  # loss sums over all processes (linear: safe to repeat)
            if not self.healthy():
                self.recover_from_nan()
                interval_start, interval_nimg0 = time.perf_counter(), c.nimg
                continue
            if kid_due and self.ranks.main:
                self.measure_kid()
            if log_due:
                now = time.perf_counter()
                self.write_metrics(now - interval_start, c.nimg - interval_nimg0)
                interval_start, interval_nimg0 = now, c.nimg
            if sample_due or done or stopping:
                self.save_samples()
            if snapshot_due or done or stopping or (
                    log_due and self.ranks.any(self.latest_due())[0]):  # clocks differ: agree
                self.save_checkpoint(snapshot=snapshot_due)
            if done and self.interval.steps:
                # The last, partial interval. The checkpoint above still holds its
                # sums, so a resumed run drops this line and rewrites it in full.
                self.write_metrics(time.perf_counter() - interval_start, c.nimg - interval_nimg0)
        self.update_health()  # with the last metric lines
        if self.events:
            self.events.close()
        if stopping:
            self.log.info("stopped by %s at step %d (%.2f kimg); resume with --resume",
                          self.stop.signal or "another rank", c.step, c.nimg / 1000)
            return "stopped"
        self.log.info("finished at step %d (%.2f kimg)", c.step, c.nimg / 1000)
        return "finished"

    def after_step(self):
        """A hook for tests: core.train sets it to poison the weights (--inject-nan)."""

    def finished(self) -> bool:
        if self.cfg.minutes is not None:
            return self.counters.train_seconds >= self.cfg.minutes * 60
        return self.counters.nimg >= round(self.cfg.kimg * 1000)

    def progress(self) -> float:
        if self.cfg.minutes is not None:
            return min(1.0, self.counters.train_seconds / (self.cfg.minutes * 60))
        return min(1.0, self.counters.nimg / (self.cfg.kimg * 1000))

    def crossed(self, every_kimg: float) -> bool:
        """Did the last step cross a multiple of every_kimg?"""
        every, nimg = max(1, round(every_kimg * 1000)), self.counters.nimg
        return nimg // every > (nimg - self.cfg.batch) // every

    # -- what the loop writes ----------------------------------------------------------
    def write_metrics(self, interval_seconds, interval_nimg):
        c = self.counters
        img_per_sec = interval_nimg / interval_seconds if interval_seconds > 0 else 0.0
        row = {"step": c.step, "kimg": round(c.nimg / 1000, 4), "time": round(time.time(), 3),
               "train_seconds": round(c.train_seconds, 2), **self.interval.means(self.loss.penalties),
               "aug_p": float(self.ada.p), "img_per_sec": round(img_per_sec, 2),
               "lr": self.cfg.lr_g * c.lr_scale, "lr_d": self.cfg.lr_d * c.lr_scale}
        if self.pending_kid:
            row.update(self.pending_kid)
            self.pending_kid = None
        if self.ranks.main:
            self.run.append_metrics(row)
            if self.events:
                self.events.scalars(row)
        self.interval.reset()
        self.status.update(img_per_sec=row["img_per_sec"], aug_p=row["aug_p"], eta_s=self.eta(row["img_per_sec"]))
        self.log.info("step %d  %.2f kimg  loss_d %.3f  loss_g %.3f  D(real) %.2f  D(fake) %.2f  "
                      "p %.3f  %.1f img/s", c.step, c.nimg / 1000, row["loss_d"], row["loss_g"],
                      row["d_real"], row["d_fake"], row["aug_p"], row["img_per_sec"])

    def eta(self, img_per_sec: float) -> float | None:
        if self.cfg.minutes is not None:
            return round(max(0.0, self.cfg.minutes * 60 - self.counters.train_seconds), 1)
        if img_per_sec > 0:
            return round(max(0.0, self.cfg.kimg * 1000 - self.counters.nimg) / img_per_sec, 1)
        return None

    @torch.no_grad()
    def save_samples(self):
        self.ema.sync(self.G)  # on every rank, so the replicas stay alike
        if not self.ranks.main:
            return
        G = self.sampling_generator()
        images = []
        for i in range(0, GRID_SIZE, 32):
            c = self.grid_c[i:i + 32] if self.grid_c is not None else None
            images.append(G(self.grid_z[i:i + 32], c))
        images = to_uint8(torch.cat(images))
        sheet = make_grid(images, columns=8)
        save_png(sheet, self.run.sample_path(self.counters.step))
        if self.events:
            self.events.grid(self.counters.step, np.asarray(sheet))
        self.update_health(images)

    def update_health(self, grid=None):
        """Measure a new sample grid (uint8 images) if given, and rewrite health.json's findings."""
        if not self.health:
            return
        try:
            if grid is None:
                self.health.write()
            else:
                self.health.add(self.counters.step, self.counters.nimg / 1000, grid)
        except Exception as e:  # the health check only advises: it never ends a run
            self.log.warning("health check skipped at step %d: %s", self.counters.step, e)

    def latest_due(self) -> bool:
        wait = self.cfg.latest_minutes * 60
        if wait:  # 0 asks for every metrics line, whatever it costs
            wait = max(wait, self.save_cost / SAVE_SHARE)
        return time.monotonic() - self.last_save >= wait

    def save_checkpoint(self, snapshot: bool = False):
        """latest.pt, and with `snapshot` a step-N.pt kept for good."""
        started = time.monotonic()
        self.ema.sync(self.G)
        if self.ranks.main:
            payload = state.capture(self)
            if snapshot:
                checkpoint.save(self.run.snapshot_path(self.counters.step), payload)
            checkpoint.save(self.run.latest, payload)
        self.ranks.barrier()  # a NaN recovery on any rank may read it next
        self.last_save = time.monotonic()
        self.save_cost = self.last_save - started
        if snapshot:
            self.log.info("snapshot saved at step %d (%.1f kimg)", self.counters.step, self.counters.nimg / 1000)
            spare = snapshots_to_spare(self.run.path) if self.health else ()  # what its advice may need
            if self.ranks.main and (pruned := self.run.prune_snapshots(self.cfg.keep_snapshots, spare)):
                self.log.info("deleted snapshots of steps %s (--keep-snapshots %d)",
                              ", ".join(map(str, pruned)), self.cfg.keep_snapshots)

    def change_course(self):
        """--rewind / --lr-scale: the grids after the restored step go (a branch no longer taken),
        the new learning rates apply, and latest.pt holds the new start at once."""
        c = self.counters
        if self.lr_scale is not None:
            c.lr_scale *= self.lr_scale
            self.apply_lr_scale()
            self.status.update(lr_scale=c.lr_scale)
        if self.ranks.main:
            self.run.drop_samples_after(c.step)
        self.log.info("continuing from step %d (%.2f kimg)%s, learning rates x%g", c.step, c.nimg / 1000,
                      " (rewound)" if self.rewind is not None else "", c.lr_scale)
        self.save_checkpoint()

    def restore(self, path=None):
        """Back to run.latest (or `path`): the saved state, its learning-rate scale, and its metric lines."""
        state.restore(self, path or self.run.latest)
        self.apply_lr_scale()
        self.seed_ranks(self.counters.step)
        if self.ranks.main:
            # Lines after the checkpoint are redone; so is a partial line at its step.
            step = self.counters.step
            dropped = self.run.truncate_metrics(step - 1 if self.interval.steps else step)
            if dropped:
                self.log.info("dropped %d metric lines written after the checkpoint", dropped)
            if self.health:
                self.health.forget_after(step)

    def apply_lr_scale(self):
        for opt, lr in ((self.opt_G, self.cfg.lr_g), (self.opt_D, self.cfg.lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr * self.counters.lr_scale

    # -- when the loss runs away --------------------------------------------------------
    def healthy(self) -> bool:
        checks = [self.interval.finite()]
        checks += [torch.isfinite(p).all() for p in self.G.parameters()]
        checks += [torch.isfinite(p).all() for p in self.D.parameters()]
        return bool(torch.stack(checks).all())

    def recover_from_nan(self):
        """Go back to the last good checkpoint with half the learning rates."""
        c = self.counters
        recoveries, scale = c.nan_recoveries + 1, c.lr_scale * 0.5
        if recoveries > MAX_NAN_RECOVERIES:
            raise TrainingDiverged(f"loss became NaN/inf again after {MAX_NAN_RECOVERIES} recoveries "
                                   f"(learning rates already x{c.lr_scale:g}); giving up")
        bad_step = c.step
        self.restore()
        self.counters.nan_recoveries, self.counters.lr_scale = recoveries, scale
        self.apply_lr_scale()
        self.log.warning("non-finite loss or weights by step %d: reloaded step %d, learning rates now "
                         "x%g (recovery %d of %d)", bad_step, self.counters.step, scale, recoveries, MAX_NAN_RECOVERIES)
        self.status.update(nan_recoveries=recoveries, lr_scale=scale)

    # -- KID during training -------------------------------------------------------------
    def kid_every(self) -> float:
        if self.cfg.kid_kimg is None:  # auto: affordable on a GPU, too slow on CPU
            return 50.0 if self.device.type == "cuda" else 0.0
        return self.cfg.kid_kimg

    @torch.no_grad()
    def measure_kid(self):
        """KID of G_ema against the training images (fixed seeds: no training RNG is used)."""
        from core import features
        from core.evaluation import evaluate, metrics
        if self.kid_real is None:
            self.kid_real = features.cached_features(self.data.key, lambda: self.data.images, "inception")
        labels = self.data.labels if self.class_names else None
        fakes, _ = evaluate.fake_images(self.sampling_generator(), self.cfg.kid_images, seed=0, labels=labels)
        kid, se = metrics.kid(self.kid_real, features.extract(fakes, "inception", device=self.device))
        self.pending_kid = {"kid": kid, "kid_se": se}
        self.log.info("KID %.5f ± %.5f at step %d (%d generated images)", kid, se, self.counters.step, len(fakes))

    def runtime_info(self) -> dict:
        """What config.json records about where and on what the run trains."""
        data = self.data
        return {"device": str(self.device), "device_name": describe(self.device), "precision": self.precision,
                "torch": torch.__version__, "model": self.spec, "n_images": len(data.names),
                "class_names": self.class_names, "world_size": self.ranks.world, "data_classes": data.class_names,
                "data_key": data.key, "skipped": len(data.skipped)}
