import uuid
from concurrent.futures import ThreadPoolExecutor

from django.core.cache import cache


def test_each_thread_reuses_one_redis_client_and_counts_stay_exact():
    client = cache._cache.get_client(write=True)
    assert cache._cache.get_client(write=True) is client
    assert cache._cache.get_client(write=False) is cache._cache.get_client(write=False)
    counter = f"test-cache-counter-{uuid.uuid4().hex}"  # the Redis database is shared with any other run
    cache.add(counter, 0, 30)

    def bump(_):
        cache.incr(counter)
        first = cache._cache.get_client(write=True)
        cache.incr(counter)
        return first is cache._cache.get_client(write=True)

    with ThreadPoolExecutor(max_workers=8) as pool:
        reused = list(pool.map(bump, range(100)))
    assert all(reused)
    assert cache.get(counter) == 200
    cache.delete(counter)
