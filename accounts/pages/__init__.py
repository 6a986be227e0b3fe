"""Server-rendered pages for people at New API's paths; they call the same services as `/api`."""
