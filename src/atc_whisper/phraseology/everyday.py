"""Everyday English sentences to rehearse while fine-tuning (keeps the model from forgetting).

A decoder trained only on ATC phraseology learns that every transmission is a clearance and
starts writing "climb" where someone said "clean". Mixing a small share of ordinary sentences
into the training data (``data.plain_fraction``) is the usual remedy (rehearsal). These
sentences are composed from templates and word lists written for this project, so there are
tens of thousands of distinct ones; they are written the way the pretrained model writes
(capitalised, punctuated) so it keeps that habit for non-ATC speech.

They never include numerals or aviation words, and :func:`everyday_sentences` never returns
one of the hand-written evaluation sentences of :mod:`atc_whisper.phraseology.plain`: the
forgetting check stays held out.
"""

from __future__ import annotations

import random

from atc_whisper.phraseology.plain import PLAIN_SENTENCES

_PEOPLE = (
    "my neighbour", "the old fisherman", "our teacher", "my cousin", "the young doctor", "her uncle",
    "the gardener", "a tired student", "the shopkeeper", "my best friend", "the baker", "his daughter",
    "the librarian", "our landlord", "a cheerful waiter", "the painter", "my grandfather", "the new nurse",
    "the postwoman", "a quiet boy", "the carpenter", "their aunt", "the farmer", "my little brother",
)
_NAMES = (
    "Anna", "Peter", "Maria", "Thomas", "Sofia", "David", "Emma", "Lucas", "Grace", "Oliver", "Clara",
    "Samuel", "Helen", "Martin", "Julia", "Daniel", "Rosa", "Henry", "Alice", "Victor", "Nina", "George",
)
_PAST_VERBS = (
    ("cooked", ("a pot of soup", "dinner for everyone", "a spicy curry", "pancakes", "a vegetable stew")),
    ("painted", ("the garden wall", "a picture of the sea", "the old chair", "the bedroom door", "a small boat")),
    ("found", ("a lost wallet", "an old photograph", "a tiny kitten", "the missing key", "a silver ring")),
    ("bought", ("a warm coat", "fresh vegetables", "a second-hand piano", "new curtains", "a bunch of flowers")),
    ("repaired", ("the broken fence", "the kitchen tap", "an old radio", "the garden gate", "a wobbly table")),
    ("wrote", ("a long letter", "a funny story", "a shopping list", "a birthday card", "a short song")),
    ("cleaned", ("the whole house", "the dusty shelves", "the windows", "the muddy boots", "the garage")),
    ("borrowed", ("a ladder", "some sugar", "a thick novel", "an umbrella", "a pair of gloves")),
    ("planted", ("a row of tulips", "some tomatoes", "a young oak tree", "sunflowers", "fresh herbs")),
    ("visited", ("the castle", "an art gallery", "the zoo", "a small village", "the botanical garden")),
)
_PLACES = (
    "in the kitchen", "by the lake", "at the market", "in the park", "near the station", "at the library",
    "on the beach", "in the village", "behind the church", "at the school", "in the forest", "by the river",
    "at the bakery", "in the city centre", "on the farm", "at the swimming pool", "in the garden",
)
_TIMES = (
    "yesterday", "last night", "this morning", "on Sunday", "after lunch", "before dinner", "last summer",
    "every evening", "early in the morning", "during the holidays", "on a rainy afternoon", "last winter",
)
_ADJECTIVES = (
    "quiet", "crowded", "beautiful", "noisy", "cold", "cosy", "bright", "dark", "peaceful", "busy",
    "lovely", "strange", "warm", "windy", "muddy", "colourful",
)
_THINGS = (
    "the kitchen", "the museum", "the little shop", "the garden", "the old house", "the classroom",
    "the beach", "the street", "the forest", "the café", "the hospital", "the playground", "the hall",
)
_FEELINGS = ("happy", "surprised", "nervous", "tired", "excited", "worried", "proud", "bored", "delighted")
_REASONS = (
    "it was raining", "the shop was closed", "the bus was late", "nobody answered the door",
    "the soup was too salty", "the dog ran away", "the film was sold out", "the road was flooded",
    "she lost her glasses", "the oven stopped working", "the music was too loud", "it started to snow",
)
_REQUESTS = (
    "close the door", "bring an extra blanket", "turn down the music", "feed the cat",
    "call your mother", "wash the dishes", "buy some bread", "lock the back door", "read this letter",
    "put the kettle on", "wait for me outside", "check the post", "sweep the floor", "open the curtains",
)
_WHEN = (
    "before lunch", "when you get home", "tomorrow morning", "after the film", "later tonight",
    "on your way out", "this afternoon", "before the guests arrive", "at the weekend", "after breakfast",
)
_ACTIVITIES = (
    "play chess", "go for a long walk", "bake a cake", "watch the sunset", "read in the garden",
    "visit the museum", "go swimming", "learn to dance", "ride our bicycles", "cook something new",
    "pick blackberries", "listen to old records", "sing in the choir", "go to the theatre",
)


_HELD_OUT = frozenset(PLAIN_SENTENCES)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _one(rng: random.Random) -> str:
    kind = rng.randrange(8)
    person = rng.choice(_PEOPLE + _NAMES)
    if kind == 0:
        verb, objects = rng.choice(_PAST_VERBS)
        return _cap(f"{person} {verb} {rng.choice(objects)} {rng.choice(_TIMES)}.")
    if kind == 1:
        verb, objects = rng.choice(_PAST_VERBS)
        return _cap(f"{rng.choice(_TIMES)}, {person} {verb} {rng.choice(objects)} {rng.choice(_PLACES)}.")
    if kind == 2:
        first, second = rng.sample(_ADJECTIVES, 2)
        return _cap(f"{rng.choice(_THINGS)} was {first} and {second} {rng.choice(_TIMES)}.")
    if kind == 3:
        return _cap(f"{person} felt {rng.choice(_FEELINGS)} because {rng.choice(_REASONS)}.")
    if kind == 4:
        return f"Could you ask {rng.choice(_PEOPLE)} to {rng.choice(_REQUESTS)} {rng.choice(_WHEN)}?"
    if kind == 5:
        return f"We would like to {rng.choice(_ACTIVITIES)} {rng.choice(_PLACES)} {rng.choice(_TIMES)}."
    if kind == 6:
        first, second = rng.sample(_REQUESTS, 2)
        return f"Please {first} and {second} {rng.choice(_WHEN)}."
    return _cap(f"{rng.choice(_NAMES)} asked {rng.choice(_PEOPLE)} to {rng.choice(_ACTIVITIES)} "
                f"{rng.choice(_PLACES)}.")


def everyday_sentence(seed: int, index: int) -> str:
    """The ``index``-th everyday sentence of ``seed``: the same whatever else is generated.

    Never one of the evaluation sentences (:data:`PLAIN_SENTENCES`).
    """
    rng = random.Random(f"everyday:{seed}:{index}")
    while True:
        sentence = _one(rng)
        if sentence not in _HELD_OUT:
            return sentence


def everyday_sentences(n: int, seed: int = 0) -> list[str]:
    """``n`` everyday sentences for rehearsal, reproducibly (see :func:`everyday_sentence`)."""
    return [everyday_sentence(seed, i) for i in range(max(0, n))]
