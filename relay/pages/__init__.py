"""Console pages that need the relay: the price list and the playground."""
