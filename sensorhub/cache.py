"""Django's Redis cache, with one Redis client per connection pool instead of one per cache operation.

Django's ``RedisCacheClient.get_client`` builds a new ``redis.Redis`` for every get, add or incr, and building one
fills a table of ~100 response callbacks: ~0.15 ms each time, twice on every rate-limited API request. Django keeps
one cache object per thread (``caches`` is thread-local), so each thread now builds its client once and reuses it.
"""
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient as DjangoRedisCacheClient


class RedisCacheClient(DjangoRedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = self._client(connection_pool=self._get_connection_pool(write))
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = RedisCacheClient
