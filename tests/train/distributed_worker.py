"""One process of the multi-process check (run by test_distributed.py, not collected by pytest):

    python distributed_worker.py NUM_PROCESSES PROCESS_ID PORT OUT.json

Every process holds its own slice of the envs of two random rollouts, the update runs over
the global mesh, and process 0 writes the losses. NUM_PROCESSES=1 gives the reference.
"""

import json
import sys

import jax
import numpy as np


def random_rollout(seed, model_cfg, horizon=4, num_envs=4, prompt_len=11):
    from rl2vla_jax.policy.episodes import Rollout

    rng = np.random.default_rng(seed)
    size = model_cfg.image_size
    return Rollout(
        images=rng.integers(0, 256, (horizon, num_envs, size, size, 3), dtype=np.uint8),
        prompt_ids=rng.integers(3, 300, (horizon, num_envs, prompt_len)).astype(np.int32),
        prompt_mask=np.broadcast_to(np.arange(prompt_len) < 8, (horizon, num_envs, prompt_len)).copy(),
        tokens=rng.integers(0, 256, (horizon, num_envs, 7)).astype(np.int32),
        log_probs=(rng.normal(size=(horizon, num_envs)) - 38.0).astype(np.float32),
        values=rng.normal(size=(horizon, num_envs)).astype(np.float32),
        rewards=rng.normal(size=(horizon, num_envs)).astype(np.float32),
        dones=(rng.uniform(size=(horizon, num_envs)) < 0.2).astype(np.float32),
        bootstrap_value=rng.normal(size=(num_envs,)).astype(np.float32),
        group_ids=(np.arange(num_envs) // 2).astype(np.int32),
    )


def main(num_processes: int, process_id: int, port: int, out: str) -> None:
    import functools

    from configs import film_evi
    from rl2vla_jax import mesh as mesh_lib
    from rl2vla_jax.policy import loading
    from rl2vla_jax.train import builders, hparams
    from rl2vla_jax.train import update as update_lib

    if num_processes > 1:
        mesh_lib.initialize_distributed(f"localhost:{port}", num_processes, process_id)
    config = film_evi.get_config()
    config.env.num_envs, config.env.max_episode_steps = 4, 4
    config.ppo.minibatch_size, config.ppo.grad_accum_steps = 4, 2
    hp = hparams.rl_hparams(config)
    model_cfg = loading.model_config(config)
    critic = builders.make_critic(hp, config)
    actor_tx, critic_tx = builders.optimizers(config)
    mesh = mesh_lib.make_mesh(data=-1, fsdp=1)
    state = builders.initial_state(config, hp, model_cfg, critic)
    sharding = mesh_lib.param_sharding(mesh, state)
    state = mesh_lib.global_batch(state, sharding)  # every process holds the same replicated values
    learn = jax.jit(
        functools.partial(update_lib.update, hp, model_cfg, critic, actor_tx, critic_tx, 10.0),
        out_shardings=(sharding, mesh_lib.replicated(mesh)),
    )
    history = []
    per_process = 4 // num_processes
    my_envs = np.arange(process_id * per_process, (process_id + 1) * per_process)
    for seed in range(2):
        full = random_rollout(seed, model_cfg)
        local = jax.tree.map(lambda x, axis: np.take(x, my_envs, axis=axis), full, full.env_axes())
        batch = mesh_lib.global_batch(local, mesh_lib.env_axis_sharding(mesh, local))
        state, metrics = learn(state, batch)
        history.append({k: float(v) for k, v in jax.device_get(metrics).items()})
    if process_id == 0:
        with open(out, "w") as f:
            json.dump(
                {"devices": jax.device_count(), "processes": jax.process_count(), "history": history}, f
            )


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
