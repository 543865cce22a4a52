"""Layer 0, helpers that know nothing of training: atomic files, log tails, free ports and
the finite-number checks of the NaN stop. Imports nothing else of mla-plugin-core."""
