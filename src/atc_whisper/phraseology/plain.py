"""Plain everyday English sentences for the "no catastrophic forgetting" check.

A model tuned on ATC phraseology may start hearing every sentence as a clearance. Evaluation
synthesises these ordinary sentences and compares the tuned model's WER on them with the base
model's (issue 5: no more than 5 points worse). They were written for this project: short,
varied in topic and sound, with no aviation vocabulary and no numerals (so the reference needs
no normalisation choices).
"""

from __future__ import annotations

PLAIN_SENTENCES: tuple[str, ...] = (
    "The bakery on the corner sells fresh bread every morning.",
    "Please remember to water the plants while we are away.",
    "My sister is learning to play the violin this winter.",
    "We walked along the river until the sun went down.",
    "The library closes early on Sundays during the summer.",
    "Could you pass me the salt and the pepper, please?",
    "He forgot his umbrella and got soaked on the way home.",
    "The children built a sandcastle near the old pier.",
    "This soup tastes much better with a little lemon juice.",
    "Our neighbours adopted a small grey cat last week.",
    "I usually read the newspaper before breakfast.",
    "The museum has a new exhibition about ancient pottery.",
    "She painted the kitchen a bright shade of yellow.",
    "The train was delayed because of snow on the tracks.",
    "Let's meet in front of the cinema after work.",
    "The garden looks lovely now that the roses are blooming.",
    "He spent the whole afternoon fixing his bicycle.",
    "The teacher asked everyone to write a short poem.",
    "We ordered pizza and watched an old comedy film.",
    "The market is busiest on Saturday mornings.",
    "My grandmother tells the funniest stories about her childhood.",
    "The dog barked at the postman again this morning.",
    "Turn off the lights when you leave the room.",
    "The mountains were covered in fog when we arrived.",
    "She keeps her keys in a little wooden box by the door.",
    "The coffee machine in the office is broken again.",
    "They are planning a picnic if the weather stays warm.",
    "I need to buy milk, eggs and a loaf of bread.",
    "The concert was so loud that my ears were ringing.",
    "He wrote a long letter to his friend in Canada.",
    "The baby finally fell asleep after a warm bath.",
    "We painted the fence together last weekend.",
    "The shop assistant helped me find a warm scarf.",
    "Autumn leaves crunched under our boots in the park.",
    "My phone battery always runs out in the evening.",
    "The soup needs to simmer slowly for an hour.",
    "Everyone laughed when the clown slipped on a banana.",
    "The old clock in the hallway chimes every hour.",
    "Please close the window, it is getting cold in here.",
    "She jogs around the lake before going to the office.",
    "The students cheered when the exam results were posted.",
    "A gentle rain fell on the roof all night long.",
    "He prefers tea with honey instead of sugar.",
    "We found a quiet table at the back of the restaurant.",
    "The puppy chewed one of my favourite shoes.",
    "The bus stop is just across the street from the bank.",
    "Her laugh could be heard from the other end of the hall.",
    "The farmer sold us a basket of ripe strawberries.",
    "I am looking forward to a long holiday by the sea.",
    "The recipe calls for butter, flour and a pinch of salt.",
    "The city lights sparkled on the surface of the water.",
    "My brother is moving to a bigger apartment next month.",
    "The play was so moving that some people cried.",
    "Don't forget to bring a jacket, the evenings are chilly.",
    "The cat likes to sleep in the sunniest spot of the house.",
    "The postcard arrived three weeks after it was sent.",
    "They planted a row of young apple trees behind the barn.",
    "The waiter brought us warm bread with olive oil.",
    "I could hear the birds singing outside my window.",
    "The football match ended in a draw after extra time.",
    "She carefully wrapped the present in shiny blue paper.",
    "The hotel room had a beautiful view of the harbour.",
)


def plain_sentences(n: int, seed: int = 0) -> list[str]:
    """Return ``n`` plain sentences in a seeded order (cycling through the list when ``n`` is larger).

    Args:
        n: Number of sentences (0 or more).
        seed: Order seed; independent of the global random state.
    """
    import random

    order = list(PLAIN_SENTENCES)
    random.Random(f"plain:{seed}").shuffle(order)
    return [order[i % len(order)] for i in range(max(0, n))]
