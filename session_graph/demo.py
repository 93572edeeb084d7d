"""The demo fork tree behind ``session-graph demo``: an on-call agent debugging checkout 502s.

``run_demo(store)`` writes one new tree (every session tagged ``demo``) and returns what it
made; it prints nothing, so it runs as well on ``SessionStore.in_memory()``. The tree:

- the root investigates with tools and finds the cause;
- ``explore`` tries three remediation strategies from the same user question;
- one strategy is carried through (a tool call applies the fix), and is forked again at its
  proposal to ask for a canary first;
- the root is also forked right after the user's first question, to rerun the whole
  investigation with another model.

Token counts are estimated from the text (about four characters a token) and costs use list
prices, so the numbers look like a real agent's without calling one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from session_graph.models import Message, Session, utcnow
from session_graph.store import SessionStore

DEMO_TAG = "demo"
USER_ID = "oncall-maria"

GPT4O = "gpt-4o"
GPT4O_MINI = "gpt-4o-mini"
SONNET = "claude-3-5-sonnet-20241022"
PROVIDERS = {GPT4O: "openai", GPT4O_MINI: "openai", SONNET: "anthropic"}
# USD per million tokens (input, output): list prices, good enough for a demo.
PRICES = {GPT4O: (2.50, 10.00), GPT4O_MINI: (0.15, 0.60), SONNET: (3.00, 15.00)}
# Tool schemas and instructions the provider bills on every call but the history does not hold.
PROMPT_OVERHEAD = 420

SYSTEM = (
    "You are the on-call SRE assistant for the Acme storefront. Investigate with the tools "
    "you are given (search_logs, get_deploy, query_metrics, set_config), cite the evidence "
    "you rely on, and never change production without an explicit go-ahead."
)


@dataclass(frozen=True)
class DemoResult:
    """What ``run_demo`` made. ``strategies`` maps each explored strategy to its session."""

    root_id: str
    model_fork_id: str
    strategies: dict[str, str]
    canary_id: str
    session_ids: tuple[str, ...]
    forks: int
    messages_written: int
    history_messages: int
    input_tokens: int
    output_tokens: int
    cost: float
    cleaned: int = 0
    seconds: float = 0.0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def estimate_tokens(text: str) -> int:
    """A rough token count (about four characters a token), at least one."""
    return max(1, math.ceil(len(text) / 4))


class _Agent:
    """Appends scripted messages with plausible timestamps, token counts and costs."""

    def __init__(self, store: SessionStore, start: datetime) -> None:
        self.store = store
        self.clock = start
        self.written: list[Message] = []

    def say(
        self,
        session_id: str,
        role: str,
        content: str,
        *,
        model: str | None = None,
        seconds: float = 2.0,
        tool_name: str | None = None,
        tool_call_id: str | None = None,
        tool_calls: list[dict[str, Any]] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Message:
        # Backdated, advancing timestamps: the demo reads like a conversation that took
        # minutes (and `compare` has wall times to show), not one written in a millisecond.
        self.clock += timedelta(seconds=seconds)
        fields: dict[str, Any] = {"role": role, "content": content, "created_at": self.clock}
        meta = dict(metadata or {})
        if tool_calls:
            fields["tool_calls"] = tool_calls
        if model is not None:
            context = sum(estimate_tokens(m.content) for m in self.store.messages(session_id))
            calls = sum(estimate_tokens(str(c)) for c in tool_calls or [])
            input_tokens = PROMPT_OVERHEAD + context
            output_tokens = estimate_tokens(content) + calls
            price_in, price_out = PRICES[model]
            fields |= {
                "provider": PROVIDERS[model],
                "model": model,
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cost": round((input_tokens * price_in + output_tokens * price_out) / 1e6, 6),
            }
        if tool_name is not None:
            fields |= {"tool_name": tool_name, "tool_call_id": tool_call_id}
        fields["metadata"] = meta
        message = self.store.append(session_id, fields)[0]
        self.written.append(message)
        return message


def _call(call_id: str, name: str, **arguments: Any) -> list[dict[str, Any]]:
    return [{"id": call_id, "name": name, "arguments": arguments}]


def clean_demo(store: SessionStore) -> int:
    """Delete every live session tagged ``demo`` and purge what they held; returns how many."""
    ids: list[str] = []
    cursor: str | None = None
    while True:
        page = store.list_sessions(tags=[DEMO_TAG], limit=1000, cursor=cursor)
        ids.extend(s.id for s in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    for sid in reversed(ids):  # forks first, though either order is allowed
        store.delete_session(sid)
    if ids:
        store.purge()
    return len(ids)


def run_demo(store: SessionStore, *, clean: bool = False) -> DemoResult:
    """Write a new demo tree into ``store`` (schema already set up) and describe it.

    Args:
        clean: first delete the demo trees earlier runs left (sessions tagged ``demo``).
    """
    started = time.monotonic()
    cleaned = clean_demo(store) if clean else 0
    agent = _Agent(store, utcnow() - timedelta(minutes=25))
    say = agent.say
    tags = (DEMO_TAG, "incident")

    root: Session = store.create_session(
        title="Checkout 502s after the 09:35 deploy",
        user_id=USER_ID,
        tags=tags,
        metadata={"incident": "INC-2417", "service": "checkout", "severity": "sev2"},
    )
    r = root.id
    say(r, "system", SYSTEM, seconds=0)
    say(
        r,
        "user",
        "Checkout has been returning 502s since about 09:40 UTC, right after the 09:35 "
        "deploy. Can you find out why?",
        seconds=5,
    )
    say(
        r,
        "assistant",
        "I'll start with the gateway errors for checkout in that window.",
        model=GPT4O,
        tool_calls=_call(
            "call_logs_1", "search_logs", service="checkout-gateway", since="09:30Z", level="error"
        ),
        seconds=4,
    )
    say(
        r,
        "tool",
        "412 matches between 09:36Z and 09:58Z. Top pattern (97%):\n"
        "upstream timed out (110: Connection timed out) while reading response header from "
        'upstream, upstream: "http://payments-svc:8443/v1/authorize"\n'
        "p95 upstream latency 30.0s (gateway timeout 30s)",
        tool_name="search_logs",
        tool_call_id="call_logs_1",
        seconds=2,
    )
    say(
        r,
        "assistant",
        "The 502s are gateway timeouts on payments-svc /v1/authorize; checkout itself is "
        "healthy. Let me see what the 09:35 deploy changed in payments-svc.",
        model=GPT4O,
        tool_calls=_call("call_deploy_1", "get_deploy", service="payments-svc", at="09:35Z"),
        seconds=5,
    )
    say(
        r,
        "tool",
        "deploy #8812 payments-svc v2.13.4 -> v2.14.0 at 09:35Z by ci-bot\n"
        "config diff:\n- DB_POOL_MAX: 50\n+ DB_POOL_MAX: 5\n"
        "(settings moved to config/defaults.yaml in PR #2291)",
        tool_name="get_deploy",
        tool_call_id="call_deploy_1",
        seconds=2,
    )
    say(
        r,
        "assistant",
        "Root cause: payments-svc v2.14.0 moved its settings into a new defaults file and "
        "DB_POOL_MAX fell from 50 to 5. Under checkout traffic /v1/authorize queues for a "
        "database connection, passes the gateway's 30 s timeout, and checkout answers 502.",
        model=GPT4O,
        seconds=7,
    )
    question = say(r, "user", "Makes sense. What should we do right now?", seconds=40)
    say(
        r,
        "assistant",
        "Roll payments-svc back to v2.13.4 now (about 3 minutes, no config change), then fix "
        "config/defaults.yaml and redeploy v2.14.x with DB_POOL_MAX=50.",
        model=GPT4O,
        seconds=6,
    )

    # Three remediation strategies from the same question, in one transaction.
    explored = store.explore(
        r,
        question.id,
        [
            {"name": "rollback", "title": "Roll back payments-svc", "tags": tags},
            {"name": "config-hotfix", "title": "Hot-fix DB_POOL_MAX", "tags": tags},
            {"name": "scale-out", "title": "Scale payments-svc out", "tags": tags},
        ],
    )
    rollback, hotfix, scale = (s.id for s in explored)
    say(
        rollback,
        "assistant",
        "Recommend an immediate rollback: `deploy rollback payments-svc --to v2.13.4`. It "
        "restores DB_POOL_MAX=50 with the code it was tested with; v2.14.0 waits for a "
        "defaults-file fix. Expected recovery: 3-4 minutes.",
        model=GPT4O,
        seconds=30,
    )
    proposal = say(
        hotfix,
        "assistant",
        "Keep v2.14.0 and set DB_POOL_MAX=50 through the runtime config (no redeploy): "
        "`set_config payments-svc DB_POOL_MAX=50`. Pods pick it up within 60 s; the "
        "defaults file still needs the same fix before the next deploy.",
        model=SONNET,
        seconds=25,
    )
    say(
        scale,
        "assistant",
        "Scale payments-svc from 6 to 30 replicas. That gives 30 x 5 = 150 connections, still "
        "half of the old 6 x 50 = 300, at five times the pods: scaling out only buys time, "
        "so follow it with a rollback or the config fix.",
        model=GPT4O_MINI,
        seconds=20,
    )
    say(hotfix, "user", "Go ahead and apply it.", seconds=45)
    say(
        hotfix,
        "assistant",
        "Applying DB_POOL_MAX=50 to payments-svc.",
        model=SONNET,
        tool_calls=_call("call_cfg_1", "set_config", service="payments-svc", DB_POOL_MAX=50),
        seconds=4,
    )
    say(
        hotfix,
        "tool",
        "payments-svc: DB_POOL_MAX 5 -> 50 (runtime override, 6/6 pods reloaded at 10:07:12Z)",
        tool_name="set_config",
        tool_call_id="call_cfg_1",
        seconds=65,
    )
    say(
        hotfix,
        "assistant",
        "Done. Since 10:08Z checkout 5xx is back to 0.2% and /v1/authorize p95 is 180 ms. "
        "Follow-up: fix config/defaults.yaml (PR #2291) so the next deploy keeps the pool "
        "at 50, and add an alert on pool wait time.",
        model=SONNET,
        seconds=120,
    )
    for sid, score in ((rollback, 0.86), (hotfix, 0.93), (scale, 0.41)):
        # Numeric metadata is what `compare` shows as scores and `--best-by` can pick on.
        store.update_session(sid, metadata={"eval_score": score, "reviewer": "maria"})

    # A fork of a fork, at the strategy's proposal: same plan, but ask for a canary first.
    canary = store.fork(
        hotfix,
        proposal.id,
        reason="ask for a canary first",
        title="Hot-fix, canary first",
        tags=tags,
    )
    say(
        canary.id,
        "user",
        "Before rolling it out everywhere, can we canary it on one pod?",
        seconds=30,
    )
    say(
        canary.id,
        "assistant",
        "Yes: apply DB_POOL_MAX=50 to payments-svc-7f9c only, watch its authorize p95 and "
        "error rate for 5 minutes, then roll the override out to the other five pods.",
        model=SONNET,
        seconds=5,
    )

    # Rerun the investigation with another model, from right after the user's question.
    other = store.fork(
        r,
        1,
        reason="rerun the investigation with Claude",
        title="Checkout 502s (Claude)",
        tags=tags,
    )
    o = other.id
    say(
        o,
        "assistant",
        "Let me check payments-svc saturation metrics first; 502s right after a deploy are "
        "often an upstream running out of something.",
        model=SONNET,
        tool_calls=_call(
            "call_metrics_2", "query_metrics", service="payments-svc", metric="db_pool.*"
        ),
        seconds=300,
    )
    say(
        o,
        "tool",
        "payments-svc db_pool.in_use = 5/5 on every pod since 09:36Z\n"
        "db_pool.wait_ms p95 = 29,800\ndb_pool.max changed 50 -> 5 at 09:35Z",
        tool_name="query_metrics",
        tool_call_id="call_metrics_2",
        seconds=2,
    )
    say(
        o,
        "assistant",
        "payments-svc's connection pool has been pinned at its new maximum of 5 since the "
        "deploy, and requests wait ~30 s for a connection - exactly the gateway timeout. The "
        "deploy lowered DB_POOL_MAX from 50 to 5; restoring it will clear the 502s.",
        model=SONNET,
        seconds=9,
    )

    session_ids = (r, rollback, hotfix, scale, canary.id, o)
    written = agent.written
    return DemoResult(
        root_id=r,
        model_fork_id=o,
        strategies={"rollback": rollback, "config-hotfix": hotfix, "scale-out": scale},
        canary_id=canary.id,
        session_ids=session_ids,
        forks=len(session_ids) - 1,
        messages_written=len(written),
        history_messages=sum(store.message_count(s) for s in session_ids),
        input_tokens=sum(m.input_tokens or 0 for m in written),
        output_tokens=sum(m.output_tokens or 0 for m in written),
        cost=math.fsum(m.cost or 0.0 for m in written),
        cleaned=cleaned,
        seconds=time.monotonic() - started,
    )


__all__ = ["DEMO_TAG", "DemoResult", "clean_demo", "estimate_tokens", "run_demo"]
