"""Schemathesis hooks for fuzzing bulkwatch's GraphQL API (run by `.ci/fuzz`).

- Values for the custom scalars (`DateTime`, `JSON`) and for `ID`, where
  well-formed unknown ids and noise go beside the real ids that the
  config's dictionaries bind to each id argument.
- One check, `bulkwatch_server_fault`: a 5xx, or any error whose
  `extensions.code` is INTERNAL. Every other coded error (NOT_FOUND,
  BAD_CURSOR, INVALID_STATE, ...) is the server refusing bad input, which
  is what it should do with fuzzed data.
- Per-operation figures (cases, answers without errors, error codes),
  written to BULKWATCH_FUZZ_STATS when the run ends.
"""

import atexit
import base64
import collections
import dataclasses
import datetime
import json
import os
import threading

import graphql
import schemathesis
from hypothesis import strategies as st
from schemathesis.graphql import nodes

with open(os.environ["BULKWATCH_FUZZ_SEED"]) as f:
    SEED = json.load(f)

# --- scalars ---------------------------------------------------------------


def global_id(tag, value):
    return base64.urlsafe_b64encode(f"{tag}:{value}".encode()).decode().rstrip("=")


TAGS = ["BulkTask", "TaskItem", "WebhookEndpoint", "WebhookDelivery", "Other"]
unknown_ids = st.builds(lambda tag, u: global_id(tag, u.hex), st.sampled_from(TAGS), st.uuids())
odd_ids = st.builds(global_id, st.sampled_from(TAGS), st.text(max_size=40))
# Real ids come from the config's dictionaries, bound per argument (a task
# id where a task is asked for); here ids of no row, of the wrong type, and noise.
ids = st.one_of(unknown_ids, odd_ids, st.sampled_from(SEED["ids"]), st.text(max_size=60))
schemathesis.graphql.scalar("ID", ids.map(nodes.String))

# Instants across chrono's whole RFC 3339 range, in any offset, and noise.
instants = st.datetimes(
    min_value=datetime.datetime(1, 1, 1),
    max_value=datetime.datetime(9999, 12, 31, 23, 59, 59),
    timezones=st.timezones() | st.just(datetime.timezone.utc),
).map(lambda d: d.isoformat())
near = st.integers(min_value=-86400, max_value=30 * 86400).map(
    lambda s: (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=s)).isoformat()
)
# Mostly the coming weeks: a deadline or notBefore in the past is refused
# before the rules that use them run.
schemathesis.graphql.scalar(
    "DateTime", st.one_of(*[near] * 6, instants, instants, st.text(max_size=40)).map(nodes.String)
)


def json_node(value):
    """A JSON value as a GraphQL literal (the JSON scalar reads any literal)."""
    if value is None:
        return nodes.Null
    if isinstance(value, bool):
        return nodes.Boolean(value)
    if isinstance(value, int):
        return nodes.Int(value)
    if isinstance(value, float):
        return nodes.Float(value)
    if isinstance(value, str):
        return nodes.String(value)
    if isinstance(value, list):
        return nodes.List([json_node(v) for v in value])
    return nodes.Object(
        [graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=json_node(v)) for k, v in value.items()]
    )


keys = st.from_regex(r"\A[_A-Za-z][_0-9A-Za-z]{0,12}\Z")
leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30)
json_values = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(keys, children, max_size=5),
    max_leaves=20,
)
# Objects most of the time: metadata, payloads and patches must be objects.
schemathesis.graphql.scalar(
    "JSON", st.one_of(st.dictionaries(keys, json_values, max_size=6), json_values).map(json_node)
)

# --- lists ---------------------------------------------------------------


class OneDirection(graphql.language.Visitor):
    """Drops `last` and `before` from a field that also has `first`."""

    def enter_field(self, node, *_):
        names = {a.name.value for a in node.arguments or ()}
        if "first" in names and "last" in names:
            kept = tuple(a for a in node.arguments if a.name.value not in ("last", "before"))
            # Nodes are frozen: the visitor puts the returned copy in place.
            return dataclasses.replace(node, arguments=kept)
        return None


@schemathesis.hook
def map_body(context, body):
    # Paging both ways at once is refused before any SQL, and the generator
    # asks for it in half the cases of every list; the refusal has its own
    # tests, the fuzzing time is better spent on the queries.
    if isinstance(body, graphql.language.DocumentNode):
        return graphql.language.visit(body, OneDirection())
    return body


# --- the check ---------------------------------------------------------------


def error_codes(response):
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    errors = body.get("errors") or []
    return [((e.get("extensions") or {}).get("code"), e.get("message")) for e in errors if isinstance(e, dict)]


@schemathesis.check
def bulkwatch_server_fault(ctx, response, case):
    """A 5xx, or an error coded INTERNAL: the server failed, not the input."""
    if response.status_code >= 500:
        raise AssertionError(f"HTTP {response.status_code}: {response.content[:500]!r}")
    codes = error_codes(response)
    if codes is None:
        raise AssertionError(f"not a JSON object (HTTP {response.status_code}): {response.content[:500]!r}")
    internal = [message for code, message in codes if code == "INTERNAL"]
    if internal:
        raise AssertionError(f"INTERNAL error: {internal}")


# --- figures ---------------------------------------------------------------

LOCK = threading.Lock()
STATS = collections.defaultdict(lambda: {"cases": 0, "ok": 0, "codes": collections.Counter(), "messages": collections.Counter()})


@schemathesis.hook
def after_call(context, case, response):
    codes = error_codes(response) or []
    with LOCK:
        entry = STATS[case.operation.label]
        entry["cases"] += 1
        if response.status_code < 300 and not codes:
            entry["ok"] += 1
        for code, message in codes:
            entry["codes"][code or "NONE"] += 1
            # Ids and values vary; the start of a message names the rule.
            entry["messages"][f"{code}: {str(message)[:60]}"] += 1


@atexit.register
def write_stats():
    path = os.environ.get("BULKWATCH_FUZZ_STATS")
    if path:
        with open(path, "w") as f:
            json.dump({k: {**v, "codes": dict(v["codes"]), "messages": dict(v["messages"].most_common(8))} for k, v in STATS.items()}, f, indent=1, sort_keys=True)
