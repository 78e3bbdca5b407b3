"""``vllm.general_plugins`` entry point: checks the vLLM version when vLLM starts.

It changes nothing by itself: sharing is switched on by the KV connector settings. It adds two
methods to vLLM's ``EngineCore`` that nothing calls unless ``memshare bench`` reuses an engine
for a smaller KV budget (``memshare.engine.adapter.engine.install_pool_utilities``).
"""

from __future__ import annotations

import logging

logger = logging.getLogger("memshare")


def register() -> None:
    from memshare.engine.adapter import check_version
    from memshare.errors import UserError

    try:
        check_version()
    except UserError as exc:
        logger.warning("memshare plugin: %s", exc)
        return
    from memshare.engine.adapter.engine import install_pool_utilities

    install_pool_utilities()
