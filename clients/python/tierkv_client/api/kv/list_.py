from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ...client import AuthenticatedClient, Client
from ...types import Response, UNSET
from ... import errors

from ...models.list_consistency import ListConsistency
from ...models.list_page import ListPage
from ...models.problem import Problem
from ...types import UNSET, Unset
from typing import cast



def _get_kwargs(
    *,
    prefix: str | Unset = UNSET,
    prefix_base64: str | Unset = UNSET,
    start_after: str | Unset = UNSET,
    start_after_base64: str | Unset = UNSET,
    limit: int | Unset = UNSET,
    consistency: ListConsistency | Unset = UNSET,

) -> dict[str, Any]:
    

    

    params: dict[str, Any] = {}

    params["prefix"] = prefix

    params["prefix_base64"] = prefix_base64

    params["start_after"] = start_after

    params["start_after_base64"] = start_after_base64

    params["limit"] = limit

    json_consistency: str | Unset = UNSET
    if not isinstance(consistency, Unset):
        json_consistency = consistency.value

    params["consistency"] = json_consistency


    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}


    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/kv",
        "params": params,
    }


    return _kwargs



def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> ListPage | Problem | None:
    if response.status_code == 200:
        response_200 = ListPage.from_dict(response.json())



        return response_200

    if response.status_code == 400:
        response_400 = Problem.from_dict(response.json())



        return response_400

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())



        return response_401

    if response.status_code == 403:
        response_403 = Problem.from_dict(response.json())



        return response_403

    if response.status_code == 429:
        response_429 = Problem.from_dict(response.json())



        return response_429

    if response.status_code == 500:
        response_500 = Problem.from_dict(response.json())



        return response_500

    if response.status_code == 503:
        response_503 = Problem.from_dict(response.json())



        return response_503

    if response.status_code == 504:
        response_504 = Problem.from_dict(response.json())



        return response_504

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[ListPage | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    prefix: str | Unset = UNSET,
    prefix_base64: str | Unset = UNSET,
    start_after: str | Unset = UNSET,
    start_after_base64: str | Unset = UNSET,
    limit: int | Unset = UNSET,
    consistency: ListConsistency | Unset = UNSET,

) -> Response[ListPage | Problem]:
    """ Lists keys.

     Role: `read` or above.

    Args:
        prefix (str | Unset):
        prefix_base64 (str | Unset):
        start_after (str | Unset):
        start_after_base64 (str | Unset):
        limit (int | Unset):
        consistency (ListConsistency | Unset): Read consistency (`?consistency=`): `strong` reads
            come from the shard's leaseholder,
            `eventual` reads from any replica's committed state (a single-process server holds one
            copy of each shard, so both levels read that copy).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ListPage | Problem]
     """


    kwargs = _get_kwargs(
        prefix=prefix,
prefix_base64=prefix_base64,
start_after=start_after,
start_after_base64=start_after_base64,
limit=limit,
consistency=consistency,

    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)

def sync(
    *,
    client: AuthenticatedClient,
    prefix: str | Unset = UNSET,
    prefix_base64: str | Unset = UNSET,
    start_after: str | Unset = UNSET,
    start_after_base64: str | Unset = UNSET,
    limit: int | Unset = UNSET,
    consistency: ListConsistency | Unset = UNSET,

) -> ListPage | Problem | None:
    """ Lists keys.

     Role: `read` or above.

    Args:
        prefix (str | Unset):
        prefix_base64 (str | Unset):
        start_after (str | Unset):
        start_after_base64 (str | Unset):
        limit (int | Unset):
        consistency (ListConsistency | Unset): Read consistency (`?consistency=`): `strong` reads
            come from the shard's leaseholder,
            `eventual` reads from any replica's committed state (a single-process server holds one
            copy of each shard, so both levels read that copy).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ListPage | Problem
     """


    return sync_detailed(
        client=client,
prefix=prefix,
prefix_base64=prefix_base64,
start_after=start_after,
start_after_base64=start_after_base64,
limit=limit,
consistency=consistency,

    ).parsed

async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    prefix: str | Unset = UNSET,
    prefix_base64: str | Unset = UNSET,
    start_after: str | Unset = UNSET,
    start_after_base64: str | Unset = UNSET,
    limit: int | Unset = UNSET,
    consistency: ListConsistency | Unset = UNSET,

) -> Response[ListPage | Problem]:
    """ Lists keys.

     Role: `read` or above.

    Args:
        prefix (str | Unset):
        prefix_base64 (str | Unset):
        start_after (str | Unset):
        start_after_base64 (str | Unset):
        limit (int | Unset):
        consistency (ListConsistency | Unset): Read consistency (`?consistency=`): `strong` reads
            come from the shard's leaseholder,
            `eventual` reads from any replica's committed state (a single-process server holds one
            copy of each shard, so both levels read that copy).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ListPage | Problem]
     """


    kwargs = _get_kwargs(
        prefix=prefix,
prefix_base64=prefix_base64,
start_after=start_after,
start_after_base64=start_after_base64,
limit=limit,
consistency=consistency,

    )

    response = await client.get_async_httpx_client().request(
        **kwargs
    )

    return _build_response(client=client, response=response)

async def asyncio(
    *,
    client: AuthenticatedClient,
    prefix: str | Unset = UNSET,
    prefix_base64: str | Unset = UNSET,
    start_after: str | Unset = UNSET,
    start_after_base64: str | Unset = UNSET,
    limit: int | Unset = UNSET,
    consistency: ListConsistency | Unset = UNSET,

) -> ListPage | Problem | None:
    """ Lists keys.

     Role: `read` or above.

    Args:
        prefix (str | Unset):
        prefix_base64 (str | Unset):
        start_after (str | Unset):
        start_after_base64 (str | Unset):
        limit (int | Unset):
        consistency (ListConsistency | Unset): Read consistency (`?consistency=`): `strong` reads
            come from the shard's leaseholder,
            `eventual` reads from any replica's committed state (a single-process server holds one
            copy of each shard, so both levels read that copy).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ListPage | Problem
     """


    return (await asyncio_detailed(
        client=client,
prefix=prefix,
prefix_base64=prefix_base64,
start_after=start_after,
start_after_base64=start_after_base64,
limit=limit,
consistency=consistency,

    )).parsed
