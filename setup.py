"""rl2vla_jax: RL post-training of Vision-Language-Action policies in JAX/Flax."""

from setuptools import find_packages, setup

# Compatible ranges only; the exact, machine-specific pins (e.g. the torch/torchvision
# pair that timm needs) live in scripts/requirements-lock.txt used by ./run.sh.
core = [
    "jax>=0.10.2",
    "flax>=0.12",
    "optax>=0.2.5",
    "orbax-checkpoint>=0.11",
    "ml-collections>=1.0",
    "absl-py>=2.1",
    "numpy>=2.0",
    "safetensors>=0.4",  # reading checkpoints needs no torch
    "sentencepiece>=0.2",
    "pillow>=10",
    "tqdm>=4.66",
    "tensorboardX>=2.6",
    "matplotlib>=3.8",
    "imageio[ffmpeg]>=2.34",
    "grain>=0.2.10",
    "array-record>=0.5",  # demonstration shards (data/demos.py)
    "msgpack>=1.0",
]

extras = {
    "maniskill": ["mani-skill>=3.0.1", "torch>=2.5", "gymnasium>=0.29.1"],
    "convert": ["torch>=2.5", "transformers>=4.46", "timm>=1.0", "peft>=0.13", "torchvision>=0.20"],
    "cuda12": ["jax[cuda12]>=0.10.2"],
    "tpu": ["jax[tpu]>=0.10.2"],
    "dev": ["pytest>=8", "pytest-timeout>=2.3", "chex>=0.1.90", "rlax>=0.1.8", "ruff>=0.6"],  # chex: tests
    "wandb": ["wandb>=0.17"],
}

setup(
    name="rl2vla_jax",
    version="0.1.0",
    description="Reinforcement-learning post-training of Vision-Language-Action policies in JAX/Flax",
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.11",
    packages=find_packages(include=["rl2vla_jax", "rl2vla_jax.*"]),
    install_requires=core,
    extras_require=extras,
)
