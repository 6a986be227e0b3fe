"""The server edge: the web worker, the ASGI router and the request limits applied before anything else."""
