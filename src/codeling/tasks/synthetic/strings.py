"""String families: basics, comparisons, counting, character classes, words, transforms."""

from codeling.tasks.synthetic.core import WORDS, family

S = "strings"

# character class -> (test on $cc, phrase, identifier tag)
CLASSES = {
    "vowel": ("$cc.lower() in 'aeiou'", "vowels", "vowels"),
    "digit": ("$cc.isdigit()", "digits", "digits"),
    "upper": ("$cc.isupper()", "uppercase letters", "uppercase"),
    "lower": ("$cc.islower()", "lowercase letters", "lowercase"),
    "space": ("$cc == ' '", "spaces", "spaces"),
    "alpha": ("$cc.isalpha()", "letters", "letters"),
}

for c, (cond, phrase, tag) in CLASSES.items():
    family(f"tally_{c}", S, 2, names=[f"tally_{tag}", f"num_{tag}", f"n_{tag}",
                                    f"how_many_{tag}"],
           args="s:str:mixed", ret="int",
           docs=[f"Return the number of {phrase} in $s.", f"Count how many {phrase} $s contains.",
                 f"Given a string, return how many of its characters are {phrase}."],
           sols=[f"return sum(1 for $cc in $s if {cond})",
                 f"$cnt = 0\nfor $cc in $s:\n    if {cond}:\n        $cnt += 1\nreturn $cnt",
                 f"return len([$cc for $cc in $s if {cond}])"])
    family(f"remove_{c}", S, 2, names=[f"delete_{tag}", f"strip_{tag}", f"without_{tag}",
                                       f"drop_{tag}"],
           args="s:str:mixed", ret="str",
           docs=[f"Return $s with all {phrase} removed.", f"Delete every one of the {phrase} "
                 f"from $s and return what is left.", f"Given a string, return a copy without its {phrase}."],
           sols=[f"return ''.join($cc for $cc in $s if not ({cond}))",
                 f"$res = ''\nfor $cc in $s:\n    if not ({cond}):\n        $res += $cc\nreturn $res"])
    family(f"keep_{c}", S, 2, names=[f"keep_{tag}", f"only_{tag}", f"extract_{tag}"],
           args="s:str:mixed", ret="str",
           docs=[f"Return a string made of only the {phrase} of $s, in order.",
                 f"Keep just the {phrase} from $s."],
           sols=[f"return ''.join($cc for $cc in $s if {cond})",
                 f"$res = []\nfor $cc in $s:\n    if {cond}:\n        $res.append($cc)\nreturn ''.join($res)"])
    family(f"has_{c}", S, 2, names=[f"has_{tag}", f"contains_{tag}", f"any_{tag}"],
           args="s:str:mixed", ret="bool",
           docs=[f"Return True if $s contains at least one of the {phrase}.",
                 f"Check whether any character of $s is among the {phrase}."],
           sols=[f"return any({cond} for $cc in $s)",
                 f"for $cc in $s:\n    if {cond}:\n        return True\nreturn False"])

family("string_length", S, 1, names="string_length length_of count_chars text_length",
       args="s:str:text", ret="int",
       docs=["Return the number of characters in $s.", "Compute the length of the string $s.",
             "Given a string, return how long it is."],
       sols=["return len($s)", "$cnt = 0\nfor _ in $s:\n    $cnt += 1\nreturn $cnt"])
family("reversed_text", S, 1, names="reverse backwards flip mirror",
       args="s", ret="str", edges=[("",), ("a",), ("ab",)],
       docs=["Return $s reversed.", "Return the characters of $s in reverse order.",
             "Given a string, return it written backwards."],
       sols=["return $s[::-1]", "return ''.join(reversed($s))",
             "$res = ''\nfor $cc in $s:\n    $res = $cc + $res\nreturn $res"])
family("to_upper", S, 1, names="to_upper shout uppercase make_upper all_caps",
       args="s:str:text", ret="str", edges=[("",), ("ABC",), ("a1!",)],
       docs=["Return $s converted to upper case.", "Make every letter of $s uppercase."],
       sols=["return $s.upper()", "return ''.join($cc.upper() for $cc in $s)"])
family("to_lower", S, 1, names="to_lower lowercase make_lower whisper",
       args="s:str:mixed", ret="str", edges=[("",), ("abc",), ("A1!",)],
       docs=["Return $s converted to lower case.", "Make every letter of $s lowercase."],
       sols=["return $s.lower()", "return ''.join($cc.lower() for $cc in $s)"])
family("swap_case", S, 1, names="swap_case invert_case toggle_case",
       args="s:str:mixed", ret="str",
       docs=["Return $s with uppercase letters made lowercase and lowercase letters made uppercase.",
             "Swap the case of every letter in $s."],
       sols=["return $s.swapcase()",
             "return ''.join($cc.lower() if $cc.isupper() else $cc.upper() for $cc in $s)"])
family("starts_with", S, 1, names="starts_with begins_with has_prefix is_prefix",
       args="s s2", ret="bool",
       gen=lambda r: (lambda w: (w, r.choice([w[:r.randint(1, 3)], r.choice(WORDS)[:2]])))(r.choice(WORDS) + r.choice(WORDS)),
       edges=[("abc", ""), ("", "a"), ("ab", "abc")],
       docs=["Return True if $s begins with $s2.", "Check whether $s2 is a prefix of $s."],
       sols=["return $s.startswith($s2)", "return $s[:len($s2)] == $s2"])
family("ends_with", S, 1, names="ends_with has_suffix finishes_with is_suffix",
       args="s s2", ret="bool",
       gen=lambda r: (lambda w: (w, r.choice([w[-r.randint(1, 3):], r.choice(WORDS)[-2:]])))(r.choice(WORDS) + r.choice(WORDS)),
       edges=[("abc", ""), ("", "a"), ("bc", "abc")],
       docs=["Return True if $s ends with $s2.", "Check whether $s2 is a suffix of $s."],
       sols=["return $s.endswith($s2)", "return len($s2) <= len($s) and $s[len($s) - len($s2):] == $s2"])
family("contains_sub", S, 1, names="contains_substring has_substring occurs_in includes_text",
       args="s:str:text s2", ret="bool",
       gen=lambda r: (lambda t: (t, r.choice([t[2:5], r.choice(WORDS)])))(" ".join(r.sample(WORDS, 3))),
       edges=[("abc", ""), ("", "x"), ("aaa", "aa")],
       docs=["Return True if $s2 occurs somewhere in $s.", "Check whether $s contains the substring $s2."],
       sols=["return $s2 in $s", "return $s.find($s2) != -1"])
family("palindrome_check", S, 2, names="palindrome reads_same is_mirror",
       args="s", ret="bool",
       gen=lambda r: (lambda w: (r.choice([w + w[::-1], w + w[-2::-1], w]),))(r.choice(WORDS)[:r.randint(2, 4)]),
       edges=[("",), ("x",), ("ab",)],
       docs=["Return True if $s reads the same forwards and backwards.",
             "Check whether the string $s is a palindrome."],
       sols=["return $s == $s[::-1]",
             "i, j = 0, len($s) - 1\nwhile i < j:\n    if $s[i] != $s[j]:\n        return False\n"
             "    i += 1\n    j -= 1\nreturn True"])
family("repeat_string", S, 1, names="repeat repeat_string duplicate times echo_text",
       args="s n:int:small", ret="str", edges=[("ab", 0), ("", 3), ("x", 1)],
       docs=["Return $s repeated $n times.", "Concatenate $n copies of $s."],
       sols=["return $s * $n", "$res = ''\nfor _ in range($n):\n    $res += $s\nreturn $res"])
family("trim", S, 1, names="trim strip_spaces clean_edges strip_whitespace",
       args="s:str:text", ret="str",
       gen=lambda r: (" " * r.randint(0, 3) + r.choice(WORDS) + " " * r.randint(1, 3),),
       edges=[("",), ("   ",), ("a b",)],
       docs=["Return $s without leading and trailing spaces.", "Strip surrounding whitespace from $s."],
       sols=["return $s.strip()"])
family("words_split", S, 1, names="words_of tokenize to_words",
       args="s:str:text", ret="List[str]",
       docs=["Split $s on whitespace and return the list of words.",
             "Return the words of $s, separated by any run of spaces."],
       sols=["return $s.split()"])
family("join_words", S, 1, names="join_words join_with glue combine",
       args="words sep", ret="str",
       docs=["Return the strings in $words joined with $sep between them.",
             "Concatenate $words, putting $sep between neighbours."],
       sols=["return $sep.join($words)",
             "$res = ''\nfor i, $w in enumerate($words):\n    if i > 0:\n        $res += $sep\n    $res += $w\nreturn $res"])
family("count_words", S, 1, names="count_words word_count num_words how_many_words",
       args="s:str:text", ret="int",
       docs=["Return the number of words in $s, where words are separated by whitespace.",
             "Count the words in $s."],
       sols=["return len($s.split())"])
family("char_occurrences", S, 1, names="char_count occurrences count_letter",
       args="s:str:text ch", ret="int",
       docs=["Return how many times the character $ch occurs in $s.", "Count the occurrences of $ch in $s."],
       sols=["return $s.count($ch)", "return sum(1 for $cc in $s if $cc == $ch)"])
family("replace_char", S, 1, names="replace_char swap_char substitute_char",
       args="s:str:text", ret="str", consts={"a": lambda r: r.choice("aeiot"), "b": lambda r: r.choice("*#_-")},
       docs=["Return $s with every $a replaced by $b.", "Replace each occurrence of $a in $s with $b."],
       sols=["return $s.replace($a, $b)", "return ''.join($b if $cc == $a else $cc for $cc in $s)"])
family("title_words", S, 1, names="title_case capitalize_each headline",
       args="s:str:text", ret="str", edges=[("",), ("a",), ("hello world",)],
       docs=["Return $s with the first letter of every word in upper case.",
             "Capitalize each space-separated word of $s."],
       sols=["return ' '.join($w.capitalize() for $w in $s.split())",
             "return ' '.join($w[0].upper() + $w[1:] for $w in $s.split())"])
family("first_char", S, 1, names="first_char first_letter initial head_char",
       args="s", ret="str", edges=[("",), ("q",)],
       docs=["Return the first character of $s, or an empty string if $s is empty.",
             "Get the initial letter of $s ('' for an empty string)."],
       sols=["return $s[:1]", "if not $s:\n    return ''\nreturn $s[0]"])
family("last_char", S, 1, names="last_char last_letter final_char",
       args="s", ret="str", edges=[("",), ("q",)],
       docs=["Return the last character of $s, or '' if $s is empty.",
             "Get the final character of $s; an empty string gives ''."],
       sols=["return $s[-1:]", "return $s[-1] if $s else ''"])
family("remove_spaces", S, 1, names="remove_spaces squash no_spaces delete_spaces",
       args="s:str:text", ret="str",
       docs=["Return $s with all spaces removed.", "Delete every space character from $s."],
       sols=["return $s.replace(' ', '')", "return ''.join($s.split(' '))"])
family("is_anagram", S, 2, names="is_anagram anagrams same_letters",
       args="s s2", ret="bool",
       gen=lambda r: (lambda w: (w, r.choice([''.join(r.sample(w, len(w))), r.choice(WORDS)])))(r.choice(WORDS)),
       edges=[("", ""), ("a", "b"), ("ab", "abb")],
       docs=["Return True if $s and $s2 contain the same letters the same number of times.",
             "Check whether $s2 is a rearrangement of the characters of $s."],
       sols=["return sorted($s) == sorted($s2)",
             "from collections import Counter\nreturn Counter($s) == Counter($s2)"])
family("longest_word", S, 2, names="longest_word biggest_word widest_word",
       args="words", ret="str", edges=[([""],), (["ab", "cd"],), (["x"],)],
       nonempty=True,
       docs=["Return the longest string in $words; on a tie return the one that comes first.",
             "Find the longest word in the non-empty list $words (the earliest one if several tie)."],
       sols=["return max($words, key=len)",
             "$best = $words[0]\nfor $w in $words:\n    if len($w) > len($best):\n        $best = $w\nreturn $best"])
family("shortest_word", S, 2, names="shortest_word shortest smallest_word",
       args="words", ret="str", edges=[(["ab", "cd"],), (["x"],), (["abc", "", "d"],)],
       docs=["Return the shortest string in $words, the first one on ties.",
             "Find the shortest word in the non-empty list $words."],
       sols=["return min($words, key=len)",
             "$best = $words[0]\nfor $w in $words[1:]:\n    if len($w) < len($best):\n        $best = $w\nreturn $best"])
family("acronym", S, 2, names="acronym initials abbreviate first_letters",
       args="s:str:text", ret="str",
       docs=["Return the first letter of each word in $s, upper-cased and joined together.",
             "Build an acronym from the words of $s."],
       sols=["return ''.join($w[0].upper() for $w in $s.split())",
             "$res = ''\nfor $w in $s.split():\n    $res += $w[0].upper()\nreturn $res"])
family("reverse_words", S, 2, names="reverse_words words_backwards flip_words",
       args="s:str:text", ret="str",
       docs=["Return the words of $s in reverse order, separated by single spaces.",
             "Reverse the order of the words in $s."],
       sols=["return ' '.join(reversed($s.split()))", "return ' '.join($s.split()[::-1])"])
family("double_chars", S, 2, names="double_chars stutter double_letters",
       args="s", ret="str", edges=[("",), ("a",)],
       docs=["Return a string where every character of $s appears twice in a row.",
             "Double each character of $s."],
       sols=["return ''.join($cc * 2 for $cc in $s)",
             "$res = ''\nfor $cc in $s:\n    $res += $cc + $cc\nreturn $res"])
family("is_digits", S, 1, names="is_number all_digits is_numeric only_digits",
       args="s:str:mixed", ret="bool",
       gen=lambda r: (r.choice([str(r.randint(0, 99999)), r.choice(WORDS), str(r.randint(1, 99)) + "x"]),),
       edges=[("",), ("0",), ("12a",)],
       docs=["Return True if $s is non-empty and every character of it is a digit.",
             "Check whether $s consists only of decimal digits (and is not empty)."],
       sols=["return $s.isdigit()", "return len($s) > 0 and all($cc in '0123456789' for $cc in $s)"])
family("mask", S, 2, names="mask hide_all_but_last mask_string",
       args="s:str:mixed", ret="str", consts={"k": lambda r: r.randint(2, 4)},
       edges=[("",), ("ab",), ("abcdefgh",)],
       docs=["Return $s with every character except the last $k replaced by '#'.",
             "Hide all but the final $k characters of $s behind '#' signs."],
       sols=["return '#' * max(0, len($s) - $k) + $s[-$k:]",
             "keep = $s[len($s) - $k:] if len($s) > $k else $s\nreturn '#' * (len($s) - len(keep)) + keep"])
