"""Batched judging (evaluate/batch.py) gives the verdicts one process per program gives, on real
tasks and on programs that misbehave, through the real sandbox."""

from __future__ import annotations

from dataclasses import replace

import pytest

from codeling.evaluate.batch import run_batched
from codeling.evaluate.sandbox import Limits, Sandbox
from codeling.tasks.benchmarks import load_benchmark
from codeling.tasks.build import TRIVIAL_BODY, validation_reasons

# each misbehaves in a way a batch must not mistake for the program's own verdict
ODD = {
    "loop": "while True: pass\n",
    "swallows_alarm": "while True:\n    try:\n        while True: pass\n"
                      "    except BaseException: pass\n",
    "exit_0": "import sys; sys.exit(0)\n",
    "os_exit": "import os; os._exit(0)\n",
    "thread_left": "import threading, time\n"
                   "threading.Thread(target=time.sleep, args=(2,)).start()\n",
    "output_limit": "print('x' * 300_000)\n",
    "writes_file": "open('a.txt', 'w').write('1')\nassert open('a.txt').read() == '1'\n",
    "sees_no_file": "import os\nassert not os.listdir('.')\n",
    "writes_outside": "open('../leak.txt', 'w').write('1')\n",
    "patches_builtins": "import builtins\nbuiltins.len = lambda x: 0\nbuiltins.zz = 1\n",
    "uses_builtins": "assert len([1]) == 1\nzz\n",
    "sets_decimal": "import decimal\ndecimal.getcontext().prec = 3\n",
    "uses_decimal": "import decimal\nassert len(str(decimal.Decimal(1) / decimal.Decimal(3))) == 30\n",
    "recursion_limit": "import sys; sys.setrecursionlimit(60)\n",
    "deep": "def r(n): return 0 if n == 0 else 1 + r(n - 1)\nassert r(500) == 500\n",
    "memory": "x = ' ' * (2 << 30)\n",
    "recursion": "def r(n): return r(n + 1)\nr(0)\n",
    "own_alarm": "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n",
    "writes_fd_1": "import os; os.write(1, b'pppp'); os.write(2, b'??')\n",
    "closes_fd_1": "import os; os.close(1)\n",
    "custom_error": "class Boom(Exception): pass\nraise Boom('x')\n",
    "syntax": "def f(:\n",
    "lazy_annotations": "def f(x: Undefined) -> Nope:\n    return 1\nassert f(2) == 1\n",
}


def verdict(res) -> tuple[str, str]:
    """What validation reads of a result: the status and the reason's exception type."""
    return res.status, res.reason.split(":")[0]


@pytest.fixture(scope="module")
def sb():
    with Sandbox(Limits(timeout=1.0, output_bytes=100_000), workers=2) as box:
        yield box


def test_misbehaving_programs_get_their_one_process_verdicts(sb):
    progs = list(ODD.values()) * 2  # twice: each also runs after every other one
    alone = sb.run_all(progs)
    batched = run_batched(sb, progs, chunk=7)
    assert [verdict(r) for r in batched] == [verdict(r) for r in alone]
    by_name = dict(zip(ODD, batched))
    assert by_name["loop"].status == "timed out"
    assert by_name["uses_builtins"].reason.startswith("NameError")  # the patch was undone
    assert by_name["output_limit"].reason == "output limit exceeded"


def test_real_tasks_are_judged_in_batches(sb):
    tasks = load_benchmark("mini")
    wrong = "    return None\n"
    progs = [t.program(body) for t in tasks
             for body in (t.canonical_solution, TRIVIAL_BODY, wrong)]
    progs.append("assert False, 'with a message'\n")
    alone, batched = sb.run_all(progs), run_batched(sb, progs)
    assert [verdict(r) for r in batched] == [verdict(r) for r in alone]
    assert sum(r.passed for r in batched) == len(tasks)
    # a batched failure keeps its exception's type only: this verdict came from a batch
    assert alone[-1].reason == "AssertionError: with a message"
    assert batched[-1].reason == "AssertionError"


def test_validation_reasons_are_the_same_batched_or_not():
    tasks = load_benchmark("mini")
    broken = [replace(t, task_id=t.task_id + "/broken", canonical_solution="    return 1 // 0\n")
              for t in tasks[:5]]
    both = tasks + broken
    one_each = validation_reasons(both, workers=2, progress=False, batched=False)
    batched = validation_reasons(both, workers=2, progress=False)
    assert batched == one_each
    assert one_each[:len(tasks)] == [None] * len(tasks)
    assert all(r and "ZeroDivisionError" in r for r in one_each[len(tasks):])
