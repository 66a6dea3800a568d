"""Splits and suites: pure data, no simulator."""

import pytest

from rl2vla_jax.envs import catalog, suites
from rl2vla_jax.envs.settings import SETTINGS


def _looks(kinds):
    return {(k.shape, tuple(k.half_size if hasattr(k, "half_size") else k.size), k.rgba) for k in kinds}


def test_unseen_objects_disjoint_from_train():
    assert not {k.name for k in catalog.TRAIN_OBJECTS} & {k.name for k in catalog.UNSEEN_OBJECTS}
    assert not _looks(catalog.TRAIN_OBJECTS) & _looks(catalog.UNSEEN_OBJECTS)
    assert len(catalog.TRAIN_OBJECTS) == 16
    assert len({k.name for k in catalog.TRAIN_OBJECTS}) == 16


def test_unseen_receptacles_tables_instructions_disjoint_from_train():
    assert not {k.name for k in catalog.TRAIN_RECEPTACLES} & {k.name for k in catalog.UNSEEN_RECEPTACLES}
    assert not _looks(catalog.TRAIN_RECEPTACLES) & _looks(catalog.UNSEEN_RECEPTACLES)
    train_tables = {(t.base_rgba, t.pattern) for t in catalog.TRAIN_TABLES}
    unseen_tables = {(t.base_rgba, t.pattern) for t in catalog.UNSEEN_TABLES}
    assert len(train_tables) == 16 and not train_tables & unseen_tables
    assert {t.pattern for t in catalog.UNSEEN_TABLES}.isdisjoint({t.pattern for t in catalog.TRAIN_TABLES})
    assert len(catalog.UNSEEN_INSTRUCTIONS) == 16
    assert not set(catalog.TRAIN_INSTRUCTIONS) & set(catalog.UNSEEN_INSTRUCTIONS)


def test_objects_fit_the_gripper():
    for kind in catalog.TRAIN_OBJECTS + catalog.UNSEEN_OBJECTS:
        if kind.shape == "box":
            narrow = 2 * min(kind.half_size[0], kind.half_size[1])
        else:
            narrow = 2 * kind.half_size[0]
        assert narrow < 0.075, kind.name


def test_suite_has_train_and_16_evaluation_settings():
    ours = suites.SUITES["ours"]
    assert set(ours) == set(SETTINGS)
    test_settings = [e for e in ours.values() if e.split == "test"]
    assert len(test_settings) == 16
    counts = {c: sum(e.category == c for e in test_settings) for c in suites.CATEGORIES}
    assert counts == {"ID": 1, "visual": 5, "semantic": 7, "execution": 3}
    assert [e.setting for e in suites.list_settings("ours", split="train")] == ["train"]
    assert len({e.env_id for e in ours.values()}) == len(ours)
    assert set(suites.SUITES["rl4vla"]) == set(ours)


def test_unseen_settings_draw_from_unseen_pools():
    assert SETTINGS["unseen_objects"].objects == "unseen"
    assert SETTINGS["unseen_receptacles"].receptacles == "unseen"
    assert SETTINGS["unseen_table"].tables == "unseen"
    assert SETTINGS["unseen_instructions"].instructions == "unseen"
    assert SETTINGS["multi_object_unseen"].distractor_object == "unseen"
    train = SETTINGS["train"]
    assert (train.objects, train.receptacles, train.tables, train.instructions) == ("train",) * 4


def test_rl4vla_suite_gives_one_clear_error_without_the_fork():
    if suites.rl4vla_available():
        pytest.skip("RL4VLA's fork is installed here")
    with pytest.raises(suites.Rl4vlaUnavailable, match="RL4VLA's ManiSkill fork"):
        suites.get_setting("rl4vla", "train")
