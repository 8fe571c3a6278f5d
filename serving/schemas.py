"""Request / response models of the feed API (all of them, in one file).

Static bounds live here; bounds that depend on settings (k_max, batch_max, history_max) are
checked in `serving.requests` (and the other rooms of `serving.state`) and come back as 422 with
the same kind of message.

Request bodies are parsed strictly (`serving.app.json_body`: JSON types as declared, no coercion:
`k: true`, `user_id: "1.0"` or a number for a date-time are 422s). Error bodies: 422 is
`ValidationErrorBody` (`detail`: a list of {loc, msg, type}), every other error `ErrorBody`
(`detail`: a string).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema

# Every id a client sends (users, posts, authors): an integer (int64: a larger one is a 422 that
# says so, not an overflow deeper down) or a string (UUID, slug, handle; 1-256 characters), as the
# bundle's dataset identifies that entity (`serving.ids`: the wrong type is a 422 naming it).
# Strict: `true` is not user 1 and "12" is not post 12.
ID_MAX_LEN = 256


def _check_id(v: object) -> int | str:
    if isinstance(v, int) and not isinstance(v, bool):
        if not -(2**63) <= v < 2**63:
            raise ValueError(f"integer ids are int64 (from {-(2**63)} to {2**63 - 1}), got {v}")
        return v
    if isinstance(v, str):
        if not 1 <= len(v) <= ID_MAX_LEN:
            raise ValueError(f"string ids have 1 to {ID_MAX_LEN} characters, got {len(v)}")
        return v
    raise ValueError(f"an id is an integer or a string, got {type(v).__name__}")


Id = Annotated[int | str, PlainValidator(_check_id), WithJsonSchema({"anyOf": [
    {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1},
    {"type": "string", "minLength": 1, "maxLength": ID_MAX_LEN}]})]

MAX_AGE_S = 1e12  # ~31,700 years: any real catalogue; keeps `now - max_age` inside int64 microseconds


def _utc(t: dt.datetime) -> dt.datetime:
    """A date-time without a zone is UTC (so naive and zoned times compare and sort)."""
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t


# A client's date-time: RFC 3339 text (numbers are refused by the strict parse); no zone = UTC.
Timestamp = Annotated[dt.datetime, AfterValidator(_utc)]


class Filters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    exclude_seen: bool = Field(True, description="drop posts the user has interacted with (and the request history)")
    exclude_authors: list[Id] = Field(default_factory=list, description="author ids to leave out")
    exclude_post_ids: list[Id] = Field(default_factory=list, description="post ids to leave out")
    max_age_seconds: float | None = Field(None, gt=0, le=MAX_AGE_S, allow_inf_nan=False,
                                          description="only posts created within this many seconds of `now`")
    now: Timestamp | None = Field(None, description="reference time for max_age_seconds (default: server time; no zone = UTC)")
    author_cap: int | None = Field(None, ge=1, description="at most this many posts per author in the response")


class RecommendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: Id | None = Field(None, description="known user: stored history + seen set are used")
    history: list[Id] = Field(default_factory=list, description="recent post ids, most recent last (added to the user's)")
    k: int | None = Field(None, description="number of posts (1..k_max, default k_default)")
    filters: Filters = Field(default_factory=Filters)


class Item(BaseModel):
    post_id: int | str
    score: float
    why: int | str | None = Field(None, description="history post closest to this one (autoencoder latent cosine)")
    why_similarity: float | None = Field(None, description="that cosine")
    why_modality: str | None = Field(
        None, description="what weighed most in the score: 'id' when the post's ID part (who interacted "
        "with it, its author) gives more than half of the score, else the content modality (e.g. 'text', "
        "'image', 'video') whose single-modality code is closest to the `why` post's content; 'content' "
        "when undecidable (online post). Definition: recsys/explain.py")


class RecommendResponse(BaseModel):
    items: list[Item]
    bundle_version: str
    fallback: bool = Field(False, description="True when the response is not personalised from a history")
    fallback_reason: str | None = Field(
        None, description="'unknown_user_history_profile' | 'no_history_popular' | 'no_profile_popular'"
    )
    user_known: bool = False


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requests: list[RecommendRequest] = Field(description="one entry per user (at most batch_max)")


class BatchResponse(BaseModel):
    results: list[RecommendResponse]
    bundle_version: str


class SimilarResponse(BaseModel):
    post_id: int | str
    items: list[Item]
    bundle_version: str


class NewPost(BaseModel):
    """Either precomputed per-modality features, or media (text and/or server-side file paths)."""

    model_config = ConfigDict(extra="forbid")

    post_id: Id
    author_id: Id | None = None
    created_at: Timestamp | None = Field(None, description="default: server time (no zone = UTC)")
    features: dict[str, list[float]] | None = Field(None, description="{modality: vector of the run's input dim}")
    text: str | None = None
    image_path: str | None = None
    video_path: str | None = None


class NewPostResponse(BaseModel):
    post_id: int | str
    created: bool = Field(description="False when the post already existed (idempotent)")
    modalities: list[str] = Field(description="modalities present in the encoded post")
    bundle_version: str


class DeleteResponse(BaseModel):
    post_id: int | str
    deleted: bool


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: Id
    post_id: Id
    event: str = Field("view", min_length=1, max_length=32)
    ts: Timestamp | None = Field(None, description="default: arrival order (no zone = UTC)")


class EventsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[Event]


class EventsResponse(BaseModel):
    accepted: int
    users: int


class Health(BaseModel):
    status: str


class LogStatus(BaseModel):
    """The online log as this worker sees it (null fields: no log, `RECSYS_ONLINE_LOG=off`)."""

    worker_pid: int
    location: str | None = Field(None, description="SQLite path or PostgreSQL URL (password hidden)")
    applied_seq: int = Field(description="last log entry this worker applied")
    bundle_seq: int = Field(description="last log entry the served bundle covers (folded in at build time)")
    replayed: int = Field(description="entries replayed at start or at the last swap")
    replay_seconds: float


class Ready(BaseModel):
    status: str
    bundle_version: str | None = None
    n_posts: int | None = None
    delta_posts: int | None = None
    deleted_posts: int | None = None
    log: LogStatus | None = None


class ReloadResponse(BaseModel):
    previous_version: str | None
    bundle_version: str
    reloaded: bool
    seconds: float
    warmed_users: int = Field(0, description="users served on the new bundle before it took traffic")


class ErrorBody(BaseModel):
    """Every error answer other than 422."""

    detail: str = Field(description="what was expected and what arrived")


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="where: ('body', field, ...), ('path', name) or ('query', name)")
    msg: str
    type: str
    input: str | int | float | bool | None = Field(None, description="the offending value, when short and printable")


class ValidationErrorBody(BaseModel):
    """Every 422 answer: one entry per problem found."""

    detail: list[FieldError]


# --- the web page's reads (serving/ui.py) ----------------------------------------------------------

class Post(BaseModel):
    post_id: int | str
    author_id: int | str | None = None
    created_at: str | None = Field(None, description="ISO 8601, UTC")
    age_seconds: float | None = Field(None, description="seconds since created_at, at the server's clock")
    text: str | None = None
    image_url: str | None = Field(None, description="/media/... (served from the bundle's dataset root)")
    video_url: str | None = None
    poster_url: str | None = Field(None, description="/posters/...: a JPEG frame of the video")


class LookupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    post_ids: list[Id] = Field(description="post ids (at most k_max), integers or strings as the deployment identifies posts")


class LookupResponse(BaseModel):
    posts: list[Post] = Field(description="the posts found, in the order asked")
    missing: list[int | str] = Field(description="ids that are unknown or deleted")
    bundle_version: str


class UserSummary(BaseModel):
    user_id: int | str
    history_len: int


class Info(BaseModel):
    bundle_version: str
    n_posts: int
    newest_post_at: str | None = Field(None, description="created_at of the newest bundle post (a reference `now` "
                                       "for max_age_seconds on historical data)")
    media: bool = Field(description="True when post text and media are available (the bundle names its dataset)")
    users: list[UserSummary] = Field(description="known users with the longest histories (to pick from)")


class UserHistory(BaseModel):
    user_id: int | str
    known: bool
    history: list[int | str] = Field(description="post ids, most recent last (bundle history + online events)")


# --- analysis (serving/analysis_routes.py) ----------------------------------------------------

class Sparkline(BaseModel):
    step_hours: int = Field(description="hours per point")
    values: list[int] = Field(description="engagement events per step, oldest first, over the last 4 windows")


class TrendItem(BaseModel):
    cluster_id: int = Field(description="stable across rebuilds (matched to the previous bundle's clusters)")
    label: str = Field(description="the cluster's most distinctive words (c-TF-IDF), or its modality mix without text")
    score: float | None = Field(description="burst score z = (X - E) / sqrt(E + 1)")
    flagged: bool = Field(description="z >= 5, X / E >= 1.5 and X >= 5: surging")
    observed: int = Field(description="X: engagement events in the window")
    expected: float | None = Field(description="E: events at the cluster's baseline share of all activity")
    ratio: float | None = Field(description="X / E")
    new_posts: int = Field(description="posts created in the window")
    new_post_velocity: float | None = Field(description="posts created per hour in the window")
    velocity_ratio: float | None = Field(description="that rate over the baseline's rate")
    sentiment: float | None = Field(description="mean sentiment [-1, 1] of the posts engaged with in the window")
    sentiment_baseline: float | None = Field(description="the same over the baseline")
    representative_post_ids: list[int | str] = Field(description="posts nearest the cluster's centre")
    sparkline: Sparkline


class TrendsResponse(BaseModel):
    bundle_version: str
    as_of: dt.datetime = Field(description="end of the window (the request's `now`, else the latest activity or the clock, whichever is earlier)")
    window_hours: int
    live_events: int = Field(description="events received online (POST /v1/events) counted on top of the bundle's history")
    statistic: str
    items: list[TrendItem]


class ProfileCluster(BaseModel):
    cluster_id: int
    label: str
    weight: float = Field(description="share of the user's interest (mean of the history and vector views)")
    from_history: float | None = Field(description="recency-weighted share of the user's interactions in this cluster")
    from_vector: float | None = Field(description="softmax of cos(user vector, the cluster's mean post vector)")
    interactions: int = Field(description="history posts in this cluster")
    example_post_ids: list[int | str] = Field(description="the user's latest posts in it (else the cluster's representatives)")
    sentiment: float | None = Field(description="mean sentiment of the user's posts in it")


class PreferredModality(BaseModel):
    modality: str
    lift: float = Field(description="share of the user's posts with it over its share in the catalogue")
    shares: dict[str, float]


class ProfileActivity(BaseModel):
    interactions: int = Field(description="posts the user has interacted with (stored + online)")
    history_used: int = Field(description="recent history posts the profile is built from")
    clusters_touched: int
    mean_sentiment: float | None


class ProfileResponse(BaseModel):
    user_id: int | str
    bundle_version: str
    has_history: bool
    message: str | None = Field(description="set when there is little or nothing to profile")
    clusters: list[ProfileCluster]
    preferred_modality: PreferredModality | None
    activity: ProfileActivity
