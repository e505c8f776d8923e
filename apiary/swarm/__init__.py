"""The swarm: distributed queries through manifests and partial results in the bucket."""
