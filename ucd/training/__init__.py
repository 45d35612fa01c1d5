"""Training one step (layer 5 of DESIGN.md's import layers): the engine (set-up, iteration,
finish), resumable state and signals, checkpoints, the distributed set-up and the optimiser."""
