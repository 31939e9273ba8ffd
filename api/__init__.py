"""The edges of the service (HTTP, OpenAI-compatible route, Slack): built on rag/."""
