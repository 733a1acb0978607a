from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ...client import AuthenticatedClient, Client
from ...types import Response, UNSET
from ... import errors

from ...models.problem import Problem
from ...models.put_kv_expiry_type_0 import PutKvExpiryType0
from ...models.put_kv_expiry_type_1 import PutKvExpiryType1
from ...models.write_result import WriteResult
from ...types import File, FileTypes
from ...types import UNSET, Unset
from io import BytesIO
from typing import cast



def _get_kwargs(
    key: str,
    *,
    body: File,
    expiry: PutKvExpiryType0 | PutKvExpiryType1 | Unset = UNSET,
    if_match: str | Unset = UNSET,
    if_none_match: str | Unset = UNSET,
    idempotency_key: str | Unset = UNSET,

) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(if_match, Unset):
        headers["If-Match"] = if_match

    if not isinstance(if_none_match, Unset):
        headers["If-None-Match"] = if_none_match

    if not isinstance(idempotency_key, Unset):
        headers["Idempotency-Key"] = idempotency_key



    

    params: dict[str, Any] = {}

    json_expiry: dict[str, Any] | Unset
    if isinstance(expiry, Unset):
        json_expiry = UNSET
    elif isinstance(expiry, PutKvExpiryType0):
        json_expiry = expiry.to_dict()
    else:
        json_expiry = expiry.to_dict()

    params["expiry"] = json_expiry


    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}


    _kwargs: dict[str, Any] = {
        "method": "put",
        "url": "/v1/kv/{key}".format(key=quote(str(key), safe=""),),
        "params": params,
    }

    _kwargs["content"] = body.payload

    headers["Content-Type"] = "application/octet-stream"

    _kwargs["headers"] = headers
    return _kwargs



def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Problem | WriteResult | None:
    if response.status_code == 200:
        response_200 = WriteResult.from_dict(response.json())



        return response_200

    if response.status_code == 201:
        response_201 = WriteResult.from_dict(response.json())



        return response_201

    if response.status_code == 400:
        response_400 = Problem.from_dict(response.json())



        return response_400

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())



        return response_401

    if response.status_code == 403:
        response_403 = Problem.from_dict(response.json())



        return response_403

    if response.status_code == 412:
        response_412 = Problem.from_dict(response.json())



        return response_412

    if response.status_code == 413:
        response_413 = Problem.from_dict(response.json())



        return response_413

    if response.status_code == 422:
        response_422 = Problem.from_dict(response.json())



        return response_422

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


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Problem | WriteResult]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    key: str,
    *,
    client: AuthenticatedClient,
    body: File,
    expiry: PutKvExpiryType0 | PutKvExpiryType1 | Unset = UNSET,
    if_match: str | Unset = UNSET,
    if_none_match: str | Unset = UNSET,
    idempotency_key: str | Unset = UNSET,

) -> Response[Problem | WriteResult]:
    """ Writes a value.

     Role: `write` or above.

    Args:
        key (str):
        expiry (PutKvExpiryType0 | PutKvExpiryType1 | Unset):
        if_match (str | Unset):
        if_none_match (str | Unset):
        idempotency_key (str | Unset):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | WriteResult]
     """


    kwargs = _get_kwargs(
        key=key,
body=body,
expiry=expiry,
if_match=if_match,
if_none_match=if_none_match,
idempotency_key=idempotency_key,

    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)

def sync(
    key: str,
    *,
    client: AuthenticatedClient,
    body: File,
    expiry: PutKvExpiryType0 | PutKvExpiryType1 | Unset = UNSET,
    if_match: str | Unset = UNSET,
    if_none_match: str | Unset = UNSET,
    idempotency_key: str | Unset = UNSET,

) -> Problem | WriteResult | None:
    """ Writes a value.

     Role: `write` or above.

    Args:
        key (str):
        expiry (PutKvExpiryType0 | PutKvExpiryType1 | Unset):
        if_match (str | Unset):
        if_none_match (str | Unset):
        idempotency_key (str | Unset):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | WriteResult
     """


    return sync_detailed(
        key=key,
client=client,
body=body,
expiry=expiry,
if_match=if_match,
if_none_match=if_none_match,
idempotency_key=idempotency_key,

    ).parsed

async def asyncio_detailed(
    key: str,
    *,
    client: AuthenticatedClient,
    body: File,
    expiry: PutKvExpiryType0 | PutKvExpiryType1 | Unset = UNSET,
    if_match: str | Unset = UNSET,
    if_none_match: str | Unset = UNSET,
    idempotency_key: str | Unset = UNSET,

) -> Response[Problem | WriteResult]:
    """ Writes a value.

     Role: `write` or above.

    Args:
        key (str):
        expiry (PutKvExpiryType0 | PutKvExpiryType1 | Unset):
        if_match (str | Unset):
        if_none_match (str | Unset):
        idempotency_key (str | Unset):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | WriteResult]
     """


    kwargs = _get_kwargs(
        key=key,
body=body,
expiry=expiry,
if_match=if_match,
if_none_match=if_none_match,
idempotency_key=idempotency_key,

    )

    response = await client.get_async_httpx_client().request(
        **kwargs
    )

    return _build_response(client=client, response=response)

async def asyncio(
    key: str,
    *,
    client: AuthenticatedClient,
    body: File,
    expiry: PutKvExpiryType0 | PutKvExpiryType1 | Unset = UNSET,
    if_match: str | Unset = UNSET,
    if_none_match: str | Unset = UNSET,
    idempotency_key: str | Unset = UNSET,

) -> Problem | WriteResult | None:
    """ Writes a value.

     Role: `write` or above.

    Args:
        key (str):
        expiry (PutKvExpiryType0 | PutKvExpiryType1 | Unset):
        if_match (str | Unset):
        if_none_match (str | Unset):
        idempotency_key (str | Unset):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | WriteResult
     """


    return (await asyncio_detailed(
        key=key,
client=client,
body=body,
expiry=expiry,
if_match=if_match,
if_none_match=if_none_match,
idempotency_key=idempotency_key,

    )).parsed
