"""Logic and conditional families: all/any, if-elif chains, early returns, None handling."""

from codeling.tasks.synthetic.core import family
from codeling.tasks.synthetic.lists import PREDICATES, _pred_edges

C = "logic"

for p, (cond, adj, tag, consts) in PREDICATES.items():
    family(f"all_{p}", C, 2, names=[f"all_{tag}", f"every_{tag}", f"are_all_{tag}", f"only_{tag}_values"],
           args="nums", ret="bool", consts=consts, edges=_pred_edges(p, alone=True),
           docs=[f"Return True if every number in $nums is {adj}.",
                 f"Check whether all elements of $nums are {adj}. An empty list counts as True.",
                 f"Given a list of integers, report whether each one of them is {adj}."],
           sols=[f"return all({cond} for $v in $nums)",
                 f"for $v in $nums:\n    if not ({cond}):\n        return False\nreturn True"])
    family(f"any_{p}", C, 2, names=[f"any_{tag}", f"has_{tag}", f"contains_{tag}", f"some_{tag}"],
           args="nums", ret="bool", consts=consts, edges=_pred_edges(p, alone=True),
           docs=[f"Return True if at least one number in $nums is {adj}.",
                 f"Check whether any element of $nums is {adj}.",
                 f"Given a list of integers, report whether it contains a value that is {adj}."],
           sols=[f"return any({cond} for $v in $nums)",
                 f"for $v in $nums:\n    if {cond}:\n        return True\nreturn False"])

family("letter_grade", C, 2, names="letter_grade grade to_grade score_to_letter",
       args="n:int:int", ret="str", edges=[(0,), (90,), (100,), (59,)],
       gen=lambda r: (r.choice([r.randint(0, 100), r.choice([59, 60, 69, 70, 79, 80, 89, 90])]),),
       docs=["Return the letter grade for a score $n from 0 to 100: 'A' for 90 and above, 'B' for "
             "80-89, 'C' for 70-79, 'D' for 60-69 and 'F' below 60.",
             "Convert the numeric score $n into a letter. 90+ is 'A', 80+ is 'B', 70+ is 'C', 60+ is "
             "'D', anything lower is 'F'."],
       sols=["if $n >= 90:\n    return 'A'\nelif $n >= 80:\n    return 'B'\nelif $n >= 70:\n    return 'C'\n"
             "elif $n >= 60:\n    return 'D'\nelse:\n    return 'F'",
             "for limit, letter in ((90, 'A'), (80, 'B'), (70, 'C'), (60, 'D')):\n    if $n >= limit:\n"
             "        return letter\nreturn 'F'"])
family("sign_word", C, 1, names="describe_sign sign_name classify_number pos_neg_zero",
       args="n", ret="str",
       docs=["Return 'positive', 'negative' or 'zero' depending on the sign of $n.",
             "Classify $n as 'positive', 'negative' or 'zero'."],
       sols=["if $n > 0:\n    return 'positive'\nelif $n < 0:\n    return 'negative'\nreturn 'zero'",
             "if $n == 0:\n    return 'zero'\nreturn 'positive' if $n > 0 else 'negative'"])
family("triangle_kind", C, 2, names="triangle_type classify_triangle triangle_kind",
       args="a:int:posint b:int:posint c:int:posint", ret="str",
       gen=lambda r: r.choice([(3, 3, 3), (r.randint(2, 9),) * 2 + (r.randint(1, 5),)]) if r.random() < .4
       else (r.randint(1, 9), r.randint(1, 9), r.randint(1, 9)),
       edges=[(1, 1, 1), (1, 2, 3), (2, 2, 3)],
       docs=["Given three side lengths, return 'invalid' if they cannot form a triangle (some side is "
             "at least the sum of the other two), else 'equilateral', 'isosceles' or 'scalene'."],
       sols=["if $a + $b <= $c or $a + $c <= $b or $b + $c <= $a:\n    return 'invalid'\n"
             "if $a == $b == $c:\n    return 'equilateral'\nif $a == $b or $b == $c or $a == $c:\n"
             "    return 'isosceles'\nreturn 'scalene'",
             "x, y, z = sorted([$a, $b, $c])\nif x + y <= z:\n    return 'invalid'\n"
             "distinct = len({x, y, z})\nreturn {1: 'equilateral', 2: 'isosceles', 3: 'scalene'}[distinct]"])
family("fizzbuzz_one", C, 2, names="fizzbuzz fizzbuzz_word fizzbuzz_label",
       args="n:int:posint", ret="str", gen=lambda r: (r.choice([15, 30, 45, r.randint(1, 100), 3 * r.randint(1, 20), 5 * r.randint(1, 20)]),),
       edges=[(1,), (15,), (3,), (5,)],
       docs=["Return 'FizzBuzz' if $n is divisible by 15, 'Fizz' if only by 3, 'Buzz' if only by 5, "
             "and otherwise $n as a string."],
       sols=["if $n % 15 == 0:\n    return 'FizzBuzz'\nif $n % 3 == 0:\n    return 'Fizz'\nif $n % 5 == 0:\n"
             "    return 'Buzz'\nreturn str($n)",
             "word = ''\nif $n % 3 == 0:\n    word += 'Fizz'\nif $n % 5 == 0:\n    word += 'Buzz'\nreturn word or str($n)"])
family("in_range", C, 1, names="in_range between is_within within_bounds",
       args="n lo hi", ret="bool",
       gen=lambda r: (r.randint(-20, 40), r.randint(-10, 5), r.randint(10, 30)),
       edges=[(0, 0, 5), (5, 0, 5), (-1, 0, 5)],
       docs=["Return True if $lo <= $n <= $hi.", "Check whether $n lies in the closed interval [$lo, $hi]."],
       sols=["return $lo <= $n <= $hi", "return $n >= $lo and $n <= $hi",
             "if $n < $lo or $n > $hi:\n    return False\nreturn True"])
family("xor_bool", C, 1, names="xor exactly_one either_but_not_both",
       args="flag flag2:bool:bool", ret="bool",
       gen=lambda r: (r.random() < .5, r.random() < .5), edges=[(True, True), (False, False), (True, False)],
       docs=["Return True if exactly one of $flag and $flag2 is True.", "Compute the exclusive or of two booleans."],
       sols=["return $flag != $flag2", "return ($flag or $flag2) and not ($flag and $flag2)"])
family("value_or_default", C, 1, names="value_or_default coalesce or_default with_default",
       args="n:Optional[int]:int default", ret="int",
       gen=lambda r: (r.choice([None, r.randint(-9, 50)]), r.randint(-5, 5)),
       edges=[(None, 0), (0, 7), (None, -1)],
       docs=["Return $n unless it is None, in which case return $default.",
             "If $n is None give back $default, otherwise $n itself."],
       sols=["return $default if $n is None else $n", "if $n is None:\n    return $default\nreturn $n"])
family("both_positive", C, 1, names="both_positive all_positive_pair two_positive",
       args="a b", ret="bool", edges=[(0, 5), (1, 1), (-1, 3)],
       docs=["Return True if $a and $b are both greater than zero.", "Check that neither $a nor $b is zero or negative."],
       sols=["return $a > 0 and $b > 0", "return min($a, $b) > 0"])
family("ticket_price", C, 2, names="ticket_price price_for_age admission_fee",
       args="n:int:nat", ret="int", edges=[(0,), (12,), (65,), (13,)],
       gen=lambda r: (r.choice([r.randint(0, 90), r.choice([2, 3, 12, 13, 64, 65])]),),
       consts={"k": lambda r: r.choice([8, 10, 12, 15])},
       docs=["Return the ticket price for someone aged $n: free under 3, half of $k (rounded down) "
             "from 3 to 12, $k from 13 to 64, and $k minus 2 from 65 up."],
       sols=["if $n < 3:\n    return 0\nif $n <= 12:\n    return $k // 2\nif $n < 65:\n    return $k\nreturn $k - 2"])
family("three_way_compare", C, 1, names="cmp three_way order_of",
       args="a b", ret="int", edges=[(0, 0), (-1, 1), (5, -5)],
       docs=["Return -1 if $a < $b, 1 if $a > $b and 0 if they are equal.",
             "Compare $a with $b, giving -1, 0 or 1."],
       sols=["if $a < $b:\n    return -1\nif $a > $b:\n    return 1\nreturn 0", "return ($a > $b) - ($a < $b)"])
family("valid_password", C, 2, names="is_valid_password strong_password check_password",
       args="s:str:mixed", ret="bool", consts={"k": lambda r: r.randint(6, 9)},
       gen=lambda r: (r.choice(["abc", "password", "pass1234", "Secret99", "x1y2z3w4", "12345678abc"])
                      + r.choice(["", "7", "Q"]),),
       edges=[("",), ("abcdefg1",), ("12345678",)],
       docs=["Return True if $s has at least $k characters and contains at least one letter and at "
             "least one digit."],
       sols=["if len($s) < $k:\n    return False\nhas_letter = any($cc.isalpha() for $cc in $s)\n"
             "has_digit = any($cc.isdigit() for $cc in $s)\nreturn has_letter and has_digit"])
family("is_vowel", C, 1, names="is_vowel vowel check_vowel",
       args="ch", ret="bool", gen=lambda r: (r.choice("aeiouAEIbcdxyzK"),), edges=[("a",), ("y",), ("E",)],
       docs=["Return True if the single character $ch is a vowel (a, e, i, o or u, either case).",
             "Check whether $ch is one of the letters a, e, i, o, u, ignoring case."],
       sols=["return $ch.lower() in 'aeiou'", "return $ch in 'aeiouAEIOU'"])
family("safe_first_word", C, 2, names="first_word leading_word first_token",
       args="s:str:text", ret="Optional[str]", edges=[("",), ("   ",), ("one",)],
       docs=["Return the first whitespace-separated word of $s, or None if $s has no words."],
       sols=["parts = $s.split()\nif not parts:\n    return None\nreturn parts[0]",
             "for $w in $s.split():\n    return $w\nreturn None"])
family("max_or_none", C, 2, names="max_or_none safe_max largest_or_none",
       args="nums", ret="Optional[int]",
       docs=["Return the largest element of $nums, or None when $nums is empty.",
             "Safely find the maximum of $nums; an empty list gives None."],
       sols=["if not $nums:\n    return None\nreturn max($nums)", "return max($nums, default=None)"])
family("majority_true", C, 2, names="majority mostly_true more_true_than_false",
       args="flags", ret="bool",
       docs=["Return True if more than half of the booleans in $flags are True.",
             "Decide whether True is a strict majority of $flags."],
       sols=["return sum($flags) * 2 > len($flags)",
             "$cnt = 0\nfor $v in $flags:\n    if $v:\n        $cnt += 1\nreturn $cnt > len($flags) / 2"])
