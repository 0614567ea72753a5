"""bench/service.py measures the service against apps it builds from the service's
own parts: they must still build on today's service (the floor app once stopped
starting when UserPublic gained a field, and nothing said so until a run). Each
structure, since the apps import the service's modules by role."""

from __future__ import annotations

import pytest

from .support import (
    Baked,
    Environment,
    clean_env,
    extension,
    load_template_module,
    run,
    variant_params,
)

bench = load_template_module("bench/service.py", "bench_service")

#: Build each app and answer one request through it, in this process's own loop.
CHECK = """
import asyncio

from httpx2 import ASGITransport, AsyncClient

import bench_floor
import bench_reference


async def main() -> None:
    for app, path in [(bench_reference.app, "/async"), (bench_floor.app, "/floor")]:
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://bench") as client:
            answer = await client.get(path, headers={"Authorization": "Bearer x"})
            assert answer.status_code == 200, answer.text


asyncio.run(main())
"""


@pytest.mark.parametrize("variant", variant_params(one_per="structure"))
def test_the_benchmarks_apps_build_and_answer(baked: Baked, env: Environment, tmp_path) -> None:
    structure = baked.answers["structure"]
    modules = {
        role: extension.module_path(baked.package, structure, role)
        for role in extension.LAYOUTS[structure]
    }
    (tmp_path / "bench_floor.py").write_text(bench.FLOOR_APP.format(**modules))
    (tmp_path / "bench_reference.py").write_text(bench.REFERENCE_APP)
    run(
        [env.bin("python"), "-c", CHECK],
        cwd=tmp_path,
        env=clean_env(baked, PYTHONPATH=f"{tmp_path}:{baked.path / 'src'}", ENVIRONMENT="test"),
    )
