"""Regenerate the small example data sets in ``examples/data/`` (deterministic; the CSVs are committed).

They are small on purpose: ``make train`` and ``make demo`` fine-tune the embedded MiniLM on them in minutes
on two CPU cores, and the texts are varied enough that a model has to learn, not memorise one template.
"""
from __future__ import annotations

import random
from pathlib import Path

OUT = Path(__file__).resolve().parent / "data"
SIZES = {"train": 240, "dev": 60, "test": 60}

PEOPLE = ["Alice Martin", "Bob Chen", "Carla Diaz", "David Okafor", "Emma Novak", "Farid Haddad", "Grace Kim",
          "Hugo Silva", "Ines Moreau", "Jonas Berg", "Keiko Tanaka", "Liam Walsh", "Maya Patel", "Nora Schmidt"]
ORGS = ["Acme Corp", "Globex", "Initech", "Umbrella Health", "Stark Industries", "Wayne Logistics", "Hooli",
        "Vandelay Imports", "Soylent Foods", "Tyrell Systems"]
PLACES = ["Paris", "Berlin", "Lagos", "Tokyo", "Toronto", "Lima", "Oslo", "Mumbai", "Sydney", "Nairobi", "Seattle"]
NER_TEMPLATES = [
    "{PER} joined {ORG} in {LOC} last year .",
    "{ORG} opened a new office in {LOC} .",
    "According to {PER} , {ORG} will hire fifty engineers .",
    "{PER} flew from {LOC} to {LOC} on Monday .",
    "The board of {ORG} met {PER} and {PER} yesterday .",
    "Sales in {LOC} grew while {ORG} struggled .",
    "{PER} said the weather in {LOC} was terrible .",
    "Nobody expected the meeting to end so early .",
    "{ORG} and {ORG} signed a partnership near {LOC} .",
    "We visited {LOC} with {PER} during the spring .",
]

TOPICS = {
    "sports": ["the team won the final match", "the striker scored twice in the second half",
               "the coach praised the defence after the game", "the marathon runner broke the course record",
               "fans celebrated the championship title"],
    "business": ["quarterly revenue beat analyst expectations", "the company announced a merger with a rival",
                 "shares fell after the earnings call", "the startup raised a new funding round",
                 "the bank cut its interest rate forecast"],
    "technology": ["the new phone ships with a faster chip", "engineers released a security patch for the browser",
                   "the cloud service suffered a long outage", "researchers trained a larger language model",
                   "the laptop battery lasts all day"],
    "health": ["doctors recommend more sleep and exercise", "the hospital opened a new cancer ward",
               "a study links diet to heart disease", "the vaccine trial showed strong results",
               "nurses warned about the flu season"],
}
OPENERS = ["Yesterday", "This morning", "According to reports", "In a surprise", "Late on Friday", "Once again",
           "For the first time", "As expected"]
CLOSERS = ["", " and people reacted quickly", " which surprised many observers", " according to a statement",
           " as the week came to an end"]

ASPECTS = {
    "price": ["it was cheap", "the price is too high", "good value for money", "way too expensive"],
    "quality": ["the build quality is excellent", "it broke after two days", "solid and well made",
                "the material feels flimsy"],
    "delivery": ["delivery was fast", "the parcel arrived late", "shipping took three weeks",
                 "it came the next morning"],
    "service": ["support answered my questions", "customer service never replied", "the staff were friendly",
                "the agent was rude"],
}

POSITIVE = ["excellent", "wonderful", "great", "fantastic", "lovely", "superb"]
NEGATIVE = ["awful", "terrible", "poor", "dreadful", "disappointing", "bad"]
NEUTRAL = ["fine", "okay", "average", "acceptable", "ordinary"]


def _write(folder: Path, rows: dict[str, list[tuple[str, ...]]], header: tuple[str, ...]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for split, items in rows.items():
        lines = ["\t".join(header)] + ["\t".join(item) for item in items]
        (folder / f"{split}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _ner_row(rng: random.Random, with_boxes: bool) -> tuple[str, ...]:
    template = rng.choice(NER_TEMPLATES)
    words, labels = [], []
    for token in template.split():
        if token in ("{PER}", "{ORG}", "{LOC}"):
            kind = token[1:-1]
            name = rng.choice({"PER": PEOPLE, "ORG": ORGS, "LOC": PLACES}[kind]).split()
            words += name
            labels += [f"B-{kind}"] + [f"I-{kind}"] * (len(name) - 1)
        else:
            words.append(token)
            labels.append("O")
    row = (" ".join(words), " ".join(labels))
    if not with_boxes:
        return row
    boxes, x, y = [], 40, rng.randrange(40, 900, 20)
    for word in words:
        width = min(12 * len(word) + 8, 1000 - x)
        if x + width > 980:
            x, y = 40, min(y + 30, 960)
        boxes.append(f"{x} {y} {x + width} {y + 20}")
        x += width + 10
    return (*row, ",".join(boxes))


def _classif_row(rng: random.Random) -> tuple[str, ...]:
    topic = rng.choice(sorted(TOPICS))
    text = f"{rng.choice(OPENERS)} {rng.choice(TOPICS[topic])}{rng.choice(CLOSERS)} ."
    label = f'"{topic}"' if rng.random() < 0.5 else topic  # labels may be quoted
    return (text, label)


def _multilabel_row(rng: random.Random) -> tuple[str, ...]:
    k = rng.choice([0, 1, 1, 2, 2, 3])
    aspects = rng.sample(sorted(ASPECTS), k)
    parts = [rng.choice(ASPECTS[a]) for a in aspects] or [rng.choice(["I have no strong opinion",
                                                                      "I bought it for my brother",
                                                                      "nothing else to report"])]
    text = "Review : " + " , and ".join(parts) + " ."
    return (text, ",".join(f'"{a}"' for a in sorted(aspects)))


def _regression_row(rng: random.Random) -> tuple[str, ...]:
    score = rng.choice([1, 2, 3, 4, 5])
    word = {1: NEGATIVE, 2: NEGATIVE, 3: NEUTRAL, 4: POSITIVE, 5: POSITIVE}[score]
    intensifier = {1: "truly ", 2: "a bit ", 3: "", 4: "really ", 5: "absolutely "}[score]
    thing = rng.choice(["hotel", "meal", "film", "concert", "flight", "book"])
    text = f"The {thing} was {intensifier}{rng.choice(word)} ."
    return (text, f"{score + rng.uniform(-0.3, 0.3):.2f}")


PAIR_FACTS = {  # a claim about one of the classif topics, and sentences that support, contradict or ignore it
    "the team won the final": (["the team won the final match", "fans celebrated the championship title"],
                               ["the team lost the final match", "the final was cancelled before kick-off"]),
    "revenue went up": (["quarterly revenue beat analyst expectations", "sales grew faster than planned"],
                        ["quarterly revenue fell short of expectations", "sales dropped for a third quarter"]),
    "the phone is fast": (["the new phone ships with a faster chip", "apps open instantly on the new phone"],
                          ["the new phone is slower than the old one", "apps freeze on the new phone"]),
    "the vaccine works": (["the vaccine trial showed strong results", "fewer vaccinated people fell ill"],
                          ["the vaccine trial showed no effect", "vaccinated people fell ill just as often"]),
}


def _pair_row(rng: random.Random) -> tuple[str, ...]:
    """A claim, a second sentence, and whether the sentence entails, contradicts or is unrelated to it."""
    claim = rng.choice(sorted(PAIR_FACTS))
    label = rng.choice(["entailment", "contradiction", "neutral"])
    if label == "neutral":  # a sentence about another claim's subject
        other = rng.choice([c for c in sorted(PAIR_FACTS) if c != claim])
        sentence = rng.choice(PAIR_FACTS[other][rng.randrange(2)])
    else:
        sentence = rng.choice(PAIR_FACTS[claim][0 if label == "entailment" else 1])
    return (f"{rng.choice(OPENERS)} {claim} .", f"{sentence}{rng.choice(CLOSERS)} .", label)


def main() -> None:
    makers = {
        "ner": (lambda rng: _ner_row(rng, False), ("text", "labels")),
        "layoutlm-ner": (lambda rng: _ner_row(rng, True), ("text", "labels", "bbox")),
        "classif": (_classif_row, ("text", "labels")),
        "multilabel-classif": (_multilabel_row, ("text", "labels")),
        "regression": (_regression_row, ("text", "labels")),
        "pair-classif": (_pair_row, ("text", "text_pair", "labels")),
    }
    for name, (make, header) in makers.items():
        rng = random.Random(f"examples-{name}")
        _write(OUT / name, {split: [make(rng) for _ in range(n)] for split, n in SIZES.items()}, header)


if __name__ == "__main__":
    main()
