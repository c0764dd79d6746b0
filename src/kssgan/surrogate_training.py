"""Surrogate-mode wiring of :class:`kssgan.system.KSSGAN` (``generator_input="surrogate"``).

G's input is the group's k-Same surrogate face, never the source (:mod:`kssgan.surrogates`): one
released face per group and kept attribute, by construction. The group field leaves G's label (the
surrogate carries it), so G's input does not grow with the number of groups. The bank of
surrogate faces is built from the training data at the start of fit
(:func:`kssgan.data.surrogate_data.build_surrogate_bank`) and travels in the state dict.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from kssgan.losses import domain_classification_loss, edge_l1, low_frequency_l1
from kssgan.surrogates import batch_k_means, ghosted_mean
from kssgan.targets import field_index, without_field


class SurrogateTraining:
    """Mixed into the LightningModule: the release generator, the surrogate inputs and the
    generator loss of surrogate mode. Uses the module's ``generator``, ``critic``, ``siamese``,
    ``surrogates``, ``spec``, ``groups`` and ``hparams``."""

    def release_generator(self) -> torch.nn.Module:
        """What ``deidentify``/``export`` run: ``G`` itself, or (surrogate mode) a module with G's
        ``(image, label)`` interface that looks the surrogate face up from the label."""
        from kssgan.surrogates import SharpenedGenerator, SurrogateReleaseGenerator

        amount = float(self.hparams.get("release_sharpen", 0.0))
        g = self.generator_ema.module if self.generator_ema is not None else self.generator
        if not self.surrogate_mode:
            return SharpenedGenerator(g, amount) if amount > 0 else g
        slices = self.spec.slices()
        value = slices[self.surrogate_field] if self.surrogate_field else None
        return SurrogateReleaseGenerator(g, self.surrogates, slices["group"], value, amount)

    def kept(self, labels: Tensor) -> Tensor:
        """What G's label holds: all of c, or (surrogate mode) c without the group field."""
        return without_field(labels, self.spec, "group") if self.surrogate_mode else labels

    def surrogate_input(self, labels: Tensor) -> Tensor:
        """The surrogate face of each label's (group, kept attribute value): the release generator's
        own lookup, so training and release read the bank one way."""
        self._require_bank()
        return self.release_generator().surrogate(labels)

    def _require_bank(self) -> None:
        if self.surrogates is None or not bool(self.surrogates.ready):
            raise RuntimeError("the surrogate faces are not built (train the model or load a trained checkpoint)")

    def surrogate_generator_inputs(self, x: Tensor, c_org: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(G's input, c_trg = c_org, G's label): the release surrogate of c_org for a
        ``surrogate_bank_share`` of rows, else the mean of k batch images alike (:meth:`mix_value`)."""
        with torch.no_grad():
            bank = self.surrogate_input(c_org).to(x.dtype)
            mixed = batch_k_means(x, self.mix_value(c_org), int((self.groups or {}).get("k", 3)))
            use_bank = torch.rand(x.size(0), device=x.device) < self.hparams.surrogate_bank_share
            x_in = torch.where(use_bank.view(-1, 1, 1, 1), bank, mixed)
        return self._fmt(x_in), c_org, self.kept(c_org)

    def mix_value(self, c_org: Tensor) -> Tensor:
        """Rows of one value may be averaged into a training input (``surrogate_mix``): the kept
        attribute's value, and with ``kind`` also the ``surrogate_match`` value of the row's group."""
        n = c_org.size(0)
        value = field_index(c_org, self.spec, self.surrogate_field) if self.surrogate_field else None
        value = value if value is not None else torch.zeros(n, dtype=torch.long, device=c_org.device)
        if self.hparams.get("surrogate_mix", "attribute") == "kind":
            kinds = self.group_kind.to(c_org.device)  # codes < num_groups: one value per (value, kind)
            value = value * len(kinds) + kinds[field_index(c_org, self.spec, "group")]
        return value

    def on_fit_start(self) -> None:
        if self.hparams.get("surrogate_mix", "attribute") == "kind":
            from kssgan.data.surrogate_data import group_kind_codes

            self.group_kind.copy_(group_kind_codes(self.trainer.datamodule, self.hparams.surrogate_match))
        if self.surrogates is not None and not bool(self.surrogates.ready):
            from lightning.pytorch.utilities import rank_zero_info

            from kssgan.data.surrogate_data import build_surrogate_bank

            done = build_surrogate_bank(self, self.trainer.datamodule)
            self.surrogate_record = {k: v for k, v in done.items() if k != "fallbacks"}
            tone = done.get("tone_delta_e")
            rank_zero_info(
                f"kssgan: surrogate faces of {self.spec.num_groups} groups from {done['images']} "
                f"{'drawn faces' if self.hparams.get('surrogate_images') == 'synthetic' else 'photos'} "
                f"({self.hparams.get('surrogate_images', 'all')}), "
                f"{len(done['fallbacks'])} fallbacks"
                + (
                    f"; chosen by kind: skin-tone ΔE76 to the group before toning median "
                    f"{float(np.median(tone)):.1f}, max {max(tone):.1f}"
                    if tone
                    else ""
                )
            )

    def surrogate_generator_loss(self, x: Tensor, c_org: Tensor, x_in: Tensor) -> tuple[Tensor, dict, Tensor]:
        hp = self.hparams
        kept = self.kept(c_org)
        x_fake = self.generator(x_in, kept)
        src_fake, cls_fake = self.critic(x_fake)
        parts = {
            "g_adv": -src_fake.float().mean(),
            "g_cls": domain_classification_loss(cls_fake, c_org, self.spec, ("group",)),
            "g_fid": low_frequency_l1(x_fake, x_in, hp.fidelity_size),
        }
        g_loss = parts["g_adv"] + hp.lambda_cls * parts["g_cls"] + hp.lambda_fid * parts["g_fid"]
        if hp.lambda_detail > 0 or hp.lambda_edge > 0:  # de-ghosting prior: k jittered copies of x, averaged -> x
            ghosted = ghosted_mean(x.float(), int((self.groups or {}).get("k", 3))).to(x.dtype)
            restored = self.generator(self._fmt(ghosted), kept).float()
            parts["g_detail"] = (restored - x.float()).abs().mean()
            g_loss = g_loss + hp.lambda_detail * parts["g_detail"]
            if hp.lambda_edge > 0:  # the Laplacians only when their term counts
                parts["g_edge"] = edge_l1(restored, x)
                g_loss = g_loss + hp.lambda_edge * parts["g_edge"]
        if hp.lambda_rec > 0 and hp.rec_loss == "siamese":
            with torch.no_grad():
                f_real = self.siamese(x)
            parts["g_rec"] = self._identity_term(f_real, self.siamese(x_fake)).mean()
            g_loss = g_loss + hp.lambda_rec * parts["g_rec"]
        return g_loss, parts, x_fake
