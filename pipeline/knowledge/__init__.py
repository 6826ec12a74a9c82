"""What the pipeline knows about the world: UN sanctions regimes (committees, resolutions, aliases)
and the UN Security Council Consolidated List with its name matcher."""
