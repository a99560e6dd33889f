"""Lever C's teacher over real HTTP (tests/openai_replay.py): the success path of `distill
generate` (accepted == n, rejections counted by reason, kill -9 then resume with nothing lost or
asked twice), the client's mapping of HTTP failures, and the completions API.

The replayed replies are real tasks from the synthetic generator written out as a teacher would
reply, with the ones that are twins of (or overlap) an evaluation task removed by the real
checkers, so every outcome below is known in advance."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from codeling.distill.generate import generate
from codeling.io import read_jsonl
from codeling.tasks.decontam import Decontaminator, load_eval_sets
from codeling.tasks.synthetic import generate_tasks
from codeling.tasks.teacher import (
    Rejected,
    RequestFailed,
    Teacher,
    TeacherError,
    build_messages,
    completion_prompt,
    parse_reply,
)
from codeling.tasks.twins import TwinChecker, load_twin_eval_sets
from helpers import serving, tiny_model_and_tokenizer
from openai_replay import Answer, serve_replay, task_reply

EVAL = ["mini"]
# request i's reply, by i % 6: a valid task (0, 1, 3), no code at all (2), a task whose solution
# fails its own check (4), the same task as request i - 2 (5)
EXPECTED = {0: "accepted", 1: "accepted", 2: "parse", 3: "accepted", 4: "validate",
            5: "duplicate"}


@functools.cache
def pool() -> tuple:
    tasks = [t for t in generate_tasks(160, seed=11, levels=(1, 2)) if _parses(t)]
    deco = Decontaminator(load_eval_sets(EVAL))
    twins = TwinChecker(load_twin_eval_sets(EVAL), 1).reasons(tasks)
    return tuple(t for t, why in zip(tasks, twins) if why is None and deco.check(t) is None)


def _parses(t) -> bool:
    """Teachers are asked for a docstring: prompt styles that state the task in a comment or a
    preamble above the def are not replies a teacher would give."""
    try:
        parse_reply(task_reply(t.prompt, t.canonical_solution, t.test), t.category, t.level)
    except Rejected:
        return False
    return True


def script(seed: int, delay: float = 0.0) -> Answer:
    i, tasks = seed, pool()  # the teacher sends seed + request index, and the seed is 0
    kind = i % 6
    if kind == 2:
        return Answer("Sorry, I would rather not write code today.", delay=delay)
    t = tasks[i - 2] if kind == 5 else tasks[i]
    solution = "    return None\n" if kind == 4 else t.canonical_solution
    return Answer(task_reply(t.prompt, solution, t.test), delay=delay)


def outcomes(out) -> dict[int, str]:
    rows = [(r["request"], "accepted") for r in read_jsonl(out / "tasks.jsonl")]
    rows += [(r["request"], r["stage"]) for r in read_jsonl(out / "rejected.jsonl")]
    requests = [i for i, _ in rows]
    assert len(requests) == len(set(requests)), "a request was recorded twice"
    return dict(rows)


def test_generate_accepts_n_and_counts_rejections_by_reason(tmp_path):
    assert len(pool()) >= 40
    with serve_replay(script) as (url, replay):
        teacher = Teacher(url, "replay", retries=0, timeout=30)
        report = generate(tmp_path, teacher, 6, eval_sets=EVAL, concurrency=2, workers=1,
                          progress=False)
    got = outcomes(tmp_path)
    assert report["accepted"] == 6 == sum(v == "accepted" for v in got.values())
    assert got == {i: EXPECTED[i % 6] for i in got}  # each reply met its known fate
    assert sorted(got) == list(range(len(got)))  # asked in order, none skipped
    reasons: Counter = Counter()
    for key, count in report["rejected_by_reason"].items():
        reasons[key.split(":")[0]] += count
    assert reasons == Counter(v for v in got.values() if v != "accepted")
    assert report["rejected_by_reason"]["parse: no Python code in the reply"] == \
        sum(v == "parse" for v in got.values())
    # what was accepted is the replayed task itself
    for row in read_jsonl(tmp_path / "tasks.jsonl"):
        want = pool()[row["request"]]
        assert row["entry_point"] == want.entry_point
        assert row["canonical_solution"].strip() == want.canonical_solution.strip()
    assert len(replay.requests) == len(got)  # nothing asked that was not recorded


def test_kill_9_then_resume_loses_nothing_and_asks_nothing_twice(tmp_path):
    out = tmp_path / "gen"
    with serve_replay(lambda s: script(s, delay=0.3)) as (url, _):
        proc = subprocess.Popen(
            [sys.executable, "-m", "codeling.cli", "distill", "generate", "--endpoint", url,
             "--model", "replay", "--n", "9", "--out", str(out), "--eval-sets", "mini",
             "--concurrency", "1", "--workers", "1", "--retries", "0", "--quiet"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / "tasks.jsonl").exists() and len(read_jsonl(out / "tasks.jsonl")) >= 2:
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = outcomes(out)
    first = [r["task_id"] for r in read_jsonl(out / "tasks.jsonl")]
    assert 2 <= len(first) < 9
    with serve_replay(script) as (url, replay):
        report = generate(out, Teacher(url, "replay", retries=0, timeout=30), 9, eval_sets=EVAL,
                          concurrency=2, workers=1, progress=False)
        asked_again = {r["seed"] for r in replay.requests}
    after = outcomes(out)
    assert report["accepted"] == 9 and [r["task_id"] for r in read_jsonl(
        out / "tasks.jsonl")][:len(first)] == first  # nothing accepted before was lost
    assert all(after[i] == before[i] for i in before)  # recorded outcomes stand
    assert not asked_again & set(before)  # a recorded request is never asked again
    assert sorted(after) == list(range(len(after)))  # no request lost
    assert after == {i: EXPECTED[i % 6] for i in after}
    ids = [r["task_id"] for r in read_jsonl(out / "tasks.jsonl")]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(("status", "error", "match", "attempts"), [
    (401, TeacherError, r"authentication failed .*HTTP 401", 1),
    (400, TeacherError, r"refused the request \(HTTP 400\)", 1),
    (429, RequestFailed, r"HTTP 429 after retries", 2),
    (500, RequestFailed, r"HTTP 500 after retries", 2),
    (503, RequestFailed, r"HTTP 503 after retries", 2),
])
def test_http_failures_map_to_teacher_errors(status, error, match, attempts):
    with serve_replay(lambda s: Answer(status=status)) as (url, replay):
        teacher = Teacher(url, "replay", retries=1, timeout=10)
        with pytest.raises(error, match=match):
            teacher.ask("lists", 1, 0)
    assert len(replay.requests) == attempts  # retried only what a retry can fix


def test_a_stalled_request_times_out():
    with serve_replay(lambda s: Answer("late", delay=3.0)) as (url, replay):
        teacher = Teacher(url, "replay", retries=0, timeout=0.5)
        t0 = time.monotonic()
        with pytest.raises(RequestFailed, match=r"timed out after 0\.5 s"):
            teacher.ask("lists", 1, 0)
        assert time.monotonic() - t0 < 2.5
    assert len(replay.requests) == 1


@pytest.fixture(scope="module")
def served():
    with serving(*tiny_model_and_tokenizer()) as url:
        yield f"{url}/v1"


def test_a_wrong_model_name_is_a_404_from_codeling_serve(served):
    with pytest.raises(TeacherError, match=r"HTTP 404.*no-such-model"):
        Teacher(served, "no-such-model", retries=0, timeout=30).ask("lists", 1, 0)


def test_completions_api_sends_one_text_prompt(served):
    with serve_replay(lambda s: f"reply {s}") as (url, replay):
        got = Teacher(url, "replay", api="completions", retries=0).ask("strings", 2, 5, seed=3)
    (req,) = replay.requests
    assert req["path"].endswith("/v1/completions") and "messages" not in req
    assert req["prompt"] == completion_prompt(build_messages("strings", 2, 5))
    assert got == "reply 8"  # seed + index
    # and against a real model server: text comes back through the same path
    text = Teacher(served, "tiny", api="completions", retries=0, max_tokens=8).ask("lists", 1, 0)
    assert isinstance(text, str) and text
