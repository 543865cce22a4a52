"""Layer 3, torch modules and what changes them: the Q-network, target networks, the
activation switch and observation normalisation. Imports nothing else of mla-plugin-core."""
