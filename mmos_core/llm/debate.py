"""One debate turn on a model: the prompt (`debate_messages`), the litellm call (`chat_turn`) and the
answer's clean-up (`strip_own_name`).

The RQ job that runs a whole debate (stores each turn, reserves budget, analyses the message) is
`workers.conversations.run_debate`; docs/conversations.md describes debates. This module imports only
`mmos_core.core` and other `mmos_core.llm` modules (the llm layer, docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from mmos_core.core.config import get_settings
from mmos_core.llm.catalog import get_model
from mmos_core.llm.extraction import ProviderError, complete_with_retries, completion_kwargs

__all__ = ["DEBATE_CONTEXT_MESSAGES", "SYSTEM_PROMPT", "chat_turn", "debate_messages", "strip_own_name"]

#: Earlier debate messages shown to the next speaker (the 0.5B/1.5B models have a 4k context).
DEBATE_CONTEXT_MESSAGES = 6

SYSTEM_PROMPT = (
    "You are {name}, one of {n} participants in a debate. Topic: {topic}\n"
    "Other participants: {others}. Give your own view in two to four sentences: make one concrete claim, "
    "answer the previous speaker by name when there is one, and do not repeat what was already said. "
    "Plain text only, no lists, no headings, do not write your own name first."
)


def debate_messages(*, topic: str, speaker: str, others: list[str], transcript: list[tuple[str, str]]) -> list[dict[str, str]]:
    """Chat messages for one debate turn: the speaker's instructions, then the latest turns as
    `Name: text` lines (at most `DEBATE_CONTEXT_MESSAGES`).

    Args:
        topic: the debate's topic. speaker: who speaks now. others: the other participants' names.
        transcript: earlier turns as (name, text), oldest first.
    Returns:
        [{"role": "system", ...}, {"role": "user", ...}] for litellm.
    """
    system = SYSTEM_PROMPT.format(name=speaker, n=len(others) + 1, topic=topic, others=", ".join(others))
    recent = transcript[-DEBATE_CONTEXT_MESSAGES:]
    if recent:
        lines = "\n\n".join(f"{who}: {what}" for who, what in recent)
        user = f"The debate so far (latest turns):\n\n{lines}\n\nYour turn, {speaker}."
    else:
        user = f"You open the debate, {speaker}. State your position on: {topic}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def chat_turn(model_name: str, messages: list[dict[str, str]]) -> tuple[str, int, int, int]:
    """One debate turn through litellm at the debate temperature and token cap (`Settings`).

    Returns:
        (text stripped of surrounding whitespace, completion tokens, prompt tokens, duration ms).
    Raises:
        ProviderError: after the retries of transient provider errors (`llm_max_retries` attempts,
            with backoff), or when the answer is empty (retryable).
        UnknownModelError: `model_name` is not in the catalog.
    """
    settings = get_settings()
    kwargs = completion_kwargs(
        get_model(model_name), messages, temperature=settings.conversation_debate_temperature,
        max_tokens=settings.conversation_debate_max_tokens, settings=settings,
    )
    response, attempts, duration_ms = complete_with_retries(kwargs, label=model_name, settings=settings)
    text_ = (response.choices[0].message.content or "").strip()
    if not text_:
        raise ProviderError(f"{model_name} gave an empty answer", retryable=True, attempts=attempts, duration_ms=duration_ms)
    usage = getattr(response, "usage", None)
    return (
        text_,
        int(getattr(usage, "completion_tokens", 0) or 0),
        int(getattr(usage, "prompt_tokens", 0) or 0),
        duration_ms,
    )


def strip_own_name(text_: str, name: str) -> str:
    """``text_`` without a leading ``Name:`` / ``**Name:**`` / ``**Name**:`` (small models often start
    with their own name despite the instruction); otherwise unchanged."""
    for prefix in (f"{name}:", f"**{name}:**", f"**{name}**:"):
        if text_.startswith(prefix):
            return text_[len(prefix) :].lstrip()
    return text_
