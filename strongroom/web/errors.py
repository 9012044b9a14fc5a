"""Domain errors become HTTP answers: NotFound 404, NotAllowed 403, Invalid and Conflict 400."""

from collections.abc import Callable

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from strongroom.errors import Conflict, Invalid, NotAllowed, NotFound


class DomainErrorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, NotFound):
            raise Http404(str(exception))
        if isinstance(exception, NotAllowed):
            raise PermissionDenied(str(exception))
        if isinstance(exception, Invalid | Conflict):
            return render(
                request,
                "web/error.html",
                {"status": 400, "title": "That did not work", "detail": str(exception)},
                status=400,
            )
        return None


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(
        request,
        "web/error.html",
        {"status": 404, "title": "Not found", "detail": "There is nothing here, or you may not see it."},
        status=404,
    )


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    detail = str(exception) if exception and str(exception) else "Your role does not allow this."
    return render(request, "web/error.html", {"status": 403, "title": "Not allowed", "detail": detail}, status=403)


def server_error(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "web/error.html",
        {"status": 500, "title": "Something went wrong", "detail": "The error was logged. Try again in a moment."},
        status=500,
    )


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "web/error.html", {"status": 400, "title": "Bad request", "detail": ""}, status=400)
