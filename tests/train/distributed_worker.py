"""One process of the multi-process check (run by test_distributed.py, not collected by pytest):

    python distributed_worker.py NUM_PROCESSES PROCESS_ID PORT OUT_PREFIX LAYOUT [LAYOUT ...]

LAYOUT is DATAxFSDP, or DATAxFSDP-gspmd to partition with GSPMD instead of Shardy.

For each mesh layout: a fresh train state is sharded as the trainer shards it (with a
`mesh.fsdp_min_size` small enough that the tiny model's params are split over fsdp), every
process holds its own slice of the envs of two random rollouts, the update runs twice over the
global mesh (state donated, as in the trainer), then every process acts once on the same
observations through `mesh.acting_copy` (all-gathered params on its first device). Each process
writes OUT_PREFIX.<process>.json. NUM_PROCESSES=1 with one device and layout 1x1 is the reference.
"""

import functools
import json
import sys
import time

import jax
import numpy as np

NUM_ENVS = 4  # global; each of P processes runs NUM_ENVS / P of them
FSDP_MIN_SIZE = 256  # the tiny model's LoRA factors are 160-3584 elements: most get split


def random_rollout(seed, model_cfg, horizon=4, num_envs=NUM_ENVS, prompt_len=11):
    from rl2vla_jax.policy.episodes import Rollout

    rng = np.random.default_rng(seed)
    size = model_cfg.image_size
    return Rollout(
        images=rng.integers(0, 256, (horizon, num_envs, size, size, 3), dtype=np.uint8),
        prompt_ids=rng.integers(3, 300, (horizon, num_envs, prompt_len)).astype(np.int32),
        prompt_mask=np.broadcast_to(np.arange(prompt_len) < 8, (horizon, num_envs, prompt_len)).copy(),
        tokens=rng.integers(0, 256, (horizon, num_envs, 7)).astype(np.int32),
        token_log_probs=(rng.normal(size=(horizon, num_envs, 7)) - 38.0 / 7).astype(np.float32),
        values=rng.normal(size=(horizon, num_envs)).astype(np.float32),
        rewards=rng.normal(size=(horizon, num_envs)).astype(np.float32),
        dones=(rng.uniform(size=(horizon, num_envs)) < 0.2).astype(np.float32),
        bootstrap_value=rng.normal(size=(num_envs,)).astype(np.float32),
        group_ids=(np.arange(num_envs) // 2).astype(np.int32),
        valid=np.ones((horizon, num_envs), np.float32),
    )


def _log(message: str) -> None:
    print(f"[worker {jax.process_index()}/{jax.process_count()}] {message}", file=sys.stderr, flush=True)


def _fsdp_split(tree) -> int:
    """How many arrays of `tree` are split over the fsdp axis."""
    return sum("fsdp" in jax.tree.leaves(tuple(x.sharding.spec)) for x in jax.tree.leaves(tree))


def run_layout(config, hp, model_cfg, critic, data: int, fsdp: int) -> dict:
    from rl2vla_jax import mesh as mesh_lib
    from rl2vla_jax.policy.act import make_act
    from rl2vla_jax.train import builders
    from rl2vla_jax.train import update as update_lib

    actor_tx, critic_tx = builders.optimizers(config)
    mesh = mesh_lib.make_mesh(data, fsdp)
    state = builders.initial_state(config, hp, model_cfg, critic)
    sharding = mesh_lib.param_sharding(mesh, state, config.mesh.fsdp_min_size)
    state = mesh_lib.place(state, sharding)
    learn = jax.jit(
        functools.partial(update_lib.update, hp, model_cfg, critic, actor_tx, critic_tx, 10.0),
        out_shardings=(sharding, mesh_lib.replicated(mesh)),
        donate_argnums=0,
    )
    per_process = NUM_ENVS // jax.process_count()
    my_envs = np.arange(jax.process_index() * per_process, (jax.process_index() + 1) * per_process)
    history, batch_slices = [], []
    for seed in range(2):
        full = random_rollout(seed, model_cfg)
        local = jax.tree.map(lambda x, axis: np.take(x, my_envs, axis=axis), full, full.env_axes())
        batch = mesh_lib.global_batch(local, mesh_lib.env_axis_sharding(mesh, local))
        batch_slices = sorted(s.index[1].start or 0 for s in batch.rewards.addressable_shards)
        if seed == 0:
            # Gloo gives a process 30 s to join a collective: on a loaded CI machine one process
            # can finish compiling the update much later than the other, so wait for it first.
            clock = time.perf_counter()
            learn = learn.lower(state, batch).compile()
            _log(f"mesh {data}x{fsdp}: update compiled in {time.perf_counter() - clock:.1f} s")
            if jax.process_count() > 1:
                # A barrier of the coordination service (10 min), not a collective: the first
                # collective is what creates Gloo's context, under the same 30 s limit.
                from jax._src import distributed

                distributed.global_state.client.wait_at_barrier(f"update compiled {data}x{fsdp}", 600_000)
        state, metrics = learn(state, batch)
        history.append({k: float(v) for k, v in jax.device_get(metrics).items()})

    # One act step through the all-gathered params, on observations every process shares.
    rollout = random_rollout(7, model_cfg)
    policy_params, critic_params = mesh_lib.acting_copy(mesh)((state.policy_params, state.critic))
    acting_devices = {d for x in jax.tree.leaves((policy_params, critic_params)) for d in x.devices()}
    act = make_act(model_cfg, critic, hp.descriptor_mode, hp.descriptor_tokens)
    out = act(
        policy_params,
        critic_params,
        rollout.images[0],
        rollout.prompt_ids[0],
        rollout.prompt_mask[0],
        jax.random.PRNGKey(3),
        1.0,
    )
    out = jax.device_get(out)
    return {
        "mesh": dict(mesh.shape),
        "history": history,
        "batch_slices": [int(s) for s in batch_slices],  # env-axis starts of this process's shards
        "sharded_trainable": _fsdp_split(state.trainable),
        "sharded_frozen": _fsdp_split(state.frozen),
        "sharded_moments": _fsdp_split(state.actor_opt_state),
        "acting_devices": [str(d) for d in acting_devices],
        "first_local_device": str(mesh.local_devices[0]),
        "tokens": np.asarray(out["tokens"]).tolist(),
        "log_prob": np.asarray(out["log_prob"]).tolist(),
        "value": np.asarray(out["value"]).tolist(),
    }


def main(num_processes: int, process_id: int, port: int, out_prefix: str, layouts: list[str]) -> None:
    from configs import film_evi
    from rl2vla_jax import mesh as mesh_lib
    from rl2vla_jax.policy import loading
    from rl2vla_jax.train import builders, hparams

    if num_processes > 1:
        mesh_lib.initialize_distributed(f"localhost:{port}", num_processes, process_id)
    config = film_evi.get_config()
    config.env.num_envs, config.env.max_episode_steps = NUM_ENVS // num_processes, 4
    config.ppo.minibatch_size, config.ppo.grad_accum_steps = 4, 2
    config.mesh.fsdp_min_size = FSDP_MIN_SIZE
    hp = hparams.rl_hparams(config)
    model_cfg = loading.model_config(config)
    critic = builders.make_critic(hp, config)
    results = {}
    for layout in layouts:
        # "2x2-gspmd": partition with GSPMD instead of Shardy, which deadlocks (devices reach
        # different collectives) on this update when data > 1 and fsdp > 1 (README, scale-out).
        shape, _, partitioner = layout.partition("-")
        jax.config.update("jax_use_shardy_partitioner", partitioner != "gspmd")
        data, fsdp = (int(n) for n in shape.split("x"))
        clock = time.perf_counter()
        results[layout] = run_layout(config, hp, model_cfg, critic, data, fsdp)
        _log(f"mesh {layout}: 2 updates and an act step in {time.perf_counter() - clock:.1f} s")
    with open(f"{out_prefix}.{process_id}.json", "w") as f:
        json.dump({"devices": jax.device_count(), "processes": jax.process_count(), "layouts": results}, f)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5:])
