"""The emulators' shared server: a route table decides, 404 for an unknown path, 405 for a known path
with another method, and the fault knobs apply before any row."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from emulators.base import EmulatorServer, Reply, Request, Response, Route


class Shelf(EmulatorServer):
    """A toy emulator: books by id, their versions, and one row that answers early."""

    name = "shelf"
    poll_interval = 0.05

    def list_books(self, request: Request) -> Response:
        return Response.json(200, {"books": ["a", "b"]})

    def get_book(self, request: Request) -> Response:
        return Response.json(200, {"id": request.params["id"], "version": request.params.get("version")})

    def put_book(self, request: Request) -> Response:
        return Response.json(201, {"id": request.params["id"], "body": request.json()})

    def versions(self, request: Request) -> Response:
        return Response.json(200, {"versions": [1, 2]})

    def files(self, request: Request) -> Response:
        return Response.json(200, {"rest": request.params["rest"]})

    def locked(self, request: Request) -> Response:
        raise Reply(Response.json(423, {"error": "locked"}))

    routes = (
        Route("GET", "/books", list_books),
        Route("GET HEAD", "/books/{id}", get_book),
        Route("PUT", "/books/{id}", put_book),
        Route("GET", "/books/{id}/versions", versions),
        Route("GET", "/books/{id}/{version}", get_book),
        Route("GET", "/files/{rest:path}", files),
        Route("POST", "/locked", locked),
    )


@pytest.fixture
def shelf() -> Iterator[httpx.Client]:
    with Shelf() as server, httpx.Client(base_url=server.url, timeout=5) as client:
        yield client


def test_a_row_passes_its_path_variables_to_the_handler(shelf: httpx.Client) -> None:
    assert shelf.get("/books").json() == {"books": ["a", "b"]}
    assert shelf.get("/books/7").json() == {"id": "7", "version": None}
    assert shelf.get("/books/7/3").json() == {"id": "7", "version": "3"}
    assert shelf.put("/books/7", json={"title": "x"}).json() == {"id": "7", "body": {"title": "x"}}
    assert shelf.get("/files/a/b/c.txt").json() == {"rest": "a/b/c.txt"}


def test_an_unknown_path_is_404_and_a_wrong_method_is_405_with_allow(shelf: httpx.Client) -> None:
    assert shelf.get("/nowhere").status_code == 404
    assert shelf.get("/books/7/3/extra").status_code == 404
    refused = shelf.delete("/books/7")
    assert refused.status_code == 405
    assert refused.headers["Allow"] == "GET, HEAD, PUT"


def test_the_first_pattern_that_matches_the_path_decides_the_methods(shelf: httpx.Client) -> None:
    # `/books/7/versions` also fits `/books/{id}/{version}`, but its own row only serves GET.
    assert shelf.get("/books/7/versions").json() == {"versions": [1, 2]}
    assert shelf.put("/books/7/versions").status_code == 405


def test_trailing_slash_matches_only_when_the_emulator_says_so() -> None:
    class Lenient(Shelf):
        trailing_slash = True

    with Shelf() as strict, Lenient() as lenient:
        assert httpx.get(f"{strict.url}/books/").status_code == 404
        assert httpx.get(f"{lenient.url}/books/").json() == {"books": ["a", "b"]}


def test_a_handler_answers_early_by_raising_its_response(shelf: httpx.Client) -> None:
    assert shelf.post("/locked").status_code == 423


def test_injected_faults_come_before_the_table_and_are_counted() -> None:
    with Shelf() as server, httpx.Client(base_url=server.url, timeout=5) as client:
        server.fail_next(1, status=503, retry_after=2, path_prefix="/books")
        failed = client.get("/books")
        assert (failed.status_code, failed.headers["Retry-After"]) == (503, "2")
        assert client.get("/books").status_code == 200
        assert server.count(lambda method, path: path == "/books") == 2
