"""A fork server ("zygote") for local training jobs: one process imports PyTorch and ucd's
training path once, and every `python -m ucd train` job of a local Snakemake run becomes a
thin client whose job runs in a fork of it, without a fresh interpreter's imports.

``client`` and ``wire`` use the standard library only (the client runs before any heavy
import); ``server`` imports the training path; ``control`` starts and stops a server.
DESIGN.md ("Local jobs without a fresh interpreter") states the contract.
"""
