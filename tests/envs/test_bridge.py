import jax
import jax.numpy as jnp
import numpy as np
import torch

from rl2vla_jax.envs.bridge import jax_to_torch, torch_to_jax


def test_torch_to_jax_is_zero_copy_on_cpu():
    for tensor in (torch.randn(17, 11), torch.randint(0, 255, (3, 29, 31, 3), dtype=torch.uint8)):
        array = torch_to_jax(tensor)
        assert array.unsafe_buffer_pointer() == tensor.data_ptr()
        np.testing.assert_array_equal(np.asarray(array), tensor.numpy())


def test_jax_to_torch_is_zero_copy_on_cpu():
    array = jax.random.normal(jax.random.key(0), (13, 7))
    tensor = jax_to_torch(array)
    assert tensor.data_ptr() == array.unsafe_buffer_pointer()
    np.testing.assert_array_equal(tensor.numpy(), np.asarray(array))
    assert jnp.allclose(torch_to_jax(tensor), array)
