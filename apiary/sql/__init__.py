"""SQL over frames: Apiary's commands and name resolution, pruning, DataFusion."""
