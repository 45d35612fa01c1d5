"""Layer 0 of DESIGN.md's import layers: the typed facts every other layer reads and none
rewrites (a step's run config and step spec, what each table needs run), and the progress lines
that every layer writes; it imports nothing of ucd outside itself."""
