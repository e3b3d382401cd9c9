"""Optimizers, each one `gradtx.chain` of building blocks, one module per family."""
