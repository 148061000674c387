"""Finding LoRA tags and trigger words in a prompt: one linear scan per priority phase."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum

from noema.domain.loras_model import Lora

#: ``<lora:slug>``, ``<lora:slug:weight>`` (spaces and tabs allowed around the parts), or an
#: unfinished ``<lora:...`` up to the next space. Tag text never spans whitespace between words,
#: so a stray ``<lora:`` cannot swallow the words after it.
_TAG = re.compile(
    r"<lora:[ \t]*(?P<slug>[^\s<>:]*)[ \t]*(?::[ \t]*(?P<weight>[^\s<>]*)[ \t]*)?>|<lora:[^\s<>]*",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d+)?|\.\d+)")
#: ``:0.7`` right after a trigger; atomic so that ``cat:0.75x`` is not read as ``cat:0``.
_SUFFIX = re.compile(r":(?>([+-]?(?:\d+(?:\.\d+)?|\.\d+)))(?!\w)")


class HitKind(str, Enum):
    """What a hit of ``scan`` is."""

    TAG = "tag"  #: a well-formed tag
    BAD_TAG = "bad_tag"  #: ``<lora:>``, ``<lora:x:abc>``, ``<lora:x:1:2>`` …
    UNFINISHED_TAG = "unfinished_tag"  #: ``<lora:x`` with no ``>``
    PHRASE = "phrase"  #: a trigger or a cognate, with its optional ``:weight``


@dataclass(frozen=True)
class Entry:
    """What a phrase calls: a LoRA, and the text to put instead for a cognate."""

    lora: Lora
    replace_with: str | None = None


@dataclass(frozen=True)
class Hit:
    """One tag or phrase found in a prompt, at ``[start, end)``."""

    kind: HitKind
    start: int
    end: int
    slug: str = ""  #: tags: the slug as written
    weight: str | None = None  #: the weight as written, when given and numeric
    word_end: int = 0  #: phrases: where the phrase ends (before ``:weight``)
    entry: Entry | None = None


@dataclass(frozen=True)
class Vocabulary:
    """The phrases of the usable LoRAs, compiled into one pattern per priority phase."""

    phases: tuple[re.Pattern[str], ...]
    entries: dict[str, Entry]


def phrase_key(phrase: str) -> str:
    """The lookup form of a phrase: lower case, single spaces."""
    return " ".join(phrase.lower().split())


def build_vocabulary(loras: Iterable[Lora]) -> Vocabulary:
    """Multi-word triggers, then multi-word cognates, then single words (triggers before cognates)."""
    loras = list(loras)
    entries: dict[str, Entry] = {}
    for lora in loras:
        for trigger in lora.triggers:
            _add(entries, trigger, Entry(lora))
    for lora in loras:
        for cognate in lora.cognates:
            _add(entries, cognate.word, Entry(lora, cognate.replace_with))
    multi_triggers = [k for k, e in entries.items() if " " in k and e.replace_with is None]
    multi_cognates = [k for k, e in entries.items() if " " in k and e.replace_with is not None]
    singles = [k for k in entries if " " not in k]
    groups = (multi_triggers, multi_cognates, singles)
    return Vocabulary(tuple(_compile(g) for g in groups if g), entries)


def _add(entries: dict[str, Entry], phrase: str, entry: Entry) -> None:
    key = phrase_key(phrase)
    if key and re.search(r"\w", key):
        entries.setdefault(key, entry)


def _compile(keys: list[str]) -> re.Pattern[str]:
    # Longest first, so that the alternation prefers "blue hair dye" over "blue hair" at one spot.
    ordered = sorted(keys, key=len, reverse=True)
    alternatives = "|".join(r"\s+".join(re.escape(w) for w in k.split(" ")) for k in ordered)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def scan(text: str, vocabulary: Vocabulary) -> list[Hit]:
    """Every tag and phrase of ``text`` in position order; phrases never overlap tags or each other."""
    hits = [_tag_hit(m) for m in _TAG.finditer(text)]
    for pattern in vocabulary.phases:
        spans = sorted((h.start, h.end) for h in hits)
        found = [h for lo, hi in _gaps(spans, len(text)) for h in _phrases(text, lo, hi, pattern, vocabulary)]
        hits.extend(found)
    return sorted(hits, key=lambda h: h.start)


def _tag_hit(match: re.Match[str]) -> Hit:
    slug, weight = match.group("slug"), match.group("weight")
    if slug is None:
        return Hit(HitKind.UNFINISHED_TAG, match.start(), match.end())
    if not slug or (weight is not None and not (len(weight) <= 40 and _NUMBER.fullmatch(weight))):
        return Hit(HitKind.BAD_TAG, match.start(), match.end(), slug=slug)
    return Hit(HitKind.TAG, match.start(), match.end(), slug=slug, weight=weight)


def _gaps(spans: list[tuple[int, int]], length: int) -> Iterator[tuple[int, int]]:
    position = 0
    for start, end in spans:
        if start > position:
            yield position, start
        position = max(position, end)
    if position < length:
        yield position, length


def _phrases(text: str, lo: int, hi: int, pattern: re.Pattern[str], vocabulary: Vocabulary) -> Iterator[Hit]:
    position = lo
    while match := pattern.search(text, position, hi):
        entry = vocabulary.entries.get(phrase_key(match.group()))
        suffix = _SUFFIX.match(text, match.end(), hi)
        end = suffix.end() if suffix else match.end()
        if entry is not None:  # None only when Unicode case folding disagrees with lower()
            weight = suffix.group(1) if suffix else None
            yield Hit(HitKind.PHRASE, match.start(), end, weight=weight, word_end=match.end(), entry=entry)
        position = end
