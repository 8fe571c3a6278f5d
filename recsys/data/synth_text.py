"""Topic vocabularies and the post-text generator of the synthetic platform.

Each topic has distinctive nouns, verbs, adjectives and hashtags; a post's text is 1-3 sentences
composed from templates, so a sentence encoder sees the topic while no two posts read the same.
A small fraction of words come from another topic (`noise`), so the text signal is strong but
not perfectly clean.

    make_text(rng, "cooking", topics=TOPIC_NAMES, noise=0.1) -> "Just tried a smoky risotto ..."

Tone (the sentiment ground truth): every post has a hidden tone in [-1, 1] (`draw_tones`: the
topic's mood + the author's temperament + the post's own); a text with |tone| >= TONE_NEUTRAL
carries one or two tone words of that sign (`make_text(..., tone=t)`), a neutral one none, and
the filler sentences never contradict the tone. `tone_label` maps a tone to neg / neu / pos.

Themes (`THEME_VOCAB`): subjects that appear all at once across many authors (a heatwave, an
election, ...), written with their own words, none shared with a topic's; `make_text` writes about
a theme exactly as about a topic. A theme post's tone takes the theme's mood (`THEME_MOOD`) in
place of its topic's.
"""

from __future__ import annotations

import numpy as np

VOCAB: dict[str, dict[str, list[str]]] = {
    "cooking": {
        "nouns": ["risotto", "sourdough", "pasta", "curry", "soup", "pancakes", "skillet", "oven",
                  "garlic", "basil", "recipe", "dumplings", "stew", "omelette", "tomato sauce", "spices"],
        "verbs": ["simmered", "baked", "roasted", "chopped", "seasoned", "whisked", "grilled", "marinated"],
        "adjs": ["crispy", "savory", "homemade", "smoky", "creamy", "spicy", "golden", "tender"],
        "tags": ["#cooking", "#recipe", "#foodie", "#homecooking"],
    },
    "football": {
        "nouns": ["match", "goal", "striker", "goalkeeper", "penalty", "derby", "league", "stadium",
                  "midfielder", "free kick", "referee", "corner", "defender", "season", "tactics", "pitch"],
        "verbs": ["scored", "tackled", "defended", "dribbled", "crossed", "equalised", "saved", "pressed"],
        "adjs": ["last-minute", "stunning", "tactical", "offside", "decisive", "brilliant", "dramatic", "clinical"],
        "tags": ["#football", "#matchday", "#soccer", "#goal"],
    },
    "travel": {
        "nouns": ["beach", "passport", "flight", "hostel", "island", "mountain village", "itinerary", "train ride",
                  "backpack", "harbour", "old town", "road trip", "sunset", "museum", "airport", "ferry"],
        "verbs": ["explored", "wandered", "booked", "hiked", "visited", "discovered", "sailed", "toured"],
        "adjs": ["remote", "scenic", "tropical", "historic", "hidden", "breathtaking", "sunny", "coastal"],
        "tags": ["#travel", "#wanderlust", "#vacation", "#travelgram"],
    },
    "cats": {
        "nouns": ["kitten", "cat", "whiskers", "paws", "litter box", "scratching post", "tabby", "purr",
                  "catnip", "yarn ball", "cat tree", "meow", "tail", "nap spot", "feline", "fur"],
        "verbs": ["purred", "pounced", "napped", "meowed", "stretched", "groomed", "chased", "knocked over"],
        "adjs": ["fluffy", "sleepy", "curious", "playful", "grumpy", "tiny", "striped", "adorable"],
        "tags": ["#cats", "#catsofinstagram", "#kitten", "#meow"],
    },
    "music": {
        "nouns": ["guitar", "album", "concert", "chorus", "melody", "drummer", "playlist", "vinyl",
                  "piano", "synth", "bassline", "setlist", "band", "lyrics", "festival", "song"],
        "verbs": ["played", "recorded", "jammed", "composed", "sang", "remixed", "tuned", "performed"],
        "adjs": ["acoustic", "catchy", "live", "melodic", "loud", "haunting", "groovy", "soulful"],
        "tags": ["#music", "#newmusic", "#livemusic", "#guitar"],
    },
    "tech": {
        "nouns": ["laptop", "smartphone", "processor", "software update", "keyboard", "startup", "app",
                  "server", "algorithm", "database", "compiler", "GPU", "open-source library", "robot", "chip", "battery"],
        "verbs": ["debugged", "deployed", "coded", "benchmarked", "upgraded", "installed", "compiled", "refactored"],
        "adjs": ["fast", "wireless", "open-source", "buggy", "cutting-edge", "encrypted", "cloud-native", "efficient"],
        "tags": ["#tech", "#coding", "#gadgets", "#programming"],
    },
    "fitness": {
        "nouns": ["workout", "squat", "deadlift", "treadmill", "dumbbells", "protein shake", "gym", "marathon",
                  "push-ups", "cardio", "plank", "personal best", "leg day", "kettlebell", "rowing machine", "stretching"],
        "verbs": ["lifted", "trained", "ran", "sweated", "stretched out", "sprinted", "benched", "crushed"],
        "adjs": ["intense", "sweaty", "strong", "brutal", "explosive", "lean", "disciplined", "heavy"],
        "tags": ["#fitness", "#gym", "#workout", "#fitfam"],
    },
    "fashion": {
        "nouns": ["dress", "sneakers", "jacket", "runway", "handbag", "outfit", "denim", "silk scarf",
                  "boots", "collection", "designer", "lookbook", "blazer", "sunglasses", "wardrobe", "accessories"],
        "verbs": ["styled", "wore", "designed", "tailored", "paired", "modelled", "layered", "stitched"],
        "adjs": ["elegant", "vintage", "trendy", "chic", "oversized", "tailored", "minimalist", "bold"],
        "tags": ["#fashion", "#ootd", "#style", "#streetstyle"],
    },
    "gardening": {
        "nouns": ["tomatoes", "seedlings", "compost", "roses", "greenhouse", "flower bed", "soil", "tulips",
                  "herb garden", "watering can", "weeds", "sunflowers", "vegetable patch", "bulbs", "hedge", "mulch"],
        "verbs": ["planted", "watered", "pruned", "harvested", "repotted", "weeded", "sowed", "fertilised"],
        "adjs": ["blooming", "leafy", "organic", "fresh", "green", "fragrant", "lush", "overgrown"],
        "tags": ["#gardening", "#plants", "#growyourown", "#garden"],
    },
    "space": {
        "nouns": ["telescope", "galaxy", "nebula", "rocket launch", "astronaut", "moon", "planet", "comet",
                  "orbit", "space station", "meteor shower", "Mars rover", "star cluster", "eclipse", "satellite", "black hole"],
        "verbs": ["observed", "launched", "photographed", "orbited", "spotted", "tracked", "landed", "measured"],
        "adjs": ["distant", "cosmic", "lunar", "interstellar", "bright", "spiral", "faint", "orbital"],
        "tags": ["#space", "#astronomy", "#nasa", "#stargazing"],
    },
}
TOPIC_NAMES: tuple[str, ...] = tuple(VOCAB)

# Cross-author themes (synth_bursts.py schedules them): new subjects every kind of author posts
# about during a burst. No word is shared with a topic vocabulary (tests/unit/data).
THEME_VOCAB: dict[str, dict[str, list[str]]] = {
    "heatwave": {
        "nouns": ["heatwave", "record temperature", "air conditioning", "sunscreen", "electric fan", "ice cubes",
                  "shade", "heat warning", "cold bath", "water bottle", "thermometer", "heat dome"],
        "verbs": ["melted", "sweltered", "overheated", "cooled off", "hydrated", "sheltered", "fanned", "soaked"],
        "adjs": ["scorching", "sweltering", "humid", "blistering", "muggy", "boiling", "stifling", "parched"],
        "tags": ["#heatwave", "#staycool", "#hottestday", "#heatwarning"],
    },
    "snowstorm": {
        "nouns": ["blizzard", "snowdrift", "snowplough", "icicles", "sledge", "snowman", "frozen pipes", "school closure",
                  "snow shovel", "snowfall", "sleet", "mittens"],
        "verbs": ["shovelled", "stranded", "skidded", "froze", "ploughed", "bundled up", "slipped", "defrosted"],
        "adjs": ["icy", "snowbound", "frosty", "freezing", "wintry", "blustery", "snowy", "bitter"],
        "tags": ["#snowstorm", "#snowday", "#blizzard", "#snowedin"],
    },
    "blackout": {
        "nouns": ["power cut", "blackout", "candles", "flashlight", "generator", "fuses", "power grid", "lantern",
                  "outage map", "candlelight", "circuit breaker", "torch"],
        "verbs": ["flickered", "lit", "unplugged", "rationed", "waited", "reset", "lost power", "powered down"],
        "adjs": ["darkened", "dim", "candlelit", "silent", "powerless", "flickering", "unlit", "eerie"],
        "tags": ["#blackout", "#poweroutage", "#nopower", "#candlelight"],
    },
    "election": {
        "nouns": ["ballot", "polling booth", "candidate", "debate", "referendum", "turnout", "exit poll", "campaign",
                  "manifesto", "voters", "recount", "council seat"],
        "verbs": ["voted", "campaigned", "canvassed", "debated", "elected", "tallied", "endorsed", "queued"],
        "adjs": ["undecided", "landslide", "partisan", "electoral", "close-run", "swing", "grassroots", "democratic"],
        "tags": ["#election", "#vote", "#electionday", "#democracy"],
    },
}
THEME_NAMES: tuple[str, ...] = tuple(THEME_VOCAB)
THEME_MOOD: dict[str, float] = {"heatwave": -0.2, "snowstorm": -0.1, "blackout": -0.4, "election": 0.0}


def vocabulary(subject: str) -> dict[str, list[str]]:
    """The word lists of a topic or a theme."""
    return VOCAB[subject] if subject in VOCAB else THEME_VOCAB[subject]

# Templates: {a}=adjective, {n}=noun, {n2}=another noun, {v}=verb.
TEMPLATES = (
    "Just {v} a {a} {n} today.",
    "Nothing beats a {a} {n} on a weekend.",
    "We {v} the {n} and honestly it was {a}.",
    "My {n} game is getting {a}, who else {v} one this week?",
    "Quick tip: the {n} matters more than the {n2}.",
    "Can't stop thinking about that {a} {n}.",
    "First time I {v} a {n} and the {n2} was perfect.",
    "Is a {a} {n} overrated or underrated?",
    "{A} {n}, {a} {n2}, good vibes.",
    "Throwback to when we {v} the {n} with friends.",
    "Hot take: every {n} needs a {a} {n2}.",
    "Here is how I {v} my {n} in ten minutes.",
)
FILLERS = ("Thoughts?", "Love this.", "Again tomorrow!", "What a day.", "So good.", "Highly recommend.", "")
POSITIVE_FILLERS = frozenset({"Love this.", "So good.", "Highly recommend."})

TONE_NEUTRAL = 0.25  # |tone| below this: neutral (no tone words)
TONE_WORDS = {
    1: ["amazing", "wonderful", "fantastic", "great", "excellent", "beautiful", "perfect", "happy", "thrilled", "delighted"],
    -1: ["awful", "terrible", "disappointing", "horrible", "miserable", "frustrating", "annoying", "ugly", "sad", "ruined"],
}
TONE_TEMPLATES = ("Honestly it was {w}.", "Feeling {w} about it.", "Such a {w} experience.", "Just {w}, {w2} even.")


def tone_label(tone: np.ndarray | float) -> np.ndarray:
    """Tone in [-1, 1] -> int8 label: -1 negative, 0 neutral, +1 positive (|tone| < TONE_NEUTRAL)."""
    t = np.asarray(tone, np.float64)
    return np.where(t >= TONE_NEUTRAL, 1, np.where(t <= -TONE_NEUTRAL, -1, 0)).astype(np.int8)


def draw_tones(rng: np.random.Generator, post_topic: np.ndarray, post_author: np.ndarray, n_topics: int,
               n_authors: int, subject_mood: np.ndarray | None = None) -> np.ndarray:
    """float64 (N,) hidden tone per post in [-1, 1]: topic mood (some topics are sunnier) + author
    temperament + the post's own mood. subject_mood float64 (N,): where not NaN, it replaces the
    topic's mood (a theme post takes its theme's)."""
    topic_mood = rng.uniform(-0.35, 0.35, n_topics)
    author_mood = rng.normal(0.0, 0.25, n_authors)
    own = rng.normal(0.0, 0.5, len(post_topic))
    mood = topic_mood[post_topic]
    if subject_mood is not None:
        mood = np.where(np.isnan(subject_mood), mood, subject_mood)
    return np.clip(mood + author_mood[post_author] + own, -1.0, 1.0)


def make_text(rng: np.random.Generator, topic: str, topics: tuple[str, ...] = TOPIC_NAMES, noise: float = 0.1,
              tone: float | None = None) -> str:
    """1-3 sentences about `topic` (a topic or a theme); each slot draws from another topic with
    probability `noise`.
    With a `tone`, a non-neutral post gets a tone sentence (drawn after everything else, so the
    rest of the text is the one drawn without a tone) and no filler of the other sign."""

    def pick(kind: str) -> str:
        src = topic
        if noise > 0 and rng.random() < noise:
            src = topics[int(rng.integers(len(topics)))]
        words = vocabulary(src)[kind]
        return words[int(rng.integers(len(words)))]

    sentences = []
    for _ in range(int(rng.integers(1, 4))):
        t = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
        a = pick("adjs")
        s = t.format(a=a, A=a.capitalize(), n=pick("nouns"), n2=pick("nouns"), v=pick("verbs"))
        sentences.append(s[0].upper() + s[1:])
    filler = FILLERS[int(rng.integers(len(FILLERS)))]
    if tone is not None and filler in POSITIVE_FILLERS and tone_label(tone) <= 0:
        filler = "What a day."  # a neutral or negative post does not say "Love this."
    if filler:
        sentences.append(filler)
    n_tags = int(rng.integers(0, 3))
    own_tags = vocabulary(topic)["tags"]
    tags = [own_tags[int(i)] for i in rng.choice(len(own_tags), n_tags, replace=False)]
    if tone is not None and tone_label(tone) != 0:
        words = TONE_WORDS[int(tone_label(tone))]
        w, w2 = (words[int(i)] for i in rng.choice(len(words), 2, replace=False))
        n = 2 if abs(tone) >= 0.6 else 1  # stronger tone, more tone words
        sentences.append(TONE_TEMPLATES[int(rng.integers(len(TONE_TEMPLATES) - (1 if n == 1 else 0)))].format(w=w, w2=w2)
                         if n == 1 else TONE_TEMPLATES[-1].format(w=w, w2=w2))
    return " ".join(sentences + tags)
