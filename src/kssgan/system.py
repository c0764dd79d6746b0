"""The kSS-GAN LightningModule: wires G, D and the Siamese net to the losses and optimizers.

Training follows Algorithm 2 of Pan et al. with StarGAN's conventions: one critic step per batch and
one generator step every ``n_critic`` (counted by the ``critic_steps``/``generator_steps`` buffers,
since Lightning's ``global_step`` counts both); WGAN-GP critic loss (eq. 7); generator loss (eq. 8)
with the Siamese similarity S of eq. (3) on the cycle image (``rec_target="cycle"``) or on G(x, c)
as Algorithm 2 writes it (``"translation"``); ``rec_loss="l1"`` is StarGAN's cycle loss, the
ablation. The Siamese net is pre-trained contrastively and frozen (``siamese_mode``), co-trained, or
left random. A small frozen net is exactly what a gradient-trained G learns to fool with
perturbations that independent recognisers ignore, so its verdict is never evidence of privacy:
:class:`kssgan.privacy_monitor.PrivacyMonitor` measures it with SFace and dlib, which no loss sees.

Beyond the paper, each a documented option (``experiments/base.yaml`` holds the measured recipe):
``generator_input="surrogate"`` (:mod:`kssgan.surrogate_training`), ``target_sampler="release"``
(:mod:`kssgan.targets`), ``identity_loss="hinge"``, ``lambda_consistency``, ``g_upsample`` and
``g_residual``, ``lambda_detail``/``lambda_edge``, and networks injected from config
(:mod:`kssgan.models.factory`).
"""

from __future__ import annotations

import re
import warnings
from typing import Any, Literal

import lightning as L
import torch
from torch import Tensor

from kssgan.checkpoint_meta import CHECKPOINT_KEY, CheckpointMetadata
from kssgan.data.labels import LabelSpec
from kssgan.losses import (
    domain_accuracy,
    domain_classification_loss,
    gradient_penalty,
    siamese_similarity,
)
from kssgan.models import Critic, Generator, SiameseNet
from kssgan.models.conditioning import CONDITIONING_CHOICES
from kssgan.models.factory import build_module
from kssgan.paper_objective import PaperObjective
from kssgan.surrogate_training import SurrogateTraining
from kssgan.surrogates import SurrogateBank
from kssgan.targets import permuted_targets, release_targets


class KSSGAN(PaperObjective, SurrogateTraining, CheckpointMetadata, L.LightningModule):
    """k-Same-Siamese-GAN.

    Args:
        label_spec: the domain label layout (``LabelSpec.to_dict()``); filled in from the
            DataModule by the CLI. Saved in the checkpoint with ``groups``.
        groups: the k-Same grouping (``groups.json`` content) the labels were built from.
        image_size: side of the square training crops.
        g_conv_dim, g_repeat_num: generator width and number of residual blocks.
        d_conv_dim, d_final_size, d_max_dim: critic width, side of its last map, channel cap.
        siamese_embed_dim, siamese_conv_dim, siamese_depth: Siamese embedding net.
        siamese_mode: ``pretrain_frozen`` | ``cotrain`` | ``frozen`` (see module doc).
        siamese_pretrain_steps, siamese_lr, siamese_margin: its contrastive training.
        rec_loss: ``siamese`` (kSS-GAN) or ``l1`` (StarGAN cycle loss, ablation).
        rec_target: ``cycle`` (eq. 3) or ``translation`` (Algorithm 2).
        lambda_gp, lambda_rec, lambda_cls, n_critic: loss weights and critic schedule.
        g_lr, d_lr, beta1, beta2: Adam settings.
        lr_decay_start, lr_decay_end: critic iterations between which both learning rates decay
            linearly to 0 (StarGAN's schedule); ``lr_decay_end = 0`` disables decay.
        channels_last: use the channels-last memory format (faster convs on GPU/CPU with AMP).
        generator_input: ``image`` (the paper: G(x, c)) or ``surrogate`` (G(surrogate face, kept
            attributes); see the module doc and :mod:`kssgan.surrogates`).
        surrogate_assignment: ``farthest`` | ``nearest`` | ``own`` group whose mean a group gets.
        surrogate_match: manifest column whose majority value per group must agree between a group
            and its surrogate (e.g. ``gender``); None: any group.
        surrogate_bank_share: share of training inputs that are the release surrogates themselves;
            the rest are means of k same-attribute batch images (so G does not memorise the bank).
        surrogate_mix: which batch images such a mean averages: ``attribute`` (any k with the same
            kept attribute value: a woman's and a man's face in one mean) or ``kind`` (also from
            groups of the same ``surrogate_match`` value, as the k-Same groups themselves are built,
            so G is not taught to settle a blended face's gender; measured on London, it slows G's
            drift from its faces' gender without stopping it: docs/evaluation.md, "G drifts from its
            faces' kind as it trains").
        surrogate_images: ``all`` (the mean of every photo of the group with that attribute value),
            ``medoid`` (the mean of one photo per member: its most typical, closest to its mean) or
            ``synthetic`` (a face of a person who does not exist, drawn from the shipped DCGAN, per
            group; :mod:`kssgan.data.synthetic_surrogates`).
        synthetic_pool, synthetic_seed: faces drawn per group to choose from (doubled, at most twice,
            when too few qualify), and their seed
            (``surrogate_images: synthetic`` only).
        synthetic_choice: ``kind`` (each group the qualifying drawn face nearest its skin tone and
            age, then toned to the group's mean skin colour) or ``detection`` (YuNet's score order,
            no toning); ``surrogate_images: synthetic`` only.
        synthetic_context: ``drawn`` (the whole drawn crop: its own background and hair),
            ``mean`` (its inner face laid onto the mean of the dataset's crops, the skin near it
            toned to the face) or ``kind`` (onto the mean crop of the people of its group's
            ``surrogate_match`` value, e.g. the women's: hair mass of that kind of person, of
            nobody in particular); ``surrogate_images: synthetic`` only.
        lambda_fid, fidelity_size: weight and block grid of the low-frequency L1 that keeps the
            surrogate's identity in G's output (surrogate mode).
        lambda_detail: weight of a paired de-ghosting prior on real crops, L1(G(ghost(x)), x) where
            ghost(x) averages k slightly shifted, scaled and rotated copies of x — a mean face of one
            person (0: off).
        lambda_edge: weight of an edge loss on the same pair, L1(∇²G(ghost(x)), ∇²x): the prior's
            L1 alone regresses to a soft face; this charges the photograph's missing edges (0: off).
        g_ema: decay of an exponential moving average of G's weights that release uses (translate,
            deidentify, export, the privacy monitor); 0: off, release uses G itself (StyleGAN's and
            DeepPrivacy2's G_ema, smoothing out the last steps' transient artifacts).
        target_sampler: ``permute`` (StarGAN/paper) or ``release`` (own attributes, new group).
        own_group_share: with ``release``, the share of targets that keep the source's group.
        identity_loss: ``similarity`` (eq. 3, S) or ``hinge`` (max(0, S − hinge_margin)).
        lambda_consistency: weight of the k-Same consistency of Siamese embeddings of a group's
            outputs (image mode; pair it with the DataModule's ``group_batches``).
        g_upsample, g_residual: generator up-sampling (``transposed``/``resize``) and input editing.
        group_conditioning: ``embedding`` (default: a learned ``group_embed_dim``-vector per group
            in G's input and an embedding classifier in D's head, constant in the number of
            groups) or ``onehot`` (the paper's form: the group one-hot tiled over the image; for
            small k). See :mod:`kssgan.models.conditioning`.
        group_embed_dim: size of the group embedding (``embedding`` only).
        release_sharpen: amount of an unsharp mask on every released face (deidentify, evaluate,
            export, the privacy monitor; not the training losses); 0: off.
        release_region: what ``deidentify`` replaces in this recipe's photos unless told
            (``--mask region`` auto; :class:`~kssgan.deidentify.options.MaskShape`): ``head`` (the
            face and a ring around it) or ``frame`` (the whole photo: for datasets of face crops).
        release_attribute_reference: how ``deidentify`` reads the kept attributes it is not given
            (``--attribute-reference`` auto): ``population`` (the critic's own reading of each
            face) or ``person`` (against the person's own photos, where whose each photo is is
            known: for datasets with several photos per person across the attribute's values).
        release_follow: what of the source ``deidentify`` puts on the group's face unless told
            (``--follow`` auto; :mod:`kssgan.deidentify.follow`): ``none`` (the frozen face) or a
            follow mode, read against the person where attributes are (``--follow-reference``
            auto). A recipe that replaces whole photos (``release_region: frame``) follows nothing.
        release_follow_reference: what that following is against unless told (``--follow-reference``
            auto): ``auto`` (the person where attributes are read against the person, else the
            source), ``source``, ``person`` or ``rest`` (the change from the person's resting photos;
            a resting photo gets the group's face untouched).
        generator, critic, siamese: networks injected from config (``class_path`` +
            ``init_args``; :mod:`kssgan.models.factory`); None builds kssgan's own from the
            scalars above.
    """

    def __init__(
        self,
        label_spec: dict[str, Any] | None = None,
        groups: dict[str, Any] | None = None,
        image_size: int = 128,
        g_conv_dim: int = 64,
        g_repeat_num: int = 6,
        d_conv_dim: int = 64,
        d_final_size: int = 4,
        d_max_dim: int = 1024,
        siamese_embed_dim: int = 128,
        siamese_conv_dim: int = 32,
        siamese_depth: int = 4,
        siamese_mode: Literal["pretrain_frozen", "cotrain", "frozen"] = "pretrain_frozen",
        siamese_pretrain_steps: int = 300,
        siamese_lr: float = 1e-3,
        siamese_margin: float = 1.0,
        rec_loss: Literal["siamese", "l1"] = "siamese",
        rec_target: Literal["cycle", "translation"] = "cycle",
        lambda_gp: float = 10.0,
        lambda_rec: float = 10.0,
        lambda_cls: float = 1.0,
        n_critic: int = 5,
        g_lr: float = 1e-4,
        d_lr: float = 1e-4,
        beta1: float = 0.5,
        beta2: float = 0.999,
        lr_decay_start: int = 0,
        lr_decay_end: int = 0,
        channels_last: bool = False,
        generator_input: Literal["image", "surrogate"] = "image",
        surrogate_assignment: Literal["farthest", "nearest", "own"] = "farthest",
        surrogate_match: str | None = None,
        surrogate_bank_share: float = 0.5,
        surrogate_mix: Literal["attribute", "kind"] = "attribute",
        surrogate_images: Literal["all", "medoid", "synthetic"] = "all",
        synthetic_pool: int = 8,
        synthetic_seed: int = 0,
        synthetic_choice: Literal["kind", "detection"] = "kind",
        synthetic_context: Literal["drawn", "mean", "kind"] = "drawn",
        lambda_fid: float = 10.0,
        fidelity_size: int = 16,
        lambda_detail: float = 0.0,
        lambda_edge: float = 0.0,
        g_ema: float = 0.0,
        target_sampler: Literal["permute", "release"] = "permute",
        own_group_share: float = 0.5,
        identity_loss: Literal["similarity", "hinge"] = "similarity",
        hinge_margin: float = 0.5,
        lambda_consistency: float = 0.0,
        g_upsample: Literal["transposed", "resize", "bilinear"] = "transposed",
        g_residual: bool = False,
        group_conditioning: Literal["embedding", "onehot"] = "embedding",
        group_embed_dim: int = 32,
        release_sharpen: float = 0.0,
        release_region: Literal["head", "inner", "frame"] = "head",
        release_attribute_reference: Literal["population", "person"] = "population",
        release_follow: Literal["none", "expression", "pose", "all", "shape"] = "none",
        release_follow_reference: Literal["auto", "source", "person", "rest"] = "auto",
        generator: dict[str, Any] | None = None,
        critic: dict[str, Any] | None = None,
        siamese: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if label_spec is None:
            raise ValueError("KSSGAN needs a label_spec (the CLI links it from the DataModule)")
        _check_choice("siamese_mode", siamese_mode, ("pretrain_frozen", "cotrain", "frozen"))
        _check_choice("rec_loss", rec_loss, ("siamese", "l1"))
        _check_choice("rec_target", rec_target, ("cycle", "translation"))
        _check_choice("generator_input", generator_input, ("image", "surrogate"))
        _check_choice("surrogate_assignment", surrogate_assignment, ("farthest", "nearest", "own"))
        _check_choice("surrogate_images", surrogate_images, ("all", "medoid", "synthetic"))
        _check_choice("surrogate_mix", surrogate_mix, ("attribute", "kind"))
        if surrogate_mix == "kind" and (generator_input != "surrogate" or not surrogate_match):
            raise ValueError(
                "surrogate_mix=kind mixes within each surrogate_match value (e.g. gender): it needs "
                "generator_input=surrogate and surrogate_match"
            )
        if surrogate_images == "synthetic" and surrogate_match not in (None, "gender"):
            raise ValueError(
                "surrogate_images=synthetic draws a face per group and can match its gender only "
                f"(surrogate_match: gender, read off the drawn face), not {surrogate_match!r}"
            )
        _check_choice("synthetic_choice", synthetic_choice, ("kind", "detection"))
        _check_choice("synthetic_context", synthetic_context, ("drawn", "mean", "kind"))
        if synthetic_pool < 1:
            raise ValueError(f"synthetic_pool must be >= 1, got {synthetic_pool}")
        _check_choice("target_sampler", target_sampler, ("permute", "release"))
        _check_choice("identity_loss", identity_loss, ("similarity", "hinge"))
        _check_choice("group_conditioning", group_conditioning, CONDITIONING_CHOICES)
        if n_critic < 1:
            raise ValueError(f"n_critic must be >= 1, got {n_critic}")
        if lr_decay_end and lr_decay_end <= lr_decay_start:
            raise ValueError(f"lr_decay_end ({lr_decay_end}) must exceed lr_decay_start ({lr_decay_start})")
        # The grouping names every identity (in a hospital: patient ids), so it is kept out of the
        # hyper-parameters that loggers (W&B, CSV) publish; it travels in checkpoint["kssgan"] only.
        self.save_hyperparameters(ignore=["groups"])
        self.automatic_optimization = False
        self.spec = LabelSpec.from_dict(label_spec)
        self.groups = groups
        self.prepare_info: dict[str, Any] | None = None  # checkpoint["kssgan"]["prepare"]; from the DataModule
        self.surrogate_record: dict[str, Any] | None = None  # checkpoint["kssgan"]["surrogates"]
        dim, n_groups = self.spec.dim, self.spec.num_groups
        embed = group_embed_dim if group_conditioning == "embedding" else 0
        self.surrogate_mode = generator_input == "surrogate"
        # Surrogate mode: the group is carried by the surrogate face, so G's label is what is kept.
        g_groups = 0 if self.surrogate_mode else n_groups
        self.generator = build_module(
            generator,
            Generator,
            {
                "label_dim": dim - n_groups if self.surrogate_mode else dim,
                "image_size": image_size,
                "num_groups": g_groups,
                "group_embed_dim": embed if g_groups else 0,
            },
            {"conv_dim": g_conv_dim, "repeat_num": g_repeat_num, "upsample": g_upsample, "residual": g_residual},
        )
        self.generator_ema = None  # G's weight average that release uses (g_ema > 0)
        if not 0 <= g_ema < 1:
            raise ValueError(f"g_ema is a decay in [0, 1), got {g_ema}")
        if g_ema > 0:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            self.generator_ema = AveragedModel(
                self.generator, multi_avg_fn=get_ema_multi_avg_fn(g_ema), use_buffers=True
            )
            self.generator_ema.requires_grad_(False)
        self.critic = build_module(
            critic,
            Critic,
            {"label_dim": dim, "image_size": image_size, "num_groups": n_groups, "group_embed_dim": embed},
            {"conv_dim": d_conv_dim, "final_size": d_final_size, "max_dim": d_max_dim},
        )
        self.siamese = build_module(
            siamese,
            SiameseNet,
            {},
            {"embed_dim": siamese_embed_dim, "conv_dim": siamese_conv_dim, "depth": siamese_depth},
        )
        # The field whose value selects the surrogate face (the first one-hot attribute: expression).
        self.surrogate_field = next((f.name for f in self.spec.fields[1:] if f.kind == "onehot"), None)
        n_values = self.spec.field(self.surrogate_field).size if self.surrogate_field else 1
        self.surrogates = SurrogateBank(self.spec.num_groups, n_values, image_size) if self.surrogate_mode else None
        # Each group's surrogate_match value as a code (surrogate_mix=kind); read from the data at
        # every fit start, so it is not part of the checkpoint.
        self.register_buffer("group_kind", torch.zeros(n_groups, dtype=torch.long), persistent=False)
        self.register_buffer("critic_steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("generator_steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("siamese_ready", torch.zeros((), dtype=torch.bool))
        if channels_last:
            self.to(memory_format=torch.channels_last)

    # -- inference API (used by deidentify/evaluate) ------------------------------------------
    def translate(self, images: Tensor, labels: Tensor) -> Tensor:
        """The released face for images in [-1, 1] and labels c: G(x, c), or — surrogate mode —
        G(surrogate(c), kept attributes of c), which does not read ``images`` at all."""
        labels = labels.to(images.device, images.dtype)
        if self.surrogate_mode:
            self._require_bank()
        return self.release_generator()(self._fmt(images), labels)

    def embed(self, images: Tensor) -> Tensor:
        return self.siamese(self._fmt(images))

    def forward(self, images: Tensor, labels: Tensor) -> Tensor:
        return self.translate(images, labels)

    def _fmt(self, x: Tensor) -> Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.hparams.channels_last else x

    # -- optimizers ---------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        hp = self.hparams
        opt_g = torch.optim.Adam(self.generator.parameters(), hp.g_lr, (hp.beta1, hp.beta2))
        opt_d = torch.optim.Adam(self.critic.parameters(), hp.d_lr, (hp.beta1, hp.beta2))
        opt_s = torch.optim.Adam(self.siamese.parameters(), hp.siamese_lr)
        decay = _linear_decay(hp.lr_decay_start, hp.lr_decay_end)
        sched_g = torch.optim.lr_scheduler.LambdaLR(opt_g, decay)
        sched_d = torch.optim.lr_scheduler.LambdaLR(opt_d, decay)
        return [opt_g, opt_d, opt_s], [sched_g, sched_d]

    def on_train_start(self) -> None:
        mode = self.hparams.siamese_mode
        # In surrogate mode the Siamese net is only used by the (optional) identity term.
        needed = not self.surrogate_mode or (self.hparams.lambda_rec > 0 and self.hparams.rec_loss == "siamese")
        if mode != "frozen" and needed and not bool(self.siamese_ready):
            self._pretrain_siamese()
        if mode != "cotrain":
            self.siamese.requires_grad_(False)

    def _pretrain_siamese(self) -> None:
        from kssgan.siamese_pretraining import pretrain_siamese

        self.log("siamese/pretrain_loss", pretrain_siamese(self), rank_zero_only=True)

    def siamese_step(self, batch: dict[str, Tensor]) -> Tensor:
        """Contrastive loss on (x, same-identity partner) and (x, shifted partner) pairs."""
        from kssgan.siamese_pretraining import contrastive_step

        return contrastive_step(self.embed, batch, self.hparams.siamese_margin)

    # -- training -----------------------------------------------------------------------------
    def generator_inputs(self, x: Tensor, c_org: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(G's image input, the label c_trg it is trained towards, G's label input).

        Image mode: (x, target_labels(c_org), c_trg). Surrogate mode: the release surrogate of
        c_org for a ``surrogate_bank_share`` of rows, else the mean of k same-attribute batch
        images; c_trg = c_org (the released face keeps the source's attributes)."""
        if not self.surrogate_mode:
            c_trg = self.target_labels(c_org)
            return x, c_trg, c_trg
        return self.surrogate_generator_inputs(x, c_org)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        hp = self.hparams
        opt_g, opt_d, opt_s = self.optimizers()
        x, c_org = self._fmt(batch["image"]), batch["label"]
        x_in, c_trg, c_g = self.generator_inputs(x, c_org)
        skip = ("group",) if self.surrogate_mode else ()

        # Critic step: fakes are made without a graph (their gradient is not needed here).
        with torch.no_grad():
            x_fake = self.generator(x_in, c_g)
        src_real, cls_real = self.critic(x)
        src_fake, _ = self.critic(x_fake)
        d_adv = src_fake.float().mean() - src_real.float().mean()
        d_cls = domain_classification_loss(cls_real, c_org, self.spec, skip)
        gp = gradient_penalty(self.critic.score, x, x_fake)
        d_loss = d_adv + hp.lambda_cls * d_cls + hp.lambda_gp * gp
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(d_loss)
        opt_d.step()
        self.critic_steps += 1
        logs = {
            "train/d_loss": d_loss.detach(),
            "train/wasserstein": -d_adv.detach(),
            "train/gp": gp.detach(),
            "train/d_cls": d_cls.detach(),
        }

        if hp.siamese_mode == "cotrain":
            s_loss = self.siamese_step(batch)
            opt_s.zero_grad(set_to_none=True)
            self.manual_backward(s_loss)
            opt_s.step()
            logs["train/siamese_loss"] = s_loss.detach()

        if int(self.critic_steps) % hp.n_critic == 0:
            self.critic.requires_grad_(False)
            g_loss, parts, _ = self.generator_loss(x, c_org, c_trg, x_in, batch.get("identity"))
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_loss)
            opt_g.step()
            if self.generator_ema is not None:
                self.generator_ema.update_parameters(self.generator)
            self.critic.requires_grad_(True)
            self.generator_steps += 1
            logs.update({f"train/{k}": v.detach() for k, v in parts.items()})
            logs["train/g_loss"] = g_loss.detach()

        with warnings.catch_warnings():  # G's schedule follows critic iterations, as StarGAN's
            warnings.filterwarnings("ignore", message=re.escape("Detected call of `lr_scheduler.step()`"))
            for sched in self.lr_schedulers():
                sched.step()
        logs["train/critic_steps"] = self.critic_steps.float()
        logs["train/generator_steps"] = self.generator_steps.float()
        self.log_dict(logs, prog_bar=False)
        self.log("d_loss", d_loss.detach(), prog_bar=True, logger=False)
        if "train/g_loss" in logs:
            self.log("g_loss", logs["train/g_loss"], prog_bar=True, logger=False)

    def generator_loss(
        self, x: Tensor, c_org: Tensor, c_trg: Tensor, x_in: Tensor | None = None, identity: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        """Eq. (8), its parts and the fake; the same code serves training and validation.

        Image mode: G(x, c_trg) with the paper's terms. Surrogate mode: G(x_in, kept(c_org)) with
        adversarial + attribute classification + low-frequency fidelity to x_in (+ the detail prior
        and the identity hinge when their weights are set)."""
        if self.surrogate_mode:
            return self.surrogate_generator_loss(x, c_org, x_in if x_in is not None else self.surrogate_input(c_org))
        return self.paper_generator_loss(x, c_org, c_trg)

    # -- validation ---------------------------------------------------------------------------
    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        x, c_org = self._fmt(batch["image"]), batch["label"]
        gen = torch.Generator(device="cpu").manual_seed(batch_idx)
        if self.surrogate_mode:
            c_trg = c_org
        elif self.hparams.target_sampler == "release":
            c_trg = release_targets(c_org, self.spec, self.hparams.own_group_share, gen)
        else:
            c_trg = permuted_targets(c_org, gen)
        g_loss, _, x_fake = self.generator_loss(x, c_org, c_trg)
        src_real, _ = self.critic(x)
        src_fake, cls_fake = self.critic(x_fake)
        x_own = self.translate(x, c_org)  # what de-identification produces (own group)
        f_x = self.siamese(x)
        metrics = {
            "val/g_loss": g_loss,
            "val/wasserstein": src_real.float().mean() - src_fake.float().mean(),
            "val/domain_acc": domain_accuracy(
                cls_fake,
                c_trg,
                self.spec,
                self.surrogate_field if self.surrogate_mode and self.surrogate_field else "group",
            ),
            "val/siamese_sim": siamese_similarity(f_x, self.siamese(x_fake)).mean(),
            "val/siamese_sim_own": siamese_similarity(f_x, self.siamese(x_own)).mean(),
            "val/l1_own": (x_own.float() - x.float()).abs().mean(),
        }
        self.log_dict(metrics, prog_bar=False, batch_size=x.size(0), sync_dist=True)  # averaged over DDP ranks

    # -- prediction: de-identified crops for `kssgan predict` ---------------------------------
    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        """Each image translated to its own domain (own group, own attributes)."""
        return self.translate(batch["image"], batch["label"]).float().clamp(-1, 1)


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def _linear_decay(start: int, end: int):
    def factor(step: int) -> float:
        if not end or step < start:
            return 1.0
        return max(0.0, 1.0 - (step - start) / float(end - start))

    return factor


def load_kssgan(path: str, map_location: str | torch.device = "cpu") -> KSSGAN:
    """Load a trained model safely (``weights_only=True``) for inference.

    Hyper-parameters that are not constructor arguments (LightningCLI adds ``_instantiator``) are
    ignored; the grouping comes from ``checkpoint["kssgan"]``.
    """
    import inspect

    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    if CHECKPOINT_KEY not in ckpt:
        raise ValueError(f"{path} is not a kssgan checkpoint (no {CHECKPOINT_KEY!r} section)")
    accepted = set(inspect.signature(KSSGAN.__init__).parameters) - {"self"}
    hp = {k: v for k, v in dict(ckpt["hyper_parameters"]).items() if k in accepted}
    hp.setdefault("group_conditioning", "onehot")  # checkpoints from before the option were one-hot
    hp["groups"] = ckpt[CHECKPOINT_KEY]["groups"]
    model = KSSGAN(**hp)
    model.load_state_dict(ckpt["state_dict"])
    model.prepare_info = ckpt[CHECKPOINT_KEY].get("prepare")  # None for checkpoints from before it
    return model.eval()
