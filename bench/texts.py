"""A few thousand realistic English texts of mixed length, made deterministically (no corpus download).

Sentences are drawn from varied templates and joined into paragraphs whose lengths follow a log-normal
distribution, so a batch mixes one-liners with long paragraphs, as real traffic does (median ~40 tokens).
"""
from __future__ import annotations

import random

SUBJECTS = ["The committee", "Our support team", "The new manager", "A spokesperson for the company", "Local residents",
            "The research group", "Investors", "The city council", "Several customers", "The hospital director",
            "Maya Patel", "David Okafor", "The engineering department", "Farmers in the region", "The airline"]
VERBS = ["announced", "criticised", "welcomed", "postponed", "reviewed", "questioned", "approved", "rejected",
         "described", "celebrated", "investigated", "reported"]
OBJECTS = ["the quarterly results", "a plan to expand the railway network", "the decision to raise prices",
           "a study on sleep and memory", "the launch of the new phone", "delays at the northern border",
           "a partnership with a university in Toronto", "the recall of thousands of vehicles",
           "changes to the school timetable", "the final match of the season", "rising energy costs",
           "a shortage of nurses in rural clinics", "the opening of a museum in Lagos"]
TAILS = ["", " on Monday", " after a long debate", " despite strong objections", " earlier this week",
         " in a short statement", ", according to people familiar with the matter", " for the second time this year"]
CLAUSES = ["while analysts expect further changes", "although details remain unclear",
           "and the reaction online was mixed", "which surprised many observers",
           "because demand has grown faster than forecast", "as the deadline approaches"]


def sentence(rng: random.Random) -> str:
    text = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}{rng.choice(TAILS)}"
    if rng.random() < 0.4:
        text += f", {rng.choice(CLAUSES)}"
    return text + "."


def corpus(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        sentences = max(1, min(30, round(rng.lognormvariate(0.7, 0.8))))
        texts.append(" ".join(sentence(rng) for _ in range(sentences)))
    return texts
