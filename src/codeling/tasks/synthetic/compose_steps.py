"""The steps composed tasks are built from (compose.py assembles them): a declarative table
per kind of step, each entry a phrase (or phrases) plus code, `$name` marking a variable that
compose.py renames and `{k}`-style fields its constants.
"""

from __future__ import annotations

# --- lists: filter -> map -> aggregate
PREDS = (("$v > 0", "positive"), ("$v < 0", "negative"), ("$v % 2 == 0", "even"),
         ("$v % 2 != 0", "odd"), ("$v > {k}", "greater than {k}"), ("$v < {k}", "less than {k}"),
         ("$v >= {k}", "at least {k}"), ("$v % {d} == 0", "divisible by {d}"),
         ("abs($v) > {a}", "larger than {a} in absolute value"), ("$v != 0", "nonzero"))
MAPS = (("$v * {m}", "multiply {obj} by {m}"), ("$v + {m}", "add {m} to {obj}"),
        ("$v * $v", "square {obj}"), ("abs($v)", "take the absolute value of {obj}"),
        ("$v - {m}", "subtract {m} from {obj}"), ("-$v", "negate {obj}"),
        ("$v // {d}", "floor-divide {obj} by {d}"), ("$v % {d}", "replace {obj} by its remainder modulo {d}"))
FILTER_PHRASES = ("keep only the numbers in $nums that are {adj}",
                  "take the elements of $nums that are {adj}",
                  "ignore every value of $nums that is not {adj}")
# aggregate -> (phrases, return type, loop init, loop update on X, loop result, over $vals, over GEN)
AGGS: dict[str, tuple] = {
    "sum": (("return their sum", "add them up and return the total (0 if there are none)"),
            "int", "$acc = 0", "$acc += X", "$acc", "sum($vals)", "sum(GEN)"),
    "count": (("return how many there are", "count them and return the count"),
              "int", "$cnt = 0", "$cnt += 1", "$cnt", "len($vals)", "sum(1 for _ in (GEN))"),
    "max": (("return the largest of them, or None if there are none",
             "return the maximum of the results (None when there is nothing left)"),
            "Optional[int]", "$best = None", "if $best is None or X > $best:\n    $best = X",
            "$best", "max($vals) if $vals else None", "max((GEN), default=None)"),
    "min": (("return the smallest of them, or None if there are none",
             "return the minimum of the results (None when there is nothing left)"),
            "Optional[int]", "$best = None", "if $best is None or X < $best:\n    $best = X",
            "$best", "min($vals) if $vals else None", "min((GEN), default=None)"),
    "list": (("return them as a list, keeping their order", "collect the results in a new list"),
             "List[int]", "$res = []", "$res.append(X)", "$res", "$vals", "list(GEN)"),
    "sorted": (("return them sorted from smallest to largest", "return the results in ascending order"),
               "List[int]", "$res = []", "$res.append(X)", "sorted($res)", "sorted($vals)",
               "sorted(GEN)"),
    "sorted_desc": (("return them sorted from largest to smallest",
                     "return the results in descending order"), "List[int]", "$res = []",
                    "$res.append(X)", "sorted($res, reverse=True)", "sorted($vals, reverse=True)",
                    "sorted((GEN), reverse=True)"),
    "distinct": (("return them without duplicates, in order of first appearance",
                  "drop repeated results, keeping the first of each, and return the list"),
                 "List[int]", "$res = []", "if X not in $res:\n    $res.append(X)", "$res",
                 "list(dict.fromkeys($vals))", "list(dict.fromkeys(GEN))"),
    "first": (("return the first of them, or None if there is none",
               "stop at the first one and return it (None if there is none)"),
              "Optional[int]", None, "return X", "None", "$vals[0] if $vals else None",
              "next((GEN), None)"),
    "last": (("return the last of them, or None if there is none",
              "return the final result (None when there is nothing left)"),
             "Optional[int]", "$res = None", "$res = X", "$res", "$vals[-1] if $vals else None",
             "([GEN] or [None])[-1]"),
}

# --- strings: split -> filter parts -> transform parts -> join
PART_FILTERS = (("len($w) > {k}", "that are longer than {k} characters", "long"),
                ("$w.isalpha()", "that are made only of letters", "alpha"),
                ("$w != ''", "that are not empty", "nonempty"),
                ("{c!r} in $w", "that contain the letter {c!r}", "has_" + "{c}"),
                ("$w[:1].lower() in 'aeiou'", "that start with a vowel", "vowel_start"),
                ("$w.islower()", "that are entirely in lower case", "lower"))
TRANSFORMS = (("$w.upper()", "convert {obj} to upper case"), ("$w.lower()", "convert {obj} to lower case"),
              ("$w.capitalize()", "capitalize {obj}"), ("$w[::-1]", "reverse {obj}"),
              ("$w[:{k}]", "cut {obj} down to its first {k} characters"),
              ("$w + $w[:1]", "append the first character of {obj} to its end"))
# final -> (phrase, return type, expression over the list L)
FINALS = {"join": ("join them with {sep2!r} and return the result", "str", "{sep2!r}.join(L)"),
          "rjoin": ("join them with {sep2!r} in reverse order", "str", "{sep2!r}.join(L[::-1])"),
          "count": ("return how many there are", "int", "len(L)"),
          "longest": ("return the longest of them (the first one on ties, '' if there are none)",
                      "str", "max(L, key=len, default='')")}

# --- dicts: build counts -> query
BUILDS = ("$dd = {}\nfor $w in WORDS:\n    $dd[$w] = $dd.get($w, 0) + 1",
          "$dd = {}\nfor $w in WORDS:\n    if $w in $dd:\n        $dd[$w] += 1\n    else:\n        $dd[$w] = 1",
          "$dd = {$w: WORDS.count($w) for $w in WORDS}",
          "from collections import Counter\n$dd = Counter(WORDS)")
# query -> (phrase, return type, loop form, expression form)
QUERIES = {
    "most": ("return the word that occurs most often (the first one seen on ties, None if there "
             "are no words)", "Optional[str]",
             "$best = None\nfor $key in $dd:\n    if $best is None or $dd[$key] > $dd[$best]:\n"
             "        $best = $key\nreturn $best", "return max($dd, key=$dd.get, default=None)"),
    "repeated": ("return the words that occur more than once, in order of first appearance",
                 "List[str]", "$res = []\nfor $key in $dd:\n    if $dd[$key] > 1:\n"
                 "        $res.append($key)\nreturn $res",
                 "return [$key for $key in $dd if $dd[$key] > 1]"),
    "once": ("return how many words occur exactly once", "int",
             "$cnt = 0\nfor $key in $dd:\n    if $dd[$key] == 1:\n        $cnt += 1\nreturn $cnt",
             "return sum(1 for $key in $dd if $dd[$key] == 1)"),
    "top_count": ("return the highest count (0 for an empty list)", "int",
                  "$best = 0\nfor $key in $dd:\n    $best = max($best, $dd[$key])\nreturn $best",
                  "return max($dd.values(), default=0)"),
}

# --- scans with state
SCANS = {
    "running_max": ("return the running maximum: element i of the result is the largest of the "
                    "first i + 1 values", "List[int]",
                    "$res = []\n$best = None\nfor $v in SEQ:\n    if $best is None or $v > $best:\n"
                    "        $best = $v\n    $res.append($best)\nreturn $res",
                    "return [max(SEQ[:$i + 1]) for $i in range(len(SEQ))]",
                    "from itertools import accumulate\nreturn list(accumulate(SEQ, max))"),
    "longest_run": ("return the length of the longest run of equal adjacent values (0 if there "
                    "are none)", "int",
                    "$best = 0\n$run = 0\n$prev = None\nfor $v in SEQ:\n"
                    "    $run = $run + 1 if $run and $v == $prev else 1\n    $prev = $v\n"
                    "    $best = max($best, $run)\nreturn $best",
                    "from itertools import groupby\nreturn max((len(list(g)) for _, g in groupby(SEQ)), default=0)",
                    "$best = 0\n$i = 0\nwhile $i < len(SEQ):\n    $j = $i\n"
                    "    while $j < len(SEQ) and SEQ[$j] == SEQ[$i]:\n        $j += 1\n"
                    "    $best = max($best, $j - $i)\n    $i = $j\nreturn $best"),
    "records": ("return how many values are larger than every value before them (the first "
                "one counts)", "int",
                "$cnt = 0\n$best = None\nfor $v in SEQ:\n    if $best is None or $v > $best:\n"
                "        $cnt += 1\n        $best = $v\nreturn $cnt",
                "return sum(1 for $i, $v in enumerate(SEQ) if all($v > $prev for $prev in SEQ[:$i]))",
                "$cnt = 0\nfor $i in range(len(SEQ)):\n    if $i == 0 or SEQ[$i] > max(SEQ[:$i]):\n"
                "        $cnt += 1\nreturn $cnt"),
    "reach": ("return the first index at which the running sum is at least {k}, or -1 if it "
              "never gets there", "int",
              "$acc = 0\nfor $i, $v in enumerate(SEQ):\n    $acc += $v\n    if $acc >= {k}:\n"
              "        return $i\nreturn -1",
              "from itertools import accumulate\nreturn next(($i for $i, $acc in "
              "enumerate(accumulate(SEQ)) if $acc >= {k}), -1)",
              "$acc = 0\n$i = 0\nwhile $i < len(SEQ):\n    $acc += SEQ[$i]\n    if $acc >= {k}:\n"
              "        return $i\n    $i += 1\nreturn -1"),
}
