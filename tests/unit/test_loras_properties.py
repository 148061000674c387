"""Properties of the LoRA resolver that hold for any prompt, registry, caller and limits."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from noema.domain.loras import Cognate, Family, Lora, Resolution, Visibility, WeightBounds, resolve
from noema.domain.loras_matching import HitKind, build_vocabulary, scan

#: slug -> (triggers, cognates). The words of cognates appear nowhere else, so that the words a
#: cognate replaces are known; the replacements bring in other LoRAs' triggers on purpose.
SPECS: dict[str, tuple[tuple[str, ...], tuple[tuple[str, str], ...]]] = {
    "cat": (("cat",), (("kitty", "small cat"),)),
    "dog": (("dog", "puppy"), ()),
    "blue-hair": (("blue hair",), ()),
    "hair": (("hair",), ()),
    "dye": (("blue hair dye",), ()),
    "stars": ((), (("night sky", "starry sky"),)),
    "pup": ((), (("pupper", "fluffy dog"),)),
    "sky": (("sky",), ()),
}
COGNATE_WORDS = {w for _, cognates in SPECS.values() for word, _ in cognates for w in word.split()}
FILLER = ("a", "the", "photo", "Of", "catalog", "bobcat", "BLUE", "long", "x", "lora", "Hair2", "tonight")
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

weights = st.sampled_from(["0", "0.0", "0.5", "1", "-0.3", "1.7", "2.5", "-4", "+.25", "0.0004", "1.23456", "9" * 30])


@st.composite
def registries(draw: st.DrawFn) -> list[Lora]:
    """Some of the LoRAs of ``SPECS``, mostly usable by ``acc-1`` on SDXL, with random attributes."""
    registry = []
    for slug in sorted(SPECS):
        if not draw(st.integers(0, 5)):
            continue
        triggers, cognates = SPECS[slug]
        visibility, owner, allowed = draw(sharing)
        registry.append(
            Lora(
                slug=slug,
                display_name=slug,
                triggers=triggers,
                cognates=tuple(Cognate(word, replacement) for word, replacement in cognates),
                default_weight=draw(st.sampled_from([1.0, 0.8, -0.5, 1.5, 3.0, 0.333333])),
                family=draw(st.sampled_from([*[Family.SDXL] * 4, Family.SD15_XL, Family.SD15, Family.FLUX])),
                owner_id=owner,
                visibility=visibility,
                allowed_accounts=allowed,
                enabled=draw(st.sampled_from([*[True] * 7, False])),
            )
        )
    return registry


sharing = st.sampled_from(
    [
        *[(Visibility.PUBLIC, None, frozenset())] * 4,
        (Visibility.PUBLIC, "acc-2", frozenset()),
        (Visibility.PRIVATE, "acc-1", frozenset()),
        (Visibility.PRIVATE, "acc-2", frozenset({"acc-1"})),
        (Visibility.ALLOWED, "acc-2", frozenset({"acc-1", "acc-3"})),
        (Visibility.ALLOWED, "acc-2", frozenset({"acc-3"})),
    ]
)


@st.composite
def bounds(draw: st.DrawFn) -> WeightBounds:
    minimum = draw(st.floats(-3, 1, allow_nan=False))
    maximum = draw(st.floats(max(minimum, 0) + 0.011, 4, allow_nan=False))
    return WeightBounds(minimum, maximum)


#: Every LoRA of ``SPECS``, public, on and for SDXL: for the examples below.
EVERYTHING = [
    Lora(slug, slug, triggers, tuple(Cognate(w, r) for w, r in cognates), 1.0, Family.SDXL, None, Visibility.PUBLIC)
    for slug, (triggers, cognates) in SPECS.items()
]
NO_HAIR = [lora for lora in EVERYTHING if lora.slug != "hair"]


def phrase_token(draw: st.DrawFn) -> str:
    triggers = [t for ts, cs in SPECS.values() for t in (*ts, *(w for w, _ in cs))]
    phrase = draw(st.sampled_from(triggers))
    phrase = draw(st.sampled_from([phrase, phrase.upper(), phrase.title()]))
    suffix = draw(st.one_of(st.just(""), weights.map(lambda w: ":" + w)))
    return phrase + suffix


def tag_token(draw: st.DrawFn) -> str:
    slug = draw(st.sampled_from([*SPECS, "CAT", "nope", "", "x y"]))
    weight = draw(st.one_of(st.just(""), weights.map(lambda w: ":" + w), st.sampled_from([":abc", ":1:2", ": 0.5 "])))
    end = draw(st.sampled_from([">", ">", ""]))
    return f"<lora:{slug}{weight}{end}"


@st.composite
def prompts(draw: st.DrawFn) -> str:
    parts: list[str] = []
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["filler", "phrase", "phrase", "tag", "punctuation"]))
        if kind == "filler":
            parts.append(draw(st.sampled_from(FILLER)))
        elif kind == "phrase":
            parts.append(phrase_token(draw))
        elif kind == "tag":
            parts.append(tag_token(draw))
        else:
            parts.append(draw(st.sampled_from([",", "(", ")", ".", "'s"])))
        parts.append(draw(st.sampled_from([" ", " ", ", ", "", "", "\n", "  ", "\t"])))
    return "".join(parts)


#: Arbitrary text, leaning on the characters and words the resolver reacts to.
wild_text = st.text(
    alphabet=st.one_of(st.sampled_from(list("<>:.+-0123456789 \t\n,()")), st.characters()),
    max_size=80,
) | st.lists(st.sampled_from(["<lora:", "cat", "kitty", ":0", ":0.7", ">", " ", "blue", "hair", "x", "\n"])).map(
    "".join
)

accounts = st.sampled_from([*["acc-1"] * 5, None, "acc-2", "acc-3"])
checkpoints = st.sampled_from([*[Family.SDXL] * 6, "sdxl", Family.SD15, Family.PONY, Family.FLUX, None, "mystery"])


def run(
    prompt: str,
    registry: list[Lora],
    account: str | None,
    checkpoint: Family | str | None,
    *,
    max_loras: int = 5,
    bounds: WeightBounds | None = None,
) -> Resolution:
    return resolve(prompt, checkpoint, account, registry, max_loras=max_loras, bounds=bounds)


def outcome(result: Resolution) -> list[tuple[str, float]]:
    return [(a.slug, a.weight) for a in result.applied]


def words(text: str) -> list[str]:
    """The letter runs of ``text`` outside LoRA tags (a tag counts as a space)."""
    hits = [h for h in scan(text, build_vocabulary([])) if h.kind is not HitKind.PHRASE]
    pieces, position = [], 0
    for hit in hits:
        pieces.append(text[position : hit.start])
        position = hit.end
    pieces.append(text[position:])
    return re.findall(r"[^\W\d_]+", " ".join(pieces))


def is_subsequence(needles: list[str], haystack: list[str]) -> bool:
    remaining = iter(haystack)
    return all(any(needle == straw for straw in remaining) for needle in needles)


def output_tags(prompt: str) -> list[tuple[str, float]]:
    found = [h for h in scan(prompt, build_vocabulary([])) if h.kind is not HitKind.PHRASE]
    assert all(h.kind is HitKind.TAG and h.weight is not None for h in found), prompt
    return [(h.slug, float(h.weight or 0)) for h in found]


@pytest.mark.slow
@SETTINGS
@given(prompts() | wild_text, registries(), accounts, checkpoints, st.integers(0, 6), bounds())
@example("a pupper", EVERYTHING, "acc-1", Family.SDXL, 5, WeightBounds())  # a replacement calls another LoRA
@example("night sky, cat:0 kitty", EVERYTHING, "acc-1", Family.SDXL, 1, WeightBounds())
@example("blue <lora:x> hair", NO_HAIR, "acc-1", Family.SDXL, 5, WeightBounds())  # a removed tag joins two words
@example("<lora: CAT : 7 > cat:0.5 dog:0", EVERYTHING, None, "sdxl", 5, WeightBounds(-0.9996, 1.2346))
def test_resolving_twice_changes_nothing(
    prompt: str, registry: list[Lora], account: str | None, checkpoint: str | None, cap: int, limits: WeightBounds
) -> None:
    once = run(prompt, registry, account, checkpoint, max_loras=cap, bounds=limits)
    twice = run(once.prompt, registry, account, checkpoint, max_loras=cap, bounds=limits)
    assert twice.prompt == once.prompt
    assert outcome(twice) == outcome(once)


@pytest.mark.slow
@SETTINGS
@given(prompts(), registries(), accounts, checkpoints, st.integers(0, 6))
@example("a<lora:x:1>b c<lora:y>", EVERYTHING, "acc-1", Family.SDXL, 5)
@example("x<lora:cat:1>y kitty, pupper", EVERYTHING, "acc-1", Family.SDXL, 5)
@example("w <lora:dog:1>\nv", EVERYTHING, "acc-1", Family.SDXL, 0)
def test_no_user_word_is_lost(
    prompt: str, registry: list[Lora], account: str | None, checkpoint: str | None, cap: int
) -> None:
    result = run(prompt, registry, account, checkpoint, max_loras=cap)
    kept = [w for w in words(prompt) if w.lower() not in COGNATE_WORDS]
    assert is_subsequence(kept, words(result.prompt)), (kept, result.prompt)


@pytest.mark.slow
@SETTINGS
@given(prompts() | wild_text, registries(), accounts, checkpoints, bounds())
def test_applied_weights_stay_within_the_bounds(
    prompt: str, registry: list[Lora], account: str | None, checkpoint: str | None, limits: WeightBounds
) -> None:
    result = run(prompt, registry, account, checkpoint, bounds=limits)
    for slug, weight in [*outcome(result), *((s, w) for s, w in output_tags(result.prompt) if w != 0)]:
        assert limits.minimum <= weight <= limits.maximum, (slug, weight)
        assert weight != 0


@pytest.mark.slow
@SETTINGS
@given(prompts(), registries(), accounts, checkpoints, st.integers(0, 6))
def test_never_more_than_the_cap_and_every_applied_lora_is_usable_once(
    prompt: str, registry: list[Lora], account: str | None, checkpoint: str | None, cap: int
) -> None:
    result = run(prompt, registry, account, checkpoint, max_loras=cap)
    slugs = [slug for slug, _ in outcome(result)]
    assert len(slugs) <= cap
    assert len(set(slugs)) == len(slugs)
    by_slug = {lora.slug: lora for lora in registry}
    assert all(by_slug[slug].usable_by(account) and by_slug[slug].fits(checkpoint) for slug in slugs)
    # The prompt carries exactly the applied LoRAs' tags, plus the switched-off ones at weight 0.
    assert [(s, w) for s, w in output_tags(result.prompt) if w != 0] == outcome(result)


@pytest.mark.slow
@SETTINGS
@given(wild_text, registries(), accounts, checkpoints, st.integers(0, 6))
def test_resolve_never_raises_on_arbitrary_text(
    prompt: str, registry: list[Lora], account: str | None, checkpoint: str | None, cap: int
) -> None:
    result = run(prompt, registry, account, checkpoint, max_loras=cap)
    assert isinstance(result.prompt, str)
