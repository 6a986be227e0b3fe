"""Real client programs (npm CLIs) the client tests drive the gateway with."""
