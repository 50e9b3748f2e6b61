from concurrent.futures import ThreadPoolExecutor

from django.core.cache import cache


def test_each_thread_reuses_one_redis_client_and_counts_stay_exact():
    client = cache._cache.get_client(write=True)
    assert cache._cache.get_client(write=True) is client
    assert cache._cache.get_client(write=False) is cache._cache.get_client(write=False)
    cache.delete("test-cache-counter")
    cache.add("test-cache-counter", 0, 30)

    def bump(_):
        cache.incr("test-cache-counter")
        first = cache._cache.get_client(write=True)
        cache.incr("test-cache-counter")
        return first is cache._cache.get_client(write=True)

    with ThreadPoolExecutor(max_workers=8) as pool:
        reused = list(pool.map(bump, range(100)))
    assert all(reused)
    assert cache.get("test-cache-counter") == 200
    cache.delete("test-cache-counter")
