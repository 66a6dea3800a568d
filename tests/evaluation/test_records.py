"""Per-sample records: returns, TD errors and advantages against a case worked by hand, and the
columnar file round trip."""

import numpy as np

from rl2vla_jax.policy import records


def _steps():
    # T = 3 steps, B = 2 envs; env 1 terminates at t = 1.
    rewards = np.array([[1.0, 0.5], [0.0, 2.0], [3.0, 7.0]], np.float32)
    values = np.array([[0.2, 0.1], [0.4, 0.3], [0.6, 0.9]], np.float32)
    dones = np.array([[0, 0], [0, 1], [0, 0]], np.float32)
    rng = np.random.default_rng(0)
    entropies = rng.uniform(size=(3, 2, 7)).astype(np.float32)
    return {
        "rewards": rewards,
        "values": values,
        "dones": dones,
        "entropies": entropies,
        "descriptor": entropies[..., 0],
    }


def test_records_match_a_case_worked_by_hand(tmp_path):
    steps, gamma, lam = _steps(), 0.5, 0.8
    columns = records.episode_records(
        steps, np.array([1.0, 5.0]), np.array([True, False]), [101, 202], gamma, lam, "train", "id", 7
    )
    assert len(columns["value"]) == 6
    env0 = columns["env"] == 0
    np.testing.assert_array_equal(columns["step"][env0], [0, 1, 2])
    # env 0: G_2 = 3, G_1 = 0 + 0.5*3 = 1.5, G_0 = 1 + 0.5*1.5 = 1.75 (no bootstrap: realised)
    np.testing.assert_allclose(columns["discounted_return"][env0], [1.75, 1.5, 3.0], rtol=1e-6)
    # delta_t = r_t + gamma V_{t+1} - V_t with V_3 = 1.0
    deltas0 = np.array([1 + 0.5 * 0.4 - 0.2, 0 + 0.5 * 0.6 - 0.4, 3 + 0.5 * 1.0 - 0.6])
    np.testing.assert_allclose(columns["td_error"][env0], deltas0, rtol=1e-5)
    a2 = deltas0[2]
    a1 = deltas0[1] + gamma * lam * a2
    a0 = deltas0[0] + gamma * lam * a1
    np.testing.assert_allclose(columns["advantage"][env0], [a0, a1, a2], rtol=1e-5)
    env1 = columns["env"] == 1
    # env 1 terminates at t = 1: nothing flows back through it
    np.testing.assert_allclose(columns["discounted_return"][env1], [0.5 + 0.5 * 2.0, 2.0, 7.0], rtol=1e-6)
    np.testing.assert_allclose(
        columns["td_error"][env1], [0.5 + 0.5 * 0.3 - 0.1, 2.0 - 0.3, 7.0 + 0.5 * 5.0 - 0.9], rtol=1e-5
    )
    np.testing.assert_array_equal(columns["seed"][env1], [202] * 3)
    np.testing.assert_array_equal(columns["success"], [True, False] * 3)
    np.testing.assert_array_equal(columns["entropies"][1], steps["entropies"][0, 1])
    assert set(columns["setting"]) == {"train"} and set(columns["iteration"]) == {7}

    path = tmp_path / "records" / "a.npz"
    records.write_records(str(path), columns)
    records.write_records(str(tmp_path / "records" / "sub" / "b.npz"), columns)
    back = records.read_records(str(tmp_path / "records"))
    assert len(back["value"]) == 12 and back["entropies"].shape == (12, 7)
    np.testing.assert_array_equal(back["td_error"][:6], columns["td_error"])
    assert back["setting"].dtype.kind == "U"  # strings stored as text, no pickles
    assert [p.name for p in (tmp_path / "records").iterdir() if "tmp" in p.name] == []
