"""List families: element access, aggregates, maps, filters by predicate, searching, pairs."""

from codeling.tasks.synthetic.core import family

L = "lists"

# predicate name -> (condition on $v, adjective phrase, noun-ish name for identifiers, consts)
PREDICATES = {
    "positive": ("$v > 0", "positive", "positive", {}),
    "negative": ("$v < 0", "negative", "negative", {}),
    "even": ("$v % 2 == 0", "even", "even", {}),
    "odd": ("$v % 2 != 0", "odd", "odd", {}),
    "nonzero": ("$v != 0", "not zero", "nonzero", {}),
    "greater": ("$v > $k", "greater than $k", "above", {"k": lambda r: r.randint(0, 20)}),
    "less": ("$v < $k", "smaller than $k", "below", {"k": lambda r: r.randint(0, 20)}),
    "at_least": ("$v >= $k", "at least $k", "at_least", {"k": lambda r: r.randint(0, 20)}),
    "divisible": ("$v % $k == 0", "divisible by $k", "multiples", {"k": lambda r: r.randint(3, 7)}),
}
ZERO_EDGES = {"nonzero": [([0, 0, 3],), ([0],)], "even": [([2, 4, 0],)], "odd": [([1, 3, -5],)]}


def _pred_edges(p: str, alone: bool = False):
    """Boundary first (the threshold itself, alone for all/any, else between its neighbours),
    then the usual edges."""
    def edges(c: dict) -> list[tuple]:
        k = c.get("k", 0)
        first = ([k],) if alone else ([k - 1, k, k + 1],)
        return [first, ([],), ([-3],), ([7, 7],), ([k, k + 1],), *ZERO_EDGES.get(p, [])]
    return edges


for p, (cond, adj, tag, consts) in PREDICATES.items():
    family(f"keep_only_{p}", L, 1, names=[f"keep_{tag}", f"only_{tag}", f"pick_{tag}",
                                         f"{tag}_values", f"select_{tag}"],
           args="nums", ret="List[int]", consts=consts, edges=_pred_edges(p),
           docs=[f"Return a list of the numbers in $nums that are {adj}.",
                 f"Keep only the elements of $nums that are {adj}, in their original order.",
                 f"Given a list of integers, return a new list containing just the values that "
                 f"are {adj}.", f"Filter $nums down to the {adj} numbers."],
           sols=[f"return [$v for $v in $nums if {cond}]",
                 f"$res = []\nfor $v in $nums:\n    if {cond}:\n        $res.append($v)\nreturn $res",
                 f"return list(filter(lambda $v: {cond}, $nums))"])
    family(f"count_{p}", L, 1, names=[f"count_{tag}", f"num_{tag}", f"how_many_{tag}",
                                      f"n_{tag}", f"tally_{tag}"],
           args="nums", ret="int", consts=consts, edges=_pred_edges(p),
           docs=[f"Return how many numbers in $nums are {adj}.",
                 f"Count the elements of $nums that are {adj}.",
                 f"Given a list of integers, return the number of values that are {adj}."],
           sols=[f"return sum(1 for $v in $nums if {cond})",
                 f"$cnt = 0\nfor $v in $nums:\n    if {cond}:\n        $cnt += 1\nreturn $cnt",
                 f"return len([$v for $v in $nums if {cond}])"])
    family(f"sum_{p}", L, 2, names=[f"sum_{tag}", f"total_{tag}", f"add_{tag}",
                                    f"{tag}_sum"],
           args="nums", ret="int", consts=consts, edges=_pred_edges(p),
           docs=[f"Return the sum of the numbers in $nums that are {adj}.",
                 f"Add up only the elements of $nums that are {adj}.",
                 f"Given a list of integers, return the total of the values that are {adj} "
                 f"(0 if there are none)."],
           sols=[f"return sum($v for $v in $nums if {cond})",
                 f"$acc = 0\nfor $v in $nums:\n    if {cond}:\n        $acc += $v\nreturn $acc"])
    family(f"first_{p}", L, 2, names=[f"first_{tag}", f"find_first_{tag}", f"earliest_{tag}"],
           args="nums", ret="Optional[int]", consts=consts, edges=_pred_edges(p),
           docs=[f"Return the first number in $nums that is {adj}, or None if there is none.",
                 f"Find the earliest element of $nums that is {adj}. If no element is, "
                 f"return None."],
           sols=[f"for $v in $nums:\n    if {cond}:\n        return $v\nreturn None",
                 f"return next(($v for $v in $nums if {cond}), None)"])

family("list_total", L, 1, names="total list_sum add_all sum_of_elements sum_values",
       args="nums", ret="int",
       docs=["Return the sum of all numbers in $nums.", "Compute the total of the integers in $nums.",
             "Add up every element of $nums and return the result.",
             "Given a list of integers, return their sum."],
       sols=["return sum($nums)", "$acc = 0\nfor $v in $nums:\n    $acc += $v\nreturn $acc"])
family("product_list", L, 1, names="product multiply_all list_product product_of_elements prod",
       args="nums:List[int]:ints", ret="int", gen=lambda r: ([r.randint(-5, 9) for _ in range(r.randint(2, 6))],),
       docs=["Return the product of all numbers in $nums.", "Multiply together every element of $nums.",
             "Given a list of integers, return the result of multiplying them all."],
       notes=["The product of an empty list is 1."],
       sols=["$acc = 1\nfor $v in $nums:\n    $acc *= $v\nreturn $acc",
             "import math\nreturn math.prod($nums)"])
family("list_length", L, 1, names="length count_items size list_len num_elements",
       args="nums", ret="int",
       docs=["Return the number of elements in $nums.", "Count how many items $nums holds.",
             "Given a list, return its length."],
       sols=["return len($nums)", "$cnt = 0\nfor _ in $nums:\n    $cnt += 1\nreturn $cnt"])
family("average", L, 1, names="average mean avg list_average mean_value",
       args="nums", ret="float", nonempty=True,
       docs=["Return the arithmetic mean of $nums.", "Compute the average of the numbers in $nums.",
             "Given a non-empty list of integers, return their mean as a float."],
       sols=["return sum($nums) / len($nums)",
             "$acc = 0\nfor $v in $nums:\n    $acc += $v\nreturn $acc / len($nums)"])
family("max_list", L, 1, names="largest biggest maximum_of",
       args="nums", ret="int", nonempty=True,
       docs=["Return the largest number in $nums.", "Find the maximum element of the non-empty list $nums.",
             "Given a non-empty list of integers, return the biggest one."],
       sols=["return max($nums)",
             "$best = $nums[0]\nfor $v in $nums[1:]:\n    if $v > $best:\n        $best = $v\nreturn $best",
             "return sorted($nums)[-1]"])
family("min_list", L, 1, names="min_value smallest find_min min_element minimum_of",
       args="nums", ret="int", nonempty=True,
       docs=["Return the smallest number in $nums.", "Find the minimum element of the non-empty list $nums.",
             "Given a non-empty list of integers, return the least one."],
       sols=["return min($nums)",
             "$best = $nums[0]\nfor $v in $nums:\n    if $v < $best:\n        $best = $v\nreturn $best",
             "return sorted($nums)[0]"])
family("range_of_list", L, 2, names="spread value_range max_minus_min span",
       args="nums", ret="int", nonempty=True,
       docs=["Return the difference between the largest and smallest values in $nums.",
             "Compute max($nums) - min($nums) for a non-empty list."],
       sols=["return max($nums) - min($nums)", "ordered = sorted($nums)\nreturn ordered[-1] - ordered[0]"])
family("first_element", L, 1, names="first head first_item first_element get_first",
       args="nums", ret="Optional[int]",
       docs=["Return the first element of $nums, or None if it is empty.",
             "Get the item at the front of $nums. An empty list gives None."],
       sols=["if not $nums:\n    return None\nreturn $nums[0]", "return $nums[0] if $nums else None"])
family("last_element", L, 1, names="last tail_item last_item last_element get_last",
       args="nums", ret="Optional[int]",
       docs=["Return the last element of $nums, or None if it is empty.",
             "Get the final item of $nums; return None for an empty list."],
       sols=["if not $nums:\n    return None\nreturn $nums[-1]", "return $nums[-1] if $nums else None",
             "if len($nums) == 0:\n    return None\nreturn $nums[len($nums) - 1]"])
family("nth_element", L, 2, names="nth_element get_at element_at item_at",
       args="nums idx", ret="Optional[int]",
       gen=lambda r: ([r.randint(-9, 30) for _ in range(r.randint(2, 6))], r.randint(0, 7)),
       edges=[([], 0), ([4], 0), ([1, 2], 2)],
       docs=["Return the element of $nums at index $idx, or None if $idx is out of range.",
             "Get $nums[$idx] when that index exists (0-based), otherwise None."],
       sols=["if 0 <= $idx < len($nums):\n    return $nums[$idx]\nreturn None",
             "return $nums[$idx] if $idx < len($nums) else None"])
family("double_all", L, 1, names="double_all doubled double_each twice times_two",
       args="nums", ret="List[int]",
       docs=["Return a new list with every number in $nums doubled.",
             "Multiply each element of $nums by 2.", "Given a list of integers, return each one times two."],
       sols=["return [$v * 2 for $v in $nums]",
             "$res = []\nfor $v in $nums:\n    $res.append(2 * $v)\nreturn $res",
             "return list(map(lambda $v: $v * 2, $nums))"])
family("square_all", L, 1, names="square_all squares squared_list square_each",
       args="nums", ret="List[int]", edges=[([],), ([-3],), ([0, 1],)],
       docs=["Return a list of the squares of the numbers in $nums.",
             "Square every element of $nums.", "Given integers, return each one multiplied by itself."],
       sols=["return [$v * $v for $v in $nums]",
             "$res = []\nfor $v in $nums:\n    $res.append($v ** 2)\nreturn $res"])
family("add_to_all", L, 1, names="add_to_each shift_all increment_all add_k_to_all",
       args="nums k", ret="List[int]", edges=[([], 3), ([5], 0), ([1, -1], -1)],
       docs=["Return a new list where $k has been added to every element of $nums.",
             "Add $k to each number in $nums.", "Given a list and an integer $k, shift every value by $k."],
       sols=["return [$v + $k for $v in $nums]",
             "$res = []\nfor $v in $nums:\n    $res.append($v + $k)\nreturn $res"])
family("negate_all", L, 1, names="negate_all negated flip_signs negate_each",
       args="nums", ret="List[int]",
       docs=["Return a list with the sign of every number in $nums flipped.",
             "Negate each element of $nums."],
       sols=["return [-$v for $v in $nums]", "return [0 - $v for $v in $nums]"])
family("dedup", L, 2, names="dedup distinct uniq",
       args="nums", ret="List[int]",
       gen=lambda r: ([r.randint(0, 6) for _ in range(r.randint(3, 9))],),
       docs=["Return the elements of $nums without duplicates, keeping the first occurrence of each.",
             "Remove repeated values from $nums while preserving order.",
             "Given a list of integers, return a list of its distinct values in order of first "
             "appearance."],
       sols=["seen = set()\n$res = []\nfor $v in $nums:\n    if $v not in seen:\n        seen.add($v)\n"
             "        $res.append($v)\nreturn $res", "return list(dict.fromkeys($nums))"])
family("reversed_order", L, 1, names="reversed_list backwards flip_list invert_order",
       args="nums", ret="List[int]", edges=[([],), ([1],), ([2, 2, 3],)],
       docs=["Return the elements of $nums in reverse order.",
             "Reverse $nums and return the result as a new list.",
             "Given a list, return a copy of it read from the end to the start."],
       sols=["return $nums[::-1]", "return list(reversed($nums))",
             "$res = []\nfor $v in $nums:\n    $res.insert(0, $v)\nreturn $res"])
family("index_of", L, 2, names="index_of find_index position_of locate",
       args="nums n", ret="int",
       gen=lambda r: (lambda xs: (xs, r.choice([*xs, 99])))([r.randint(0, 20) for _ in range(r.randint(2, 7))]),
       edges=[([], 3), ([3], 3), ([1, 5, 5], 5)],
       docs=["Return the index of the first occurrence of $n in $nums, or -1 if it is absent.",
             "Find where $n first appears in $nums (0-based). Return -1 when it does not appear.",
             "Search $nums from the left for $n and return its position, or -1."],
       sols=["for i, $v in enumerate($nums):\n    if $v == $n:\n        return i\nreturn -1",
             "if $n in $nums:\n    return $nums.index($n)\nreturn -1"])
family("contains", L, 1, names="contains includes has_value member is_in",
       args="nums n", ret="bool",
       gen=lambda r: (lambda xs: (xs, r.choice([*xs, r.randint(21, 40)])))([r.randint(0, 20) for _ in range(r.randint(2, 7))]),
       edges=[([], 1), ([0], 0)],
       docs=["Return True if $n occurs in $nums.", "Check whether the value $n is an element of $nums.",
             "Given a list and a value, report whether the value is present."],
       sols=["return $n in $nums", "for $v in $nums:\n    if $v == $n:\n        return True\nreturn False",
             "return any($v == $n for $v in $nums)"])
family("count_value", L, 1, names="count_value occurrences count_of frequency times_seen",
       args="nums n", ret="int",
       gen=lambda r: ([r.randint(0, 5) for _ in range(r.randint(3, 9))], r.randint(0, 6)),
       edges=[([], 2), ([2], 2), ([1, 1, 1], 1)],
       docs=["Return how many times $n appears in $nums.", "Count the occurrences of $n in $nums.",
             "Given a list of integers and a value, return the number of elements equal to it."],
       sols=["return $nums.count($n)",
             "$cnt = 0\nfor $v in $nums:\n    if $v == $n:\n        $cnt += 1\nreturn $cnt",
             "return sum(1 for $v in $nums if $v == $n)"])
family("running_sum", L, 2, names="running_sum cumulative_sum prefix_sums cumsum accumulate",
       args="nums", ret="List[int]", edges=[([],), ([4],), ([-1, 1, -1],)],
       docs=["Return the running totals of $nums: element i is the sum of the first i + 1 values.",
             "Compute the cumulative sum of $nums.",
             "Given a list of integers, return the list of partial sums from the left."],
       sols=["$res = []\n$acc = 0\nfor $v in $nums:\n    $acc += $v\n    $res.append($acc)\nreturn $res",
             "import itertools\nreturn list(itertools.accumulate($nums))"])
family("pairwise_sum", L, 1, names="add_lists pairwise_sum elementwise_add zip_add sum_pairs",
       args="nums xs2", ret="List[int]",
       gen=lambda r: (lambda k: ([r.randint(-9, 20) for _ in range(k)], [r.randint(-9, 20) for _ in range(k)]))(r.randint(1, 6)),
       edges=[([], []), ([1], [-1]), ([0, 0], [5, 6])],
       docs=["Return a list whose i-th element is $nums[i] + $xs2[i]. Both lists have the same length.",
             "Add the two equal-length lists $nums and $xs2 element by element."],
       sols=["return [p + q for p, q in zip($nums, $xs2)]",
             "return [$nums[i] + $xs2[i] for i in range(len($nums))]"])
family("pairwise_product", L, 1, names="multiply_lists elementwise_product zip_multiply",
       args="nums xs2", ret="List[int]",
       gen=lambda r: (lambda k: ([r.randint(-9, 12) for _ in range(k)], [r.randint(-9, 12) for _ in range(k)]))(r.randint(1, 6)),
       edges=[([], []), ([3], [0]), ([-2, 2], [2, 2])],
       docs=["Return the element-wise product of the equal-length lists $nums and $xs2.",
             "Multiply $nums[i] by $xs2[i] for every index and return the products as a list."],
       sols=["return [p * q for p, q in zip($nums, $xs2)]",
             "$res = []\nfor i in range(len($nums)):\n    $res.append($nums[i] * $xs2[i])\nreturn $res"])
family("dot_product", L, 2, names="dot dot_product inner_product scalar_product",
       args="nums xs2", ret="int",
       gen=lambda r: (lambda k: ([r.randint(-9, 12) for _ in range(k)], [r.randint(-9, 12) for _ in range(k)]))(r.randint(1, 6)),
       edges=[([], []), ([3], [4]), ([1, -1], [1, 1])],
       docs=["Return the dot product of the equal-length vectors $nums and $xs2.",
             "Compute the sum of $nums[i] * $xs2[i] over every index."],
       sols=["return sum(p * q for p, q in zip($nums, $xs2))",
             "$acc = 0\nfor i in range(len($nums)):\n    $acc += $nums[i] * $xs2[i]\nreturn $acc"])
family("take_first", L, 1, names="take first_n head_n take_first leading",
       args="nums k:int:nat", ret="List[int]", edges=[([], 2), ([1, 2], 0), ([5], 3)],
       docs=["Return the first $k elements of $nums (all of them if there are fewer).",
             "Take up to $k items from the start of $nums."],
       sols=["return $nums[:$k]", "return [$nums[i] for i in range(min($k, len($nums)))]"])
family("drop_first", L, 1, names="drop skip_first drop_first without_first",
       args="nums k:int:nat", ret="List[int]", edges=[([], 2), ([1, 2], 0), ([5], 3)],
       docs=["Return $nums without its first $k elements.",
             "Skip the first $k items of $nums and return the rest."],
       sols=["return $nums[$k:]", "return [$v for i, $v in enumerate($nums) if i >= $k]"])
family("second_largest", L, 2, names="second_largest runner_up second_max",
       args="nums", ret="Optional[int]", edges=[([],), ([4],), ([3, 3],), ([-1, -5, -1],)],
       docs=["Return the second largest distinct value in $nums, or None if there is none.",
             "Find the biggest number in $nums that is strictly smaller than the maximum. Return "
             "None when no such number exists."],
       sols=["values = sorted(set($nums))\nreturn values[-2] if len(values) >= 2 else None",
             "distinct = set($nums)\nif len(distinct) < 2:\n    return None\n"
             "distinct.remove(max(distinct))\nreturn max(distinct)"])
family("replace_value", L, 1, names="replace_all substitute replace_value swap_values",
       args="nums a b", ret="List[int]",
       gen=lambda r: ([r.randint(0, 5) for _ in range(r.randint(3, 8))], r.randint(0, 5), r.randint(6, 9)),
       edges=[([], 1, 2), ([1], 1, 1), ([2, 2], 3, 4)],
       docs=["Return a copy of $nums where every occurrence of $a is replaced by $b.",
             "Replace each $a in $nums with $b."],
       sols=["return [$b if $v == $a else $v for $v in $nums]",
             "$res = list($nums)\nfor i in range(len($res)):\n    if $res[i] == $a:\n        $res[i] = $b\nreturn $res"])
