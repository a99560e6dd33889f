"""Loop families: range, enumerate, while, nested loops, break and continue."""

from codeling.tasks.synthetic.core import family

P = "loops"

family("fizzbuzz_list", P, 2, names="fizzbuzz_list fizzbuzz_up_to fizz_buzz_sequence",
       args="n:int:nat", ret="List[str]", gen=lambda r: (r.randint(3, 16),), edges=[(0,), (1,), (5,)],
       docs=["Return the FizzBuzz strings for 1 to $n: 'Fizz' for multiples of 3, 'Buzz' for "
             "multiples of 5, 'FizzBuzz' for both, otherwise the number as a string."],
       sols=["$res = []\nfor i in range(1, $n + 1):\n    if i % 15 == 0:\n        $res.append('FizzBuzz')\n"
             "    elif i % 3 == 0:\n        $res.append('Fizz')\n    elif i % 5 == 0:\n        $res.append('Buzz')\n"
             "    else:\n        $res.append(str(i))\nreturn $res"])
family("times_table", P, 1, names="times_table multiples_of table_row first_multiples",
       args="n k:int:nat", ret="List[int]", gen=lambda r: (r.randint(-9, 12), r.randint(1, 8)),
       edges=[(3, 0), (0, 3), (-2, 2)],
       docs=["Return the first $k multiples of $n: [$n * 1, $n * 2, ..., $n * $k].",
             "Build the list $n, 2 * $n, ... up to $k terms."],
       sols=["return [$n * i for i in range(1, $k + 1)]",
             "$res = []\nfor i in range(1, $k + 1):\n    $res.append($n * i)\nreturn $res"])
family("count_down_list", P, 1, names="countdown_list count_down_from descending_range",
       args="n:int:nat", ret="List[int]",
       docs=["Return the list $n, $n - 1, ..., 0.", "Count down from $n to zero and collect the numbers."],
       sols=["return list(range($n, -1, -1))",
             "$res = []\nwhile $n >= 0:\n    $res.append($n)\n    $n -= 1\nreturn $res"])
family("range_sum", P, 1, names="sum_between range_total total_in_range",
       args="lo hi", ret="int", gen=lambda r: (lambda a: (a, a + r.randint(0, 20)))(r.randint(-10, 20)),
       edges=[(3, 3), (5, 2), (-2, 2)],
       docs=["Return the sum of all integers from $lo to $hi inclusive (0 if $lo > $hi).",
             "Add up every integer in the closed range [$lo, $hi]."],
       sols=["return sum(range($lo, $hi + 1))",
             "$acc = 0\nfor i in range($lo, $hi + 1):\n    $acc += i\nreturn $acc"])
family("sum_multiples_3_5", P, 2, names="sum_multiples multiples_sum sum_of_3_or_5",
       args="n:int:nat", ret="int", gen=lambda r: (r.randint(4, 60),), edges=[(0,), (3,), (6,)],
       docs=["Return the sum of all natural numbers below $n that are multiples of 3 or 5."],
       sols=["return sum(i for i in range($n) if i % 3 == 0 or i % 5 == 0)",
             "$acc = 0\nfor i in range($n):\n    if i % 3 == 0 or i % 5 == 0:\n        $acc += i\nreturn $acc"])
family("first_over_running", P, 2, names="steps_to_exceed first_index_over prefix_exceeds",
       args="nums:List[int]:pos k", ret="int", gen=lambda r: ([r.randint(1, 9) for _ in range(r.randint(2, 8))], r.randint(3, 30)),
       edges=[([], 1), ([5], 4), ([1, 1], 5)],
       docs=["Add the numbers of $nums from the left and return the index at which the running "
             "total first exceeds $k, or -1 if it never does.",
             "Return the first position i where $nums[0] + ... + $nums[i] > $k; -1 if there is none."],
       sols=["$acc = 0\nfor i, $v in enumerate($nums):\n    $acc += $v\n    if $acc > $k:\n        return i\nreturn -1",
             "$acc = 0\ni = 0\nwhile i < len($nums):\n    $acc += $nums[i]\n    if $acc > $k:\n        break\n"
             "    i += 1\nelse:\n    return -1\nreturn i"])
family("sum_skip_negatives", P, 2, names="sum_non_negative sum_skipping_negatives nonneg_total",
       args="nums", ret="int",
       docs=["Return the sum of $nums, skipping any negative numbers.",
             "Loop over $nums and add up only the values that are zero or more."],
       sols=["$acc = 0\nfor $v in $nums:\n    if $v < 0:\n        continue\n    $acc += $v\nreturn $acc",
             "return sum($v for $v in $nums if $v >= 0)"])
family("sum_until_zero", P, 2, names="sum_until_zero sum_before_zero total_until_stop",
       args="nums", ret="int",
       gen=lambda r: ([r.choice([0, *range(1, 12)]) for _ in range(r.randint(2, 8))],),
       edges=[([],), ([0, 5],), ([4],)],
       docs=["Return the sum of the elements of $nums up to, but not including, the first 0.",
             "Add up the numbers of $nums, stopping as soon as a zero is reached."],
       sols=["$acc = 0\nfor $v in $nums:\n    if $v == 0:\n        break\n    $acc += $v\nreturn $acc",
             "if 0 in $nums:\n    $nums = $nums[:$nums.index(0)]\nreturn sum($nums)"])
family("count_pairs_sum", P, 3, names="count_pairs pairs_with_sum pair_count",
       args="nums k:int:int", ret="int",
       gen=lambda r: ([r.randint(0, 9) for _ in range(r.randint(2, 7))], r.randint(2, 14)),
       edges=[([], 3), ([3], 6), ([1, 1, 1], 2)],
       docs=["Return the number of index pairs i < j with $nums[i] + $nums[j] == $k.",
             "Count, with two nested loops, the pairs of positions whose values sum to $k."],
       sols=["$cnt = 0\nfor i in range(len($nums)):\n    for j in range(i + 1, len($nums)):\n"
             "        if $nums[i] + $nums[j] == $k:\n            $cnt += 1\nreturn $cnt"])
family("indices_of", P, 2, names="indices_of positions_of where find_all",
       args="nums n", ret="List[int]",
       gen=lambda r: ([r.randint(0, 4) for _ in range(r.randint(2, 8))], r.randint(0, 5)),
       edges=[([], 1), ([2], 2), ([1, 1], 1)],
       docs=["Return the list of indices at which $n occurs in $nums.",
             "Find every position of $n in $nums, in increasing order."],
       sols=["return [i for i, $v in enumerate($nums) if $v == $n]",
             "$res = []\nfor i in range(len($nums)):\n    if $nums[i] == $n:\n        $res.append(i)\nreturn $res"])
family("halving_steps", P, 2, names="halving_steps count_halvings steps_to_one",
       args="n:int:posint", ret="int", gen=lambda r: (r.randint(1, 5000),), edges=[(1,), (2,), (3,)],
       docs=["Return how many times $n can be integer-divided by 2 before it reaches 1.",
             "Count the steps of repeatedly replacing $n with $n // 2 until it equals 1."],
       sols=["$cnt = 0\nwhile $n > 1:\n    $n //= 2\n    $cnt += 1\nreturn $cnt", "return $n.bit_length() - 1"])
family("collatz_steps", P, 2, names="collatz_steps collatz_length steps_collatz",
       args="n:int:posint", ret="int", gen=lambda r: (r.randint(2, 60),), edges=[(1,), (2,), (7,)],
       docs=["Return how many Collatz steps it takes for $n to reach 1: an even number is halved, "
             "an odd number becomes 3 * n + 1."],
       sols=["$cnt = 0\nwhile $n != 1:\n    if $n % 2 == 0:\n        $n //= 2\n    else:\n        $n = 3 * $n + 1\n"
             "    $cnt += 1\nreturn $cnt"])
family("powers_of_two_upto", P, 2, names="powers_of_two_upto powers_below doubling_sequence",
       args="n:int:posint", ret="List[int]", gen=lambda r: (r.randint(1, 3000),), edges=[(1,), (2,), (0,)],
       docs=["Return the powers of two 1, 2, 4, ... that are less than or equal to $n.",
             "List every power of two not exceeding $n, smallest first."],
       sols=["$res = []\np = 1\nwhile p <= $n:\n    $res.append(p)\n    p *= 2\nreturn $res"])
family("squares_upto", P, 1, names="squares_upto first_squares list_of_squares",
       args="n:int:nat", ret="List[int]",
       docs=["Return [1, 4, 9, ...] up to $n * $n, i.e. the squares of 1 to $n.",
             "Return the squares of the integers 1 through $n."],
       sols=["return [i * i for i in range(1, $n + 1)]",
             "$res = []\nfor i in range(1, $n + 1):\n    $res.append(i ** 2)\nreturn $res"])
family("sum_odds_upto", P, 1, names="sum_odds odd_total sum_odd_numbers",
       args="n:int:nat", ret="int", gen=lambda r: (r.randint(2, 50),),
       docs=["Return the sum of the odd numbers from 1 to $n inclusive.", "Add all odd integers not greater than $n."],
       sols=["return sum(range(1, $n + 1, 2))",
             "$acc = 0\nfor i in range(1, $n + 1):\n    if i % 2 == 1:\n        $acc += i\nreturn $acc"])
family("alternating_sum", P, 2, names="alternating_sum plus_minus_sum alt_sum",
       args="nums", ret="int",
       docs=["Return $nums[0] - $nums[1] + $nums[2] - $nums[3] + ... (0 for an empty list).",
             "Add the elements at even indices and subtract those at odd indices."],
       sols=["$acc = 0\nfor i, $v in enumerate($nums):\n    if i % 2 == 0:\n        $acc += $v\n    else:\n        $acc -= $v\nreturn $acc",
             "return sum($nums[::2]) - sum($nums[1::2])"])
family("first_repeated", P, 2, names="first_repeated first_duplicate earliest_repeat",
       args="nums", ret="Optional[int]",
       gen=lambda r: ([r.randint(0, 9) for _ in range(r.randint(2, 8))],),
       edges=[([],), ([1],), ([2, 1, 2],)],
       docs=["Return the first value of $nums that has already appeared earlier in the list, or "
             "None if all values are distinct."],
       sols=["seen = set()\nfor $v in $nums:\n    if $v in seen:\n        return $v\n    seen.add($v)\nreturn None"])
family("star_triangle", P, 2, names="star_triangle triangle_pattern stairs",
       args="n:int:nat", ret="str", gen=lambda r: (r.randint(2, 6),), edges=[(0,), (1,)],
       consts={"k": lambda r: r.choice(["*", "#", "+"])},
       docs=["Return a text triangle of $n lines where line i (starting at 1) holds i copies of "
             "$k; lines are joined by newlines, with no trailing newline."],
       sols=["return '\\n'.join($k * i for i in range(1, $n + 1))",
             "lines = []\nfor i in range(1, $n + 1):\n    lines.append($k * i)\nreturn '\\n'.join(lines)"])
family("multiplication_grid", P, 3, names="multiplication_grid times_grid product_table",
       args="n:int:nat", ret="List[List[int]]", gen=lambda r: (r.randint(2, 4),), edges=[(0,), (1,)],
       docs=["Return an $n by $n grid where row i, column j (both from 1) holds i * j."],
       sols=["return [[i * j for j in range(1, $n + 1)] for i in range(1, $n + 1)]",
             "grid = []\nfor i in range(1, $n + 1):\n    $row = []\n    for j in range(1, $n + 1):\n"
             "        $row.append(i * j)\n    grid.append($row)\nreturn grid"])
family("digits_list", P, 2, names="digit_list split_digits to_digits",
       args="n:int:big", ret="List[int]",
       docs=["Return the decimal digits of the non-negative integer $n, most significant first."],
       sols=["return [int(d) for d in str($n)]",
             "$res = [$n % 10]\n$n //= 10\nwhile $n:\n    $res.append($n % 10)\n    $n //= 10\nreturn $res[::-1]"])
