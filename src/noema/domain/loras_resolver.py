"""Resolving a prompt's LoRAs: trigger words and tags become ``<lora:slug:weight>`` tags.

Rules, in the order they act:

- Tags ``<lora:slug:w>`` the caller may use and that fit the checkpoint are kept (normalised) and
  count as applied; unknown, private-to-others, switched-off, unfitting, malformed and unfinished
  tags are removed with a warning. A slug the caller may not see is reported as unknown.
- Outside tags, phrases match case-insensitively on whole words: multi-word triggers first, then
  multi-word cognates, then single words. Only LoRAs the caller may use and that fit are matched.
- Each LoRA is decided once: by its first tag when it has one, else at its first phrase.
  ``word:0.7`` sets the weight (clamped into the bounds, with a warning); when several of the
  LoRA's phrases carry one, the first written wins, wherever it stands. ``word:0`` or a ``:0``
  tag switches the LoRA off for this prompt and its phrases stay as written, so that resolving
  again keeps it off; otherwise the first phrase becomes ``<lora:slug:w> word`` (a cognate's word
  becomes its replacement). Other occurrences keep their word and lose their ``:weight``.
- At most ``max_loras`` LoRAs apply, the first ones by position; the rest are named in a warning.

One pass can expose a phrase it did not see (a removed tag joining two words, a cognate's
replacement); passes repeat until the prompt stops changing, so resolving is idempotent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

from noema.domain.errors import InvalidInput
from noema.domain.loras_matching import Hit, HitKind, Vocabulary, build_vocabulary, scan
from noema.domain.loras_model import Family, Lora, WeightBounds, family_or_none, format_weight, round_weight

_MAX_PASSES = 8  #: a fixed point comes after two passes in practice; this only bounds odd registries


class AppliedSource(str, Enum):
    """What called a LoRA into the prompt."""

    TRIGGER = "trigger"
    COGNATE = "cognate"
    TAG = "tag"  #: the prompt already carried the tag


@dataclass(frozen=True)
class Applied:
    """A LoRA put into the prompt, with the word or tag that called it."""

    slug: str
    weight: float
    trigger: str  #: the phrase as the user wrote it, or the slug for a tag
    source: AppliedSource


@dataclass(frozen=True)
class Resolution:
    """The rewritten prompt, the LoRAs it applies in prompt order, and what the user should know."""

    prompt: str
    applied: tuple[Applied, ...]
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class _Context:
    registry: dict[str, Lora]  #: lower-case slug -> first entry with it
    usable: frozenset[str]  #: slugs the caller may apply on this checkpoint
    account_id: str | None
    base_model: Family | None
    base_label: str
    vocabulary: Vocabulary
    bounds: WeightBounds
    max_loras: int


@dataclass
class _Pass:
    tagged: set[str]  #: LoRAs that have a tag: the tag decides, not their words
    weights: dict[str, str]  #: slug -> the first ``:weight`` written after one of its phrases
    decided: set[str] = field(default_factory=set)
    off: set[str] = field(default_factory=set)  #: switched off by ``word:0``: their phrases stay as written
    applied: list[Applied] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def apply(self, applied: Applied, context: _Context) -> bool:
        """Record ``applied`` unless the LoRA limit is reached (then it is dropped); True when applied."""
        self.decided.add(applied.slug)
        if len(self.applied) >= context.max_loras:
            self.dropped.append(applied.slug)
            return False
        self.applied.append(applied)
        return True

    def warn(self, message: str) -> None:
        """Add a warning for the user."""
        self.warnings.append(message)


def resolve(
    prompt: str,
    base_model: Family | str | None,
    account_id: str | None,
    loras: Sequence[Lora],
    *,
    max_loras: int = 5,
    bounds: WeightBounds | None = None,
    max_prompt_chars: int = 100_000,
) -> Resolution:
    """Apply the LoRAs ``prompt`` calls for, as the module docstring's rules say."""
    if len(prompt) > max_prompt_chars:
        raise InvalidInput(f"A prompt may be at most {max_prompt_chars} characters.")
    if max_loras < 0:
        raise InvalidInput("max_loras cannot be negative.")
    context = _context(base_model, account_id, loras, bounds or WeightBounds(), max_loras)
    passes: list[tuple[str, _Pass]] = []
    current = prompt
    for _ in range(_MAX_PASSES):
        passes.append(_one_pass(current, context))
        if passes[-1][0] == current:
            break
        current = passes[-1][0]
    return _merge(passes, context)


def _context(
    base_model: Family | str | None, account_id: str | None, loras: Sequence[Lora], bounds: WeightBounds, max_loras: int
) -> _Context:
    family = family_or_none(base_model)
    registry: dict[str, Lora] = {}
    for lora in loras:
        registry.setdefault(lora.slug.lower(), lora)
    usable = [lora for lora in registry.values() if lora.usable_by(account_id) and lora.fits(family)]
    label = family.value if family else str(base_model or "unknown")[:40]
    slugs = frozenset(lora.slug for lora in usable)
    return _Context(registry, slugs, account_id, family, label, build_vocabulary(usable), bounds, max_loras)


def _merge(passes: list[tuple[str, _Pass]], context: _Context) -> Resolution:
    """One result from all passes: the last one's prompt, each warning once, one word on the cap."""
    # Later passes see earlier passes' tags; report each LoRA as the pass that first applied it did.
    first: dict[str, Applied] = {}
    for _, state in passes:
        for applied in state.applied:
            first.setdefault(applied.slug, applied)
    prompt, final = passes[-1]
    kept = {a.slug for a in final.applied}
    warnings = list(dict.fromkeys(w for _, state in passes for w in state.warnings))
    dropped = [slug for slug in dict.fromkeys(s for _, state in passes for s in state.dropped) if slug not in kept]
    if dropped:
        warnings.append(f"At most {context.max_loras} LoRAs per prompt; left out: {_listing(dropped)}.")
    return Resolution(prompt, tuple(first[a.slug] for a in final.applied), tuple(warnings))


def _one_pass(text: str, context: _Context) -> tuple[str, _Pass]:
    """The prompt rewritten once, and what the pass decided."""
    hits = scan(text, context.vocabulary)
    state = _start(hits, context)
    pieces: list[str] = []
    position = 0
    for hit in hits:
        pieces.append(text[position : hit.start])
        position = hit.end
        if hit.kind is HitKind.PHRASE:
            pieces.append(_phrase(text, hit, context, state))
            continue
        kept = _tag(text, hit, context, state)
        if kept is None:
            position = _remove(text, hit, pieces)
        else:
            pieces.append(kept)
    pieces.append(text[position:])
    return "".join(pieces), state


def _start(hits: list[Hit], context: _Context) -> _Pass:
    """A pass's state before rewriting: which LoRAs have tags, and the weights the user wrote."""
    slugs = (
        context.registry[h.slug.lower()].slug
        for h in hits
        if h.kind is HitKind.TAG and h.slug.lower() in context.registry
    )
    weights: dict[str, str] = {}
    for hit in hits:
        if hit.entry is not None and hit.weight is not None:
            weights.setdefault(hit.entry.lora.slug, hit.weight)
    return _Pass(tagged={slug for slug in slugs if slug in context.usable}, weights=weights)


def _remove(text: str, hit: Hit, pieces: list[str]) -> int:
    """Leave a removed tag out of ``pieces``, words either side kept apart; where the text resumes.

    A tag between spaces takes the spaces after it along, and the ones before it too when it ends
    its line, so that no stray blanks are left behind.
    """
    before = text[hit.start - 1] if hit.start > 0 else " "
    end = hit.end
    if not before.isspace():
        if end < len(text) and not text[end].isspace():
            pieces.append(" ")
        return end
    while end < len(text) and text[end] in " \t":
        end += 1
    if end == len(text) or text[end] in "\r\n":
        while pieces and not pieces[-1].rstrip(" \t"):
            pieces.pop()
        if pieces:
            pieces[-1] = pieces[-1].rstrip(" \t")
    return end


def _tag(text: str, hit: Hit, context: _Context, state: _Pass) -> str | None:
    """The kept tag's text, or None when the tag goes."""
    lora = _tag_lora(text, hit, context, state)
    if lora is None:
        return None
    weight = _weight(hit.weight, lora, context, state)
    tag = f"<lora:{lora.slug}:{format_weight(weight)}>"
    if weight == 0:
        state.decided.add(lora.slug)
        return tag
    return tag if state.apply(Applied(lora.slug, weight, lora.slug, AppliedSource.TAG), context) else None


def _tag_lora(text: str, hit: Hit, context: _Context, state: _Pass) -> Lora | None:
    """The LoRA a tag names, or None (with a warning) when the tag must go."""
    lora = context.registry.get(hit.slug.lower())
    if hit.kind is HitKind.UNFINISHED_TAG:
        problem = f"Removed the unfinished LoRA tag {_show(text[hit.start : hit.end])}."
    elif hit.kind is HitKind.BAD_TAG:
        problem = f"Removed the malformed LoRA tag {_show(text[hit.start : hit.end])}; write <lora:name:0.8>."
    elif lora is None or not lora.visible_to(context.account_id):
        # Said the same way for a private LoRA of someone else: its existence is not revealed.
        problem = f"Removed the tag of an unknown LoRA {_show(hit.slug)}."
    elif not lora.enabled:
        problem = f"Removed the tag of LoRA {lora.slug!r}: it is switched off."
    elif not lora.fits(context.base_model):
        family, base = lora.family.value, context.base_label
        problem = f"Removed the tag of LoRA {lora.slug!r}: it is for {family} models, this tool uses {base}."
    elif lora.slug in state.decided:
        problem = f"LoRA {lora.slug!r} was given more than once; kept the first."
    else:
        return lora
    state.warn(problem)
    return None


def _phrase(text: str, hit: Hit, context: _Context, state: _Pass) -> str:
    """The text that replaces a trigger or cognate occurrence."""
    assert hit.entry is not None
    lora, replacement = hit.entry.lora, hit.entry.replace_with
    word = text[hit.start : hit.word_end]
    if lora.slug in state.off:
        return text[hit.start : hit.end]
    if lora.slug in state.decided or lora.slug in state.tagged:
        return word
    weight = _weight(state.weights.get(lora.slug), lora, context, state)
    if weight == 0:
        state.decided.add(lora.slug)
        state.off.add(lora.slug)
        return text[hit.start : hit.end]
    source = AppliedSource.TRIGGER if replacement is None else AppliedSource.COGNATE
    if not state.apply(Applied(lora.slug, weight, word, source), context):
        return word
    return f"<lora:{lora.slug}:{format_weight(weight)}> {word if replacement is None else replacement}"


def _weight(raw: str | None, lora: Lora, context: _Context, state: _Pass) -> float:
    """The weight to apply: the user's (0 stays 0: off) clamped with a warning, else the default."""
    if raw is None:
        return context.bounds.fit(lora.default_weight)
    asked = round_weight(float(raw))
    if asked == 0:
        return 0.0
    weight = context.bounds.fit(asked)
    if weight != asked:
        low, high = f"{context.bounds.minimum:g}", f"{context.bounds.maximum:g}"
        state.warn(f"Weight {_show(raw)} for {lora.slug!r} is outside {low}..{high}; used {format_weight(weight)}.")
    return weight


def _listing(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


def _show(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:39] + "…")
