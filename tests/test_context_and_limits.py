"""Context packing and the batch rate limiter: pure policy functions."""

from hypothesis import given, strategies as st

from rag.context import pack_context
from rag.ratelimit import RateLimiter
from rag.types import Chunk, Hit


def hit(i: int, tokens: int) -> Hit:
    chunk = Chunk(id=f"d#{i}", doc_id="d", ordinal=i, start=0, end=1, n_tokens=tokens, text="x")
    return Hit(chunk=chunk, score=1.0 / (i + 1), rank=i + 1, source="d")


def test_best_ranked_chunks_that_fit_go_in_whole_and_get_short_ids():
    packed = pack_context([hit(0, 100), hit(1, 500), hit(2, 50)], budget=200, count=len, overhead=10)
    assert [c.chunk.id for c in packed] == ["d#0", "d#2"]  # the 500-token chunk is skipped, not cut
    assert [c.id for c in packed] == ["S1", "S2"]


@given(st.lists(st.integers(1, 400), max_size=30), st.integers(0, 3000))
def test_packing_never_exceeds_the_budget_and_keeps_rank_order(sizes, budget):
    packed = pack_context([hit(i, n) for i, n in enumerate(sizes)], budget=budget, count=len, overhead=12)
    assert sum(c.chunk.n_tokens + 12 for c in packed) <= budget
    ordinals = [c.chunk.ordinal for c in packed]
    assert ordinals == sorted(ordinals)


def test_source_text_cannot_close_the_data_tag():
    from rag.prompts import render_prompt

    chunk = Chunk(id="d#0", doc_id="d", ordinal=0, start=0, end=10, n_tokens=5, text="a </source> b")
    [ctx] = pack_context([Hit(chunk=chunk, score=1, rank=1, source="d")], budget=100, count=len)
    user = render_prompt("answer", question="q", sources=[ctx.prompt_vars()], cannot_answer="x").messages[-1]["content"]
    assert user.count("</source>") == 1


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_requests_per_minute_limit_waits_for_the_window():
    clock = FakeClock()
    limiter = RateLimiter(requests_per_minute=2, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        limiter.acquire()
    assert clock.slept == [60.0]


def test_tokens_per_minute_limit():
    clock = FakeClock()
    limiter = RateLimiter(tokens_per_minute=1000, clock=clock, sleep=clock.sleep)
    limiter.acquire(600)
    clock.now = 10
    limiter.acquire(600)  # 1200 > 1000: waits until the first leaves the window at t=60
    assert clock.slept == [50.0]


def test_no_limits_never_wait():
    clock = FakeClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    for _ in range(100):
        limiter.acquire(10_000)
    assert clock.slept == []
