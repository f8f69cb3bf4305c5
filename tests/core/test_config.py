from __future__ import annotations

from pathlib import Path

import pytest

from cytodask import Config
from cytodask.core.config import CheckpointConfig


def test_defaults_and_overrides():
    cfg = Config(batch_size=5000, n_rand=100)
    assert cfg.batch_size == 5000 and cfg.n_rand == 100
    assert cfg.checkpoint == CheckpointConfig()
    assert cfg.replace(seed=3).seed == 3


def test_from_toml(tmp_path: Path):
    p = tmp_path / "spec.toml"
    p.write_text('[config]\nbatch_size = 2048\ngpu_devices = [0, 1]\nrmm_pool_size = "20GB"\n'
                 'output_dir = "out"\n[config.checkpoint]\nfsync = false\n')
    cfg = Config.from_toml(p)
    assert cfg.batch_size == 2048
    assert cfg.gpu_devices == [0, 1]
    assert cfg.output_dir == Path("out")
    assert cfg.checkpoint.fsync is False


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"batchsize": 10}, "unknown key 'batchsize'. Did you mean 'batch_size'?"),
        ({"n_rand": "many"}, "config key 'n_rand': got 'many' (str); allowed: int"),
        ({"cluster": "gpu"}, "allowed: 'auto' | 'local' | 'cuda' | 'slurm' | 'none'"),
        ({"gpu_devices": [0, "1"]}, "config key 'gpu_devices'"),
        ({"processes": 1}, "config key 'processes': got 1 (int); allowed: bool"),
        ({"checkpoint": {"fsynk": True}}, "unknown key 'fsynk'. Did you mean 'fsync'?"),
        ({"batch_size": -1}, "batch_size=-1"),
        ({"n_rand": 0}, "n_rand=0"),
    ],
)
def test_bad_keys_name_key_and_allowed_values(data, message):
    with pytest.raises(ValueError) as e:
        Config.from_dict(data)
    assert message in str(e.value)


def test_bad_toml(tmp_path: Path):
    p = tmp_path / "bad.toml"
    p.write_text("[config\nx=")
    with pytest.raises(ValueError, match="not valid TOML"):
        Config.from_toml(p)
    with pytest.raises(FileNotFoundError):
        Config.from_toml(tmp_path / "missing.toml")
