"""File I/O, error handling and small-class families.

File tasks read a file the test writes first (`write(text)` in check) or write a file the test
reads back. Error tasks raise or catch exceptions; the tests check raising with try/except.
Class tasks define a small class in the prompt and ask for a function that uses it.
"""

from codeling.tasks.synthetic.core import WORDS, FileArg, Obj, OutPath, family

F, E, OOP = "file_io", "error_handling", "oop"


def _numbers_file(r):
    return (FileArg("".join(f"{r.randint(-20, 99)}\n" for _ in range(r.randint(1, 6)))),)


def _file(text_fn):
    return lambda r: (FileArg(text_fn(r)),)


def _lines(r):
    return "\n".join(" ".join(r.choice(WORDS) for _ in range(r.randint(1, 5)))
                     for _ in range(r.randint(1, 5))) + "\n"


FILE_EDGES = [(FileArg(""),), (FileArg("one\n"),), (FileArg("a b\n\nc\n"),)]

family("count_lines", F, 2, names="count_lines line_count num_lines lines_in_file",
       args="path", ret="int", gen=_file(_lines), edges=FILE_EDGES,
       docs=["Return the number of lines in the text file at $path.",
             "Open the file $path and count its lines."],
       sols=["with open($path) as $f:\n    return len($f.readlines())",
             "$cnt = 0\nwith open($path) as $f:\n    for _ in $f:\n        $cnt += 1\nreturn $cnt"])
family("count_file_words", F, 2, names="count_file_words words_in_file file_word_count",
       args="path", ret="int", gen=_file(_lines), edges=FILE_EDGES,
       docs=["Return the total number of whitespace-separated words in the file $path.",
             "Read the text file $path and count its words."],
       sols=["with open($path) as $f:\n    return len($f.read().split())",
             "$cnt = 0\nwith open($path) as $f:\n    for line in $f:\n        $cnt += len(line.split())\nreturn $cnt"])
family("first_line", F, 2, names="first_line read_first_line head_line",
       args="path", ret="str", gen=_file(_lines), edges=FILE_EDGES,
       docs=["Return the first line of the file $path without its newline ('' for an empty file).",
             "Read just the first line of $path, stripped of the trailing newline."],
       sols=["with open($path) as $f:\n    return $f.readline().rstrip('\\n')",
             "with open($path) as $f:\n    lines = $f.read().splitlines()\nreturn lines[0] if lines else ''"])
family("sum_file_numbers", F, 2, names="sum_file sum_numbers_in_file file_total",
       args="path", ret="int", gen=_numbers_file,
       edges=[(FileArg(""),), (FileArg("5\n"),), (FileArg("-3\n\n4\n"),)],
       docs=["The file $path holds one integer per line (blank lines may occur). Return their sum.",
             "Read integers from $path, one per line, skipping empty lines, and return the total."],
       sols=["$acc = 0\nwith open($path) as $f:\n    for line in $f:\n        if line.strip():\n"
             "            $acc += int(line)\nreturn $acc",
             "with open($path) as $f:\n    return sum(int(line) for line in $f if line.strip())"])
family("nonblank_lines", F, 2, names="read_lines nonblank_lines load_lines",
       args="path", ret="List[str]", gen=_file(_lines), edges=FILE_EDGES,
       docs=["Return the lines of the file $path that are not blank, without newline characters."],
       sols=["with open($path) as $f:\n    return [line.rstrip('\\n') for line in $f if line.strip()]",
             "$res = []\nwith open($path) as $f:\n    for line in $f.read().splitlines():\n"
             "        if line.strip():\n            $res.append(line)\nreturn $res"])
family("longest_line_len", F, 2, names="longest_line_length max_line_length widest_line",
       args="path", ret="int", gen=_file(_lines), edges=FILE_EDGES,
       docs=["Return the length of the longest line in the file $path, not counting newlines "
             "(0 for an empty file)."],
       sols=["with open($path) as $f:\n    return max((len(line.rstrip('\\n')) for line in $f), default=0)"])
family("count_word_in_file", F, 2, names="count_word_in_file word_occurrences_in_file word_frequency_in_file",
       args="path", ret="int", consts={"k": lambda r: r.choice(WORDS[:8])},
       gen=_file(lambda r: "\n".join(" ".join(r.choice(WORDS[:8]) for _ in range(r.randint(1, 5)))
                                     for _ in range(r.randint(1, 4))) + "\n"),
       edges=FILE_EDGES,
       docs=["Return how many times the word $k occurs as a whole word in the file $path."],
       sols=["with open($path) as $f:\n    return $f.read().split().count($k)"])
family("write_lines", F, 2, names="write_lines save_lines dump_lines",
       args="path:str:outpath words", ret="None", writes=True,
       gen=lambda r: (OutPath(), r.sample(WORDS, r.randint(1, 5))), edges=[(OutPath(), []), (OutPath(), [""])],
       docs=["Write each string of $words to the file $path on its own line.",
             "Save $words to $path, one per line, each line ending with a newline."],
       sols=["with open($path, 'w') as $f:\n    for $w in $words:\n        $f.write($w + '\\n')",
             "with open($path, 'w') as $f:\n    $f.write(''.join($w + '\\n' for $w in $words))"])
family("write_squares", F, 2, names="write_squares save_squares squares_to_file",
       args="path:str:outpath nums", ret="None", writes=True,
       gen=lambda r: (OutPath(), [r.randint(-9, 12) for _ in range(r.randint(1, 5))]),
       edges=[(OutPath(), []), (OutPath(), [0])],
       docs=["Write the square of each number in $nums to the file $path, one per line."],
       sols=["with open($path, 'w') as $f:\n    for $v in $nums:\n        $f.write(f'{$v * $v}\\n')",
             "with open($path, 'w') as $f:\n    $f.writelines(str($v ** 2) + '\\n' for $v in $nums)"])

family("safe_divide", E, 2, names="safe_divide divide_or_none careful_divide",
       args="a b", ret="Optional[float]",
       gen=lambda r: (r.randint(-50, 99), r.choice([0, r.randint(1, 9), -r.randint(1, 9)])),
       edges=[(5, 0), (0, 3), (-8, 2)],
       docs=["Return $a / $b, or None if $b is zero.",
             "Divide $a by $b, catching a ZeroDivisionError and returning None in that case."],
       sols=["try:\n    return $a / $b\nexcept ZeroDivisionError:\n    return None",
             "if $b == 0:\n    return None\nreturn $a / $b"])
family("parse_int_default", E, 2, names="parse_int to_int_or_default safe_int",
       args="s:str:word default", ret="int",
       gen=lambda r: (r.choice([str(r.randint(-99, 999)), r.choice(WORDS), "12a", " 7 "]), r.randint(-1, 1)),
       edges=[("", 0), ("-5", 0), ("x", -1)],
       docs=["Convert $s to an int; if it is not a valid integer, return $default instead.",
             "Try to parse $s as an integer and fall back to $default when that fails."],
       sols=["try:\n    return int($s)\nexcept ValueError:\n    return $default"])
family("safe_index", E, 2, names="safe_get get_or_default item_or_default",
       args="nums idx:int:int default", ret="int",
       gen=lambda r: ([r.randint(0, 30) for _ in range(r.randint(1, 5))], r.randint(-6, 6), r.randint(-1, 0)),
       edges=[([], 0, -1), ([4], 0, 0), ([1, 2], 5, -1)],
       docs=["Return $nums[$idx] (negative indices count from the end), or $default when the index "
             "is out of range."],
       sols=["try:\n    return $nums[$idx]\nexcept IndexError:\n    return $default",
             "if -len($nums) <= $idx < len($nums):\n    return $nums[$idx]\nreturn $default"])
family("checked_sqrt", E, 2, names="int_sqrt checked_isqrt floor_sqrt", raises=True,
       args="n", ret="int", gen=lambda r: (r.choice([r.randint(0, 200), -r.randint(1, 50)]),),
       edges=[(0,), (-1,), (1,)], setup="import math\n",
       docs=["Return the integer square root of $n (rounded down). Raise ValueError if $n is negative.",
             "Compute floor(sqrt($n)); a negative $n raises a ValueError."],
       sols=["if $n < 0:\n    raise ValueError('negative input')\nreturn math.isqrt($n)",
             "if $n < 0:\n    raise ValueError(f'{$n} is negative')\nr = 0\nwhile (r + 1) * (r + 1) <= $n:\n    r += 1\nreturn r"])
family("validate_age", E, 2, names="validate_age check_age parse_age", raises=True,
       args="n", ret="int", gen=lambda r: (r.randint(-20, 170),), edges=[(0,), (-1,), (150,), (151,)],
       docs=["Return $n if it is a valid age (0 to 150 inclusive); otherwise raise ValueError.",
             "Check that $n lies between 0 and 150. Raise a ValueError if not, else return it."],
       sols=["if $n < 0 or $n > 150:\n    raise ValueError('invalid age')\nreturn $n",
             "if not 0 <= $n <= 150:\n    raise ValueError(f'age out of range: {$n}')\nreturn $n"])
family("strict_average", E, 2, names="strict_average mean_or_raise average_checked", raises=True,
       args="nums", ret="float", edges=[([],), ([3],), ([-2, 2],)],
       docs=["Return the mean of $nums. Raise ValueError if $nums is empty.",
             "Average the numbers in $nums, raising a ValueError for an empty list."],
       sols=["if not $nums:\n    raise ValueError('empty list')\nreturn sum($nums) / len($nums)"])
family("checked_factorial", E, 3, names="checked_factorial factorial_strict safe_factorial", raises=True,
       args="n", ret="int", gen=lambda r: (r.randint(-5, 10),), edges=[(0,), (-1,), (1,)],
       docs=["Return $n! for $n >= 0 and raise ValueError for negative $n."],
       sols=["if $n < 0:\n    raise ValueError('n must be non-negative')\nresult = 1\nfor i in range(2, $n + 1):\n"
             "    result *= i\nreturn result"])
family("lookup_or_raise", E, 2, names="require_key lookup_strict must_get", raises=True,
       args="d key", ret="int",
       gen=lambda r: (lambda dd: (dd, r.choice([*dd, "nope"])))({w: r.randint(0, 9) for w in r.sample(WORDS, 3)}),
       edges=[({}, "a"), ({"a": 0}, "a")],
       docs=["Return $d[$key]; if $key is missing, raise KeyError.",
             "Look up $key in $d and let a KeyError propagate when it is absent."],
       sols=["return $d[$key]", "if $key not in $d:\n    raise KeyError($key)\nreturn $d[$key]"])
family("count_convertible", E, 2, names="count_numbers count_parsable numeric_count",
       args="words", ret="int",
       gen=lambda r: ([r.choice([str(r.randint(-9, 99)), r.choice(WORDS), "3.5"]) for _ in range(r.randint(2, 7))],),
       edges=[([],), (["x"],), (["-1", "1"],)],
       docs=["Return how many strings in $words can be converted with int() without an error.",
             "Count the entries of $words that parse as integers, using try/except."],
       sols=["$cnt = 0\nfor $w in $words:\n    try:\n        int($w)\n    except ValueError:\n        continue\n"
             "    $cnt += 1\nreturn $cnt"])

POINT = "from dataclasses import dataclass\n\n\n@dataclass\nclass Point:\n    x: int\n    y: int\n"
ITEM = "class Item:\n    def __init__(self, name, price):\n        self.name = name\n        self.price = price\n"
RECT = ("class Rectangle:\n    def __init__(self, width, height):\n        self.width = width\n"
        "        self.height = height\n\n    def area(self):\n        return self.width * self.height\n")
ACCOUNT = ("class Account:\n    def __init__(self):\n        self.balance = 0\n\n    def deposit(self, amount):\n"
           "        self.balance += amount\n\n    def withdraw(self, amount):\n        if amount > self.balance:\n"
           "            raise ValueError('insufficient funds')\n        self.balance -= amount\n")


def _pt(r):
    return Obj("Point", (r.randint(-9, 9), r.randint(-9, 9)))


def _items(r):
    return [Obj("Item", (w, r.randint(1, 50))) for w in r.sample(WORDS, r.randint(1, 5))]


family("manhattan", OOP, 2, names="manhattan_distance taxicab grid_distance", setup=POINT,
       args="p:Point:int q:Point:int", ret="int", gen=lambda r: (_pt(r), _pt(r)),
       edges=[(Obj("Point", (0, 0)), Obj("Point", (0, 0))), (Obj("Point", (-1, 2)), Obj("Point", (1, -2)))],
       docs=["Return the Manhattan distance between the points $p and $q.",
             "Compute |$p.x - $q.x| + |$p.y - $q.y|."],
       sols=["return abs($p.x - $q.x) + abs($p.y - $q.y)"])
family("move_point", OOP, 2, names="move_point translate shift_point", setup=POINT,
       args="p:Point:int b:int:int c:int:int", ret="Point", gen=lambda r: (_pt(r), r.randint(-5, 5), r.randint(-5, 5)),
       edges=[(Obj("Point", (0, 0)), 0, 0), (Obj("Point", (1, 1)), -1, -1)],
       docs=["Return a new Point moved from $p by $b along x and $c along y.",
             "Translate the point $p by ($b, $c), returning a new Point."],
       sols=["return Point($p.x + $b, $p.y + $c)", "return Point(x=$p.x + $b, y=$p.y + $c)"])
family("total_price", OOP, 2, names="total_price cart_total sum_prices", setup=ITEM,
       args="objs:List[Item]:ints", ret="int", gen=lambda r: (_items(r),), edges=[([],), ([Obj("Item", ("pen", 0))],)],
       docs=["Return the sum of the prices of the items in $objs.",
             "Each Item has a name and a price. Add up the prices of $objs."],
       sols=["return sum(item.price for item in $objs)",
             "$acc = 0\nfor item in $objs:\n    $acc += item.price\nreturn $acc"])
family("priciest_name", OOP, 3, names="most_expensive priciest_item top_item_name", setup=ITEM,
       args="objs:List[Item]:ints", ret="Optional[str]", gen=lambda r: (_items(r),),
       edges=[([],), ([Obj("Item", ("pen", 3))],)],
       docs=["Return the name of the most expensive Item in $objs (the first on ties), or None if "
             "the list is empty."],
       sols=["if not $objs:\n    return None\nreturn max($objs, key=lambda item: item.price).name",
             "$best = None\nfor item in $objs:\n    if $best is None or item.price > $best.price:\n"
             "        $best = item\nreturn $best.name if $best else None"])
family("total_area", OOP, 2, names="total_area sum_areas combined_area", setup=RECT,
       args="rects:List[Rectangle]:ints", ret="int",
       gen=lambda r: ([Obj("Rectangle", (r.randint(0, 9), r.randint(1, 9))) for _ in range(r.randint(1, 4))],),
       edges=[([],), ([Obj("Rectangle", (0, 5))],)],
       docs=["Return the total area of the rectangles in $rects.", "Add up rect.area() for every Rectangle in $rects."],
       sols=["return sum(rect.area() for rect in $rects)",
             "$acc = 0\nfor rect in $rects:\n    $acc += rect.width * rect.height\nreturn $acc"])
family("run_account", OOP, 3, names="final_balance run_transactions apply_transactions", setup=ACCOUNT,
       args="nums", ret="int",
       gen=lambda r: ([r.choice([1, 1, -1]) * r.randint(1, 30) for _ in range(r.randint(1, 6))],),
       edges=[([],), ([-5],), ([10, -10],)],
       docs=["Create an Account and apply $nums in order: a positive amount is deposited, a negative "
             "one is withdrawn. Skip withdrawals that raise ValueError. Return the final balance."],
       sols=["account = Account()\nfor amount in $nums:\n    if amount >= 0:\n        account.deposit(amount)\n"
             "    else:\n        try:\n            account.withdraw(-amount)\n        except ValueError:\n"
             "            pass\nreturn account.balance"])
