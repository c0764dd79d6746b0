"""``surrogate_images: synthetic``: every group released as one drawn face of nobody in the data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kssgan.data.synthetic_surrogates import (
    INNER_FACE_ELLIPSE,
    choose_faces,
    draw_candidates,
    in_context,
    kind_cost,
    mean_context,
    skin_tones,
    synthetic_surrogates,
    tone_to,
    yaw_offset,
)

#: experiments/demo.yaml's pool: the demo people are this DCGAN's faces, so fewer of its frontal faces
#: are unlike all of them
DEMO_POOL = 32


class CosineRule:
    threshold = 0.5

    def is_match(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a = a / np.linalg.norm(a, axis=1, keepdims=True)
        b = b / np.linalg.norm(b, axis=1, keepdims=True)
        return np.sum(a * b, axis=1) >= self.threshold


def test_choose_faces_skips_look_alikes_of_real_people_and_of_each_other() -> None:
    real = np.array([[1.0, 0.0, 0.0]])
    cands = np.array([[1.0, 0.1, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.1], [0.0, 0.0, 1.0]])
    scores = np.array([0.99, 0.9, 0.95, 0.5])
    # 0 matches the real person; 2 outranks 1 and then 1 matches 2; 3 is left
    assert choose_faces(scores, cands, real, CosineRule(), 3) == [2, 3]
    assert choose_faces(scores, cands, real, CosineRule(), 1) == [2]


def test_choose_faces_tells_faces_apart_by_the_third_embedding_adapt_gives() -> None:
    # as used, both candidates look alike (a shared context); alone they are different faces
    real = np.array([[0.0, 0.0, 1.0]])
    as_used = np.array([[1.0, 0.0, 0.0], [1.0, 0.05, 0.0]])
    alone = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    rule = CosineRule()
    assert choose_faces(np.array([0.9, 0.8]), as_used, real, rule, 2) == [0]  # told apart as used: one only
    adapt = lambda slot, row: (as_used[row : row + 1], [], alone[row : row + 1])  # noqa: E731
    assert choose_faces(np.array([0.9, 0.8]), as_used, real, rule, 2, adapt=adapt) == [0, 1]
    # the real-identity check still uses the face as used
    near_real = lambda slot, row: (real, [], alone[row : row + 1])  # noqa: E731
    assert choose_faces(np.array([0.9, 0.8]), as_used, real, rule, 2, adapt=near_real) == []


def test_choose_faces_gives_each_slot_a_face_of_its_kind() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    cands = np.eye(4, dtype=np.float32)  # four faces unlike each other
    kinds = ["male", "male", "female", "female"]
    none = np.zeros((0, 4), np.float32)
    assert choose_faces(scores, cands, none, CosineRule(), 3, want=["female", "male", "female"], kinds=kinds) == [
        2,
        0,
        3,
    ]
    assert choose_faces(scores, cands, none, CosineRule(), 3, want=["female"] * 3, kinds=kinds) == [2, 3]  # short


def test_kind_choice_serves_the_hardest_group_first_and_each_its_nearest_face() -> None:
    scores = np.array([0.9, 0.8, 0.7])
    cands = np.eye(3, dtype=np.float32)
    none = np.zeros((0, 3), np.float32)
    # group 0 is near faces 0 and 1; group 1 only near face 0: group 1 (dearest best) chooses first
    cost = np.array([[1.0, 2.0, 9.0], [3.0, 8.0, 9.0]])
    assert choose_faces(scores, cands, none, CosineRule(), 2, cost=cost) == [1, 0]
    assert choose_faces(scores, cands, none, CosineRule(), 2) == [0, 1]  # without cost: by score


def test_kind_cost_is_delta_e_plus_age_and_toning_reaches_the_target() -> None:
    import cv2

    face = np.full((64, 64, 3), (60, 110, 170), np.uint8)  # a uniform skin-like BGR
    tone = skin_tones(face[None], 0.0)[0]
    assert np.allclose(skin_tones(face[None], 0.0), tone) and 0 < tone[0] < 100
    target = tone + np.array([-12.0, 4.0, 6.0])
    toned = tone_to(face, target - tone)
    assert np.linalg.norm(skin_tones(toned[None], 0.0)[0] - target) < 1.0
    assert np.array_equal(tone_to(face, np.zeros(3)), face)
    cost = kind_cost(np.stack([tone, target]), np.stack([tone, target]), [30.0, None], [30.0, 40.0])
    assert cost[0, 0] == 0 and np.isclose(cost[0, 1], np.linalg.norm(target - tone) + 10 / 2.0)
    assert np.isclose(cost[1, 0], np.linalg.norm(target - tone)) and cost[1, 1] == 0  # no age: tone only
    assert cv2.cvtColor(toned, cv2.COLOR_BGR2GRAY).mean() < cv2.cvtColor(face, cv2.COLOR_BGR2GRAY).mean()


def test_in_context_keeps_the_inner_face_and_the_context_elsewhere() -> None:
    rng = np.random.default_rng(0)
    face = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    same = in_context(face, face, margin=0.2)  # a face in its own context is itself
    assert np.abs(same.astype(int) - face.astype(int)).max() <= 2  # (the tone shift of a face to itself is 0)
    context = np.full((64, 64, 3), 128, np.uint8)
    out = in_context(face, context, margin=0.0)
    cx, cy = (int(v * 64) for v in INNER_FACE_ELLIPSE[:2])
    assert np.array_equal(out[cy - 2 : cy + 2, cx - 2 : cx + 2], face[cy - 2 : cy + 2, cx - 2 : cx + 2])
    assert np.array_equal(out[:2, :2], context[:2, :2])  # the corners are the context's, untouched
    # the mean of a set of crops is their pixel mean (BGR of RGB input)
    crops = np.stack([np.full((4, 4, 3), (10, 20, 30), np.uint8), np.full((4, 4, 3), (30, 40, 50), np.uint8)])
    assert mean_context(crops)[0, 0].tolist() == [40, 30, 20]


def test_yaw_offset_is_the_noses_offset_in_interocular_distances() -> None:
    frontal = np.array([[30.0, 40.0], [70.0, 40.0], [50.0, 60.0], [35.0, 80.0], [65.0, 80.0]])
    assert yaw_offset(frontal) == 0.0
    turned = frontal.copy()
    turned[2, 0] += 12.0  # the nose 0.3 eye distances to one side
    assert yaw_offset(turned) == pytest.approx(0.3)


def test_candidates_are_deterministic_and_not_the_demo_peoples_latents() -> None:
    a, b = draw_candidates(3, seed=0), draw_candidates(3, seed=0)
    assert a.shape == (3, 64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, draw_candidates(3, seed=1))


def test_synthetic_surrogates_of_the_demo_are_unlike_every_member(demo_dir: Path) -> None:
    from kssgan.data.prepared import PreparedDataset
    from kssgan.data.synthetic_surrogates import align_candidates
    from kssgan.faces import get_recognizer

    data = PreparedDataset.open(demo_dir)
    groups = len(set(data.groups.identity_to_group.values()))
    faces, record = synthetic_surrogates(data, groups, 2, 32, pool=DEMO_POOL)
    assert faces.shape == (groups, 2, 3, 32, 32)
    assert faces.min() >= -1 and faces.max() <= 1
    assert torch.equal(faces[:, 0], faces[:, 1])  # every kept value of a group gets the same face
    assert len(set(record["latent_rows"])) == groups and not record["grey"]
    # no chosen face verifies as any identity of the data set, by the data set's own recogniser (SFace)
    # nor by dlib (the reports' other attacker)
    from kssgan.evaluate.release import recogniser_crops
    from kssgan.faces import get_detector

    drawn = draw_candidates(record["drawn"], 0)[record["latent_rows"]]
    _, _, _, rec_crops = align_candidates(drawn, get_detector("yunet"), 32, data.margin)
    assert record["choice"] == "kind" and len(record["tone_shift"]) == groups
    rec_crops = [tone_to(c, shift) for c, shift in zip(rec_crops, record["tone_shift"], strict=True)]  # as used
    real_crops = recogniser_crops(data.read_crops(data.manifest["crop"].tolist(), None), data.margin)
    ids = data.manifest["identity"].astype(str).to_numpy()
    for name in ("sface", "dlib"):
        rec = get_recognizer(name)
        emb, photos = rec.embed(rec_crops), rec.embed(real_crops)
        real = np.stack([photos[ids == i].mean(0) for i in np.unique(ids)])
        for e in emb:
            assert not np.any(rec.is_match(np.repeat(e[None], len(real), 0), real)), name
    again, _ = synthetic_surrogates(data, groups, 2, 32, pool=DEMO_POOL)
    assert torch.equal(faces, again)


def test_too_small_a_pool_is_one_clear_error(demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kssgan.data.synthetic_surrogates as synthetic
    from kssgan.data.prepared import PreparedDataset

    one_face = draw_candidates(1, 0)
    monkeypatch.setattr(synthetic, "draw_candidates", lambda num, seed: np.repeat(one_face, num, axis=0))
    monkeypatch.setattr(synthetic, "MAX_YAW", None)  # that face is turned: it would not be used at all
    data = PreparedDataset.open(demo_dir)
    with pytest.raises(ValueError, match=r"only 1 of 16 drawn faces .* raise model\.synthetic_pool"):
        # 16 copies of one face: the first is taken, the rest match it
        synthetic_surrogates(data, 2, 1, 32, choice="detection")


def test_the_pool_doubles_when_too_few_faces_qualify(demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    import kssgan.data.synthetic_surrogates as synthetic
    from kssgan.data.prepared import PreparedDataset
    from kssgan.data.surrogate_data import POOL_DOUBLINGS, build_surrogate_bank

    pools: list[int] = []
    enough = {"pool": 4}

    def fake(data, groups, values, size, seed, pool, *rest):  # qualifies only from a pool of 4 on
        pools.append(pool)
        if pool < enough["pool"]:
            raise ValueError("only 1 of 2 drawn faces ... raise model.synthetic_pool")
        return torch.zeros(groups, values, 3, size, size), {"choice": "kind"}

    monkeypatch.setattr(synthetic, "synthetic_surrogates", fake)
    data = PreparedDataset.open(demo_dir)
    bank = SimpleNamespace(faces=torch.zeros(1), fill=lambda faces, identity: None)
    hparams = {"image_size": 32, "surrogate_images": "synthetic", "surrogate_match": None,
               "synthetic_pool": 1, "synthetic_seed": 0}  # fmt: skip
    model = SimpleNamespace(spec=SimpleNamespace(num_groups=2, field=None), hparams=SimpleNamespace(**hparams),
                            surrogate_field=None, surrogates=bank, device="cpu")  # fmt: skip
    model.hparams.get = lambda key, default=None: hparams.get(key, default)
    record = build_surrogate_bank(model, SimpleNamespace(prepared=data))
    assert pools == [1, 2, 4] and record["pool"] == 4 and POOL_DOUBLINGS == 2
    pools.clear()
    enough["pool"] = 8  # never enough: the error after two doublings
    with pytest.raises(ValueError, match=r"raise model\.synthetic_pool"):
        build_surrogate_bank(model, SimpleNamespace(prepared=data))
    assert pools == [1, 2, 4]


def test_a_model_trained_with_synthetic_surrogates_releases_the_drawn_faces(demo_dir: Path) -> None:
    import lightning as L
    from conftest import quiet_trainer, tiny_model

    from kssgan.data.datamodule import FaceDataModule

    L.seed_everything(0, verbose=False)
    dm = FaceDataModule(prepared_dir=str(demo_dir), image_size=32, batch_size=8)
    model = tiny_model(
        dm, n_critic=1, generator_input="surrogate", surrogate_images="synthetic", synthetic_pool=DEMO_POOL
    )
    trainer = quiet_trainer(demo_dir.parent / "synthetic_train", max_steps=2, limit_val_batches=0)
    trainer.fit(model, dm)
    bank = model.surrogates
    expected, _ = synthetic_surrogates(dm.prepared, bank.num_groups, bank.num_values, 32, pool=DEMO_POOL)
    assert torch.allclose(bank.faces, expected.flatten(0, 1))
    assert bank.source_group.tolist() == list(range(bank.num_groups))  # each group its own drawn face
    # the checkpoint says how the faces were chosen (and loads with weights_only=True)
    path = demo_dir.parent / "synthetic_train" / "drawn.ckpt"
    trainer.save_checkpoint(path)
    record = torch.load(path, map_location="cpu", weights_only=True)["kssgan"]["surrogates"]
    assert record["choice"] == "kind" and len(record["latent_rows"]) == bank.num_groups
    assert len(record["tone_shift"]) == bank.num_groups and all(d >= 0 for d in record["tone_delta_e"])
    with pytest.raises(ValueError, match="can match its gender only"):  # gender is read off a drawn face
        tiny_model(dm, generator_input="surrogate", surrogate_images="synthetic", surrogate_match="expression")


def test_kind_context_lays_each_face_on_its_kinds_mean_crop(demo_dir: Path) -> None:
    """``synthetic_context: kind``: outside the inner face, each group's surrogate is the mean crop
    of the people of its kind (here genders given to the demo's groups), not of everyone; without
    a kind per group it is one clear error."""
    import cv2

    from kssgan.data.prepared import PreparedDataset
    from kssgan.data.synthetic_surrogates import _kind_contexts, _mean_context_of

    data = PreparedDataset.open(demo_dir)
    to_group = data.groups.identity_to_group
    groups = len(set(to_group.values()))
    kinds = ["female" if g % 2 else "male" for g in range(groups)]
    contexts = _kind_contexts(data, 32, kinds, to_group)
    rows = data.manifest[data.manifest["identity"].astype(str).isin(to_group)]
    women = rows[[kinds[to_group[str(i)]] == "female" for i in rows["identity"]]]
    assert np.array_equal(contexts[1], _mean_context_of(data, women, 32))
    assert not np.array_equal(contexts[0], contexts[1])
    faces, _ = synthetic_surrogates(data, groups, 1, 32, pool=2 * DEMO_POOL, context="kind", genders=kinds)
    assert faces.shape == (groups, 1, 3, 32, 32)
    for g in range(groups):
        corner = ((faces[g, 0, :, :3, :3].permute(1, 2, 0).numpy() + 1) * 127.5).round()
        want = cv2.cvtColor(contexts[g], cv2.COLOR_BGR2RGB)[:3, :3].astype(float)
        assert np.abs(corner - want).max() <= 1.0
    with pytest.raises(ValueError, match=r"synthetic_context: kind .* set surrogate_match"):
        synthetic_surrogates(data, groups, 1, 32, pool=DEMO_POOL, context="kind")
