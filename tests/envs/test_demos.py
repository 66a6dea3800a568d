"""Demonstration collection: format, statistics, reader, and exact resume."""

import json
import os

import numpy as np
import pytest

from rl2vla_jax.data import demos


@pytest.mark.sim
def test_collect_resume_and_read(tmp_path):
    from rl2vla_jax.envs.demo_collection import collect

    out = str(tmp_path / "demos")
    first = collect(out, num_episodes=2, image_size=32, max_steps=30, num_workers=1, episodes_per_shard=1)
    assert first["successful"] == 2
    # An interrupted shard (never listed in the manifest) must be discarded, not read.
    with open(os.path.join(out, "shard-00099.array_record.tmp"), "wb") as file:
        file.write(b"partial")
    second = collect(out, num_episodes=3, image_size=32, max_steps=30, num_workers=1, episodes_per_shard=1)
    assert second["successful"] == 3
    assert not os.path.exists(os.path.join(out, "shard-00099.array_record.tmp"))

    source = demos.DemoSteps(out)
    assert len(source.episode_seeds) == 3 and len(set(source.episode_seeds)) == 3  # nothing redone
    assert len(source) == second["steps"]
    items = [source[i] for i in range(len(source))]
    assert (
        items[0]["is_first"]
        and items[0]["image"].shape == (32, 32, 3)
        and items[0]["image"].dtype == np.uint8
    )
    assert items[0]["instruction"].startswith("put the ")
    assert sum(item["is_last"] for item in items) == 3
    assert all(item["episode_success"] for item in items)
    actions = np.stack([item["action"] for item in items])
    assert actions.shape == (len(items), 7) and set(np.unique(actions[:, 6])) <= {0.0, 1.0}

    with open(os.path.join(out, demos.STATISTICS)) as file:
        statistics = json.load(file)[demos.DATASET_NAME]
    assert statistics["num_trajectories"] == 3 and statistics["num_transitions"] == len(items)
    for key in ("mean", "std", "max", "min", "q01", "q99", "mask"):
        assert len(statistics["action"][key]) == 7
    assert statistics["action"]["mask"] == [True] * 6 + [False]
    np.testing.assert_allclose(statistics["action"]["max"], actions.max(0), rtol=1e-6)
    assert len(statistics["proprio"]["q99"]) == 8


@pytest.mark.sim
def test_parallel_collection_is_in_seed_order_on_fixed_workers(tmp_path):
    """Workers finish episodes in any order; the shards must not (exp30/exp31: the same command
    wrote them in different orders, so SFT held out and batched other episodes). And an env's
    episode depends on what it played before (exp31), so each worker must play a fixed share:
    with 2 workers, seed 3 is played right after seed 1 on the same env."""
    from rl2vla_jax.envs import demo_collection as collection

    out = str(tmp_path / "demos")
    collection.collect(out, num_episodes=8, image_size=32, max_steps=30, num_workers=2, episodes_per_shard=4)
    assert [entry["episodes"] for entry in demos.read_manifest(out)] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    source = demos.DemoSteps(out, decode_images=False)  # compared below: seeds, actions, proprios
    items = [source[i] for i in range(len(source))]
    seeds = [item["episode"] for item in items]
    assert seeds == sorted(seeds) and set(seeds) == set(range(8))  # the records too, not only the manifest

    collection._init_worker("train", 32, 30, {}, collection.SUCCESS_HOLD_STEPS, 0.0, collection.MAX_TRANSLATION)
    try:
        for seed in (1, 3):  # worker 1's share, in its order
            _, _, actions, proprios, _ = collection.record_episode(seed)
            recorded = [item for item in items if item["episode"] == seed]
            np.testing.assert_array_equal(np.stack([item["action"] for item in recorded]), actions)
            np.testing.assert_array_equal(np.stack([item["proprio"] for item in recorded]), proprios)
    finally:
        collection._worker_state.pop("env").close()
