"""The answer cache: bounded by the weight of what it holds, least recently used out first."""

from __future__ import annotations

from urbanlake.catalog.service import LruCache


def test_the_cache_keeps_within_its_budget_and_evicts_the_least_recent() -> None:
    cache = LruCache(budget=100)
    cache.put("a", 1, weight=20)
    cache.put("b", 2, weight=20)
    cache.put("c", 3, weight=20)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("d", 4, weight=25)
    cache.put("e", 5, weight=25)  # 110 > 100: b, the least recent, goes
    assert cache.get("b") is None and cache.get("a") == 1 and cache.weight <= 100
    cache.put("huge", 6, weight=60)  # more than a quarter of the budget: not kept at all
    assert cache.get("huge") is None and cache.get("e") == 5
    cache.put("a", 7, weight=5)  # replacing a key re-weighs it
    assert cache.get("a") == 7 and cache.weight == 5 + 20 + 25 + 25


def test_a_budget_of_zero_keeps_nothing() -> None:
    cache = LruCache(budget=0)
    cache.put("a", 1)
    assert cache.get("a") is None
