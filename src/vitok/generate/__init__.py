"""Generation on vitok latents: latent caching, DiT training, sampling and gFID / gFVD."""
