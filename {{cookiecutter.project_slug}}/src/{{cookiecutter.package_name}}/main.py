"""The ASGI application: ``python -m {{ cookiecutter.package_name }} serve``, or ``uvicorn {{ cookiecutter.package_name }}.main:app``."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

{{ imports(auth_router="router as auth_router", auth_service="purge", config="SERVICE_TITLE, settings", email_links="deliver_mails", mfa_router="router as mfa_router", pages="add_pages", sessions_router="router as sessions_router", database="SchemaOutdatedError, SessionLocal, engine, migrate, ping, readers, run_query, schema_is_current", errors="COMMON_RESPONSES, DATABASE_RETRY_AFTER, add_error_handlers", keys="prepare_signing_key", middleware="RequestMiddleware, configure_logging, describe, log_event", user_service="create_first_superuser", users_router="router as users_router") }}

#: Seconds between two looks for mails to send again.
MAIL_INTERVAL = 10


def start_up() -> None:
    """Migrate the schema (or, with AUTO_MIGRATE off, refuse an outdated one), make
    sure a key signs tokens, then create FIRST_SUPERUSER if it is configured."""
    if settings.auto_migrate:
        migrate()
    elif not schema_is_current():
        raise SchemaOutdatedError(
            "The database is not at the latest migration and AUTO_MIGRATE is off: "
            f"run `python -m {__package__} migrate` first"
        )
    prepare_signing_key()
    if settings.first_superuser and settings.first_superuser_password:
        with SessionLocal.begin() as session:
            create_first_superuser(
                session,
                settings.first_superuser,
                settings.first_superuser_password.get_secret_value(),
            )


async def run_regularly(
    job: Callable[[], object], interval: float, failure: str
) -> None:
    """Run ``job`` on the threadpool every ``interval`` seconds. Whatever it
    raises (a database that is away, most often) is logged as ``failure``, and the
    job runs again next time."""
    while True:
        await asyncio.sleep(interval)
        try:
            await run_in_threadpool(job)
        except Exception as error:  # the loop outlives any one run
            log_event(failure, **describe(error))


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    await run_in_threadpool(start_up)
    jobs = []
    if interval := settings.purge_interval_seconds:  # expired rows, in batches
        jobs.append(run_regularly(purge, interval, "purge_failed"))
    if settings.smtp_host:
        # Mails waiting for a retry, or left by a worker that stopped (without a
        # mail server, mails go to the log as soon as they are asked for).
        jobs.append(run_regularly(deliver_mails, MAIL_INTERVAL, "mail_delivery_failed"))
    tasks = [asyncio.create_task(job) for job in jobs]
    yield
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    engine.dispose()
    readers.dispose()


def create_app() -> FastAPI:
    configure_logging()
    # /docs and /redoc load Swagger UI and ReDoc from this service, not from a CDN:
    # no third-party script on the page where users type a password.
    app = FastAPIOffline(
        title=SERVICE_TITLE,
        lifespan=lifespan,
        # Operation ids are the routes' names (register, read_current_user...):
        # what clients generated from /openapi.json call their methods.
        generate_unique_id_function=lambda route: route.name,
        responses=COMMON_RESPONSES,
    )
    add_error_handlers(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,  # the session cookie, from these origins only
            allow_methods=["*"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "X-CSRF-Token",
                "X-Request-ID",
            ],
            expose_headers=["X-Request-ID"],
        )
    app.add_middleware(RequestMiddleware, max_body_bytes=settings.max_body_bytes)
    app.include_router(auth_router)
    app.include_router(users_router)
    app.include_router(sessions_router)
    app.include_router(mfa_router)
    if settings.pages_enabled:
        add_pages(app)

    @app.get(
        "/health",
        tags=["health"],
        responses={503: {"description": "Database unavailable"}},
    )
    async def health(response: Response) -> dict[str, str]:
        """200 when the database answers, 503 when it does not."""
        if await run_query(ping):
            return {"status": "ok"}
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER)
        return {"status": "unavailable"}

    return app


app = create_app()
