from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ...client import AuthenticatedClient, Client
from ...types import Response, UNSET
from ... import errors

from ...models.membership_change import MembershipChange
from ...models.new_member import NewMember
from ...models.problem import Problem
from typing import cast



def _get_kwargs(
    *,
    body: NewMember,

) -> dict[str, Any]:
    headers: dict[str, Any] = {}


    

    

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/admin/v1/members",
    }

    _kwargs["json"] = body.to_dict()


    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs



def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> MembershipChange | Problem | None:
    if response.status_code == 201:
        response_201 = MembershipChange.from_dict(response.json())



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

    if response.status_code == 409:
        response_409 = Problem.from_dict(response.json())



        return response_409

    if response.status_code == 413:
        response_413 = Problem.from_dict(response.json())



        return response_413

    if response.status_code == 415:
        response_415 = Problem.from_dict(response.json())



        return response_415

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


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[MembershipChange | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    body: NewMember,

) -> Response[MembershipChange | Problem]:
    """ Adds a member (design note 0009 §6): start its node first (same object store, no
    `initial_members`); it waits until this version lists it, then gets learners of the
    shards the ring now places on it, which become voters as they catch up.

     Role: `admin`.

    Args:
        body (NewMember): `POST /admin/v1/members`: the member to add (design note 0009 §6). Start
            its node first
            (same object store, no `initial_members`): it waits until a map lists it.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[MembershipChange | Problem]
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
    body: NewMember,

) -> MembershipChange | Problem | None:
    """ Adds a member (design note 0009 §6): start its node first (same object store, no
    `initial_members`); it waits until this version lists it, then gets learners of the
    shards the ring now places on it, which become voters as they catch up.

     Role: `admin`.

    Args:
        body (NewMember): `POST /admin/v1/members`: the member to add (design note 0009 §6). Start
            its node first
            (same object store, no `initial_members`): it waits until a map lists it.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        MembershipChange | Problem
     """


    return sync_detailed(
        client=client,
body=body,

    ).parsed

async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    body: NewMember,

) -> Response[MembershipChange | Problem]:
    """ Adds a member (design note 0009 §6): start its node first (same object store, no
    `initial_members`); it waits until this version lists it, then gets learners of the
    shards the ring now places on it, which become voters as they catch up.

     Role: `admin`.

    Args:
        body (NewMember): `POST /admin/v1/members`: the member to add (design note 0009 §6). Start
            its node first
            (same object store, no `initial_members`): it waits until a map lists it.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[MembershipChange | Problem]
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
    body: NewMember,

) -> MembershipChange | Problem | None:
    """ Adds a member (design note 0009 §6): start its node first (same object store, no
    `initial_members`); it waits until this version lists it, then gets learners of the
    shards the ring now places on it, which become voters as they catch up.

     Role: `admin`.

    Args:
        body (NewMember): `POST /admin/v1/members`: the member to add (design note 0009 §6). Start
            its node first
            (same object store, no `initial_members`): it waits until a map lists it.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        MembershipChange | Problem
     """


    return (await asyncio_detailed(
        client=client,
body=body,

    )).parsed
