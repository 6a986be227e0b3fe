"""Counting what a request uses: tokens, image and audio sizes, a stream's running cost, the charge."""
