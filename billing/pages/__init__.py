"""Console pages that read the bill: the dashboard, the usage logs, top-up."""
