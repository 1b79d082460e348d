"""Session state machines (sans-IO): :class:`LeaderSession` and :class:`ParticipantSession`.

API (stable; the node's session driver drives it)
=================================================

Both machines are plain objects. Every input is a method call that returns a ``list`` of
*effects* (frozen dataclasses, :mod:`protocol.effects`) for the runtime to carry out, in order.
Nothing here touches a socket, a clock or a global RNG: ``now_ms`` (any monotonic-ish millisecond
clock of this node) and a ``random.Random`` are passed in.

Leader (the node that advertised; :mod:`protocol.leader`)::

    s = LeaderSession(task, me, Advertise(...), rng=random.Random(seed),
                      auto_assign_at=None | N,    # pipe N: assign exactly N joiners
                      auto_finalize=True,         # finalize as soon as every score arrived
                      split="balanced" | "original",
                      executors=0,                # K > 0: K executors (>= 1 verifier left)
                      cap=MAX_PARTICIPANTS,       # ack takes every joiner up to cap
                      weights=None | {peer: w},   # verifier weights for the tally (reputation)
                      aggregator_params=None,     # e.g. {"clip": 0.1} for "robust"
                      selection_weights=None,     # reputation-weighted verifier draw
                      canary_rate=0.1,            # per executor; 0 disables canaries
                      canary_texts=(),            # wrong answers to use as canaries
                      reannounce=2)               # re-advertise while short of N joiners
    s.start(now_ms)              -> [Subscribe(task), Subscribe(task/lead),
                                     Publish(swarm/mesh, advertise), StageChanged]
    s.receive(envelope, now_ms)  -> effects   # envelope already passed open_envelope + ReplayGuard
    s.tick(now_ms)               -> effects   # call at (or after) s.next_deadline()
    s.ack(now_ms)                -> effects   # operator: assign roles now (needs >= 2 joined)
    s.finalize(now_ms)           -> effects   # operator: tally what arrived, publish the result
    s.abort(now_ms, reason)      -> effects   # operator: publish abort
    s.next_deadline() -> int | None           # when to call tick(); None once finished
    s.snapshot() -> SessionSnapshot           # plain frozen view for ``session`` events
    s.finished -> bool;  s.result -> Result | None;  s.stage -> Stage

Participant (a provider that saw an ``advertise``; ``join=False`` only watches;
:mod:`protocol.participant`)::

    p = ParticipantSession(task, me, leader, Advertise(...), model="qwen2.5:1.5b", backend="ollama",
                           grace_ms=5_000, batch_scores=False, join=True)
    p = ParticipantSession.from_advertise(envelope, me, model=..., backend=...)
    p.start(now_ms)              -> [Subscribe(task), Subscribe(task/judge),
                                     Publish(task/lead, Join), StageChanged]
    p.receive(envelope, now_ms)  -> effects   # may emit Generate (executor) / Judge (verifier)
    p.tick(now_ms)               -> effects
    p.generation_done(text, model, gen_ms, now_ms)        -> [Publish(task/lead, Response)]
    p.generation_failed(error, now_ms)                    -> [Notice]   (this executor is missing)
    p.judgement_done(label, score, reason, judge_model, now_ms)
                                 -> [Publish(task/lead, Score)]
    p.judgement_failed(label, error, now_ms)
                                 -> [Notice, Publish(task/lead, Scores(failed=...))]
    p.next_deadline(), p.snapshot(), p.finished, p.result, p.stage, p.role

``batch_scores=True``: a verifier sends one ``scores`` message once it has judged everything it
will get (every item arrived, or its execute deadline passed, and no judgement is still running)
instead of one ``score`` per item: fewer messages through the hub (ARCHITECTURE §10 item 13)
at the price of the slowest judgement. Leaders accept both forms, entry by entry.

A judgement that fails (an error, a timeout, no usable number) is reported to the leader as
``Scores.failed`` (in the batch, or alone): that cell stays *missing*, never 0.00, and the
leader finalizes once every cell is scored or reported instead of waiting for the deadline.

Effects: ``Publish(topic, task, body)`` (seal with your signer, then publish), ``Subscribe``,
``Unsubscribe``, ``Generate(task, prompt, deadline_ms, params)``, ``Judge(task, prompt, label,
text, deadline_ms)``, ``StageChanged(task, stage, deadline_ms)``, ``Finished(task, result)``,
``Aborted(task, reason, cause)``, ``Released(task, reason)`` (free this session's model slot now),
``Rejected(task, reason, sender, kind, detail)``, ``Notice(task, text)``. Generate/Judge
deadlines are in the caller's ``now_ms`` clock; run judgements concurrently.

``SessionSnapshot.to_dict()`` gives the snapshot with base58 peer IDs (JSON-able).
Operator actions in a state that does not allow them raise :class:`~protocol.errors.StateError`
(with a message fit for the user); everything a *peer* does wrong becomes a ``Rejected`` effect.
Inputs after the session finished are answered with ``Rejected(reason="late")`` or nothing.
Every input may change the snapshot: emit a ``session`` event when it differs from the last one.

Theory of operation (wire protocol v2)
======================================

A session moves ADVERTISE -> EXECUTE -> VERIFY -> FINALIZE -> DONE, or to ABORTED from any live
stage. The tables ``LEADER_TRANSITIONS`` / ``PARTICIPANT_TRANSITIONS`` list, per stage, which
trigger leads where; a trigger absent from a stage's row cannot happen there (``_go`` asserts).
``LEADER_ACCEPTS`` / ``PARTICIPANT_ACCEPTS`` list which message kinds each stage takes at all;
the per-kind handlers then apply the role rules:

* only the advertiser assigns, forwards items, reveals, finalizes or aborts (``not_leader``);
* only assigned executors respond, once, before the execute deadline
  (``not_executor`` / ``duplicate`` / ``late``); a response that breaks the advertised format or
  tools (:func:`protocol.structured.answer_problem`) is dropped (``invalid_answer``): settled,
  missing, never forwarded; the item of a kept one carries ``judged_answer`` (text + tool calls);
* only assigned verifiers score, once per label they were sent, before the verify deadline
  (``not_verifier`` / ``unknown_label`` / ``duplicate`` / ``late``); roles are disjoint, so no
  one judges their own answer;
* a verifier that sent nothing is *missing*; the tally leaves it out (never 0.00).

Topics: ``<task>`` (assign, reveal, result, abort: everyone), ``<task>/lead`` (join, response,
score, scores: the leader only) and ``<task>/judge`` (item: joiners subscribe when they join, so
no item outruns a subscription; executors leave it when assigned).

Taking what it needs (issue 14). ``pipe N`` (``auto_assign_at=N``) assigns exactly N joiners:
once N joined, or at the join deadline with what it has when that is at least 2 (one executor
and one verifier); with more than N it picks N at random (over the sorted joiners). ``ack``
takes every joiner up to ``cap``. While short of N, the leader re-announces the same
advertisement ``reannounce`` times, spread over the join window (providers that were full may
have a slot by then). A joiner that the assignment does not name ends its session at once
(``Released``), as every participant does when its session ends. The result says ``requested``
and ``joined``.

Blind judging (issue 16). Executors send ``response`` to the leader only. At assignment the
leader deals a label (``A``, ``B``, ...) to each executor and to each canary by a random
permutation (:func:`protocol.blind.deal_labels`); as each response arrives it forwards an
``item``: the label, the text and the statement digest of the executor's signed response.
Verifiers judge and score labels; the leader maps labels back. No label, and no order of
arrival, tells a verifier who wrote a text, and no honest executor is sent another's answer.
With probability ``canary_rate`` per executor the leader also sends a canary next to that
executor's item, in a random order: a corrupted copy of the answer (or a wrong text the driver
passed in) under its own label and a made-up digest, indistinguishable until the result names
it. Canaries never win; the result carries each verifier's canary scores for reputation.

Commitments and reveal (issue 15), chosen by cost. The signed ``result`` stays small (hashes,
not copies: :mod:`protocol.result`): roles, ``requested``/``joined``, aggregator, ``params``,
``weights``, the label map, canary scores, and the statement digest of every envelope it
counted (advert, assign, each response, each item, each score batch in the order counted). The
score batches and responses reach every participant in ``reveal`` messages published on the
session topic just before the result: the raw signed envelopes exactly as received, chunked under
the envelope size limit, plus the canary items in full. Real items are not republished: each one
is rebuilt from its response, label and ``items_total``, so any store can check every item
commitment. Cost: one extra copy of every answer and score batch to each participant, once,
at the end (about what the old flow spent broadcasting each answer to everyone); a result of a
24-peer session is ~4 KB plus the winning text (``tests/protocol/test_result_size.py`` prints
it). With that, :func:`protocol.transcript.verify_transcript` derives roles, answers, scores,
canaries and the winner from the signed envelopes of any participant's store alone.

Deadlines are durations in the advertisement. The leader measures them on its own clock, from
its advertisement (join) and its assignment (execute, then verify = execute + verify_ms); they
decide what is accepted. Participants measure the same durations from when *they* saw the
advertisement/assignment (so they run a little behind the leader) and use them only to stop
working and, ``grace_ms`` later, to give up waiting for the leader. Every stage has a deadline,
so ``next_deadline()`` is never ``None`` while a session is live: nothing waits forever.

Leader, stage by stage: ADVERTISE collects joins (re-announcing while short); EXECUTE collects
responses and forwards items (scores may overtake: a verifier judges an item as soon as it has
it). When every executor responded, or at the execute deadline, VERIFY (no response at all ->
abort; only dropped answers -> abort ``invalid_answers``). When every item has a score or
failure report from every verifier, FINALIZE: with ``auto_finalize`` the reveal and the result go
out at once, else at ``finalize`` or the verify deadline, whichever comes first. The verify deadline always finalizes.

Participant: joins, waits for ``assign`` (items that overtake it are held), then an executor
generates once and a verifier judges every item the moment it arrives (one ``Judge`` effect per
item; concurrency is the runtime's job). It mirrors the leader's stages for display and
finishes on the leader's ``result`` or ``abort``.
"""

from __future__ import annotations

from protocol.effects import (
    AbortCause,
    Aborted,
    Effect,
    Finished,
    Generate,
    Judge,
    Notice,
    Publish,
    Rejected,
    Released,
    Role,
    SessionSnapshot,
    Stage,
    StageChanged,
    Subscribe,
    Unsubscribe,
)
from protocol.leader import DEFAULT_REANNOUNCE, LeaderSession
from protocol.machine import (
    DEFAULT_GRACE_MS,
    LEADER_ACCEPTS,
    LEADER_TRANSITIONS,
    PARTICIPANT_ACCEPTS,
    PARTICIPANT_TRANSITIONS,
)
from protocol.participant import ParticipantSession

__all__ = [
    "DEFAULT_GRACE_MS",
    "DEFAULT_REANNOUNCE",
    "LEADER_ACCEPTS",
    "LEADER_TRANSITIONS",
    "PARTICIPANT_ACCEPTS",
    "PARTICIPANT_TRANSITIONS",
    "AbortCause",
    "Aborted",
    "Effect",
    "Finished",
    "Generate",
    "Judge",
    "LeaderSession",
    "Notice",
    "ParticipantSession",
    "Publish",
    "Rejected",
    "Released",
    "Role",
    "SessionSnapshot",
    "Stage",
    "StageChanged",
    "Subscribe",
    "Unsubscribe",
]
