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
    id: int,
    *,
    body: NewMember,

) -> dict[str, Any]:
    headers: dict[str, Any] = {}


    

    

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/admin/v1/members/{id}/replace".format(id=quote(str(id), safe=""),),
    }

    _kwargs["json"] = body.to_dict()


    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs



def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> MembershipChange | Problem | None:
    if response.status_code == 200:
        response_200 = MembershipChange.from_dict(response.json())



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

    if response.status_code == 404:
        response_404 = Problem.from_dict(response.json())



        return response_404

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
    id: int,
    *,
    client: AuthenticatedClient,
    body: NewMember,

) -> Response[MembershipChange | Problem]:
    """ Replaces a member lost for good by a new one: the old id is retired (it never serves
    again; a process started with it is refused) and the new member takes its place in the
    ring; the old member's replicas are re-created from the survivors.

     Role: `admin`.

    Args:
        id (int):
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
        id=id,
body=body,

    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)

def sync(
    id: int,
    *,
    client: AuthenticatedClient,
    body: NewMember,

) -> MembershipChange | Problem | None:
    """ Replaces a member lost for good by a new one: the old id is retired (it never serves
    again; a process started with it is refused) and the new member takes its place in the
    ring; the old member's replicas are re-created from the survivors.

     Role: `admin`.

    Args:
        id (int):
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
        id=id,
client=client,
body=body,

    ).parsed

async def asyncio_detailed(
    id: int,
    *,
    client: AuthenticatedClient,
    body: NewMember,

) -> Response[MembershipChange | Problem]:
    """ Replaces a member lost for good by a new one: the old id is retired (it never serves
    again; a process started with it is refused) and the new member takes its place in the
    ring; the old member's replicas are re-created from the survivors.

     Role: `admin`.

    Args:
        id (int):
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
        id=id,
body=body,

    )

    response = await client.get_async_httpx_client().request(
        **kwargs
    )

    return _build_response(client=client, response=response)

async def asyncio(
    id: int,
    *,
    client: AuthenticatedClient,
    body: NewMember,

) -> MembershipChange | Problem | None:
    """ Replaces a member lost for good by a new one: the old id is retired (it never serves
    again; a process started with it is refused) and the new member takes its place in the
    ring; the old member's replicas are re-created from the survivors.

     Role: `admin`.

    Args:
        id (int):
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
        id=id,
client=client,
body=body,

    )).parsed
