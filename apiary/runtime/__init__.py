"""The node runtime: resources, bees, colony temperature."""
