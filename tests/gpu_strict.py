"""pytest plugin for GPU runners (``make test-gpu``): refuse to run without CUDA, and fail any skip.

A GPU job that silently skips its CUDA tests (no device visible, a missing wheel) would pass
while testing nothing; here every skip is a failure and a host without CUDA stops the run.
Load it with ``-p tests.gpu_strict``.
"""

from __future__ import annotations

import pytest


def pytest_sessionstart(session: pytest.Session) -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.exit("make test-gpu: no CUDA device is visible (torch.cuda.is_available() is False)", returncode=1)
    from vllm.platforms import current_platform

    if not current_platform.is_cuda():
        pytest.exit(f"make test-gpu: vLLM runs on {current_platform.device_type}, not CUDA: install the GPU build "
                    "(pip install -e .[gpu,dev])", returncode=1)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped on the GPU runner, which must run every test here: {reason}"
