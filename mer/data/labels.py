"""Emotion vocabularies and the label maps that turn them into class indices.

Every data set spells its emotions differently ("happy", "Happiness", "Others"); they are first
normalised to one vocabulary, then a label map assigns a class or excludes the clip (as MEGC
excludes "others" from its 3-class composite). A label outside the vocabulary is an error:
it is usually a typo in the annotation file.

SMIC, 4DME, CAS(ME)^2 and CAS(ME)^3 part C label by valence, not by emotion: "positive" and
"negative" are words of the vocabulary of their own (not aliases of happiness or of any one
negative emotion), so a map that merges emotions into valence classes (megc3) takes them as they
are and the per-emotion maps leave them out. "unknown" is a row whose data set codes no emotion
(SAMM long videos): only the one-class map ``all`` takes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mer.registry import Registry

UNKNOWN = "unknown"  # the emotion of a row whose data set codes none (SAMM long videos)
EMOTIONS = (
    "happiness",
    "sadness",
    "anger",
    "contempt",
    "fear",
    "disgust",
    "surprise",
    "repression",
    "tense",
    "positive",  # valence labels (SMIC, 4DME, CAS(ME)^2, CAS(ME)^3 part C)
    "negative",
    "others",
    UNKNOWN,  # no recognition map assigns it
)

_ALIASES = {
    "happy": "happiness",
    "joy": "happiness",
    "sad": "sadness",
    "angry": "anger",
    "disgusted": "disgust",
    "fearful": "fear",
    "afraid": "fear",
    "surprised": "surprise",
    "surprising": "surprise",
    "other": "others",
    "repressed": "repression",
    "tension": "tense",
}


class UnknownEmotionError(ValueError):
    pass


def normalise_emotion(raw: object) -> str:
    """``" Happy "`` -> ``"happiness"``; raises :class:`UnknownEmotionError` outside the vocabulary."""
    text = str(raw).strip().lower()
    text = _ALIASES.get(text, text)
    if text not in EMOTIONS:
        raise UnknownEmotionError(f"unknown emotion label {raw!r} (known: {', '.join(EMOTIONS)})")
    return text


@dataclass(frozen=True)
class LabelMap:
    name: str
    classes: tuple[str, ...]
    # emotion (normalised) -> class name; emotions absent here are excluded from this task
    assign: dict[str, str] = field(default_factory=dict)

    def index(self, emotion: str) -> int | None:
        """Class index of a normalised emotion, or None when this map excludes it."""
        target = self.assign.get(emotion)
        return None if target is None else self.classes.index(target)

    @property
    def num_classes(self) -> int:
        return len(self.classes)


LABEL_MAPS: Registry = Registry("label map")


def _identity(name: str, classes: tuple[str, ...]) -> LabelMap:
    return LabelMap(name, classes, {c: c for c in classes})


@LABEL_MAPS.register("dfme7")
def dfme7() -> LabelMap:
    """The 7 DFME classes."""
    return _identity("dfme7", ("happiness", "sadness", "anger", "contempt", "fear", "disgust", "surprise"))


@LABEL_MAPS.register("casme2_5")
def casme2_5() -> LabelMap:
    """The 5 CASME II classes (sadness and fear, 7 clips in all, are excluded as is usual)."""
    return _identity("casme2_5", ("happiness", "disgust", "repression", "surprise", "others"))


@LABEL_MAPS.register("samm5")
def samm5() -> LabelMap:
    """The 5 SAMM classes of the literature (disgust, fear and sadness, few clips each, are excluded)."""
    return _identity("samm5", ("anger", "contempt", "happiness", "surprise", "others"))


@LABEL_MAPS.register("casme3_7")
def casme3_7() -> LabelMap:
    """The 7 CAS(ME)^3 classes: its 6 emotions and "others"."""
    return _identity("casme3_7", ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "others"))


@LABEL_MAPS.register("mmew7")
def mmew7() -> LabelMap:
    """The 7 MMEW classes: its 6 emotions and "others"."""
    return _identity("mmew7", ("happiness", "surprise", "anger", "disgust", "fear", "sadness", "others"))


@LABEL_MAPS.register("4dme5")
def fourdme5() -> LabelMap:
    """The 5 4DME classes: valence, surprise, repression and "others"."""
    return _identity("4dme5", ("positive", "negative", "surprise", "repression", "others"))


@LABEL_MAPS.register("megc3")
def megc3() -> LabelMap:
    """MEGC 2019 composite: negative / positive / surprise; "others" and "tense" are excluded.

    Valence labels (SMIC's own three classes) keep their class."""
    negative = ("anger", "contempt", "disgust", "fear", "sadness", "repression", "negative")
    assign = {e: "negative" for e in negative} | {"happiness": "positive", "positive": "positive", "surprise": "surprise"}
    return LabelMap("megc3", ("negative", "positive", "surprise"), assign)


@LABEL_MAPS.register("all")
def all_emotions() -> LabelMap:
    """One class, ``expression``, for every emotion of the vocabulary ("unknown" included): the
    ground truth of spotting, which asks where the expressions are, not which (mer-score's
    spotting evaluation reads annotations so; long-video readers keep micro/macro in
    ``extra["type"]``), and the own map of SAMM long videos, which code no emotion."""
    return LabelMap("all", ("expression",), {e: "expression" for e in EMOTIONS})


def get_label_map(name: str | LabelMap) -> LabelMap:
    return name if isinstance(name, LabelMap) else LABEL_MAPS.get(name)()
