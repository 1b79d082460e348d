"""SLM backends: the interface (``base``), Ollama (``ollama_backend``), the simulation (``sim``),
the judge (``judge``) and the flags that pick one (``config``).

Only the light interface is re-exported here; backends are imported where they are built
(:func:`node.slm.config.backend_from_args`), so ``import node.slm`` loads neither ollama nor httpx.
"""

from node.slm.base import Backend, Generation, GenParams, Judgement, SLMError

__all__ = ["Backend", "GenParams", "Generation", "Judgement", "SLMError"]
