"""The algorithm core imports without vLLM (house rule 2)."""

from __future__ import annotations

import subprocess
import sys


def test_core_does_not_import_vllm():
    code = "import sys, memshare.core; assert 'vllm' not in sys.modules, 'memshare.core imported vllm'"
    subprocess.run([sys.executable, "-c", code], check=True)
