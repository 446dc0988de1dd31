import re


def syllables(word: str) -> int:
    return max(1, len(re.findall(r"[aeiouy]+", word.lower())))


def report(text: str) -> str:
    sentences = max(1, len(re.findall(r"[.!?]+", text)))
    words = re.findall(r"[A-Za-z']+", text)
    n = max(1, len(words))
    score = 206.835 - 1.015 * (n / sentences) - 84.6 * (sum(map(syllables, words)) / n)
    return f"{n} words, {sentences} sentences, Flesch {score:.1f}"
