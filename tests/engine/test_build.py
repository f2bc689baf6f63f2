"""Building the fused kernels: the cache directory and its locks."""


def test_a_stale_torch_build_lock_is_removed_under_the_rnnlab_lock(tmp_path):
    """A process killed mid-build leaves torch's ``lock`` file behind; the next build must not wait on it forever."""
    from rnnlab.engine import build

    (tmp_path / build.TORCH_LOCK).write_text("")
    with build._exclusive_build(tmp_path):
        assert not (tmp_path / build.TORCH_LOCK).exists()
    assert (tmp_path / build.BUILD_LOCK).exists()
