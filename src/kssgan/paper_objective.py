"""The paper's generator objective in image mode (``generator_input="image"``), eq. (8).

G(x, c_trg) toward a training target (``target_sampler``: StarGAN's shuffled labels or the release
condition), adversarial + domain classification + λ_rec · the identity term: the Siamese similarity
S of eq. (3) on the cycle image or the translation (or its hinge), or StarGAN's L1 cycle loss as the
ablation; optionally the k-Same consistency of a group's output embeddings.
"""

from __future__ import annotations

import torch
from torch import Tensor

from kssgan.losses import domain_classification_loss, group_consistency, siamese_similarity, similarity_hinge
from kssgan.targets import field_index, permuted_targets, release_targets


class PaperObjective:
    """Mixed into the LightningModule; uses its ``generator``, ``critic``, ``siamese``, ``spec``
    and ``hparams``."""

    def target_labels(self, labels: Tensor) -> Tensor:
        """The training target c_trg (``target_sampler``; see :mod:`kssgan.targets`)."""
        if self.hparams.target_sampler == "release":
            return release_targets(labels, self.spec, self.hparams.own_group_share)
        return permuted_targets(labels)

    def paper_generator_loss(self, x: Tensor, c_org: Tensor, c_trg: Tensor) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        """Eq. (8), its parts and the fake G(x, c_trg)."""
        hp = self.hparams
        x_fake = self.generator(x, c_trg)
        src_fake, cls_fake = self.critic(x_fake)
        g_adv = -src_fake.float().mean()
        g_cls = domain_classification_loss(cls_fake, c_trg, self.spec)
        if hp.rec_loss == "l1" or hp.rec_target == "cycle":
            x_rec = self.generator(x_fake, c_org)
        parts: dict[str, Tensor] = {"g_adv": g_adv, "g_cls": g_cls}
        if hp.rec_loss == "l1":
            g_rec = (x.float() - x_rec.float()).abs().mean()
        else:
            with torch.no_grad() if hp.siamese_mode != "cotrain" else torch.enable_grad():
                f_real = self.siamese(x)
            f_fake = self.siamese(x_rec if hp.rec_target == "cycle" else x_fake)
            g_rec = self._identity_term(f_real.detach(), f_fake).mean()
            if hp.lambda_consistency > 0:
                groups = field_index(c_trg, self.spec, "group")
                parts["g_consistency"] = group_consistency(self.siamese(x_fake), groups)
        parts["g_rec"] = g_rec
        g_loss = g_adv + hp.lambda_cls * g_cls + hp.lambda_rec * g_rec
        if "g_consistency" in parts:
            g_loss = g_loss + hp.lambda_consistency * parts["g_consistency"]
        return g_loss, parts, x_fake

    def _identity_term(self, f_real: Tensor, f_fake: Tensor) -> Tensor:
        if self.hparams.identity_loss == "hinge":
            return similarity_hinge(f_real, f_fake, self.hparams.hinge_margin)
        return siamese_similarity(f_real, f_fake)
