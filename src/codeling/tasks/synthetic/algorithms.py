"""Algorithm families (level 3): sorting, searching, two pointers, recursion, conversions."""

from codeling.tasks.synthetic.core import family

G = "algorithms"
SORT_DOCS = ["Return a new list with the elements of $nums in ascending order, using {alg}.",
             "Sort $nums from smallest to largest with {alg} and return the sorted list.",
             "Given a list of integers, return them sorted in non-decreasing order. Implement "
             "{alg} rather than calling sorted()."]

family("bubble_sort", G, 3, names="bubble_sort sort_bubble bubble",
       args="nums", ret="List[int]", docs=[d.format(alg="bubble sort") for d in SORT_DOCS],
       sols=["$res = list($nums)\nn = len($res)\nfor i in range(n):\n    for j in range(n - 1 - i):\n"
             "        if $res[j] > $res[j + 1]:\n            $res[j], $res[j + 1] = $res[j + 1], $res[j]\n"
             "return $res",
             "$res = $nums[:]\nswapped = True\nwhile swapped:\n    swapped = False\n"
             "    for j in range(len($res) - 1):\n        if $res[j] > $res[j + 1]:\n"
             "            $res[j], $res[j + 1] = $res[j + 1], $res[j]\n            swapped = True\nreturn $res"])
family("selection_sort", G, 3, names="selection_sort sort_selection select_sort",
       args="nums", ret="List[int]", docs=[d.format(alg="selection sort") for d in SORT_DOCS],
       sols=["$res = list($nums)\nfor i in range(len($res)):\n    m = i\n    for j in range(i + 1, len($res)):\n"
             "        if $res[j] < $res[m]:\n            m = j\n    $res[i], $res[m] = $res[m], $res[i]\nreturn $res"])
family("insertion_sort", G, 3, names="insertion_sort sort_insertion insert_sort",
       args="nums", ret="List[int]", docs=[d.format(alg="insertion sort") for d in SORT_DOCS],
       sols=["$res = list($nums)\nfor i in range(1, len($res)):\n    $val = $res[i]\n    j = i - 1\n"
             "    while j >= 0 and $res[j] > $val:\n        $res[j + 1] = $res[j]\n        j -= 1\n"
             "    $res[j + 1] = $val\nreturn $res",
             "$res = []\nfor $v in $nums:\n    i = 0\n    while i < len($res) and $res[i] <= $v:\n"
             "        i += 1\n    $res.insert(i, $v)\nreturn $res"])
family("sort_descending", G, 2, names="sort_descending sort_desc largest_first reverse_sorted",
       args="nums", ret="List[int]",
       docs=["Return the elements of $nums sorted from largest to smallest.",
             "Sort $nums in descending order and return a new list."],
       sols=["return sorted($nums, reverse=True)", "return sorted($nums)[::-1]"])
family("binary_search", G, 3, names="binary_search bsearch find_sorted search_sorted",
       args="nums:List[int]:sorted n", ret="int",
       gen=lambda r: (lambda xs: (xs, r.choice([*xs, 41, -11])))(sorted(set(r.randint(-10, 40) for _ in range(r.randint(2, 9))))),
       edges=[([], 3), ([5], 5), ([5], 4), ([1, 3], 3)],
       docs=["$nums is sorted in ascending order with no duplicates. Return the index of $n in it, "
             "or -1 if it is not there, using binary search.",
             "Find $n in the sorted list $nums by repeatedly halving the search range. Return its "
             "index, or -1 when it is missing."],
       sols=["lo, hi = 0, len($nums) - 1\nwhile lo <= hi:\n    mid = (lo + hi) // 2\n"
             "    if $nums[mid] == $n:\n        return mid\n    if $nums[mid] < $n:\n        lo = mid + 1\n"
             "    else:\n        hi = mid - 1\nreturn -1",
             "import bisect\ni = bisect.bisect_left($nums, $n)\nif i < len($nums) and $nums[i] == $n:\n"
             "    return i\nreturn -1"])
family("merge_sorted", G, 3, names="merge_sorted merge merge_lists combine_sorted",
       args="nums:List[int]:sorted xs2:List[int]:sorted", ret="List[int]",
       edges=[([], []), ([1], []), ([], [2, 3]), ([1, 1], [1])],
       docs=["Merge the two ascending lists $nums and $xs2 into one ascending list.",
             "Given two sorted lists, return a single sorted list with all of their elements."],
       sols=["i = j = 0\n$res = []\nwhile i < len($nums) and j < len($xs2):\n    if $nums[i] <= $xs2[j]:\n"
             "        $res.append($nums[i])\n        i += 1\n    else:\n        $res.append($xs2[j])\n"
             "        j += 1\nreturn $res + $nums[i:] + $xs2[j:]",
             "return sorted($nums + $xs2)"])
family("two_sum_sorted", G, 3, names="has_pair_with_sum pair_sum_exists two_sum_sorted",
       args="nums:List[int]:sorted k:int:int", ret="bool",
       gen=lambda r: (lambda xs: (xs, r.choice([xs[0] + xs[-1], r.randint(-20, 80)])))(sorted(r.randint(-10, 40) for _ in range(r.randint(2, 7)))),
       edges=[([], 0), ([5], 10), ([2, 3], 5)],
       docs=["$nums is sorted in ascending order. Return True if two different positions hold "
             "values that add up to $k.",
             "Decide whether some pair of elements at different positions of the sorted list "
             "$nums sums to $k."],
       sols=["lo, hi = 0, len($nums) - 1\nwhile lo < hi:\n    total = $nums[lo] + $nums[hi]\n"
             "    if total == $k:\n        return True\n    if total < $k:\n        lo += 1\n"
             "    else:\n        hi -= 1\nreturn False",
             "for i in range(len($nums)):\n    for j in range(i + 1, len($nums)):\n"
             "        if $nums[i] + $nums[j] == $k:\n            return True\nreturn False"])
family("in_order_check", G, 2, names="in_order sorted_check non_decreasing",
       args="nums", ret="bool",
       gen=lambda r: (r.choice([sorted(r.sample(range(-20, 50), r.randint(2, 7))), [r.randint(0, 30) for _ in range(r.randint(2, 7))]]),),
       edges=[([],), ([1],), ([2, 2],), ([3, 1],)],
       docs=["Return True if $nums is sorted in non-decreasing order.",
             "Check whether every element of $nums is less than or equal to the next one."],
       sols=["return all($nums[i] <= $nums[i + 1] for i in range(len($nums) - 1))",
             "for i in range(1, len($nums)):\n    if $nums[i - 1] > $nums[i]:\n        return False\nreturn True",
             "return $nums == sorted($nums)"])
family("rec_factorial", G, 3, names="factorial_rec rec_factorial fact_recursive",
       args="n:int:nat", ret="int",
       docs=["Return $n! computed recursively.", "Compute the factorial of $n using recursion; 0! is 1."],
       sols=["if $n <= 1:\n    return 1\nreturn $n * $fn($n - 1)", "return 1 if $n == 0 else $n * $fn($n - 1)"])
family("rec_fibonacci", G, 3, names="fib_rec fibonacci_recursive rec_fib",
       args="n:int:nat", ret="int", gen=lambda r: (r.randint(2, 16),), edges=[(0,), (1,)],
       docs=["Return the $n-th Fibonacci number recursively (fib(0) = 0, fib(1) = 1).",
             "Compute the Fibonacci number at index $n with a recursive function."],
       sols=["if $n < 2:\n    return $n\nreturn $fn($n - 1) + $fn($n - 2)"])
family("rec_power", G, 3, names="power_rec rec_power fast_power",
       args="a b:int:nat", ret="int", gen=lambda r: (r.randint(-5, 9), r.randint(0, 9)),
       edges=[(3, 0), (0, 4), (-2, 3)],
       docs=["Return $a to the power $b (with $b >= 0), computed recursively.",
             "Compute $a ** $b by recursion on the exponent."],
       sols=["if $b == 0:\n    return 1\nreturn $a * $fn($a, $b - 1)",
             "if $b == 0:\n    return 1\nhalf = $fn($a, $b // 2)\nif $b % 2:\n    return half * half * $a\n"
             "return half * half"])
family("rec_sum", G, 3, names="sum_rec rec_sum recursive_sum",
       args="nums", ret="int",
       docs=["Return the sum of $nums, computed recursively.", "Add up the elements of $nums using recursion."],
       sols=["if not $nums:\n    return 0\nreturn $nums[0] + $fn($nums[1:])"])
family("rec_reverse", G, 3, names="reverse_rec rec_reverse recursive_reverse",
       args="s", ret="str", edges=[("",), ("a",)],
       docs=["Return $s reversed, using recursion.", "Reverse the string $s recursively."],
       sols=["if len($s) <= 1:\n    return $s\nreturn $fn($s[1:]) + $s[0]"])
family("rec_digit_sum", G, 3, names="digit_sum_rec rec_digit_sum recursive_digit_sum",
       args="n:int:big", ret="int",
       docs=["Return the sum of the digits of the non-negative integer $n, computed recursively."],
       sols=["if $n < 10:\n    return $n\nreturn $n % 10 + $fn($n // 10)"])
family("rec_gcd", G, 3, names="gcd_rec euclid rec_gcd",
       args="a:int:posint b:int:posint", ret="int", edges=[(5, 0), (7, 7), (1, 10)],
       docs=["Return the greatest common divisor of $a and $b using Euclid's algorithm recursively."],
       sols=["if $b == 0:\n    return $a\nreturn $fn($b, $a % $b)"])
family("rec_count_down", G, 3, names="count_down countdown rec_countdown",
       args="n:int:nat", ret="List[int]",
       docs=["Return the list [$n, $n - 1, ..., 1] built recursively (empty when $n is 0)."],
       sols=["if $n <= 0:\n    return []\nreturn [$n] + $fn($n - 1)"])
family("max_subarray", G, 3, names="max_subarray_sum best_run_sum kadane",
       args="nums", ret="int", nonempty=True,
       docs=["Return the largest sum of a non-empty contiguous run of elements of $nums.",
             "Find the maximum total of any contiguous, non-empty slice of $nums."],
       sols=["$best = cur = $nums[0]\nfor $v in $nums[1:]:\n    cur = max($v, cur + $v)\n"
             "    $best = max($best, cur)\nreturn $best",
             "return max(sum($nums[i:j]) for i in range(len($nums)) for j in range(i + 1, len($nums) + 1))"])
family("max_window_sum", G, 3, names="max_window_sum best_window window_max_sum",
       args="nums", ret="int", consts={"k": lambda r: r.randint(2, 3)},
       gen=lambda r: ([r.randint(-9, 20) for _ in range(r.randint(3, 8))],),
       edges=[([1, 2, 3],), ([-1, -2, -3],), ([0, 0, 5],)],
       docs=["Return the largest sum of $k consecutive elements of $nums (len($nums) >= $k).",
             "Slide a window of size $k over $nums and return the biggest window total."],
       sols=["return max(sum($nums[i:i + $k]) for i in range(len($nums) - $k + 1))",
             "cur = sum($nums[:$k])\n$best = cur\nfor i in range($k, len($nums)):\n"
             "    cur += $nums[i] - $nums[i - $k]\n    $best = max($best, cur)\nreturn $best"])
family("to_binary", G, 2, names="to_binary binary_string bin_str",
       args="n:int:big", ret="str",
       docs=["Return the binary representation of the non-negative integer $n, without a prefix.",
             "Convert $n to a string of 0s and 1s."],
       sols=["return bin($n)[2:]",
             "if $n == 0:\n    return '0'\ndigits = ''\nwhile $n:\n    digits = str($n % 2) + digits\n"
             "    $n //= 2\nreturn digits"])
family("from_binary", G, 2, names="from_binary binary_to_int parse_binary",
       args="s", ret="int",
       gen=lambda r: (bin(r.randint(1, 999))[2:],), edges=[("0",), ("1",), ("1000",)],
       docs=["Return the integer value of the binary string $s.",
             "Convert a string of 0s and 1s into the number it represents."],
       sols=["return int($s, 2)", "$val = 0\nfor $cc in $s:\n    $val = $val * 2 + int($cc)\nreturn $val"])
family("count_inversions", G, 3, names="count_inversions inversions out_of_order_pairs",
       args="nums", ret="int",
       docs=["Return the number of pairs i < j with $nums[i] > $nums[j].",
             "Count the inverted pairs of $nums, using two nested loops."],
       sols=["$cnt = 0\nfor i in range(len($nums)):\n    for j in range(i + 1, len($nums)):\n"
             "        if $nums[i] > $nums[j]:\n            $cnt += 1\nreturn $cnt"])
family("search_insert", G, 3, names="search_insert insert_position where_to_insert",
       args="nums:List[int]:sorted n", ret="int",
       docs=["$nums is sorted ascending. Return the index where $n would be inserted to keep it "
             "sorted, before any equal elements."],
       sols=["import bisect\nreturn bisect.bisect_left($nums, $n)",
             "for i, $v in enumerate($nums):\n    if $v >= $n:\n        return i\nreturn len($nums)"])
family("remove_dups_sorted", G, 3, names="compress_sorted dedup_sorted unique_sorted",
       args="nums:List[int]:sorted", ret="List[int]",
       gen=lambda r: (sorted(r.randint(0, 8) for _ in range(r.randint(3, 9))),),
       docs=["$nums is sorted. Return it with consecutive repeated values collapsed to one.",
             "Given a sorted list, return its distinct values in order."],
       sols=["$res = []\nfor $v in $nums:\n    if not $res or $res[-1] != $v:\n        $res.append($v)\nreturn $res",
             "return sorted(set($nums))"])
