"""Data-structure families: nested lists, rotation, stacks and queues, dicts, sets, matrices."""

from codeling.tasks.synthetic.core import WORDS, family

D = "data_structures"


def _ops(r):
    ops = []
    for _ in range(r.randint(2, 7)):
        ops.append(f"push {r.randint(0, 9)}" if r.random() < 0.65 else "pop")
    return (ops,)


family("flatten", D, 3, names="flatten flatten_list unnest concat_all",
       args="matrix:List[List[int]]:matrix", ret="List[int]", edges=[([],), ([[]],), ([[1], [], [2, 3]],)],
       docs=["Return a single list containing the elements of each inner list of $matrix in order.",
             "Flatten the list of lists $matrix by one level."],
       sols=["return [$v for $row in $matrix for $v in $row]",
             "$res = []\nfor $row in $matrix:\n    $res.extend($row)\nreturn $res",
             "return sum($matrix, [])"])
family("rotate_left", D, 3, names="rotate_left shift_left rotate_l",
       args="nums k:int:nat", ret="List[int]", edges=[([], 3), ([1, 2, 3], 0), ([1, 2], 5)],
       docs=["Rotate $nums to the left by $k positions and return the result.",
             "Return $nums with its first $k elements (modulo its length) moved to the end."],
       sols=["if not $nums:\n    return []\n$k %= len($nums)\nreturn $nums[$k:] + $nums[:$k]",
             "from collections import deque\nd = deque($nums)\nd.rotate(-$k)\nreturn list(d)"])
family("rotate_right", D, 3, names="rotate_right shift_right rotate_r",
       args="nums k:int:nat", ret="List[int]", edges=[([], 2), ([4, 5], 0), ([1, 2, 3], 4)],
       docs=["Rotate $nums to the right by $k positions.",
             "Return $nums with its last $k elements (modulo its length) moved to the front."],
       sols=["if not $nums:\n    return []\n$k %= len($nums)\nreturn $nums[len($nums) - $k:] + $nums[:len($nums) - $k]",
             "from collections import deque\nd = deque($nums)\nd.rotate($k)\nreturn list(d)"])
family("stack_ops", D, 3, names="run_stack simulate_stack stack_machine apply_stack_ops",
       args="words:List[str]:words", ret="List[int]", gen=_ops, edges=[([],), (["pop"],), (["push 1", "pop", "pop"],)],
       docs=["Simulate a stack. Each entry of $words is 'push X' or 'pop'; a pop on an empty stack "
             "does nothing. Return the stack contents, bottom first.",
             "Apply the operations in $words ('push N' or 'pop') to an empty stack and return the "
             "final stack as a list. Popping an empty stack is ignored."],
       sols=["stack = []\nfor op in $words:\n    if op == 'pop':\n        if stack:\n            stack.pop()\n"
             "    else:\n        stack.append(int(op.split()[1]))\nreturn stack"])
family("queue_ops", D, 3, names="run_queue simulate_queue queue_machine",
       args="words:List[str]:words", ret="List[int]", gen=_ops, edges=[([],), (["pop"],), (["push 1", "push 2", "pop"],)],
       docs=["Simulate a FIFO queue. Each entry of $words is 'push X' (enqueue) or 'pop' (dequeue, "
             "ignored when empty). Return what is left, front first.",
             "Process the queue operations in $words and return the remaining items in order."],
       sols=["from collections import deque\nq = deque()\nfor op in $words:\n    if op == 'pop':\n"
             "        if q:\n            q.popleft()\n    else:\n        q.append(int(op.split()[1]))\nreturn list(q)",
             "q = []\nfor op in $words:\n    if op == 'pop':\n        if q:\n            q.pop(0)\n    else:\n"
             "        q.append(int(op.split()[1]))\nreturn q"])
family("balanced_brackets", D, 3, names="is_balanced balanced_brackets brackets_match",
       args="s", ret="bool",
       gen=lambda r: ("".join(r.choice("()[]{}") for _ in range(r.randint(2, 8))) if r.random() < 0.5
                      else r.choice(["([])", "{[()()]}", "(())", "[{}]()", "((", "([)]"]),),
       edges=[("",), ("(",), (")(",)],
       docs=["Return True if every bracket in $s ('()', '[]', '{}') is closed in the right order.",
             "Check whether the brackets in $s are balanced and properly nested."],
       sols=["pairs = {')': '(', ']': '[', '}': '{'}\nstack = []\nfor $cc in $s:\n    if $cc in '([{':\n"
             "        stack.append($cc)\n    elif not stack or stack.pop() != pairs[$cc]:\n        return False\n"
             "return not stack"])
family("word_counts", D, 2, names="word_counts count_words_dict frequencies word_freq",
       args="words", ret="Dict[str, int]",
       gen=lambda r: ([r.choice(WORDS[:6]) for _ in range(r.randint(2, 8))],), edges=[([],), (["a"],), (["b", "b"],)],
       docs=["Return a dictionary mapping each string in $words to the number of times it appears.",
             "Count how often each word occurs in $words."],
       sols=["$res = {}\nfor $w in $words:\n    $res[$w] = $res.get($w, 0) + 1\nreturn $res",
             "from collections import Counter\nreturn dict(Counter($words))"])
family("char_counts", D, 2, names="char_counts letter_frequency count_chars_dict",
       args="s", ret="Dict[str, int]", edges=[("",), ("aa",)],
       docs=["Return a dictionary from each character of $s to how many times it occurs.",
             "Build a frequency table of the characters in $s."],
       sols=["$res = {}\nfor $cc in $s:\n    $res[$cc] = $res.get($cc, 0) + 1\nreturn $res",
             "$res = {}\nfor $cc in $s:\n    if $cc in $res:\n        $res[$cc] += 1\n    else:\n        $res[$cc] = 1\nreturn $res"])
family("group_by_first", D, 3, names="group_by_first_letter group_by_initial bucket_words",
       args="words", ret="Dict[str, List[str]]", edges=[([],), (["ab", "ac"],), ([""],)],
       nonempty=False,
       gen=lambda r: (r.sample(WORDS, r.randint(2, 7)),),
       docs=["Group the non-empty strings of $words by their first character. Return a dict from "
             "that character to the list of words, in their original order; skip empty strings."],
       sols=["$res = {}\nfor $w in $words:\n    if $w:\n        $res.setdefault($w[0], []).append($w)\nreturn $res"])
family("invert_dict", D, 2, names="invert_dict swap_keys_values reverse_mapping",
       args="d", ret="Dict[int, str]",
       gen=lambda r: (dict(zip(r.sample(WORDS, 4)[:r.randint(1, 4)], r.sample(range(50), 4))),),
       edges=[({},), ({"a": 1},)],
       docs=["Return a new dictionary with the keys and values of $d swapped. The values of $d are "
             "all distinct.", "Invert the mapping $d."],
       sols=["return {$val: $key for $key, $val in $d.items()}",
             "$res = {}\nfor $key in $d:\n    $res[$d[$key]] = $key\nreturn $res"])
family("get_default", D, 1, names="lookup get_or_default fetch value_for",
       args="d key", ret="Optional[int]", consts={"k": lambda r: r.choice([0, -1, None])},
       gen=lambda r: (lambda dd: (dd, r.choice([*dd, "missing"])))({w: r.randint(0, 9) for w in r.sample(WORDS, 3)}),
       edges=[({}, "a"), ({"a": 5}, "a")],
       docs=["Return $d[$key] if $key is present, otherwise $k.",
             "Look up $key in $d and return its value, or $k when it is missing."],
       sols=["return $d.get($key, $k)", "if $key in $d:\n    return $d[$key]\nreturn $k"])
family("sum_values", D, 1, names="sum_values total_of_values dict_total",
       args="d", ret="int",
       docs=["Return the sum of all values in $d.", "Add up the values of the dictionary $d."],
       sols=["return sum($d.values())", "$acc = 0\nfor $key in $d:\n    $acc += $d[$key]\nreturn $acc"])
family("key_of_max", D, 2, names="key_of_max best_key argmax_key top_scorer",
       args="d", ret="Optional[str]", edges=[({},), ({"a": 1},), ({"a": 2, "b": 2},)],
       docs=["Return the key of $d with the largest value (the first such key on ties), or None "
             "if $d is empty.", "Find which key in $d maps to the biggest value; None for an empty dict."],
       sols=["if not $d:\n    return None\nreturn max($d, key=$d.get)",
             "$best = None\nfor $key, $val in $d.items():\n    if $best is None or $val > $d[$best]:\n"
             "        $best = $key\nreturn $best"])
family("merge_counts", D, 2, names="merge_counts add_dicts combine_counts",
       args="d d2", ret="Dict[str, int]", edges=[({}, {}), ({"a": 1}, {}), ({"a": 1}, {"a": 2})],
       docs=["Merge two dictionaries of counts: a key present in both gets the sum of its values.",
             "Return a new dict with every key of $d and $d2; values of shared keys are added."],
       sols=["$res = dict($d)\nfor $key, $val in $d2.items():\n    $res[$key] = $res.get($key, 0) + $val\nreturn $res"])
family("common_elements", D, 2, names="common_elements shared_values in_both",
       args="nums xs2", ret="List[int]",
       gen=lambda r: ([r.randint(0, 9) for _ in range(r.randint(2, 7))], [r.randint(0, 9) for _ in range(r.randint(2, 7))]),
       edges=[([], [1]), ([1, 1], [1]), ([2], [3])],
       docs=["Return the sorted list of distinct values that appear in both $nums and $xs2.",
             "Find the values shared by $nums and $xs2, without duplicates, in ascending order."],
       sols=["return sorted(set($nums) & set($xs2))", "return sorted({$v for $v in $nums if $v in $xs2})"])
family("union_sorted", D, 2, names="union all_values merge_unique",
       args="nums xs2", ret="List[int]",
       gen=lambda r: ([r.randint(0, 9) for _ in range(r.randint(2, 6))], [r.randint(0, 9) for _ in range(r.randint(1, 6))]),
       edges=[([], []), ([1, 1], []), ([2], [2])],
       docs=["Return the sorted list of distinct values that appear in $nums or $xs2 (or both)."],
       sols=["return sorted(set($nums) | set($xs2))", "return sorted(set($nums + $xs2))"])
family("only_in_first", D, 2, names="difference only_in_first missing_from_second",
       args="nums xs2", ret="List[int]",
       gen=lambda r: ([r.randint(0, 9) for _ in range(r.randint(2, 7))], [r.randint(0, 9) for _ in range(r.randint(1, 6))]),
       edges=[([], [1]), ([1, 2], []), ([3], [3])],
       docs=["Return the sorted distinct values of $nums that do not occur in $xs2."],
       sols=["return sorted(set($nums) - set($xs2))", "return sorted({$v for $v in $nums if $v not in $xs2})"])
family("has_duplicates", D, 2, names="has_duplicates contains_duplicate any_repeats",
       args="nums", ret="bool",
       gen=lambda r: ([r.randint(0, r.choice([6, 40])) for _ in range(r.randint(2, 7))],),
       edges=[([],), ([1],), ([2, 2],)],
       docs=["Return True if some value occurs more than once in $nums.",
             "Check whether $nums contains any repeated element."],
       sols=["return len(set($nums)) != len($nums)",
             "seen = set()\nfor $v in $nums:\n    if $v in seen:\n        return True\n    seen.add($v)\nreturn False"])
family("count_unique", D, 1, names="count_unique num_distinct distinct_count",
       args="nums", ret="int",
       docs=["Return the number of distinct values in $nums.", "Count how many different numbers $nums holds."],
       sols=["return len(set($nums))"])
family("transpose", D, 3, names="transpose flip_matrix swap_rows_cols",
       args="matrix", ret="List[List[int]]",
       gen=lambda r: (lambda c: ([[r.randint(0, 9) for _ in range(c)] for _ in range(r.randint(1, 4))],))(r.randint(1, 4)),
       edges=[([[1]],), ([[1, 2, 3]],), ([[1], [2]],)],
       docs=["Return the transpose of the rectangular matrix $matrix (rows become columns).",
             "Swap the rows and columns of $matrix."],
       sols=["return [list(col) for col in zip(*$matrix)]",
             "return [[$row[j] for $row in $matrix] for j in range(len($matrix[0]))]"])
family("row_sums", D, 2, names="row_sums sum_rows totals_per_row",
       args="matrix", ret="List[int]",
       docs=["Return a list with the sum of each row of $matrix.", "Sum every inner list of $matrix."],
       sols=["return [sum($row) for $row in $matrix]",
             "$res = []\nfor $row in $matrix:\n    $res.append(sum($row))\nreturn $res"])
family("diagonal_sum", D, 2, names="diagonal_sum trace sum_diagonal",
       args="matrix", ret="int",
       gen=lambda r: (lambda n: ([[r.randint(-5, 9) for _ in range(n)] for _ in range(n)],))(r.randint(1, 4)),
       edges=[([],), ([[7]],), ([[1, 2], [3, 4]],)],
       docs=["Return the sum of the main diagonal of the square matrix $matrix.",
             "Add up $matrix[i][i] for every i."],
       sols=["return sum($matrix[i][i] for i in range(len($matrix)))",
             "$acc = 0\nfor i, $row in enumerate($matrix):\n    $acc += $row[i]\nreturn $acc"])
family("chunk", D, 3, names="chunk chunks split_into_groups batch",
       args="nums k:int:posint", ret="List[List[int]]",
       gen=lambda r: ([r.randint(0, 9) for _ in range(r.randint(2, 9))], r.randint(1, 4)),
       edges=[([], 2), ([1], 3), ([1, 2, 3, 4], 2)],
       docs=["Split $nums into consecutive groups of $k elements; the last group may be shorter.",
             "Return $nums cut into chunks of size $k."],
       sols=["return [$nums[i:i + $k] for i in range(0, len($nums), $k)]",
             "$res = []\nfor i in range(0, len($nums), $k):\n    $res.append($nums[i:i + $k])\nreturn $res"])
family("zip_to_dict", D, 2, names="zip_to_dict make_dict pair_up to_mapping",
       args="words nums", ret="Dict[str, int]",
       gen=lambda r: (lambda k: (r.sample(WORDS, k), [r.randint(0, 9) for _ in range(k)]))(r.randint(1, 5)),
       edges=[([], []), (["a"], [0])],
       docs=["Return a dictionary mapping $words[i] to $nums[i]; both lists have the same length "
             "and the strings are distinct."],
       sols=["return dict(zip($words, $nums))", "return {$words[i]: $nums[i] for i in range(len($words))}"])
family("most_common", D, 2, names="most_common mode most_frequent",
       args="nums", ret="int", nonempty=True,
       gen=lambda r: ([r.randint(0, 5) for _ in range(r.randint(2, 9))],),
       edges=[([4],), ([1, 2],), ([3, 3, 1],)],
       docs=["Return the value that occurs most often in $nums; on a tie, the one that appears first.",
             "Find the most frequent element of the non-empty list $nums (earliest on ties)."],
       sols=["return max($nums, key=$nums.count)",
             "from collections import Counter\nreturn Counter($nums).most_common(1)[0][0]"])
