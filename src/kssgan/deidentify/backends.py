"""Generator back ends with one call signature: ``backend(images N×3×S×S in [-1, 1], labels N×C) -> N×3×S×S``.

* :class:`TorchGenerator`: the checkpoint's ``nn.Module`` under ``torch.inference_mode``, optional
  channels-last memory format and bf16 autocast.
* :class:`OnnxGenerator`: an ONNX file written by ``kssgan export`` run by onnxruntime with explicit
  execution providers and full graph optimisation.
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kssgan.deidentify.options import DeidentifyError

ONNX_META_IMAGE_SIZE = "kssgan.image_size"
ONNX_META_LABEL_SPEC = "kssgan.label_spec"
ONNX_META_GROUPS = "kssgan.groups"
PRECISIONS = ("fp32", "bf16")


class TorchGenerator:
    name = "torch"

    def __init__(
        self,
        generator: torch.nn.Module,
        device: str = "cpu",
        precision: str = "fp32",
        channels_last: bool = True,
    ) -> None:
        if precision not in PRECISIONS:
            raise DeidentifyError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise DeidentifyError("--device cuda was asked for but torch sees no CUDA device")
        self.device = torch.device(device)
        self.precision, self.channels_last = precision, channels_last
        self.generator = generator.to(self.device).eval()
        if channels_last:
            self.generator = self.generator.to(memory_format=torch.channels_last)

    def __call__(self, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).to(self.device)
        c = torch.from_numpy(np.ascontiguousarray(labels, dtype=np.float32)).to(self.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16) if self.precision == "bf16" else nullcontext()
        with torch.inference_mode(), autocast:
            y = self.generator(x, c).float().clamp(-1, 1)
            return y.contiguous().cpu().numpy()


class OnnxGenerator:
    name = "onnxruntime"

    def __init__(self, path: str | Path, device: str = "cpu", threads: int | None = None) -> None:
        import onnxruntime as ort

        from kssgan.faces._runtime import onnx_providers

        path = Path(path)
        if not path.is_file():
            raise DeidentifyError(f"ONNX generator {path} not found; write it with `kssgan export --ckpt ...`")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        opts.intra_op_num_threads = threads or torch.get_num_threads()
        self.providers = onnx_providers(device)
        self.session = ort.InferenceSession(str(path), opts, providers=self.providers)
        self.path = path
        meta = self.session.get_modelmeta().custom_metadata_map
        self.metadata: dict[str, Any] = {
            "image_size": int(meta[ONNX_META_IMAGE_SIZE]) if ONNX_META_IMAGE_SIZE in meta else None,
            "label_spec": json.loads(meta[ONNX_META_LABEL_SPEC]) if ONNX_META_LABEL_SPEC in meta else None,
            "groups": json.loads(meta[ONNX_META_GROUPS]) if ONNX_META_GROUPS in meta else None,
        }
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        # A surrogate-mode export never reads the image (the released face depends on the label
        # alone), so the exporter drops that input: such a graph has the label only.
        if set(inputs) not in ({"image", "label"}, {"label"}):
            raise DeidentifyError(f"{path} is not a kssgan generator export (inputs {sorted(inputs)})")
        self.inputs = set(inputs)
        image_side = inputs["image"][2] if "image" in inputs else None
        self.image_size = image_side if isinstance(image_side, int) else self.metadata["image_size"]
        self.label_dim = inputs["label"][1]

    def check_matches(self, image_size: int, label_spec: dict[str, Any]) -> None:
        """Raise when this export was made from a model with another image size or label layout."""
        if self.image_size is not None and int(self.image_size) != int(image_size):
            raise DeidentifyError(
                f"{self.path}: the ONNX generator works at {self.image_size} px but the checkpoint at {image_size} px; "
                "re-export it from this checkpoint (`kssgan export --ckpt ...`)"
            )
        dim = sum(len(f["values"]) if f["kind"] == "onehot" else 1 for f in label_spec["fields"])
        if int(self.label_dim) != dim or (
            self.metadata["label_spec"] is not None and self.metadata["label_spec"] != label_spec
        ):
            raise DeidentifyError(
                f"{self.path}: the ONNX generator's label layout ({self.label_dim} values) differs from the "
                f"checkpoint's ({dim}); re-export it from this checkpoint"
            )

    def __call__(self, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
        feeds = {"label": np.ascontiguousarray(labels, dtype=np.float32)}
        if "image" in self.inputs:
            feeds["image"] = np.ascontiguousarray(images, dtype=np.float32)
        return np.clip(self.session.run(None, feeds)[0], -1, 1)
