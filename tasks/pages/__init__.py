"""Console pages for the person's Midjourney and Suno tasks."""
