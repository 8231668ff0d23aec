"""Conversation health (issue 6, seed 004): multi-agent conversations, their messages and detectors."""
