"""Most frequent words of a text."""

import sys
from collections import Counter

import regex

STOP_WORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "has",
        "have",
        "i",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "were",
        "will",
        "with",
    }
)
WORD = regex.compile(r"\p{L}[\p{L}\p{M}'-]*")


def top_words(data):
    text = data.get("text", "") if isinstance(data, dict) else str(data)
    limit = int(data.get("limit", 10)) if isinstance(data, dict) else 10
    words = (match.group(0).lower() for match in WORD.finditer(text))
    counts = Counter(word for word in words if word not in STOP_WORDS)
    return [{"word": word, "count": count} for word, count in counts.most_common(limit)]


if __name__ == "__main__":
    for row in top_words({"text": sys.stdin.read()}):
        print(f"{row['count']:6d}  {row['word']}")
