"""From the workflow config to every step of the grid (layer 4 of DESIGN.md's import layers):
a step's run config through the four precedence layers (:mod:`.resolve`), and the grid, seeds,
shared trainings and results paths (:mod:`.plan`)."""
