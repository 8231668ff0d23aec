"""Canned provider answers for tests (the HTTP edge is the only thing we fake)."""

from __future__ import annotations

import json


def chat_completion(content: str, *, prompt_tokens: int = 120, completion_tokens: int = 40) -> dict:
    """An OpenAI chat.completion body with this assistant content and usage."""
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "fake",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }



def quote_answer(quotes: list[str], **extra) -> str:
    """A valid extraction answer whose fragments are the given direct quotes."""
    return json.dumps(
        {
            "fragments": [
                {
                    "category": extra.get("category", "Cognitive"),
                    "fragment_type": "direct_quote",
                    "content": q,
                    "context": "test context",
                    "insight": "test insight",
                    "relevance": extra.get("relevance", 7),
                    "confidence": extra.get("confidence", 0.8),
                }
                for q in quotes
            ]
        }
    )


