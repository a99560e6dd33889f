"""Arithmetic and math families: operators, comparisons, divisibility, digits, number theory."""

from codeling.tasks.synthetic.core import family

A = "arithmetic"
nonzero_pair = lambda r: (r.randint(-60, 99), r.choice([-1, 1]) * r.randint(1, 12))


def _k(lo: int, hi: int):
    return lambda r: r.randint(lo, hi)


family("add_two", A, 1, names="add_numbers sum_two plus add_ints add_values addition",
       args="a b", ret="int",
       docs=["Return the sum of $a and $b.", "Add the two integers $a and $b together.",
             "Given two integers, return their sum.", "Compute $a plus $b.",
             "This function adds $b to $a and returns the result."],
       sols=["return $a + $b", "result = $a + $b\nreturn result", "return sum([$a, $b])"])
family("subtract_two", A, 1, names="difference minus sub take_away",
       args="a b", ret="int",
       docs=["Return $a minus $b.", "Subtract $b from $a.",
             "Compute the difference $a - $b.", "Given two integers, return the first minus the second."],
       sols=["return $a - $b", "diff = $a - $b\nreturn diff", "return -($b - $a)"])
family("multiply_two", A, 1, names="product times mul multiply_ints",
       args="a b", ret="int",
       docs=["Return the product of $a and $b.", "Multiply $a by $b.",
             "Compute $a times $b.", "Given two integers, return what you get when you multiply them."],
       sols=["return $a * $b", "result = $a * $b\nreturn result"])
family("floor_divide", A, 1, names="int_divide floor_div divide_down quotient whole_division",
       args="a b", ret="int", gen=nonzero_pair, edges=[(0, 5), (-7, 2), (7, -2)],
       docs=["Return $a divided by $b, rounded down to an integer.",
             "Compute the floor of $a / $b. $b is never zero.",
             "Return the integer quotient of $a and $b (floor division)."],
       sols=["return $a // $b", "return int(($a - $a % $b) / $b)"])
family("true_divide", A, 1, names="divide div ratio divide_numbers",
       args="a:int b:int", ret="float", gen=nonzero_pair, edges=[(0, 4), (-9, 2), (1, 8)],
       docs=["Return $a divided by $b as a float.", "Divide $a by $b. $b is not zero.",
             "Compute the ratio $a / $b."],
       sols=["return $a / $b", "return float($a) / $b"])
family("modulo", A, 1, names="remainder modulo mod rest_of_division",
       args="a b", ret="int", gen=lambda r: (r.randint(-30, 99), r.randint(2, 11)),
       edges=[(0, 3), (5, 5), (-7, 3)],
       docs=["Return the remainder when $a is divided by $b.", "Compute $a modulo $b.",
             "Given $a and a positive $b, return $a % $b."],
       sols=["return $a % $b", "return $a - $b * ($a // $b)"])
family("power", A, 1, names="power pow_int raise_to exponent to_the_power",
       args="a b:int:nat", ret="int", gen=lambda r: (r.randint(-6, 9), r.randint(0, 6)),
       edges=[(5, 0), (0, 3), (-2, 3), (1, 9)],
       docs=["Return $a raised to the power $b.", "Compute $a ** $b for a non-negative exponent $b.",
             "Given a base $a and exponent $b >= 0, return the base to that power."],
       sols=["return $a ** $b", "result = 1\nfor _ in range($b):\n    result *= $a\nreturn result",
             "return pow($a, $b)"])
family("max_of_two", A, 1, names="larger bigger max_of_two greater_of",
       args="a b", ret="int", edges=[(3, 3), (-5, -2), (0, -1)],
       docs=["Return the larger of $a and $b.", "Given two integers, return the bigger one.",
             "Return whichever of $a and $b is greater."],
       sols=["return max($a, $b)", "if $a > $b:\n    return $a\nreturn $b",
             "return $a if $a >= $b else $b"])
family("min_of_two", A, 1, names="smaller lesser min_of_two minimum smallest_of",
       args="a b", ret="int", edges=[(4, 4), (-5, -2), (0, 1)],
       docs=["Return the smaller of $a and $b.", "Given two integers, return the lesser one.",
             "Return whichever of $a and $b is smaller."],
       sols=["return min($a, $b)", "if $a < $b:\n    return $a\nreturn $b",
             "return $a if $a <= $b else $b"])
family("max_of_three", A, 1, names="max_of_three largest_of_three biggest3 max3",
       args="a b c", ret="int", edges=[(1, 1, 1), (-3, -9, -4), (0, 5, 5)],
       docs=["Return the largest of the three integers $a, $b and $c.",
             "Given three numbers, return the maximum.", "Find the biggest of $a, $b and $c."],
       sols=["return max($a, $b, $c)",
             "$best = $a\nif $b > $best:\n    $best = $b\nif $c > $best:\n    $best = $c\nreturn $best"])
family("absolute", A, 1, names="absolute abs_value magnitude distance_from_zero",
       args="n", ret="int",
       docs=["Return the absolute value of $n.", "Return $n without its sign.",
             "Given an integer, return how far it is from zero."],
       sols=["return abs($n)", "if $n < 0:\n    return -$n\nreturn $n", "return -$n if $n < 0 else $n"])
family("sign", A, 1, names="sign signum sign_of sgn",
       args="n", ret="int",
       docs=["Return 1 if $n is positive, -1 if it is negative and 0 if it is zero.",
             "Compute the sign of $n as -1, 0 or 1.",
             "Given an integer, return its sign: -1, 0 or 1."],
       sols=["if $n > 0:\n    return 1\nif $n < 0:\n    return -1\nreturn 0",
             "return ($n > 0) - ($n < 0)",
             "if $n > 0:\n    return 1\nelif $n == 0:\n    return 0\nelse:\n    return -1"])
family("abs_difference", A, 1, names="abs_diff distance gap absolute_difference how_far_apart",
       args="a b", ret="int", edges=[(3, 3), (-4, 4), (0, -7)],
       docs=["Return the absolute difference between $a and $b.",
             "Compute how far apart $a and $b are on the number line.",
             "Given two integers, return |$a - $b|."],
       sols=["return abs($a - $b)", "return max($a, $b) - min($a, $b)",
             "if $a > $b:\n    return $a - $b\nreturn $b - $a"])
family("mean_of_two", A, 1, names="mean_of_two average_two midpoint avg2",
       args="a b", ret="float", edges=[(0, 0), (-3, 4), (5, 5)],
       docs=["Return the average of $a and $b.", "Compute the arithmetic mean of two integers.",
             "Given $a and $b, return the value halfway between them."],
       sols=["return ($a + $b) / 2", "return sum([$a, $b]) / 2"])
family("square", A, 1, names="square squared square_of sq",
       args="n", ret="int", docs=["Return $n squared.", "Compute the square of $n.",
                                  "Given an integer, return it multiplied by itself."],
       sols=["return $n * $n", "return $n ** 2"])
family("cube", A, 1, names="cube cubed cube_of",
       args="n", ret="int", docs=["Return $n cubed.", "Compute the cube of $n.",
                                  "Return $n raised to the third power."],
       sols=["return $n * $n * $n", "return $n ** 3"])
family("add_const", A, 1, names="add_k increment_by shift_up plus_k",
       args="n", ret="int", consts={"k": _k(2, 15)},
       docs=["Return $n plus $k.", "Add $k to $n.", "Increase $n by $k and return it."],
       sols=["return $n + $k", "$res = $n\n$res += $k\nreturn $res"])
family("times_const", A, 1, names="scale multiply_by times_k scaled",
       args="n", ret="int", consts={"k": _k(2, 12)},
       docs=["Return $n multiplied by $k.", "Multiply $n by $k.", "Scale $n by a factor of $k."],
       sols=["return $n * $k", "return $k * $n"])
family("even_check", A, 1, names="even check_even even_number",
       args="n", ret="bool",
       docs=["Return True if $n is even, otherwise False.", "Check whether $n is divisible by 2.",
             "Determine if the integer $n is even."],
       sols=["return $n % 2 == 0", "if $n % 2 == 0:\n    return True\nreturn False",
             "return not $n % 2"])
family("is_odd", A, 1, names="is_odd odd check_odd odd_number",
       args="n", ret="bool",
       docs=["Return True if $n is odd and False otherwise.", "Check whether $n is odd.",
             "Determine if $n leaves a remainder when divided by 2."],
       sols=["return $n % 2 != 0", "return $n % 2 == 1", "return bool($n % 2)"])
family("is_divisible", A, 1, names="is_divisible divides divisible_by is_multiple",
       args="a b:int:posint", ret="bool",
       gen=lambda r: (r.choice([r.randint(1, 9) * 6, r.randint(-40, 99)]), r.randint(2, 9)),
       edges=[(0, 3), (7, 1), (-12, 4)],
       docs=["Return True if $a is divisible by $b.", "Check whether $b divides $a evenly.",
             "Given $a and a positive $b, return whether $a is a multiple of $b."],
       sols=["return $a % $b == 0", "return not $a % $b"])
family("is_multiple_const", A, 1, names="is_multiple multiple_of_k divisible_by_k",
       args="n", ret="bool", consts={"k": _k(3, 9)},
       gen=lambda r: (r.randint(-10, 15) * r.choice([3, 4, 5, 6, 7, 8, 9, 1]),),
       docs=["Return True if $n is a multiple of $k.", "Check whether $n is divisible by $k.",
             "Determine whether $k divides $n without remainder."],
       sols=["return $n % $k == 0", "return not $n % $k"])
family("common_divisor", A, 2, names="hcf common_divisor highest_common_factor",
       args="a:int:posint b:int:posint", ret="int", edges=[(7, 7), (1, 9), (0, 5), (12, 0)],
       setup="import math\n",
       docs=["Return the greatest common divisor of $a and $b.",
             "Compute the largest integer that divides both $a and $b.",
             "Given two non-negative integers, return their highest common factor."],
       sols=["while $b:\n    $a, $b = $b, $a % $b\nreturn $a", "return math.gcd($a, $b)"])
family("lcm", A, 2, names="lcm least_common_multiple smallest_common_multiple",
       args="a:int:posint b:int:posint", ret="int", edges=[(1, 1), (4, 6), (7, 1)],
       setup="import math\n",
       docs=["Return the least common multiple of $a and $b.",
             "Compute the smallest positive number divisible by both $a and $b.",
             "Given two positive integers, return their lowest common multiple."],
       sols=["return $a * $b // math.gcd($a, $b)",
             "m = max($a, $b)\nwhile m % $a or m % $b:\n    m += 1\nreturn m"])
family("n_factorial", A, 2, names="fact product_up_to n_factorial",
       args="n:int:nat", ret="int",
       docs=["Return n! for a non-negative integer $n.", "Compute the factorial of $n.",
             "Return the product of all integers from 1 to $n (1 when $n is 0)."],
       sols=["result = 1\nfor i in range(2, $n + 1):\n    result *= i\nreturn result",
             "import math\nreturn math.factorial($n)"])
family("nth_fib", A, 2, names="nth_fibonacci fib_number fib_value",
       args="n:int:nat", ret="int", gen=lambda r: (r.randint(2, 25),), edges=[(0,), (1,), (2,)],
       docs=["Return the $n-th Fibonacci number, where fib(0) = 0 and fib(1) = 1.",
             "Compute the Fibonacci number at position $n (0-indexed, starting 0, 1, 1, 2, ...).",
             "Given $n >= 0, return the $n-th term of the sequence 0, 1, 1, 2, 3, 5, ..."],
       sols=["a, b = 0, 1\nfor _ in range($n):\n    a, b = b, a + b\nreturn a",
             "if $n < 2:\n    return $n\nprev, cur = 0, 1\nfor _ in range($n - 1):\n"
             "    prev, cur = cur, prev + cur\nreturn cur"])
family("prime_check", A, 2, names="prime check_prime is_prime_number",
       args="n", ret="bool", gen=lambda r: (r.choice([2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37,
                                                     41, 43, 47, 53, 97]) if r.random() < .5
                                            else r.randint(4, 100),),
       edges=[(0,), (1,), (2,), (-7,)],
       docs=["Return True if $n is a prime number.", "Check whether $n is prime.",
             "Determine if $n has exactly two distinct positive divisors."],
       sols=["if $n < 2:\n    return False\nfor d in range(2, int($n ** 0.5) + 1):\n"
             "    if $n % d == 0:\n        return False\nreturn True",
             "return $n > 1 and all($n % d for d in range(2, $n))"])
family("digit_sum", A, 2, names="digit_sum sum_of_digits add_digits",
       args="n:int:big", ret="int",
       docs=["Return the sum of the decimal digits of $n.",
             "Add up the digits of the non-negative integer $n.",
             "Given a non-negative integer, compute the sum of its digits."],
       sols=["return sum(int(d) for d in str($n))",
             "total = 0\nwhile $n > 0:\n    total += $n % 10\n    $n //= 10\nreturn total"])
family("count_digits", A, 2, names="count_digits num_digits digit_count number_length",
       args="n:int:big", ret="int",
       docs=["Return how many decimal digits $n has.", "Count the digits of the non-negative integer $n.",
             "Given $n >= 0, return the number of digits in it."],
       sols=["return len(str($n))",
             "count = 1\nwhile $n >= 10:\n    $n //= 10\n    count += 1\nreturn count"])
family("reverse_number", A, 2, names="reverse_number reverse_digits flip_digits mirror_int",
       args="n:int:big", ret="int",
       docs=["Return the integer formed by the digits of $n in reverse order.",
             "Reverse the digits of the non-negative integer $n; leading zeros of the result are dropped."],
       sols=["return int(str($n)[::-1])",
             "rev = 0\nwhile $n > 0:\n    rev = rev * 10 + $n % 10\n    $n //= 10\nreturn rev"])
family("clamp", A, 1, names="clamp clip bound_value limit_to_range",
       args="n lo hi", ret="int",
       gen=lambda r: (r.randint(-30, 60), r.randint(-10, 5), r.randint(10, 40)),
       edges=[(5, 5, 5), (-100, 0, 10), (100, 0, 10)],
       docs=["Return $n limited to the range [$lo, $hi].",
             "Clamp $n so that it is no smaller than $lo and no larger than $hi.",
             "If $n is below $lo return $lo, if it is above $hi return $hi, else return $n."],
       sols=["return max($lo, min($n, $hi))",
             "if $n < $lo:\n    return $lo\nif $n > $hi:\n    return $hi\nreturn $n"])
family("is_perfect_square", A, 2, names="is_perfect_square is_square perfect_square",
       args="n", ret="bool", gen=lambda r: (r.choice([r.randint(0, 12) ** 2, r.randint(2, 150)]),),
       edges=[(0,), (1,), (-4,)], setup="import math\n",
       docs=["Return True if $n is a perfect square.",
             "Check whether $n equals some integer squared.",
             "Determine if the integer $n is the square of an integer."],
       notes=["Negative numbers are never perfect squares."],
       sols=["if $n < 0:\n    return False\nr = math.isqrt($n)\nreturn r * r == $n",
             "return $n >= 0 and int($n ** 0.5) ** 2 == $n"])
family("triangular_number", A, 1, names="triangular sum_up_to sum_first_n",
       args="n:int:nat", ret="int", gen=lambda r: (r.randint(2, 60),),
       docs=["Return 1 + 2 + ... + $n.", "Compute the sum of all integers from 1 to $n.",
             "Given $n >= 0, return the $n-th triangular number."],
       sols=["return $n * ($n + 1) // 2", "return sum(range(1, $n + 1))",
             "total = 0\nfor i in range(1, $n + 1):\n    total += i\nreturn total"])
family("sum_of_squares_to_n", A, 2, names="sum_of_squares squares_sum square_sum_to",
       args="n:int:nat", ret="int",
       docs=["Return 1*1 + 2*2 + ... + $n*$n.", "Compute the sum of the squares of 1 through $n.",
             "Given $n >= 0, add up i squared for every i from 1 to $n."],
       sols=["return sum(i * i for i in range(1, $n + 1))",
             "total = 0\nfor i in range(1, $n + 1):\n    total += i ** 2\nreturn total"])
family("celsius_to_fahrenheit", A, 1, names="to_fahrenheit c_to_f celsius_to_fahrenheit",
       args="x", ret="float", edges=[(0.0,), (-40.0,), (100.0,)],
       docs=["Convert $x degrees Celsius to Fahrenheit.",
             "Return the Fahrenheit value of a Celsius temperature $x (F = C * 9 / 5 + 32)."],
       sols=["return $x * 9 / 5 + 32", "return 32 + 1.8 * $x"])
family("is_leap_year", A, 2, names="is_leap_year leap_year is_leap",
       args="n:int:posint", ret="bool",
       gen=lambda r: (r.choice([r.randint(1800, 2100), r.randint(4, 50) * 100, r.randint(450, 520) * 4]),),
       edges=[(2000,), (1900,), (2024,), (2023,)],
       docs=["Return True if $n is a leap year in the Gregorian calendar.",
             "A year is a leap year if it is divisible by 4, except century years, which must be "
             "divisible by 400. Return whether $n is one.",
             "Check whether the year $n has 366 days."],
       sols=["return $n % 4 == 0 and ($n % 100 != 0 or $n % 400 == 0)",
             "if $n % 400 == 0:\n    return True\nif $n % 100 == 0:\n    return False\n"
             "return $n % 4 == 0"])
family("count_divisors", A, 2, names="count_divisors num_divisors divisor_count",
       args="n:int:posint", ret="int",
       docs=["Return how many positive divisors $n has.",
             "Count the integers from 1 to $n that divide $n evenly.",
             "Given a positive integer, return the number of its divisors."],
       sols=["return sum(1 for d in range(1, $n + 1) if $n % d == 0)",
             "count = 0\nfor d in range(1, $n + 1):\n    if $n % d == 0:\n        count += 1\nreturn count"])
family("is_power_of_two", A, 2, names="is_power_of_two power_of_two is_pow2",
       args="n", ret="bool", gen=lambda r: (r.choice([2 ** r.randint(0, 12), r.randint(3, 200)]),),
       edges=[(0,), (1,), (-8,)],
       docs=["Return True if $n is a power of two.", "Check whether $n equals 2**k for some k >= 0.",
             "Determine if $n is one of 1, 2, 4, 8, 16, ..."],
       sols=["if $n < 1:\n    return False\nwhile $n % 2 == 0:\n    $n //= 2\nreturn $n == 1",
             "return $n > 0 and $n & ($n - 1) == 0"])
family("to_seconds", A, 1, names="to_seconds total_seconds hms_to_seconds",
       args="a:int:nat b:int:nat c:int:nat", ret="int",
       gen=lambda r: (r.randint(0, 23), r.randint(0, 59), r.randint(0, 59)),
       edges=[(0, 0, 0), (1, 0, 0), (0, 0, 59)],
       docs=["Convert $a hours, $b minutes and $c seconds into a number of seconds.",
             "Return the total number of seconds in $a hours, $b minutes and $c seconds."],
       sols=["return $a * 3600 + $b * 60 + $c", "return ($a * 60 + $b) * 60 + $c"])
