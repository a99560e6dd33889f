"""The sandbox, attacked for real: every behaviour the evaluator promises has a test here."""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from codeling.evaluate.sandbox import Limits, Sandbox, run_programs

TIMEOUT = 2.0
# A private range of sandbox uids, so `pgrep -u` sees only this module's processes even while
# other evaluations run on the machine (they use the default range).
UID_BASE = 62000 + 64 * random.randrange(40)
N_UIDS = 64


def sandbox_uid_processes() -> list[str]:
    """`pgrep -u` over every sandbox uid of this module (root mode; elsewhere: nothing)."""
    if os.geteuid() != 0:
        return []
    uids = ",".join(str(UID_BASE + i) for i in range(N_UIDS))
    res = subprocess.run(["pgrep", "-a", "-u", uids], capture_output=True, text=True)
    return res.stdout.splitlines()


def zygote_family(evaluator_pid: int) -> list[int]:
    """Any mode: processes forked from the zygotes of one evaluator (they keep its cmdline)."""
    return processes_with("codeling.evaluate.zygote", f'"parent": {evaluator_pid}}}')


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def descendants(pid: int) -> list[int]:
    parent = {}
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit():
                parent[int(entry)] = int(
                    Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
    out, todo = [], [pid]
    while todo:
        me = todo.pop()
        kids = [c for c, p in parent.items() if p == me]
        out += kids
        todo += kids
    return out


def leftovers(evaluator_pid: int | None = None, pids: tuple[int, ...] = (),
              seconds: float = 2.0) -> list:
    """What is still alive after polling up to `seconds` (zombies being reaped do not count):
    processes of the sandbox uids, of one evaluator's zygotes, and any of `pids`."""
    end = time.time() + seconds
    while True:
        left = [p for p in sandbox_uid_processes() if "<defunct>" not in p]
        left += [p for p in pids if alive(p)]
        if evaluator_pid is not None:
            left += zygote_family(evaluator_pid)
        if not left or time.time() > end:
            return left
        time.sleep(0.05)


@pytest.fixture(scope="module", autouse=True)
def private_uids():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CODELING_SANDBOX_UID_BASE", str(UID_BASE))
        yield
    # the module-end check: no process of any sandbox uid survived the tests above
    assert leftovers(seconds=5.0) == []


@pytest.fixture(scope="module")
def sb():
    with Sandbox(Limits(timeout=TIMEOUT), workers=2) as box:
        yield box


def run(sb: Sandbox, code: str, timeout: float | None = None):
    return sb.run(textwrap.dedent(code), timeout)


def processes_with(*tokens: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if all(t.encode() in cmd for t in tokens):
            found.append(int(pid))
    return found


def wait_gone(token: str, seconds: float = 15.0) -> list[int]:
    end = time.time() + seconds
    while (left := processes_with(token)) and time.time() < end:
        time.sleep(0.05)
    return left


def test_isolation_uses_namespaces_on_linux(sb):
    if os.environ.get("CODELING_ALLOW_RLIMITS_ONLY"):
        pytest.skip("rlimits-only explicitly allowed")
    assert sb.mode == "namespaces"


def test_pass_and_fail_are_told_apart(sb):
    assert run(sb, "def f(x):\n    return x + 1\nassert f(1) == 2\n").passed
    res = run(sb, "assert 1 == 2, 'nope'\n")
    assert res.status == "failed" and "AssertionError: nope" in res.reason
    assert res.result.startswith("failed: ")


@pytest.mark.parametrize("code", [
    "import sys\nsys.exit(0)\n",
    "import os\nos._exit(0)\n",
    "raise SystemExit\n",
    "def check(c):\n    import sys; sys.exit(0)\ncheck(1)\nassert False\n",
    "print('passed')\nassert False\n",
    "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
    # guess the verdict channel: write a pass marker to every descriptor, then leave
    "import os\nfor fd in range(3, 64):\n    try:\n        os.write(fd, b'P1:x')\n"
    "    except OSError:\n        pass\nos._exit(0)\n",
])
def test_no_faked_passes(sb, code):
    res = run(sb, code)
    assert not res.passed, res


@pytest.mark.parametrize("code", [
    "while True:\n    pass\n",
    "sum(range(10**13))\n",
    "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n"
    "        pass\n",
    "import time\ntime.sleep(60)\n",
])
def test_hangs_end_as_failures_within_the_timeout(sb, code):
    start = time.time()
    res = run(sb, code)
    assert res.status == "timed out"
    assert time.time() - start < TIMEOUT + 1.5


def test_input_does_not_hang(sb):
    start = time.time()
    res = run(sb, "input()\n")
    assert res.status == "failed" and "EOFError" in res.reason
    assert time.time() - start < 1.0


def test_timeout_kills_the_whole_tree(sb):
    token = f"codeling-tree-{secrets.token_hex(4)}"
    res = run(sb, f"""
        import subprocess, sys
        # a child in its own session, and one that ignores SIGTERM
        subprocess.Popen(["setsid", "sleep", "300", "{token}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.Popen([sys.executable, "-c",
                          "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                          "time.sleep(300)", "{token}"])
        import os
        if os.fork() == 0:
            os.setsid()
            while True:
                pass
        while True:
            pass
    """)
    assert res.status == "timed out"
    assert wait_gone(token) == []


def test_children_die_when_a_sample_finishes(sb):
    token = f"codeling-orphan-{secrets.token_hex(4)}"
    res = run(sb, f"""
        import subprocess
        subprocess.Popen(["setsid", "sleep", "300", "{token}"])
    """)
    assert res.passed
    assert wait_gone(token) == []


def test_memory_limit(sb):
    res = run(sb, "x = bytearray(3 * 1024 ** 3)\n")
    assert res.status == "failed" and "MemoryError" in res.reason
    assert run(sb, "x = bytearray(200 * 1024 ** 2)\n").passed  # normal use still works


def test_output_limit(sb):
    res = run(sb, "import sys\nfor _ in range(100):\n    sys.stdout.write('x' * 65536)\n"
                  "sys.stdout.flush()\n")
    assert res.status == "failed" and "output limit" in res.reason


def test_file_size_limit(sb):
    res = run(sb, "open('big.bin', 'wb').write(b'x' * (64 << 20))\n")
    assert res.status == "failed"
    assert "File too large" in res.reason or "SIGXFSZ" in res.reason


def test_process_count_limit(sb):
    # a bounded spawner (never a real fork bomb): it stops at 300 on its own
    res = run(sb, """
        import os, time
        n = 0
        for _ in range(300):
            pid = os.fork()
            if pid == 0:
                time.sleep(30)
                os._exit(0)
            n += 1
        print(n)
    """)
    assert res.status == "failed" and "Resource temporarily unavailable" in res.reason


def test_no_network(sb):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(0.5)
    port = srv.getsockname()[1]
    try:
        res = run(sb, f"""
            import socket
            s = socket.create_connection(("127.0.0.1", {port}), timeout=1)
            s.sendall(b"hello")
        """)
        assert res.status == "failed" and "OSError" in res.reason
        with pytest.raises(TimeoutError):
            srv.accept()
    finally:
        srv.close()


def test_host_filesystem_is_untouched(sb, tmp_path):
    home = Path(os.path.expanduser("~"))
    tag = secrets.token_hex(4)
    canaries = [Path(f"/tmp/codeling-canary-{tag}"), home / f".codeling-canary-{tag}"]
    for c in canaries:
        c.write_text("canary")
    try:
        res = run(sb, f"""
            import io, os, posix
            hits = []
            for path in {[str(c) for c in canaries]!r}:
                for attack in (lambda: posix.unlink(path), lambda: io.open(path, "w").write("x"),
                               lambda: os.truncate(path, 0)):
                    try:
                        attack()
                        hits.append(path)
                    except OSError:
                        pass
            for new in ("/tmp/codeling-new-{tag}", {str(home / f"codeling-new-{tag}")!r},
                        "/var/tmp/codeling-new-{tag}"):
                try:
                    open(new, "w").write("x")
                except OSError:
                    pass
            open("scratch.txt", "w").write("private")  # the cwd is writable
            assert open("scratch.txt").read() == "private"
            print(hits)
        """)
        assert res.passed, res
        for c in canaries:
            assert c.read_text() == "canary"
        assert not Path(f"/tmp/codeling-new-{tag}").exists()
        assert not (home / f"codeling-new-{tag}").exists()
        assert not Path(f"/var/tmp/codeling-new-{tag}").exists()
    finally:
        for c in canaries:
            c.unlink(missing_ok=True)


def test_environment_is_scrubbed(monkeypatch):
    secret = secrets.token_hex(8)
    monkeypatch.setenv("CODELING_TEST_SECRET", secret)
    code = ("import os\nprint(dict(os.environ))\n"
            "assert 'CODELING_TEST_SECRET' not in os.environ\n")
    with Sandbox(Limits(timeout=TIMEOUT), workers=1) as box:
        res = box.run(code)
    assert res.passed, res
    assert secret not in res.output


def test_cannot_signal_processes_outside(sb):
    sibling = subprocess.Popen(["sleep", "60"])
    try:
        res = run(sb, f"import os, signal\nos.kill({sibling.pid}, signal.SIGKILL)\n")
        assert not res.passed
        time.sleep(0.2)
        assert sibling.poll() is None, "the sample killed a process outside its sandbox"
    finally:
        sibling.kill()
        sibling.wait()


def test_code_runs_unprivileged(sb):
    if os.geteuid() != 0:
        pytest.skip("not root: samples already run as this unprivileged user, nothing to drop")
    res = run(sb, "import os\nassert os.getuid() != 0 and os.geteuid() != 0\n"
                  "assert 0 not in os.getgroups()\n")
    assert res.passed, res


def test_host_processes_are_invisible(sb):
    res = run(sb, f"import os\nassert not os.path.exists('/proc/{os.getpid()}')\n"
                  "assert sorted(int(p) for p in os.listdir('/proc') if p.isdigit())"
                  " == [1, os.getpid()]\n")
    assert res.passed, res


def test_stdlib_imports_work(sb):
    res = run(sb, "import math, re, collections, heapq, hashlib, itertools, json, typing\n"
                  "import xml.dom.minidom, sqlite3, numpy\nassert math.gcd(12, 18) == 6\n")
    assert res.passed, res


def test_rlimits_fallback_still_judges_and_kills():
    with Sandbox(Limits(timeout=1.0), workers=1, isolation="rlimits") as box:
        assert box.mode == "rlimits"
        assert box.run("assert 1 + 1 == 2\n").passed
        assert not box.run("import sys\nsys.exit(0)\n").passed
        token = f"codeling-rl-{secrets.token_hex(4)}"
        res = box.run(f"import subprocess\nsubprocess.Popen(['setsid', 'sleep', '300', "
                      f"'{token}'])\nwhile True:\n    pass\n")
        assert res.status == "timed out"
        if os.geteuid() == 0:  # the per-worker uid sweep
            assert wait_gone(token) == []


def test_no_worker_outlives_the_sandbox():
    box = Sandbox(Limits(timeout=1.0), workers=2)
    box.run_all(["x = 1\n"] * 4)
    pids = [w.proc.pid for w in box._all]
    box.close()
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or \
            Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_run_programs_keeps_order():
    progs = [f"assert {i} % 2 == 0\n" for i in range(10)]
    res = run_programs(progs, timeout=2.0, workers=2)
    assert [r.passed for r in res] == [i % 2 == 0 for i in range(10)]


def test_sandbox_works_from_a_process_that_imported_torch():
    # SFT evaluates inside the training process; the zygote must not inherit torch's threads
    code = ("import torch\nfrom codeling.evaluate.sandbox import run_programs\n"
            "r = run_programs(['assert sum([1, 2]) == 3\\n'], timeout=2.0, workers=1)\n"
            "assert r[0].passed, r\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_workers_survive_the_thread_that_spawned_them():
    import threading

    with Sandbox(Limits(timeout=2.0), workers=2) as box:
        t = threading.Thread(target=lambda: box.run_all(["assert True\n"] * 4))
        t.start()
        t.join()  # the pool threads that spawned the second worker are gone now
        time.sleep(0.2)
        assert all(r.passed for r in box.run_all(["assert True\n"] * 6))


# --- no process outlives an evaluation ----------------------------------------------------

STUCK = {
    "sleep": ("    import time\n    time.sleep(10 ** 6)\n", "timed out"),
    "pipe read": ("    import os\n    r, w = os.pipe()\n    os.read(r, 1)\n", "timed out"),
    "sigstop": ("    import os, signal\n    os.kill(os.getpid(), signal.SIGSTOP)\n", "timed out"),
    "forked sleeper": ("    import os, time\n    if os.fork() == 0:\n        os.setsid()\n"
                       "        time.sleep(10 ** 6)\n    return x\n", "passed"),
}


def evaluate_cmd(tmp_path: Path, completions: list[str], timeout: float = 1.0) -> list[str]:
    task = {"task_id": "t/0", "prompt": "def f(x):\n", "entry_point": "f",
            "canonical_solution": "    return x\n", "test": "def check(c):\n    assert c(1) == 1\n"}
    (tmp_path / "p.jsonl").write_text(json.dumps(task) + "\n")
    (tmp_path / "s.jsonl").write_text("".join(
        json.dumps({"task_id": "t/0", "completion": c}) + "\n" for c in completions))
    return [sys.executable, "-m", "codeling.cli", "evaluate", "--problems",
            str(tmp_path / "p.jsonl"), "--samples", str(tmp_path / "s.jsonl"), "--out",
            str(tmp_path / "out"), "--timeout", str(timeout), "--workers", "1", "--quiet"]


@pytest.mark.parametrize("name", list(STUCK))
def test_nothing_survives_codeling_evaluate(tmp_path, name):
    completion, verdict = STUCK[name]
    start = time.time()
    # capture_output: a leftover holding our stdout/stderr would make this hang
    res = subprocess.run(evaluate_cmd(tmp_path, [completion]), capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    assert time.time() - start < 20
    row = json.loads((tmp_path / "out/results.jsonl").read_text())
    assert row["result"] == verdict
    assert leftovers() == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_killing_codeling_evaluate_mid_run_ends_everything(tmp_path, sig):
    cmd = evaluate_cmd(tmp_path, [STUCK["sleep"][0]] * 3, timeout=30)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # zygote, A, B, sample: held for 0.3 s, since a worker's set-up passes through 3 briefly
        # and a signal then would test the set-up, not a running sample
        end, since = time.time() + 30, None
        while time.time() < end and (since is None or time.time() - since < 0.3):
            since = (since or time.time()) if len(zygote_family(proc.pid)) >= 3 else None
            time.sleep(0.05)
        assert since is not None and len(zygote_family(proc.pid)) >= 3, "the sample never started"
        proc.send_signal(sig)
        start = time.time()
        proc.communicate(timeout=20)  # returns only once nothing holds its pipes
        assert time.time() - start < 10
        assert proc.returncode != 0
        assert leftovers(proc.pid) == []
    finally:
        proc.kill()
        proc.wait()


def test_close_mid_run_ends_the_program():
    box = Sandbox(Limits(timeout=30), workers=1)
    out: list = []
    t = threading.Thread(target=lambda: out.append(box.run("import time\ntime.sleep(10**6)\n")))
    t.start()
    try:
        zygote = box._all[0].proc.pid
        end = time.time() + 10
        while time.time() < end and len(descendants(zygote)) < 3:  # A, B, the sample
            time.sleep(0.05)
        tree = (zygote, *descendants(zygote))
        assert len(tree) >= 4, "the sample never started"
        start = time.time()
    finally:
        box.close()
    t.join(timeout=10)
    assert not t.is_alive() and time.time() - start < 5
    assert out[0].is_error and out[0].result.startswith("error: ")
    assert leftovers(pids=tree) == []


# --- a worker crash is not the program's failure ------------------------------------------

def _kill_running_workers(box: Sandbox, times: int, killed: list[list[int]]) -> None:
    """Kill the zygote that is running a program, `times` times (each retry gets a new one);
    `killed` gets each zygote's pid and those of its program's processes."""
    end = time.time() + 30
    while len(killed) < times and time.time() < end:
        for w in list(box._all):
            tree = descendants(w.proc.pid)
            if all(w.proc.pid != k[0] for k in killed) and len(tree) >= 3:  # A, B, the sample
                w.proc.kill()
                killed.append([w.proc.pid, *tree])
                break
        time.sleep(0.01)


@pytest.mark.parametrize("kills,status", [(1, "passed"), (2, "error")])
def test_a_crashed_worker_is_retried_then_reported_as_error(kills, status):
    with Sandbox(Limits(timeout=10), workers=1) as box:
        killed: list[list[int]] = []
        t = threading.Thread(target=_kill_running_workers, args=(box, kills, killed))
        t.start()
        res = box.run("import time\ntime.sleep(1.0)\nassert 1 + 1 == 2\n")
        t.join()
        assert len(killed) == kills
        assert res.status == status, res
        if status == "error":
            assert "sandbox worker crashed" in res.reason and not res.passed
        assert box.run("assert True\n").passed  # the pool healed
        assert box.run("assert False\n").status == "failed"
    assert leftovers(pids=tuple(p for tree in killed for p in tree)) == []  # the killed zygotes' programs died with them


# --- one namespace reused for many programs ------------------------------------------------

def test_nothing_of_one_program_reaches_the_next():
    """One worker, so both programs run in the same reused namespace: the second sees no file,
    no process and no change the first left behind, and a first program that attacks the
    namespace's PID 1 does not stop the second from being judged."""
    token = f"codeling-reuse-{secrets.token_hex(4)}"
    first = f"""
        import os, signal, subprocess
        for d in ("/tmp", "/var/tmp", "/dev/shm", "."):
            if os.path.isdir(d):
                open(os.path.join(d, "{token}"), "w").write("left behind")
        subprocess.Popen(["setsid", "sleep", "300", "{token}"])
        if os.fork() == 0:
            os.setsid()
            while True:
                pass
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL, signal.SIGSTOP):
            try:
                os.kill(1, sig)
            except OSError:
                pass
    """
    second = f"""
        import os
        for d in ("/tmp", "/var/tmp", "/dev/shm", "."):
            assert not os.path.exists(os.path.join(d, "{token}")), d
        assert sorted(int(p) for p in os.listdir("/proc") if p.isdigit()) == [1, os.getpid()]
    """
    with Sandbox(Limits(timeout=TIMEOUT), workers=1) as box:
        for _ in range(3):
            assert box.run(textwrap.dedent(first)).passed
            assert wait_gone(token, 2.0) == []
            res = box.run(textwrap.dedent(second))
            assert res.passed, res
        if box.mode == "namespaces":  # the namespace survived: the same PID 1 judged them all
            assert len(descendants(box._all[0].proc.pid)) == 2  # A and B, nothing else
