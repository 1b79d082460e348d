"""Blind judging helpers (pure, deterministic given the RNG passed in): labels, canaries, and
the reveal that republishes a session's counted envelopes at finalize.

* Labels: one per executor and one per canary, named ``A``, ``B``, ... and dealt by a random
  permutation fixed at assignment, so a label says nothing about who wrote the text, and the
  order items arrive in says nothing either (the permutation is over the executors, not the
  arrival order).
* Canaries: a text the leader knows is wrong for the prompt, judged like any answer: a corrupted
  copy of a real answer (:func:`make_canary`) or one of the texts the driver passes in (answers
  to other prompts). It goes out right next to the answer it was made from, in a random order,
  so a verifier sees two texts and cannot tell which is the canary. Excluded from the winner,
  revealed in the result with each verifier's score.
* Reveal: the responses and score batches the result counted, raw, chunked under the envelope
  size limit (:func:`reveal_parts`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from protocol.messages import MAX_RESPONSE_CHARS, Item, Response, Reveal
from protocol.messages import MAX_REVEAL_BYTES as _MAX_REVEAL_BYTES
from protocol.structured import judged_answer
from protocol.wire import label_name

__all__ = [
    "DEFAULT_CANARY_RATE",
    "deal_labels",
    "item_text",
    "make_canary",
    "reveal_parts",
]

DEFAULT_CANARY_RATE = 0.1  # per executor: the chance its answer gets a corrupted twin
_STOCK_WRONG = (
    "I am not sure, but the answer is probably something else entirely.",
    "This cannot be answered from the question as asked.",
    "The answer is 42.",
)
_NUMBER = re.compile(r"\d+")


def deal_labels(
    executors: Sequence[bytes], rng: random.Random, canary_rate: float
) -> tuple[dict[bytes, str], dict[str, bytes]]:
    """``(labels, canaries)``: each executor's label, and each canary label with the executor
    whose answer it will be made from. Each executor gets a canary twin with probability
    ``canary_rate`` (0 disables canaries)."""
    if not 0.0 <= canary_rate <= 1.0:
        raise ValueError(f"canary_rate must be in [0, 1], not {canary_rate}")
    sources = [ex for ex in executors if canary_rate > 0 and rng.random() < canary_rate]
    names = [label_name(i) for i in range(len(executors) + len(sources))]
    rng.shuffle(names)
    labels = dict(zip(executors, names, strict=False))
    canaries = dict(zip(names[len(executors) :], sources, strict=True))
    return labels, canaries


def item_text(response: Response) -> str:
    """The text an item carries for ``response``: what a verifier grades (its text, then its
    tool calls, see :func:`protocol.structured.judged_answer`), cut to the item's limit."""
    return judged_answer(response)[:MAX_RESPONSE_CHARS]


def make_canary(text: str, rng: random.Random, stock: Sequence[str] = ()) -> str:
    """A text that is wrong for the prompt ``text`` answered, and looks like an answer.

    With ``stock`` (answers to other prompts, from the driver), half the time one of those,
    different from ``text`` (an off-topic answer: does the judge read at all?). Otherwise a
    corrupted copy (subtler: does it check?): every number changed, and the sentences (or, for
    one sentence, a third of the words) put out of order; a text that survives unchanged (one
    word, no digits) becomes a stock non-answer.
    """
    candidates = [s for s in stock if s.strip() and s != text]
    if candidates and rng.random() < 0.5:
        return rng.choice(candidates)[:MAX_RESPONSE_CHARS]
    out = _NUMBER.sub(lambda m: str(int(m.group()) + rng.randint(1, 9)), text)
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", out) if s]
    if len(sentences) >= 2:
        rng.shuffle(sentences)
        if " ".join(sentences) == out:  # the shuffle kept the order: force a change
            sentences.reverse()
        out = " ".join(sentences)
    else:
        words = out.split()
        if len(words) >= 3:
            picks = rng.sample(range(len(words)), max(2, len(words) // 3))
            moved = [words[i] for i in picks]
            rng.shuffle(moved)
            for i, word in zip(sorted(picks), moved, strict=True):
                words[i] = word
            out = " ".join(words)
    if out.strip() == text.strip():
        out = rng.choice(_STOCK_WRONG)
    return out[:MAX_RESPONSE_CHARS]


def reveal_parts(envelopes: Sequence[bytes], canaries: Sequence[Item]) -> list[Reveal]:
    """Pack raw envelopes (and the canary items, in the first part) into reveal bodies that each
    stay under the envelope size limit. Always at least one part (it may be empty)."""
    budget = _MAX_REVEAL_BYTES
    canary_bytes = sum(len(c.text.encode()) + 128 for c in canaries)
    chunks: list[list[bytes]] = [[]]
    used = canary_bytes
    for raw in envelopes:
        cost = len(raw) + 8
        if chunks[-1] and used + cost > budget:
            chunks.append([])
            used = 0
        chunks[-1].append(raw)
        used += cost
    n = len(chunks)
    return [
        Reveal(part=i, parts=n, envelopes=tuple(c), canaries=tuple(canaries) if i == 0 else ())
        for i, c in enumerate(chunks)
    ]
