"""The machine's float32 matmul rate, the denominator of the benchmarks' CPU MFU figures."""

import time

import jax
import jax.numpy as jnp


def matmul_peak_gflops(n=2048, repeats=10):
    """Best float32 [n, n] @ [n, n] rate of this machine, GFLOP/s."""
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
    matmul = jax.jit(jnp.dot)
    jax.block_until_ready(matmul(a, b))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(matmul(a, b))
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9
