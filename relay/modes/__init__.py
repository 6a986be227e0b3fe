"""Relay modes: text (chat, completions, embeddings), media, Claude Messages, Realtime, the playground, model lists."""
