"""Live-Track installs like a package: a wheel, not only the editable checkout, serves the page.

The wheel is built from a copy of the checkout and installed into a fresh
virtual environment in ``tmp_path``; the dependencies come from the test's own
environment (a ``.pth`` file), but Live-Track itself only from the wheel.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx2
import pytest

from tests.support import LiveServer

CHECKOUT = Path(__file__).resolve().parents[1]
# What the build needs: the project file, the readme it names, the code and the assets.
SOURCES = ("pyproject.toml", "README.md", "src", "templates", "static")


def _run(*command: str | Path, cwd: Path) -> str:
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _clean_env() -> dict[str, str]:
    """The environment minus anything that could put the checkout on the import path."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel from a copy, so the build leaves nothing in the checkout."""
    source = tmp_path_factory.mktemp("source")
    junk = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCES:
        origin = CHECKOUT / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=junk)
        else:
            shutil.copy2(origin, source / name)
    dist = tmp_path_factory.mktemp("dist")
    _run(
        sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index",
        "--no-build-isolation", "--wheel-dir", dist, source, cwd=source,
    )  # fmt: skip
    (built,) = dist.glob("peak_trade_live_track-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment outside the checkout with only the wheel installed."""
    home = tmp_path_factory.mktemp("installed")
    venv = home / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=home)
    python = venv / "bin" / "python"
    _run(
        sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
        "--no-index", wheel, cwd=home,
    )  # fmt: skip
    # The dependencies: this environment's site-packages, after the venv's own.
    # A .pth here only appends paths, it does not run the .pth files found there,
    # so an editable install of the checkout in this environment stays inactive.
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site_packages = Path(_run(python, "-c", purelib, cwd=home).strip())
    (site_packages / "zz_test_dependencies.pth").write_text(
        "\n".join(site.getsitepackages()) + "\n", encoding="utf-8"
    )
    return venv


def test_the_wheel_holds_every_module_template_and_static_file(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    expected = {path.relative_to(CHECKOUT).as_posix() for path in (CHECKOUT / "src").rglob("*.py")}
    expected |= {
        "src/webui/" + path.relative_to(CHECKOUT).as_posix()
        for folder in ("templates", "static")
        for path in (CHECKOUT / folder).rglob("*")
        if path.is_file()
    }
    assert expected - shipped == set()


def test_the_installed_package_comes_from_the_wheel(installed: Path) -> None:
    report = "import src.webui.rendering as r; print(r.__file__, r.TEMPLATE_DIR, r.STATIC_DIR)"
    where = _run(installed / "bin" / "python", "-c", report, cwd=installed.parent).split()
    venv_lib = installed.resolve() / "lib"
    assert len(where) == 3
    for path in where:
        assert Path(path).is_relative_to(venv_lib), where
    assert Path(where[1], "index.html").is_file()
    assert Path(where[2], "live-track.css").is_file()


@pytest.fixture
def served(installed: Path, tmp_path: Path, live_server: Callable[..., LiveServer]) -> str:
    """``live-track serve`` from the installed venv, with a few demo sessions, on 127.0.0.1."""
    live_track = str(installed / "bin" / "live-track")
    registry = tmp_path / "registry"
    _run(live_track, "demo", "--registry", registry, "--count", "5", cwd=tmp_path)
    server = live_server(
        registry,
        command=[live_track, "serve", "--registry", str(registry), "--port", "{port}"],
        cwd=tmp_path,  # outside the checkout
    )
    return server.base_url


def test_the_installed_server_serves_the_page_and_its_stylesheet(served: str) -> None:
    page = httpx2.get(served + "/", timeout=30)
    assert page.status_code == 200
    assert '<link rel="stylesheet" href="/static/live-track.css' in page.text
    assert "Keine Live-Sessions gefunden." not in page.text
    assert page.text.count('class="session-row') == 5

    stylesheet = httpx2.get(served + "/static/live-track.css", timeout=30)
    assert stylesheet.status_code == 200
    assert stylesheet.headers["content-type"].startswith("text/css")
    assert stylesheet.content == (CHECKOUT / "static" / "live-track.css").read_bytes()
