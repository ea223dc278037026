"""GAN losses: each a small class the trainer calls once per phase, D then G.

`run_D(x, c)` is the discriminator on augmented input (the trainer's), so penalties
differentiate through the augmentation to the raw images, as in StyleGAN2-ADA.
Each phase returns (loss to backpropagate, statistics for metrics.jsonl).

- logistic: the non-saturating logistic loss (= the DCGAN tutorial's BCE), with an
  optional lazy R1 penalty on reals (Mescheder et al. 2018): the small-data recipe.
- hinge: D max(0, 1 - D(real)) + max(0, 1 + D(fake)), G -D(fake); no penalty. What
  Projected GANs train with (Sauer et al. 2021). With FastGAN's discriminator, its
  reconstruction error on the reals is added to D's loss (Liu et al. 2021).
- r3gan: the relativistic pairing loss softplus(D(fake) - D(real)), each real paired
  with one fake, with zero-centred R1 on reals and R2 on fakes (Huang et al. 2024,
  "The GAN is dead; long live the GAN!"). Their paper applies both every step; here
  they may be lazy (every r1_every steps, scaled up to match), which the authors
  report costs a little FID but halves the price of the double backward on a CPU.
"""
from collections.abc import Callable

import torch
import torch.nn.functional as F

RunD = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]


def gradient_penalty(scores: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """E ||d sum(scores) / d inputs||^2, per image then averaged; kept in the graph. Pass one
    score per image (_paired), as the losses see it: the sum of a patch D's logits would make
    the penalty as many times stronger as the D has patches."""
    (grad,) = torch.autograd.grad(scores.sum(), inputs, create_graph=True)
    return grad.float().square().sum(dim=(1, 2, 3)).mean()


def _stats(real_logits, fake_logits, loss_d, r1=None, r2=None, rt=None) -> dict:
    """rt: how sure D is of the reals, ADA's overfitting signal E[sign(D(real))] by default."""
    zero = torch.zeros((), device=real_logits.device)
    return {"loss_d": loss_d.detach(), "d_real": torch.sigmoid(real_logits.detach()).mean(),
            "d_fake": torch.sigmoid(fake_logits.detach()).mean(),
            "r1": zero if r1 is None else r1.detach(), "r2": zero if r2 is None else r2.detach(),
            "rt": torch.sign(real_logits.detach()).mean() if rt is None else rt.detach()}


class Loss:
    """gamma: penalty weight (0 = none); every: apply it every N D steps (lazy)."""
    penalties = ()  # which of "r1" / "r2" this loss uses

    def __init__(self, gamma: float = 0.0, every: int = 1):
        self.gamma, self.every = gamma, every

    def regularises(self, step: int) -> bool:
        return self.gamma > 0 and bool(self.penalties) and step % self.every == 0

    def _penalty(self, value: torch.Tensor) -> torch.Tensor:
        return value * (self.gamma / 2 * self.every)

    def d_logits(self, run_D: RunD, real, c_real, fake, c_fake, regularise: bool):
        """Logits of reals and (detached) fakes; inputs that a penalty needs get gradients."""
        fake = fake.detach()
        if regularise and "r1" in self.penalties:
            real = real.detach().requires_grad_(True)
        if regularise and "r2" in self.penalties:
            fake = fake.requires_grad_(True)
        return real, fake, run_D(real, c_real).float(), run_D(fake, c_fake).float()


class Logistic(Loss):
    penalties = ("r1",)

    def discriminator(self, run_D: RunD, real, c_real, fake, c_fake, regularise: bool):
        real, fake, real_logits, fake_logits = self.d_logits(run_D, real, c_real, fake, c_fake, regularise)
        loss = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
        r1 = gradient_penalty(_paired(real_logits), real) if regularise else None
        total = loss + self._penalty(r1) if r1 is not None else loss
        return total, _stats(real_logits, fake_logits, loss, r1=r1)

    def generator(self, run_D: RunD, real, c_real, fake, c_fake):
        return F.softplus(-run_D(fake, c_fake).float()).mean()


class Hinge(Loss):
    def discriminator(self, run_D: RunD, real, c_real, fake, c_fake, regularise: bool):
        recon = None
        if getattr(run_D, "reconstructs", False):  # FastGAN's D also rebuilds the reals it saw
            real_logits, recon = run_D(real, c_real, reconstruct=True)
        else:
            real_logits = run_D(real, c_real)
        real_logits, fake_logits = real_logits.float(), run_D(fake.detach(), c_fake).float()
        loss = F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
        return (loss if recon is None else loss + recon), _stats(real_logits, fake_logits, loss)

    def generator(self, run_D: RunD, real, c_real, fake, c_fake):
        return -run_D(fake, c_fake).float().mean()


class R3GAN(Loss):
    penalties = ("r1", "r2")

    def discriminator(self, run_D: RunD, real, c_real, fake, c_fake, regularise: bool):
        real, fake, real_logits, fake_logits = self.d_logits(run_D, real, c_real, fake, c_fake, regularise)
        real_scores, fake_scores = _paired(real_logits), _paired(fake_logits)
        loss = F.softplus(fake_scores - real_scores).mean()
        r1 = r2 = None
        total = loss
        if regularise:
            r1, r2 = gradient_penalty(real_scores, real), gradient_penalty(fake_scores, fake)
            total = loss + self._penalty(r1 + r2)
        # The loss ignores a shift of all of D's outputs, so sign(D(real)) says nothing here:
        # how often a real beats its fake does (1 = D tells every pair apart).
        rt = torch.sign(real_scores.detach() - fake_scores.detach()).mean()
        return total, _stats(real_logits, fake_logits, loss, r1=r1, r2=r2, rt=rt)

    def generator(self, run_D: RunD, real, c_real, fake, c_fake):
        with torch.no_grad():  # the reals only set the bar: no gradient reaches anything through them
            real_logits = run_D(real, c_real).float()
        return F.softplus(_paired(real_logits) - _paired(run_D(fake, c_fake).float())).mean()


def _paired(logits: torch.Tensor) -> torch.Tensor:
    """One score per image: discriminators that score patches give several logits each."""
    return logits.reshape(len(logits), -1).mean(dim=1)


LOSSES = {"logistic": Logistic, "hinge": Hinge, "r3gan": R3GAN}  # by the names in core.training.config


def build_loss(name: str, gamma: float, every: int) -> Loss:
    return LOSSES[name](gamma, every)
