from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ...client import AuthenticatedClient, Client
from ...types import Response, UNSET
from ... import errors

from ...models.problem import Problem
from ...models.sign_in_type_0 import SignInType0
from ...models.sign_in_type_1 import SignInType1
from typing import cast



def _get_kwargs(
    *,
    body: SignInType0 | SignInType1,

) -> dict[str, Any]:
    headers: dict[str, Any] = {}


    

    

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/admin/v1/session",
    }

    
    if isinstance(body, SignInType0):
        _kwargs["json"] = body.to_dict()
    else:
        _kwargs["json"] = body.to_dict()



    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs



def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Any | Problem | None:
    if response.status_code == 204:
        response_204 = cast(Any, None)
        return response_204

    if response.status_code == 400:
        response_400 = Problem.from_dict(response.json())



        return response_400

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())



        return response_401

    if response.status_code == 413:
        response_413 = Problem.from_dict(response.json())



        return response_413

    if response.status_code == 415:
        response_415 = Problem.from_dict(response.json())



        return response_415

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


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Any | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    body: SignInType0 | SignInType1,

) -> Response[Any | Problem]:
    """ Signs in: with the cluster secret, or a one-time login token (the link `tierkv dev`
    prints); answers a session cookie (`tierkv_admin`: HttpOnly, SameSite=Strict, 12 h).

    Args:
        body (SignInType0 | SignInType1): `POST /admin/v1/session`: exactly one of `secret` and
            `token`.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | Problem]
     """


    kwargs = _get_kwargs(
        body=body,

    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)

def sync(
    *,
    client: AuthenticatedClient,
    body: SignInType0 | SignInType1,

) -> Any | Problem | None:
    """ Signs in: with the cluster secret, or a one-time login token (the link `tierkv dev`
    prints); answers a session cookie (`tierkv_admin`: HttpOnly, SameSite=Strict, 12 h).

    Args:
        body (SignInType0 | SignInType1): `POST /admin/v1/session`: exactly one of `secret` and
            `token`.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | Problem
     """


    return sync_detailed(
        client=client,
body=body,

    ).parsed

async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    body: SignInType0 | SignInType1,

) -> Response[Any | Problem]:
    """ Signs in: with the cluster secret, or a one-time login token (the link `tierkv dev`
    prints); answers a session cookie (`tierkv_admin`: HttpOnly, SameSite=Strict, 12 h).

    Args:
        body (SignInType0 | SignInType1): `POST /admin/v1/session`: exactly one of `secret` and
            `token`.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | Problem]
     """


    kwargs = _get_kwargs(
        body=body,

    )

    response = await client.get_async_httpx_client().request(
        **kwargs
    )

    return _build_response(client=client, response=response)

async def asyncio(
    *,
    client: AuthenticatedClient,
    body: SignInType0 | SignInType1,

) -> Any | Problem | None:
    """ Signs in: with the cluster secret, or a one-time login token (the link `tierkv dev`
    prints); answers a session cookie (`tierkv_admin`: HttpOnly, SameSite=Strict, 12 h).

    Args:
        body (SignInType0 | SignInType1): `POST /admin/v1/session`: exactly one of `secret` and
            `token`.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | Problem
     """


    return (await asyncio_detailed(
        client=client,
body=body,

    )).parsed
