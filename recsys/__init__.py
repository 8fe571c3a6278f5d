"""recsys: multimodal recommendation engine.

Flow: posts -> content encoders -> multimodal autoencoder -> shared latents -> user profiles
-> FAISS index -> HTTP API. This package is the core; it never imports fastapi or the
top-level `training`, `index` and `serving` packages.
"""

__version__ = "0.1.0"
