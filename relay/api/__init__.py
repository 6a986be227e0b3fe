"""/api/channel/*: the channel admin API (keys are never returned)."""
