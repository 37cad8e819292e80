"""The bearer-token dependency every authenticated route shares: who is asking, or 401/429.

No ``from __future__ import annotations`` here: FastAPI reads the dependency's parameter
annotations at run time."""

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from serving.errors import UNAUTHORIZED, ApiError
from serving.ratelimit import RateLimiter
from serving.tokens import Principal, TokenStore

bearer = HTTPBearer(auto_error=False, description="A token from `fengqiao token create` (scope city, county:<id> "
                                                  "or admin).")


def bearer_principal(tokens: TokenStore, limiter: RateLimiter) -> Callable[..., Awaitable[Principal]]:
    """A FastAPI dependency resolving the caller's principal from ``tokens``, rate-limited by
    ``limiter``."""

    async def principal(request: Request, credentials: Annotated[
            HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
        """The caller's principal; 401 without a valid token, 429 over the rate limit (failed
        attempts count against the client's address)."""
        found = tokens.authenticate(credentials.credentials) if credentials else None
        key = f"token:{found.token_id}" if found else f"client:{request.client.host if request.client else '?'}"
        wait = limiter.acquire(key)
        if wait:
            raise ApiError(429, "rate_limited", "Too many requests; retry after the Retry-After seconds.",
                           headers={"Retry-After": limiter.retry_after(wait)})
        if found is None:
            raise UNAUTHORIZED
        request.state.token_id = found.token_id
        return found

    return principal
